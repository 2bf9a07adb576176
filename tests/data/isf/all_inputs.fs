/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Every input type: each value lands in a horizontal band of the output",
    "CATEGORIES": ["Test"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "level", "TYPE": "float", "DEFAULT": 0.25, "MIN": 0.0, "MAX": 1.0, "LABEL": "Level"},
        {"NAME": "flag", "TYPE": "bool", "DEFAULT": true},
        {"NAME": "mode", "TYPE": "long", "DEFAULT": 2, "VALUES": [0, 1, 2], "LABELS": ["zero", "one", "two"]},
        {"NAME": "tint", "TYPE": "color", "DEFAULT": [0.0, 0.5, 1.0, 1.0]},
        {"NAME": "spot", "TYPE": "point2D", "DEFAULT": [0.75, 0.25], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0]},
        {"NAME": "kick", "TYPE": "event"},
        {"NAME": "extra", "TYPE": "image"},
        {"NAME": "wave", "TYPE": "audio", "MAX": 256},
        {"NAME": "fft", "TYPE": "audioFFT", "MAX": 128}
    ]
}*/
void main() {
    float y = isf_FragNormCoord.y;
    vec4 c;
    if (y < 1.0 / 8.0)      c = vec4(level, 0.0, 0.0, 1.0);
    else if (y < 2.0 / 8.0) c = vec4(flag ? 1.0 : 0.0, 0.0, 0.0, 1.0);
    else if (y < 3.0 / 8.0) c = vec4(float(mode) / 4.0, 0.0, 0.0, 1.0);
    else if (y < 4.0 / 8.0) c = tint;
    else if (y < 5.0 / 8.0) c = vec4(spot, 0.0, 1.0);
    else if (y < 6.0 / 8.0) c = vec4(kick ? 1.0 : 0.0, 0.0, 0.0, 1.0);
    else if (y < 7.0 / 8.0) c = vec4(IMG_NORM_PIXEL(wave, vec2(0.5, 0.5)).r, IMG_NORM_PIXEL(fft, vec2(0.5, 0.5)).r, 0.0, 1.0);
    else                    c = IMG_NORM_PIXEL(extra, vec2(0.5));
    gl_FragColor = c;
}
