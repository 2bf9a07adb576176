/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Built-ins, sampling macros, engine uniforms and Shadertoy aliases, in bands",
    "INPUTS": [{"NAME": "inputImage", "TYPE": "image"}]
}*/
uniform float beatPulse;
uniform float bpm;
void main() {
    float x = isf_FragNormCoord.x;
    vec4 c = vec4(0.0, 0.0, 0.0, 1.0);
    if (x < 0.1)      c.r = TIME / 10.0;
    else if (x < 0.2) c.r = TIMEDELTA * 10.0;
    else if (x < 0.3) c.rg = RENDERSIZE / 1000.0;
    else if (x < 0.4) c.r = float(FRAMEINDEX) / 10.0;
    else if (x < 0.5) c.r = DATE.y / 12.0;
    else if (x < 0.6) c.rg = vec2(beatPulse, bpm / 200.0);
    else if (x < 0.7) c.rgb = vec3(iTime / 10.0, iResolution.x / 1000.0, float(iFrame) / 10.0);
    else if (x < 0.8) c = IMG_PIXEL(inputImage, gl_FragCoord.xy) - IMG_THIS_PIXEL(inputImage) + vec4(0.5, 0.5, 0.5, 1.0);
    else if (x < 0.9) c = IMG_NORM_PIXEL(inputImage, isf_FragNormCoord) - IMG_NORM_THIS_PIXEL(inputImage)
                          + IMG_THIS_NORM_PIXEL(inputImage) - vv_FragNormCoord.x + isf_FragNormCoord.x;
    else              c.rg = IMG_SIZE(inputImage) / 1000.0;
    c.a = 1.0;
    gl_FragColor = c;
}
