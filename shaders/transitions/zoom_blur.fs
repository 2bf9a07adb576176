/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Zoom blur: the old picture rushes towards the viewer with a radial motion blur and a soft flash, and the new picture lands from the same rush, settling sharp. The flash brightens on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Blur"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "strength", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Zoom strength"},
        {"NAME": "blur", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Motion blur"},
        {"NAME": "flash", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Flash"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Zoom centre"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

const int TAPS = 14;

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

// Radial blur of one picture: scale about c, smeared towards c over len (fraction of the radius).
vec3 zoomed(bool useEnd, vec2 uv, vec2 c, float scale, float len) {
    vec2 d = (uv - c) / scale;
    vec3 acc = vec3(0.0);
    float wsum = 0.0;
    for (int i = 0; i < TAPS; i++) {
        float f = float(i) / float(TAPS - 1);
        float w = 1.0 - 0.6 * f;
        vec2 q = mirrorRepeat(c + d * (1.0 - len * f));
        vec3 s = useEnd ? IMG_NORM_PIXEL(endImage, q).rgb : IMG_NORM_PIXEL(startImage, q).rgb;
        acc += s * w;
        wsum += w;
    }
    return acc / wsum;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    float bell = 4.0 * p * (1.0 - p);
    float w = smoothstep(0.35, 0.65, p);

    // Start zooms in (scale grows), end arrives zoomed and settles to 1.
    float zoomA = 1.0 + strength * 2.0 * p * p;
    float zoomB = 1.0 + strength * 2.0 * (1.0 - p) * (1.0 - p);
    float lenA = blur * 0.35 * bell;
    float lenB = blur * 0.35 * bell;

    vec3 col;
    if (p <= 0.0) {
        col = IMG_NORM_PIXEL(startImage, uv).rgb;
    } else if (p >= 1.0) {
        col = IMG_NORM_PIXEL(endImage, uv).rgb;
    } else {
        vec3 a = w < 1.0 ? zoomed(false, uv, center, zoomA, lenA) : vec3(0.0);
        vec3 b = w > 0.0 ? zoomed(true, uv, center, zoomB, lenB) : vec3(0.0);
        col = mix(a, b, w);
        float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
        float x = (p - 0.5) / 0.14;
        float f = exp(-x * x) * bell * flash * (1.0 + beat);
        col = mix(col, vec3(1.0), f * 0.6) + f * 0.15;
    }
    gl_FragColor = vec4(col, 1.0);
}
