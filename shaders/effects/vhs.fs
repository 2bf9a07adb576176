/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Worn VHS tape: soft luma, smeared and slightly offset chroma, gentle line wobble, a tracking band that rolls up the screen, head-switching noise at the bottom, fine grain, scanlines and a warm faded tone. The beat kicks the tracking.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Retro", "Film"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amount", "TYPE": "float", "DEFAULT": 0.7, "MIN": 0.0, "MAX": 1.0, "LABEL": "Amount"},
        {"NAME": "grain", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Grain"},
        {"NAME": "scanlines", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Scanlines"},
        {"NAME": "bleed", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Colour bleed"},
        {"NAME": "wobble", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Tape wobble"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

float hash2i(ivec2 p) {
    uvec2 q = uvec2(p + 65536);
    uint h = q.x * 0x8da6b343u ^ q.y * 0xd8163841u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return float(h >> 8) / 16777216.0;
}

// Smooth 1D value noise, -1..1.
float vnoise(float x, int seed) {
    float i = floor(x);
    float f = x - i;
    float a = hash2i(ivec2(int(i), seed));
    float b = hash2i(ivec2(int(i) + 1, seed));
    return mix(a, b, f * f * (3.0 - 2.0 * f)) * 2.0 - 1.0;
}

vec3 rgb2yiq(vec3 c) {
    return vec3(dot(c, vec3(0.299, 0.587, 0.114)),
                dot(c, vec3(0.596, -0.274, -0.322)),
                dot(c, vec3(0.211, -0.523, 0.312)));
}

vec3 yiq2rgb(vec3 y) {
    return vec3(y.x + 0.956 * y.y + 0.621 * y.z,
                y.x - 0.272 * y.y - 0.647 * y.z,
                y.x - 1.106 * y.y + 1.703 * y.z);
}

vec3 tap(vec2 p) {
    return IMG_NORM_PIXEL(inputImage, clamp(p, vec2(0.0), vec2(1.0))).rgb;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    vec2 px = 1.0 / RENDERSIZE;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float t = mod(TIME, 1000.0);
    // Tape lines: about 480 visible lines, whatever the output size.
    float lineY = floor(uv.y * 480.0);

    // ---- geometry: wobble, tracking band, head switching ----
    float shift = wobble * 0.0012 * vnoise(t * 2.3 + uv.y * 3.0, 3);
    shift += wobble * 0.0006 * vnoise(lineY * 0.37 + t * 40.0, 7);

    // Tracking band that rolls slowly up the screen; the beat makes it bigger and rougher.
    float bandPos = fract(t * 0.07 + 0.3);
    float bandW = 0.035 + 0.05 * beat;
    float dBand = abs(uv.y - bandPos);
    dBand = min(dBand, 1.0 - dBand);
    float band = smoothstep(bandW, 0.0, dBand) * (0.35 + 0.65 * beat) * amount;
    shift += band * 0.02 * vnoise(lineY * 0.9 + t * 25.0, 11);

    // Head-switching noise in the bottom few lines.
    float head = smoothstep(0.025, 0.0, uv.y) * amount;
    shift += head * 0.03 * (0.5 + 0.5 * vnoise(lineY * 1.7 + t * 30.0, 13));

    vec2 p = vec2(uv.x + shift * amount, uv.y);

    // ---- signal: sharp-ish luma, smeared and late chroma ----
    float lumaBlur = 1.2 * px.x;
    vec3 yl = rgb2yiq(tap(p)) * 0.5
            + rgb2yiq(tap(p + vec2(lumaBlur, 0.0))) * 0.25
            + rgb2yiq(tap(p - vec2(lumaBlur, 0.0))) * 0.25;
    vec2 chroma = vec2(0.0);
    float wsum = 0.0;
    // Chroma smear measured on the tape (fractions of the width), not in output pixels.
    float smear = 0.0012 + 0.004 * bleed;
    for (int i = 0; i < 6; i++) {
        float fi = float(i);
        float w = exp(-fi * 0.45);
        // Chroma trails to the right of edges (the signal arrives late).
        chroma += rgb2yiq(tap(p - vec2((fi + 0.5) * smear - 0.003 * bleed, 0.0))).yz * w;
        wsum += w;
    }
    chroma /= wsum;
    vec3 yiq = vec3(yl.x, mix(yl.yz, chroma, clamp(bleed * 1.5, 0.0, 1.0) * amount));
    // Slightly washed-out tape chroma.
    yiq.yz *= mix(1.0, 0.82, amount);
    vec3 col = yiq2rgb(yiq);

    // ---- tone: lifted blacks, soft highlights, warm tint ----
    col = mix(col, col * vec3(1.04, 1.0, 0.92) * 0.92 + 0.04, amount);

    // ---- noise ----
    float frame = floor(t * 30.0);
    ivec2 gp = ivec2(gl_FragCoord.xy);
    float g = hash2i(gp + ivec2(int(frame) * 7919, int(frame) * 104729)) - 0.5;
    col += g * grain * 0.12 * amount;
    // Brighter noise streaks inside the tracking band and the head-switch area.
    float streakN = hash2i(ivec2(int(lineY), int(frame))) * hash2i(ivec2(gp.x / 7, int(lineY) + int(frame) * 3));
    col += vec3(streakN) * (band * 0.5 + head * 0.35);

    // ---- scanlines and vignette ----
    float sl = 0.5 + 0.5 * cos(uv.y * RENDERSIZE.y * 3.14159265 / 1.5);
    col *= 1.0 - scanlines * 0.22 * sl * amount;
    vec2 d = uv - 0.5;
    col *= 1.0 - amount * 0.35 * dot(d, d) * 2.0;

    gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
}
