/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Two passes: a persistent float buffer that adds 0.1 each frame, then shown",
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "step", "TYPE": "float", "DEFAULT": 0.1, "MIN": 0.0, "MAX": 1.0}
    ],
    "PASSES": [
        {"TARGET": "accum", "PERSISTENT": true, "FLOAT": true},
        {}
    ]
}*/
void main() {
    if (PASSINDEX == 0) {
        // Reads its own last frame: the buffer grows by `step` every frame.
        gl_FragColor = IMG_THIS_NORM_PIXEL(accum) + vec4(step);
    } else {
        gl_FragColor = vec4(IMG_NORM_PIXEL(accum, isf_FragNormCoord).rgb, 1.0);
    }
}
