/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Posterize: the picture is reduced to a few flat tone bands with soft, anti-aliased borders. Either its own colours in fewer steps, or its brightness mapped onto a slowly shifting two-tone or neon palette. The band borders crawl slowly across gradients and jump on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Color", "Stylize"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "levels", "TYPE": "float", "DEFAULT": 5.0, "MIN": 2.0, "MAX": 16.0, "LABEL": "Tone levels"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.25, "MIN": 0.0, "MAX": 1.0, "LABEL": "Band softness"},
        {"NAME": "palette", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1, 2], "LABELS": ["Own colours", "Two-tone", "Neon"], "LABEL": "Palette"},
        {"NAME": "colorA", "TYPE": "color", "DEFAULT": [0.04, 0.08, 0.3, 1.0], "LABEL": "Two-tone shadows"},
        {"NAME": "colorB", "TYPE": "color", "DEFAULT": [1.0, 0.5, 0.62, 1.0], "LABEL": "Two-tone highlights"},
        {"NAME": "crawl", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Band crawl"},
        {"NAME": "mixAmount", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Mix with original"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

// Quantise x (0..1) into n steps with a soft ramp of relative width w between steps.
// The output is continuous, so there is no stair-step aliasing at the borders.
float softQuant(float x, float n, float w, float offs) {
    float f = x * (n - 1.0) + offs;
    float i = floor(f);
    float fr = f - i;
    float hw = max(w, 0.02) * 0.5;
    float step01 = smoothstep(0.5 - hw, 0.5 + hw, fr);
    return clamp((i + step01 - offs) / (n - 1.0), 0.0, 1.0);
}

vec3 neon(float t, float shift) {
    return 0.5 + 0.5 * cos(6.28318531 * (vec3(1.0, 1.0, 1.0) * t * 0.9 + vec3(0.0, 0.3, 0.6) + shift));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    vec3 src = IMG_NORM_PIXEL(inputImage, uv).rgb;
    float n = clamp(levels, 2.0, 16.0);
    float w = softness * 0.8 + 0.05;

    // The thresholds slide slowly (and jump on the beat): borders crawl across gradients.
    float offs = crawl * 0.3 * sin(TIME * 0.35) + 0.3 * beat;

    vec3 col;
    if (palette == 0) {
        col = vec3(softQuant(src.r, n, w, offs), softQuant(src.g, n, w, offs), softQuant(src.b, n, w, offs));
        // Quantising each channel desaturates a little; give some saturation back.
        float l = dot(col, vec3(0.2126, 0.7152, 0.0722));
        col = clamp(mix(vec3(l), col, 1.15), 0.0, 1.0);
    } else {
        float l = dot(src, vec3(0.2126, 0.7152, 0.0722));
        float q = softQuant(l, n, w, offs);
        if (palette == 1) {
            col = mix(colorA.rgb, colorB.rgb, q);
        } else {
            col = neon(q, TIME * 0.03 * (0.3 + crawl)) * (0.25 + 0.75 * q);
        }
    }
    gl_FragColor = vec4(mix(src, col, mixAmount), 1.0);
}
