/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Concert bloom: the bright parts are extracted at quarter resolution, blurred with a wide separable Gaussian (optionally stretched sideways like an anamorphic lens) and added back as light. The bloom breathes slowly and flares on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Glow", "Stylize"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "threshold", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 0.95, "LABEL": "Brightness threshold"},
        {"NAME": "intensity", "TYPE": "float", "DEFAULT": 0.9, "MIN": 0.0, "MAX": 3.0, "LABEL": "Bloom intensity"},
        {"NAME": "radius", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.3, "MAX": 3.0, "LABEL": "Bloom radius"},
        {"NAME": "streak", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 1.0, "LABEL": "Horizontal streak"},
        {"NAME": "tint", "TYPE": "color", "DEFAULT": [1.0, 0.93, 0.85, 1.0], "LABEL": "Bloom tint"},
        {"NAME": "breathe", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Slow breathing"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ],
    "PASSES": [
        {"TARGET": "brightPass", "WIDTH": "$WIDTH/4", "HEIGHT": "$HEIGHT/4", "FLOAT": true},
        {"TARGET": "blurH", "WIDTH": "$WIDTH/4", "HEIGHT": "$HEIGHT/4", "FLOAT": true},
        {"TARGET": "blurV", "WIDTH": "$WIDTH/4", "HEIGHT": "$HEIGHT/4", "FLOAT": true},
        {}
    ]
}*/

uniform float beatPulse;
uniform float audioLevel;

float lumaOf(vec3 c) { return dot(c, vec3(0.2126, 0.7152, 0.0722)); }

// Nine-weight Gaussian done in five bilinear taps along dir (texel units already applied).
vec3 blur9(vec2 uv, vec2 stepUV, int which) {
    // Offsets and weights of a sigma ~ 2.5 texel Gaussian, pairs merged for linear filtering.
    const float w0 = 0.2270270270;
    const float w1 = 0.3162162162;
    const float w2 = 0.0702702703;
    const float o1 = 1.3846153846;
    const float o2 = 3.2307692308;
    vec3 c;
    if (which == 0) {
        c = IMG_NORM_PIXEL(brightPass, uv).rgb * w0;
        c += IMG_NORM_PIXEL(brightPass, uv + stepUV * o1).rgb * w1;
        c += IMG_NORM_PIXEL(brightPass, uv - stepUV * o1).rgb * w1;
        c += IMG_NORM_PIXEL(brightPass, uv + stepUV * o2).rgb * w2;
        c += IMG_NORM_PIXEL(brightPass, uv - stepUV * o2).rgb * w2;
    } else {
        c = IMG_NORM_PIXEL(blurH, uv).rgb * w0;
        c += IMG_NORM_PIXEL(blurH, uv + stepUV * o1).rgb * w1;
        c += IMG_NORM_PIXEL(blurH, uv - stepUV * o1).rgb * w1;
        c += IMG_NORM_PIXEL(blurH, uv + stepUV * o2).rgb * w2;
        c += IMG_NORM_PIXEL(blurH, uv - stepUV * o2).rgb * w2;
    }
    return c;
}

vec3 shoulder(vec3 c) {
    vec3 over = max(c - 0.8, 0.0);
    return min(c, 0.8) + 0.2 * (1.0 - exp(-over / 0.2));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;

    if (PASSINDEX == 0) {
        // Downsample 4x4 input pixels with four bilinear taps, then keep what is above the threshold.
        vec2 ipx = 1.0 / IMG_SIZE(inputImage);
        vec3 c = IMG_NORM_PIXEL(inputImage, uv + ipx * vec2(-1.0, -1.0)).rgb
               + IMG_NORM_PIXEL(inputImage, uv + ipx * vec2(1.0, -1.0)).rgb
               + IMG_NORM_PIXEL(inputImage, uv + ipx * vec2(-1.0, 1.0)).rgb
               + IMG_NORM_PIXEL(inputImage, uv + ipx * vec2(1.0, 1.0)).rgb;
        c *= 0.25;
        float l = lumaOf(c);
        float knee = max(1.0 - threshold, 0.05);
        float w = smoothstep(threshold, threshold + 0.6 * knee, l);
        gl_FragColor = vec4(c * w, 1.0);
    } else if (PASSINDEX == 1) {
        vec2 texel = 1.0 / IMG_SIZE(brightPass);
        float spread = radius * (1.0 + 0.4 * beat) * (1.0 + 3.0 * streak);
        gl_FragColor = vec4(blur9(uv, vec2(texel.x * spread, 0.0), 0), 1.0);
    } else if (PASSINDEX == 2) {
        vec2 texel = 1.0 / IMG_SIZE(blurH);
        float spread = radius * (1.0 + 0.4 * beat) * (1.0 - 0.5 * streak);
        gl_FragColor = vec4(blur9(uv, vec2(0.0, texel.y * spread), 1), 1.0);
    } else {
        vec3 base = IMG_NORM_PIXEL(inputImage, uv).rgb;
        // Two reads of the blurred light: the tight one, plus a wider halo from four offset taps.
        vec2 texel = 1.0 / IMG_SIZE(blurV);
        vec3 b = IMG_NORM_PIXEL(blurV, uv).rgb;
        vec2 o = texel * 3.0 * radius;
        vec3 wide = IMG_NORM_PIXEL(blurV, uv + vec2(o.x * (1.0 + 2.0 * streak), o.y)).rgb
                  + IMG_NORM_PIXEL(blurV, uv + vec2(-o.x * (1.0 + 2.0 * streak), o.y)).rgb
                  + IMG_NORM_PIXEL(blurV, uv + vec2(o.x * (1.0 + 2.0 * streak), -o.y)).rgb
                  + IMG_NORM_PIXEL(blurV, uv + vec2(-o.x * (1.0 + 2.0 * streak), -o.y)).rgb;
        vec3 light = b * 0.6 + wide * 0.1;
        float slow = 0.5 + 0.5 * sin(TIME * 0.5) * sin(TIME * 0.21 + 0.8);
        float amount = intensity * (1.0 - 0.7 * breathe + 0.7 * breathe * slow)
                     * (1.0 + 1.2 * beat + 0.3 * beatReact * clamp(audioLevel, 0.0, 1.0));
        vec3 col = base + light * tint.rgb * amount * 1.5;
        gl_FragColor = vec4(shoulder(max(col, 0.0)), 1.0);
    }
}
