/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Slide push: the new picture pushes the old one off the screen with a smooth ease-in-out, a touch of motion blur along the movement and a soft shadow where the two meet.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Slide"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "direction", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1, 2, 3], "LABELS": ["To the left", "To the right", "Up", "Down"], "LABEL": "Push direction"},
        {"NAME": "motionBlur", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Motion blur"},
        {"NAME": "shadow", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Shadow at the seam"}
    ]
}*/

const int TAPS = 10;

// Colour of the pushed pair at uv when the push has travelled e (0..1) along dir.
vec3 pushed(vec2 uv, vec2 dir, float e) {
    vec2 a = uv - dir * e;  // where this point is on the old picture
    if (a.x >= 0.0 && a.x <= 1.0 && a.y >= 0.0 && a.y <= 1.0) {
        return IMG_NORM_PIXEL(startImage, a).rgb;
    }
    vec2 b = a + dir;  // and on the new one, which follows right behind
    return IMG_NORM_PIXEL(endImage, clamp(b, 0.0, 1.0)).rgb;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    vec2 dir = direction == 0 ? vec2(-1.0, 0.0) : direction == 1 ? vec2(1.0, 0.0)
             : direction == 2 ? vec2(0.0, 1.0) : vec2(0.0, -1.0);

    // Quintic ease: zero speed at both ends, so the blur vanishes there too.
    float e = p * p * p * (p * (p * 6.0 - 15.0) + 10.0);
    float speed = 30.0 * p * p * (1.0 - p) * (1.0 - p) / 1.875;  // 0..1

    vec3 col;
    if (p <= 0.0) {
        col = IMG_NORM_PIXEL(startImage, uv).rgb;
    } else if (p >= 1.0) {
        col = IMG_NORM_PIXEL(endImage, uv).rgb;
    } else {
        float span = motionBlur * 0.06 * speed;
        col = vec3(0.0);
        for (int i = 0; i < TAPS; i++) {
            float f = (float(i) + 0.5) / float(TAPS) - 0.5;
            col += pushed(uv, dir, e + f * span);
        }
        col /= float(TAPS);

        // Soft shadow cast by the old picture onto the incoming one.
        vec2 a = uv - dir * e;
        float seam = dir.x + dir.y < 0.0 ? -1.0 : 0.0;
        float behind = seam - dot(a, dir);  // > 0 on the new picture's side of the seam
        float sh = behind > 0.0 ? exp(-behind / 0.03) : 0.0;
        col *= 1.0 - shadow * 0.55 * sh * 4.0 * p * (1.0 - p);
    }
    gl_FragColor = vec4(col, 1.0);
}
