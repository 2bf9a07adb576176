/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Radial wipe: the new picture sweeps in like clock hands (one or more blades) or opens like a fan from a start ray, with a soft edge and a thin light on the sweeping front that flares on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Wipe"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "style", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1], "LABELS": ["Clock", "Fan"], "LABEL": "Sweep"},
        {"NAME": "blades", "TYPE": "long", "DEFAULT": 1, "VALUES": [1, 2, 3, 4, 6], "LABELS": ["1", "2", "3", "4", "6"], "LABEL": "Blades"},
        {"NAME": "clockwise", "TYPE": "bool", "DEFAULT": true, "LABEL": "Clockwise"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.025, "MIN": 0.002, "MAX": 0.2, "LABEL": "Edge softness (screen heights)"},
        {"NAME": "startAngle", "TYPE": "float", "DEFAULT": 90.0, "MIN": 0.0, "MAX": 360.0, "LABEL": "Start angle"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Centre"},
        {"NAME": "edgeGlow", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 2.0, "LABEL": "Light on the front"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

const float TAU = 6.28318531;

// 1 where the new picture shows, for a sweep coordinate a (0..1) and threshold t.
float reveal(float a, float t, float s) {
    return 1.0 - smoothstep(t - s, t + s, a);
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    vec2 d = (uv - center) * vec2(aspect, 1.0);
    float r = length(d);
    float ang = r > 1e-6 ? atan(d.y, d.x) : 0.0;

    float n = float(max(blades, 1));
    float dirSign = clockwise ? -1.0 : 1.0;
    // Sweep coordinate 0..1 inside each blade, measured from the start ray.
    float turns = (ang - radians(startAngle)) / TAU * dirSign;
    float a = fract(turns * n);

    // Softness is a width on screen; turned into sweep units at this radius (capped near the centre).
    float arc = max(r, 1e-4) * TAU / n;
    float s = clamp(softness / arc, 0.001, 0.5);
    float t = mix(-s, 1.0 + s, p);
    float w;
    float frontDist;
    if (style == 1) {
        // Fan: opens both ways from the start ray: no seam at all.
        float f = 1.0 - abs(1.0 - 2.0 * a);
        w = reveal(f, t, s);
        frontDist = f - t;
    } else {
        w = reveal(a, t, s);
        // The start ray is a seam (a jumps from 1 to 0): blend across it over about a pixel.
        float seamTurns = min(a, 1.0 - a) / n;
        float seamPx = r * RENDERSIZE.y * sin(min(seamTurns * TAU, 1.5));
        float across = 0.5 * (reveal(0.0, t, s) + reveal(1.0, t, s));
        w = mix(across, w, smoothstep(0.0, 1.5, seamPx));
        frontDist = a - t;
    }
    if (p <= 0.0) w = 0.0;
    if (p >= 1.0) w = 1.0;

    vec3 A = IMG_NORM_PIXEL(startImage, uv).rgb;
    vec3 B = IMG_NORM_PIXEL(endImage, uv).rgb;
    vec3 col = mix(A, B, w);

    float x = frontDist / s;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float front = exp(-x * x * 1.5) * 4.0 * p * (1.0 - p) * smoothstep(0.0, 0.05, r);
    col += front * edgeGlow * 0.35 * (1.0 + 1.5 * beat) * mix(col, vec3(1.0), 0.7);

    gl_FragColor = vec4(col, 1.0);
}
