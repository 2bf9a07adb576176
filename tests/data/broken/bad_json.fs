/*{
    "ISFVSN": "2",
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amount" "TYPE": "float"}
    ]
}*/
void main() { gl_FragColor = vec4(1.0); }
