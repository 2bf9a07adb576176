"""The compositor's own GLSL: the idle visual, the default crossfade, and the
overlay and blackout passes.

The shader library (``shaders/``) plugs in on top of these; these stay as the
fallback, so the screen is never black for want of a shader file.
"""

from __future__ import annotations

FULLSCREEN_VS = """
#version 330
out vec2 uv;
void main() {
    // One triangle that covers the screen; no vertex buffer needed.
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

# The default transition, always there, written as a gl-transition so it runs
# through the same path as the library's; it is also how a lone image is drawn
# (from = to, progress 0): the fit transform lives in getFromColor/getToColor.
CROSSFADE_GL_TRANSITION = """
// Author: Stagecraft
// Description: crossfade with eased progress
vec4 transition(vec2 uv) {
    return mix(getFromColor(uv), getToColor(uv), smoothstep(0.0, 1.0, progress));
}
"""

# The idle visual: slow interfering waves in deep show colours; never a flat frame.
IDLE_FS = """
#version 330
in vec2 uv;
out vec4 fragColor;
uniform vec2 uResolution;
uniform float uTime;
void main() {
    vec2 p = (uv - 0.5) * vec2(uResolution.x / uResolution.y, 1.0) * 3.0;
    float t = uTime * 0.25;
    float v = sin(p.x * 1.3 + t * 2.1)
            + sin(p.y * 1.7 - t * 1.3)
            + sin((p.x + p.y) * 1.1 + t * 1.7)
            + sin(length(p + vec2(sin(t * 0.7), cos(t * 0.9)) * 1.5) * 2.3 - t * 2.0);
    vec3 a = vec3(0.06, 0.02, 0.16);
    vec3 b = vec3(0.55, 0.10, 0.55);
    vec3 c = vec3(0.05, 0.45, 0.70);
    float k = 0.5 + 0.5 * sin(v * 1.2);
    vec3 col = mix(a, mix(b, c, 0.5 + 0.5 * sin(v * 0.7 + t)), k * 0.8);
    col *= 0.75 + 0.25 * smoothstep(1.6, 0.2, length(uv - 0.5) * 2.0);
    fragColor = vec4(col, 1.0);
}
"""

OVERLAY_VS = """
#version 330
uniform vec4 uRect;  // x0, y0, x1, y1 in clip space
out vec2 uv;
void main() {
    vec2 c = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1));
    uv = vec2(c.x, 1.0 - c.y);  // overlay images are stored top row first
    gl_Position = vec4(mix(uRect.xy, uRect.zw, c), 0.0, 1.0);
}
"""

OVERLAY_FS = """
#version 330
in vec2 uv;
out vec4 fragColor;
uniform sampler2D uTex;
uniform float uOpacity;
void main() {
    vec4 c = texture(uTex, uv);
    fragColor = vec4(c.rgb, c.a * uOpacity);
}
"""

SOLID_FS = """
#version 330
in vec2 uv;
out vec4 fragColor;
uniform vec4 uColor;
void main() { fragColor = uColor; }
"""
