/*{
    "ISFVSN": "2",
    "DESCRIPTION": "ISF transition: left-to-right hard wipe",
    "CATEGORIES": ["Transition"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0}
    ]
}*/
void main() {
    bool revealed = isf_FragNormCoord.x < progress;
    gl_FragColor = revealed ? IMG_THIS_NORM_PIXEL(endImage) : IMG_THIS_NORM_PIXEL(startImage);
}
