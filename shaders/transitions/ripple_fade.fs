/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Ripple fade: like a drop falling into water, a ring spreads from a point; the new picture appears inside the ring while waves run across both pictures and calm down as the transition ends. The waves swell on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Distortion"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "amplitude", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Wave height"},
        {"NAME": "frequency", "TYPE": "float", "DEFAULT": 24.0, "MIN": 4.0, "MAX": 80.0, "LABEL": "Wave frequency"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.12, "MIN": 0.01, "MAX": 0.5, "LABEL": "Ring softness"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Drop point"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    vec2 d = (uv - center) * vec2(aspect, 1.0);
    float r = length(d);
    vec2 dir = r > 1e-5 ? d / r : vec2(0.0);

    // Farthest corner from the drop, so the ring always clears the screen.
    vec2 far = max(center, 1.0 - center) * vec2(aspect, 1.0);
    float maxR = length(far) + 0.001;
    float s = max(softness, 0.005);
    float e = p * p * (3.0 - 2.0 * p);
    float R = mix(-s, maxR + s, e);
    float w = 1.0 - smoothstep(R - s, R + s, r);
    if (p <= 0.0) w = 0.0;
    if (p >= 1.0) w = 1.0;

    // Waves: strongest on the ring, trailing inside it, damped as the transition ends.
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float env = 4.0 * p * (1.0 - p);
    float x = r - R;
    float wave = sin(x * frequency - p * 12.0) * exp(-abs(x) * 6.0) + 0.3 * sin(r * frequency * 0.5 - p * 20.0) * exp(-r * 1.5);
    float h = wave * amplitude * env * (1.0 + 0.6 * beat);
    vec2 offs = dir * h * 0.02 / vec2(aspect, 1.0);

    vec2 q = mirrorRepeat(uv + offs);
    vec3 a = IMG_NORM_PIXEL(startImage, q).rgb;
    vec3 b = IMG_NORM_PIXEL(endImage, q).rgb;
    vec3 col = mix(a, b, w);
    // Light on the wave crests.
    col += max(h, 0.0) * 0.12 * mix(col, vec3(1.0), 0.5);

    gl_FragColor = vec4(col, 1.0);
}
