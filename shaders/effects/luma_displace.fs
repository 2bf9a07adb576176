/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Liquid displacement by luminance: bright and dark areas push the picture in different directions that slowly rotate, so the image flows like paint under glass. Two refinement steps keep the flow smooth. The beat makes it surge.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Distortion"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amount", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Displacement"},
        {"NAME": "speed", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 2.0, "LABEL": "Flow speed"},
        {"NAME": "swirl", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Swirl (direction varies with brightness)"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Softness"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;
uniform float audioMid;

const float TAU = 6.28318531;

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

// Smoothed luminance around p (9 taps); the radius grows with softness, so thin
// high-contrast details bend the picture smoothly instead of tearing it.
float softLuma(vec2 p, vec2 px) {
    vec2 r = px * mix(2.0, 24.0, softness) * (RENDERSIZE.y / 1080.0);
    vec3 w = vec3(0.2126, 0.7152, 0.0722);
    float l = dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p)).rgb, w) * 0.2;
    l += 0.125 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + vec2(r.x, 0.0))).rgb, w);
    l += 0.125 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - vec2(r.x, 0.0))).rgb, w);
    l += 0.125 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + vec2(0.0, r.y))).rgb, w);
    l += 0.125 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - vec2(0.0, r.y))).rgb, w);
    l += 0.075 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + 0.5 * r)).rgb, w);
    l += 0.075 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - 0.5 * r)).rgb, w);
    l += 0.075 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + 0.5 * vec2(r.x, -r.y))).rgb, w);
    l += 0.075 * dot(IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + 0.5 * vec2(-r.x, r.y))).rgb, w);
    return l;
}

// A slow, smooth flow field (two octaves of warped sines), about -1..1.
vec2 flowField(vec2 p, float t) {
    vec2 f = vec2(sin(p.y * 4.7 + t * 1.3 + sin(p.x * 3.1 - t * 0.9)),
                  cos(p.x * 4.1 - t * 1.1 + sin(p.y * 3.7 + t * 0.7)));
    f += 0.5 * vec2(sin(p.y * 9.3 - t * 1.7 + 2.0), cos(p.x * 8.9 + t * 1.9 + 1.0));
    return f / 1.5;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    vec2 px = 1.0 / RENDERSIZE;
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float strength = amount * 0.08 * (1.0 + 1.5 * beat + 0.4 * beatReact * clamp(audioMid, 0.0, 1.0))
                   * (0.85 + 0.15 * sin(TIME * 0.37));

    vec2 p = uv;
    for (int i = 0; i < 2; i++) {
        float l = softLuma(p, px);
        // The push direction turns with time and, with swirl, with brightness too.
        float a = TIME * speed + l * TAU * swirl + float(i) * 1.7;
        vec2 dir = vec2(cos(a), sin(a));
        vec2 push = dir * (l - 0.45) + flowField(p * vec2(aspect, 1.0), TIME * speed * 2.0) * l * 0.6;
        p += push * strength * vec2(1.0 / aspect, 1.0) * (i == 0 ? 1.0 : 0.6);
    }

    vec3 col = IMG_NORM_PIXEL(inputImage, mirrorRepeat(p)).rgb;
    gl_FragColor = vec4(col, 1.0);
}
