/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Water ripples: soft circular waves run out from a centre and refract the picture, with a faint glint on the wave crests. Every beat drops a new ring that travels outwards and fades before the next one.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Distortion"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amplitude", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Wave height"},
        {"NAME": "frequency", "TYPE": "float", "DEFAULT": 14.0, "MIN": 2.0, "MAX": 60.0, "LABEL": "Waves per screen height"},
        {"NAME": "speed", "TYPE": "float", "DEFAULT": 0.8, "MIN": 0.0, "MAX": 4.0, "LABEL": "Wave speed"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Centre"},
        {"NAME": "glint", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Light on the crests"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.7, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat rings"}
    ]
}*/

uniform float beatPulse;
uniform float beatPhase;
uniform float bpm;

const float TAU = 6.28318531;

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    vec2 d = (uv - center) * vec2(aspect, 1.0);
    float r = length(d);
    vec2 dir = r > 1e-5 ? d / r : vec2(0.0);

    // Continuous waves; amplitude dies down far from the centre and right at it.
    float k = frequency * TAU;
    float phase = r * k - TIME * speed * TAU;
    float env = smoothstep(0.0, 0.08, r) * exp(-r * 0.9);
    float slope = cos(phase) * env * amplitude;  // derivative of the height field, scaled

    // A second, slower, off-centre wave set so the surface never looks mechanical.
    vec2 c2 = vec2(0.3 * sin(TIME * 0.11), 0.2 * cos(TIME * 0.09));
    vec2 d2 = d - c2;
    float r2 = length(d2);
    vec2 dir2 = r2 > 1e-5 ? d2 / r2 : vec2(0.0);
    float slope2 = cos(r2 * k * 0.63 - TIME * speed * 0.7 * TAU + 1.0) * exp(-r2 * 1.2) * amplitude * 0.45;

    // Beat ring: radius grows through the beat, strength follows the pulse.
    float ringSlope = 0.0;
    float ringGlow = 0.0;
    if (bpm > 0.0 && beatReact > 0.0) {
        float ringR = clamp(beatPhase, 0.0, 1.0) * 1.1;
        float x = (r - ringR) / 0.07;
        float pulse = clamp(beatPulse, 0.0, 1.0) * 0.6 + 0.4 * (1.0 - clamp(beatPhase, 0.0, 1.0));
        // Derivative of a Gaussian bump: a single clean wave.
        ringSlope = -x * exp(-x * x) * 4.0 * pulse * beatReact;
        ringGlow = exp(-x * x * 0.5) * pulse * beatReact;
    }

    vec2 offs = (dir * (slope + ringSlope) + dir2 * slope2) * 0.018;
    vec2 src = uv - offs / vec2(aspect, 1.0);
    vec3 col = IMG_NORM_PIXEL(inputImage, mirrorRepeat(src)).rgb;

    // Light catches the slopes facing up-left.
    float light = dot(dir * (slope + ringSlope) + dir2 * slope2, normalize(vec2(-0.6, 0.8)));
    col += glint * 0.18 * max(light, 0.0) * mix(col, vec3(1.0), 0.5);
    col *= 1.0 - glint * 0.08 * max(-light, 0.0);
    col += ringGlow * (0.04 + 0.1 * glint) * mix(col, vec3(1.0), 0.6);

    gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
}
