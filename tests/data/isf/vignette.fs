/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Darkens the corners (test effect)",
    "CATEGORIES": ["Test"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amount", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Amount"}
    ]
}*/
void main() {
    vec4 c = IMG_THIS_NORM_PIXEL(inputImage);
    float d = length(isf_FragNormCoord - 0.5) * 1.414;
    gl_FragColor = vec4(c.rgb * (1.0 - amount * d), 1.0);
}
