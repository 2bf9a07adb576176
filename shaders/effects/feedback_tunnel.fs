/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Video feedback tunnel: every frame the previous frame is zoomed towards a vanishing point, turned a little, colour-shifted and faded, then mixed with the live picture. Each beat stamps a fresh copy of the picture that flies down the tunnel inside the older ones; without audio a slow built-in pulse does it.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Feedback", "Geometry"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "zoomSpeed", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 2.0, "LABEL": "Tunnel speed"},
        {"NAME": "twist", "TYPE": "float", "DEFAULT": 0.25, "MIN": -1.0, "MAX": 1.0, "LABEL": "Twist"},
        {"NAME": "trail", "TYPE": "float", "DEFAULT": 0.8, "MIN": 0.0, "MAX": 1.0, "LABEL": "Trail length"},
        {"NAME": "hueShift", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 1.0, "LABEL": "Colour cycling"},
        {"NAME": "amount", "TYPE": "float", "DEFAULT": 0.85, "MIN": 0.0, "MAX": 1.0, "LABEL": "Tunnel amount"},
        {"NAME": "center", "TYPE": "point2D", "DEFAULT": [0.5, 0.5], "MIN": [0.0, 0.0], "MAX": [1.0, 1.0], "LABEL": "Vanishing point"},
        {"NAME": "autoPulse", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Pulse rate without audio"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.7, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ],
    "PASSES": [
        {"TARGET": "feedbackBuffer", "PERSISTENT": true, "FLOAT": true},
        {}
    ]
}*/

uniform float beatPulse;
uniform float audioBass;
uniform float bpm;

const float TAU = 6.28318531;

vec2 rotate2(vec2 p, float a) {
    float c = cos(a);
    float s = sin(a);
    return vec2(c * p.x - s * p.y, s * p.x + c * p.y);
}

// Turn a colour's hue around the grey axis.
vec3 hueRotate(vec3 c, float a) {
    const vec3 k = vec3(0.57735027);
    float ca = cos(a);
    return c * ca + cross(k, c) * sin(a) + k * dot(k, c) * (1.0 - ca);
}

void main() {
    vec2 uv = isf_FragNormCoord;
    vec3 live = IMG_NORM_PIXEL(inputImage, uv).rgb;

    // Frame-rate independence: the per-frame steps below are tuned for 60 fps.
    float steps = clamp(TIMEDELTA, 0.0, 0.1) * 60.0;
    bool followBeat = bpm > 0.0 && beatReact > 0.0;

    // Stamp signal: the beat when there is one, otherwise a slow built-in pulse
    // (one stamp every 4 s at 0, every second at 1).
    float autoRate = mix(0.25, 1.0, autoPulse);
    float autoWave = pow(max(0.5 + 0.5 * cos(TIME * TAU * autoRate), 0.0), 24.0);
    float signal = followBeat ? clamp(beatPulse, 0.0, 1.0) : autoWave;
    float kick = followBeat ? clamp(beatPulse, 0.0, 1.0) * beatReact : autoWave * 0.5;

    if (PASSINDEX == 0) {
        float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
        vec2 p = (uv - center) * vec2(aspect, 1.0);
        // The previous frame, sampled further out: its content shrinks towards the vanishing point.
        float zoomStep = 0.008 * (zoomSpeed + 2.0 * kick + 0.5 * beatReact * clamp(audioBass, 0.0, 1.0));
        float scale = pow(1.0 + zoomStep, steps);
        vec2 q = rotate2(p * scale, 0.006 * twist * steps);
        vec2 prevUV = q / vec2(aspect, 1.0) + center;
        vec4 prev = IMG_NORM_PIXEL(feedbackBuffer, clamp(prevUV, 0.0, 1.0));
        // Outside the old frame there is nothing: coverage (alpha) fades to zero there.
        vec2 e = smoothstep(vec2(0.0), vec2(0.004), prevUV) * smoothstep(vec2(0.0), vec2(0.004), 1.0 - prevUV);
        prev *= e.x * e.y;
        prev.rgb = hueRotate(prev.rgb, 0.03 * hueShift * steps);
        prev.rgb *= pow(mix(0.9, 0.998, trail), steps);

        // Stamp a fresh copy on the pulse, plus a faint continuous stream between stamps.
        float stamp = max(0.3 * smoothstep(0.7, 1.0, signal), 0.03);
        stamp = 1.0 - pow(1.0 - stamp, steps);
        vec4 acc = mix(prev, vec4(live, 1.0), stamp);
        acc = clamp(acc, 0.0, 4.0);
        if (any(isnan(acc)) || FRAMEINDEX == 0) {
            acc = vec4(live, 1.0);
        }
        gl_FragColor = acc;
    } else {
        vec4 tunnel = IMG_NORM_PIXEL(feedbackBuffer, uv);
        // Where the tunnel has no coverage yet, the live picture fills in.
        vec3 col = mix(live, tunnel.rgb / max(tunnel.a, 0.05), clamp(tunnel.a, 0.0, 1.0) * amount);
        gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
    }
}
