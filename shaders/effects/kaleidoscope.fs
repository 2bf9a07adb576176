/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Mirrored kaleidoscope: the picture is folded into mirrored wedges around a centre that slowly turns and drifts over the image. The beat pumps the zoom and gives the wedges a twist that relaxes between beats.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Geometry", "Kaleidoscope"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "segments", "TYPE": "float", "DEFAULT": 6.0, "MIN": 2.0, "MAX": 16.0, "LABEL": "Mirror wedges"},
        {"NAME": "rotateSpeed", "TYPE": "float", "DEFAULT": 0.06, "MIN": -0.5, "MAX": 0.5, "LABEL": "Rotation speed (turns/s)"},
        {"NAME": "zoom", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.3, "MAX": 4.0, "LABEL": "Zoom"},
        {"NAME": "drift", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Drift over the image"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Centre"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"},
        {"NAME": "mixAmount", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Mix with original"}
    ]
}*/

uniform float beatPulse;
uniform float audioLevel;

const float TAU = 6.28318531;

// Mirror-repeat a coordinate into 0..1, so the fold never hits a clamped edge.
vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

vec2 rotate2(vec2 p, float a) {
    float c = cos(a);
    float s = sin(a);
    return vec2(c * p.x - s * p.y, s * p.x + c * p.y);
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;

    vec2 p = (uv - center) * vec2(aspect, 1.0);
    float r = length(p);
    float a = (r > 1e-6) ? atan(p.y, p.x) : 0.0;

    // Twist that grows outwards on the beat, then unwinds.
    a += beat * 0.35 * r;
    a -= TIME * rotateSpeed * TAU;

    float n = floor(clamp(segments, 2.0, 16.0) + 0.5);
    float wedge = TAU / n;
    float w = mod(a, wedge);
    w = min(w, wedge - w);  // mirror every other wedge: seamless folds

    float z = zoom * (1.0 + 0.12 * beat + 0.04 * beatReact * clamp(audioLevel, 0.0, 1.0));
    vec2 q = vec2(cos(w), sin(w)) * r / max(z, 0.05);

    // The fold looks at a slowly wandering, slowly turning patch of the picture.
    vec2 wander = drift * vec2(0.18 * sin(TIME * 0.071) + 0.07 * sin(TIME * 0.19 + 1.0),
                               0.14 * cos(TIME * 0.057) + 0.05 * sin(TIME * 0.23 + 2.0));
    // Centre the wedge on the picture's middle, so each fold shows a large part of the image.
    vec2 bisector = vec2(cos(0.5 * wedge), sin(0.5 * wedge));
    q = rotate2(q - 0.5 * bisector, TIME * 0.05 * drift + 0.6);
    vec2 src = vec2(0.5) + wander + q / vec2(aspect, 1.0);
    vec3 kal = IMG_NORM_PIXEL(inputImage, mirrorRepeat(src)).rgb;

    vec3 orig = IMG_NORM_PIXEL(inputImage, uv).rgb;
    gl_FragColor = vec4(mix(orig, kal, mixAmount), 1.0);
}
