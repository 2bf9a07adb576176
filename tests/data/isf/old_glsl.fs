/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Old GLSL: gl_FragColor, texture2D, varying, a variable called texture, and a .vs companion",
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "shift", "TYPE": "float", "DEFAULT": 0.25}
    ]
}*/
varying vec2 shifted;
void main() {
    vec4 texture = texture2D(inputImage, isf_FragNormCoord);
    gl_FragColor = vec4(shifted.x, texture.g * 0.0, 0.0, 1.0);
}
