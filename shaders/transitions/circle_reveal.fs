/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Circle reveal: an iris opens from a point and shows the new picture, which settles from a slight zoom while the old one dims; a thin ring of light rides on the edge and flares on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Wipe"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Centre"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.02, "MIN": 0.002, "MAX": 0.3, "LABEL": "Edge softness"},
        {"NAME": "ringGlow", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 2.0, "LABEL": "Ring of light"},
        {"NAME": "ringColor", "TYPE": "color", "DEFAULT": [0.7, 0.85, 1.0, 1.0], "LABEL": "Ring colour"},
        {"NAME": "zoom", "TYPE": "float", "DEFAULT": 0.08, "MIN": 0.0, "MAX": 0.5, "LABEL": "Settle zoom"},
        {"NAME": "dimOld", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 1.0, "LABEL": "Dim the old picture"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    vec2 d = (uv - center) * vec2(aspect, 1.0);
    float r = length(d);

    vec2 far = max(center, 1.0 - center) * vec2(aspect, 1.0);
    float maxR = length(far) + 0.001;
    float s = max(softness, 0.001);
    // Ease in-out on the radius, applied to the area so the opening feels even.
    float e = p * p * (3.0 - 2.0 * p);
    float R = mix(-s, maxR + s, sqrt(e));
    float w = 1.0 - smoothstep(R - s, R + s, r);
    if (p <= 0.0) w = 0.0;
    if (p >= 1.0) w = 1.0;

    // The new picture settles from a slight zoom; exactly unzoomed at the end.
    float scale = 1.0 + zoom * (1.0 - e);
    vec2 bq = p >= 1.0 ? uv : center + (uv - center) / scale;
    vec3 b = IMG_NORM_PIXEL(endImage, clamp(bq, 0.0, 1.0)).rgb;
    vec3 a = IMG_NORM_PIXEL(startImage, uv).rgb;
    float env = 4.0 * p * (1.0 - p);
    a *= 1.0 - dimOld * 0.6 * env;

    vec3 col = mix(a, b, w);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float ringW = 0.006 + 0.01 * beat + s * 0.5;
    float x = (r - R) / ringW;
    float ring = (exp(-x * x) + 0.25 * exp(-abs(x) * 0.3)) * env;
    col += ringColor.rgb * ring * ringGlow * 0.5 * (1.0 + 1.2 * beat);

    gl_FragColor = vec4(col, 1.0);
}
