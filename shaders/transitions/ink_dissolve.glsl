// Author: Stagecraft
// License: MIT
// Description: Ink burn: the old picture is eaten away along a ragged, cloudy front with a glowing ember edge, revealing the new picture underneath.

uniform float scale; // = 3.5
uniform float edge; // = 0.08
uniform float hue; // = 0.06
uniform float glow; // = 1.0

// Integer hash of a lattice point, 0..1.
float inkHash(ivec2 p) {
    uvec2 q = uvec2(p + 65536);
    uint h = q.x * 0x8da6b343u ^ q.y * 0xd8163841u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return float(h >> 8) / 16777216.0;
}

// Smooth value noise, 0..1.
float inkValueNoise(vec2 p) {
    vec2 i = floor(p);
    vec2 f = p - i;
    vec2 u = f * f * (3.0 - 2.0 * f);
    ivec2 c = ivec2(i);
    float a = inkHash(c);
    float b = inkHash(c + ivec2(1, 0));
    float d = inkHash(c + ivec2(0, 1));
    float e = inkHash(c + ivec2(1, 1));
    return mix(mix(a, b, u.x), mix(d, e, u.x), u.y);
}

// Four octaves, 0..1.
float inkFbm(vec2 p) {
    float s = 0.0;
    float amp = 0.5;
    for (int i = 0; i < 4; i++) {
        s += amp * inkValueNoise(p);
        p = p * 2.03 + vec2(17.1, 9.7);
        amp *= 0.5;
    }
    return s / 0.9375;
}

// Fully saturated colour of hue h (0..1): 0.06 is a warm orange.
vec3 emberColor(float h) {
    return clamp(abs(mod(h * 6.0 + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
}

vec4 transition(vec2 uv) {
    float p = clamp(progress, 0.0, 1.0);
    vec4 a = getFromColor(uv);
    vec4 b = getToColor(uv);
    if (p <= 0.0) {
        return a;
    }
    if (p >= 1.0) {
        return b;
    }
    // Cloudy key, 0..1, slightly biased so the burn starts near the middle.
    vec2 q = (uv - 0.5) * vec2(ratio, 1.0);
    float k = inkFbm(q * max(scale, 0.1) + 3.7);
    k = clamp(k * 0.8 + length(q) * 0.35, 0.0, 1.0);
    float s = max(edge, 0.005);
    float t = mix(-s, 1.0 + s, p);
    float w = 1.0 - smoothstep(t - s * 0.3, t + s * 0.3, k);
    // Ember band just outside the burnt area.
    float x = (k - t) / s;
    float ember = exp(-x * x * 3.0) * step(0.0, x + 0.3) * 4.0 * p * (1.0 - p);
    vec3 hot = mix(emberColor(hue), vec3(1.0, 0.95, 0.8), 0.35);
    vec3 col = mix(a.rgb, b.rgb, w);
    // Char the old picture a little ahead of the front.
    col *= 1.0 - 0.5 * exp(-max(x, 0.0) * 2.0) * (1.0 - w) * 4.0 * p * (1.0 - p);
    col += hot * ember * glow;
    return vec4(col, 1.0);
}
