/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Neon outlines: the edges of the picture light up as glowing lines (a crisp core plus a soft halo) over a dimmed copy of the image. Colours: a slowly flowing rainbow, the picture's own colours made vivid, or one chosen colour. The lines flare on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Stylize", "Glow"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "strength", "TYPE": "float", "DEFAULT": 1.4, "MIN": 0.0, "MAX": 4.0, "LABEL": "Line brightness"},
        {"NAME": "glowSize", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.3, "MAX": 3.0, "LABEL": "Glow size"},
        {"NAME": "dim", "TYPE": "float", "DEFAULT": 0.65, "MIN": 0.0, "MAX": 1.0, "LABEL": "Dim the picture"},
        {"NAME": "colorMode", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1, 2], "LABELS": ["Flowing rainbow", "Picture colours", "Single colour"], "LABEL": "Line colours"},
        {"NAME": "lineColor", "TYPE": "color", "DEFAULT": [0.2, 0.8, 1.0, 1.0], "LABEL": "Single colour"},
        {"NAME": "hueSpeed", "TYPE": "float", "DEFAULT": 0.08, "MIN": 0.0, "MAX": 1.0, "LABEL": "Rainbow speed"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;
uniform float audioTreble;

float lumaAt(vec2 p) {
    return dot(IMG_NORM_PIXEL(inputImage, clamp(p, 0.0, 1.0)).rgb, vec3(0.2126, 0.7152, 0.0722));
}

// Sobel gradient magnitude of luminance with taps s apart (uv units).
float sobel(vec2 uv, vec2 s) {
    float tl = lumaAt(uv + vec2(-s.x, s.y));
    float tc = lumaAt(uv + vec2(0.0, s.y));
    float tr = lumaAt(uv + vec2(s.x, s.y));
    float ml = lumaAt(uv + vec2(-s.x, 0.0));
    float mr = lumaAt(uv + vec2(s.x, 0.0));
    float bl = lumaAt(uv + vec2(-s.x, -s.y));
    float bc = lumaAt(uv + vec2(0.0, -s.y));
    float br = lumaAt(uv + vec2(s.x, -s.y));
    float gx = (tr + 2.0 * mr + br) - (tl + 2.0 * ml + bl);
    float gy = (tl + 2.0 * tc + tr) - (bl + 2.0 * bc + br);
    return sqrt(gx * gx + gy * gy);
}

vec3 rainbow(float h) {
    return 0.5 + 0.5 * cos(6.28318531 * (h + vec3(0.0, 0.33, 0.67)));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    // Pixel steps scaled to 1080p so the look holds at any output size.
    vec2 px = vec2(RENDERSIZE.y / RENDERSIZE.x, 1.0) / 1080.0;

    float core = sobel(uv, px * 1.5);
    float halo = sobel(uv, px * 5.0 * glowSize) * 0.6 + sobel(uv, px * 12.0 * glowSize) * 0.4;
    // Gentle curve: suppress faint texture noise, keep strong edges.
    core = smoothstep(0.08, 0.6, core);
    halo = smoothstep(0.05, 0.9, halo);

    vec3 src = IMG_NORM_PIXEL(inputImage, uv).rgb;
    vec3 lineCol;
    if (colorMode == 0) {
        lineCol = rainbow(uv.x * 0.35 - uv.y * 0.25 + TIME * hueSpeed);
    } else if (colorMode == 1) {
        vec3 c = src + 0.05;
        lineCol = c / max(c.r, max(c.g, c.b));
    } else {
        lineCol = lineColor.rgb;
    }

    float pulse = 0.85 + 0.15 * sin(TIME * 1.1);
    float level = strength * pulse * (1.0 + 1.5 * beat + 0.4 * beatReact * clamp(audioTreble, 0.0, 1.0));
    vec3 base = src * (1.0 - dim);
    vec3 light = lineCol * (core * 0.8 + halo * 0.7) * level + vec3(core) * 0.25 * level * beat;
    vec3 col = base + light;
    // Soft roll-off instead of clipping the brightest lines.
    col = 1.0 - exp(-col * 1.15);
    col /= 1.0 - exp(-1.15);
    gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
}
