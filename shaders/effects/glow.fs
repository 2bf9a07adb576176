/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Soft bloom of the bright parts of the picture plus a gentle vignette. The glow breathes slowly on its own and swells on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Glow", "Stylize"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "intensity", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 2.0, "LABEL": "Glow intensity"},
        {"NAME": "threshold", "TYPE": "float", "DEFAULT": 0.55, "MIN": 0.0, "MAX": 0.95, "LABEL": "Brightness threshold"},
        {"NAME": "radius", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.25, "MAX": 3.0, "LABEL": "Glow radius"},
        {"NAME": "vignette", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Vignette"},
        {"NAME": "breathe", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Slow breathing"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

// Engine audio uniforms (all 0 without audio).
uniform float beatPulse;
uniform float audioBass;

const int GLOW_TAPS = 12;
const float GOLDEN_ANGLE = 2.39996323;

float lumaOf(vec3 c) { return dot(c, vec3(0.2126, 0.7152, 0.0722)); }

// Keeps everything below 0.8 untouched and rolls highlights off smoothly towards 1.
vec3 shoulder(vec3 c) {
    vec3 over = max(c - 0.8, 0.0);
    return min(c, 0.8) + 0.2 * (1.0 - exp(-over / 0.2));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    vec3 base = IMG_NORM_PIXEL(inputImage, uv).rgb;

    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float slow = 0.5 + 0.5 * sin(TIME * 0.55) * sin(TIME * 0.23 + 1.3);
    float amount = intensity * (1.0 - 0.6 * breathe + 0.6 * breathe * slow)
                 * (1.0 + 0.9 * beat + 0.3 * beatReact * clamp(audioBass, 0.0, 1.0));

    // Radius in pixels follows the screen height, so the look is the same at any resolution.
    float rad = radius * (0.026 + 0.006 * beat + 0.006 * breathe * slow) * RENDERSIZE.y;
    // Per-pixel jitter along the tap spiral turns sampling ghosts into a fine, even texture; interleaved
    // gradient noise spreads it more evenly than a hash, which matters at a low tap count.
    float jitter = fract(52.9829189 * fract(dot(gl_FragCoord.xy, vec2(0.06711056, 0.00583715))));
    vec2 px = 1.0 / RENDERSIZE;
    float knee = max(1.0 - threshold, 0.05);

    vec3 glow = vec3(0.0);
    float total = 0.0;
    for (int i = 0; i < GLOW_TAPS; i++) {
        float fi = float(i) + jitter;
        float r = sqrt(fi / float(GLOW_TAPS));
        float a = fi * GOLDEN_ANGLE;
        vec2 offs = vec2(cos(a), sin(a)) * r * rad * px;
        vec3 c = IMG_NORM_PIXEL(inputImage, clamp(uv + offs, 0.0, 1.0)).rgb;
        // Soft knee: only the part above the threshold glows, without a hard edge.
        float l = lumaOf(c);
        float w = smoothstep(threshold, threshold + 0.5 * knee, l);
        float g = exp(-2.5 * r * r);
        glow += c * w * g;
        total += g;
    }
    glow /= max(total, 1e-4);

    vec3 col = base + glow * amount * 1.6;

    // Gentle, aspect-correct vignette.
    vec2 d = (uv - 0.5) * vec2(RENDERSIZE.x / RENDERSIZE.y, 1.0);
    float v = smoothstep(1.15, 0.25, length(d));
    col *= mix(1.0, v, vignette * 0.6);

    gl_FragColor = vec4(shoulder(max(col, 0.0)), 1.0);
}
