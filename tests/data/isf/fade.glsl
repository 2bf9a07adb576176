// Author: Stagecraft tests
// License: MIT
// A gl-transitions style file: parameters with defaults in comments.
uniform float strength; // = 0.5
uniform vec2 direction; // = vec2(1.0, 0.0)
uniform ivec2 grid; // = ivec2(4)
uniform bool reverse; // = false

vec4 transition(vec2 uv) {
    float p = reverse ? 1.0 - progress : progress;
    return mix(getFromColor(uv), getToColor(uv), p);
}
