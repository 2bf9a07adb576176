/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Shows an imported picture (checker.png beside it)",
    "INPUTS": [{"NAME": "inputImage", "TYPE": "image"}],
    "IMPORTED": {"checker": {"PATH": "checker.png"}}
}*/
void main() {
    gl_FragColor = IMG_NORM_PIXEL(checker, isf_FragNormCoord);
}
