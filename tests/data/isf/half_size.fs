/*{
    "ISFVSN": "2",
    "DESCRIPTION": "A pass sized by expressions; the last pass reports the sizes it saw",
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "divider", "TYPE": "float", "DEFAULT": 4.0, "MIN": 1.0, "MAX": 8.0}
    ],
    "PASSES": [
        {"TARGET": "small", "WIDTH": "floor($WIDTH/$divider)", "HEIGHT": "max($HEIGHT/2.0, 1.0)"},
        {}
    ]
}*/
void main() {
    if (PASSINDEX == 0) {
        gl_FragColor = vec4(RENDERSIZE / 255.0, 0.0, 1.0);
    } else {
        // red = width of the small pass / 255, green = its height / 255 (from both sides)
        vec2 s = IMG_SIZE(small);
        vec4 seen = IMG_NORM_PIXEL(small, vec2(0.5));
        gl_FragColor = vec4(s.x / 255.0, s.y / 255.0, seen.r - s.x / 255.0 + 0.5, 1.0);
    }
}
