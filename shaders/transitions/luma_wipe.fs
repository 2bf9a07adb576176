/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Luma wipe: the new picture burns in through a key made from brightness (of the old picture, of the new one, or drifting clouds), with a soft, glowing front. The front flares on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Wipe"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "keySource", "TYPE": "long", "DEFAULT": 1, "VALUES": [0, 1, 2], "LABELS": ["Dark parts of the old picture first", "Bright parts of the new picture first", "Clouds"], "LABEL": "Key"},
        {"NAME": "softness", "TYPE": "float", "DEFAULT": 0.12, "MIN": 0.01, "MAX": 0.5, "LABEL": "Edge softness"},
        {"NAME": "grain", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 1.0, "LABEL": "Cloud texture in the key"},
        {"NAME": "edgeGlow", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 2.0, "LABEL": "Glow on the front"},
        {"NAME": "glowColor", "TYPE": "color", "DEFAULT": [1.0, 0.75, 0.45, 1.0], "LABEL": "Glow colour"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

// Integer hash of a lattice point, 0..1.
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

// Smooth value noise, 0..1.
float valueNoise(vec2 p) {
    vec2 i = floor(p);
    vec2 f = p - i;
    vec2 u = f * f * (3.0 - 2.0 * f);
    ivec2 c = ivec2(i);
    float a = hash2i(c);
    float b = hash2i(c + ivec2(1, 0));
    float d = hash2i(c + ivec2(0, 1));
    float e = hash2i(c + ivec2(1, 1));
    return mix(mix(a, b, u.x), mix(d, e, u.x), u.y);
}

// Four octaves, 0..1.
float fbm(vec2 p) {
    float s = 0.0;
    float amp = 0.5;
    for (int i = 0; i < 4; i++) {
        s += amp * valueNoise(p);
        p = p * 2.03 + vec2(17.1, 9.7);
        amp *= 0.5;
    }
    return s / 0.9375;
}

float lumaOf(vec3 c) { return dot(c, vec3(0.2126, 0.7152, 0.0722)); }

void main() {
    vec2 uv = isf_FragNormCoord;
    vec4 a = IMG_NORM_PIXEL(startImage, uv);
    vec4 b = IMG_NORM_PIXEL(endImage, uv);
    float p = clamp(progress, 0.0, 1.0);
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);

    // The key: 0 = revealed first, 1 = revealed last.
    float clouds = fbm(uv * vec2(aspect, 1.0) * 3.0 + vec2(TIME * 0.05, 0.0));
    float key;
    if (keySource == 0) {
        key = lumaOf(a.rgb);
    } else if (keySource == 1) {
        key = 1.0 - lumaOf(b.rgb);
    } else {
        key = clouds;
    }
    key = clamp(mix(key, clouds, keySource == 2 ? 0.0 : grain * 0.5), 0.0, 1.0);

    // The threshold runs from just below 0 to just above 1, so the ends are exact.
    float s = max(softness, 0.005);
    float t = mix(-s, 1.0 + s, p);
    float w = 1.0 - smoothstep(t - s, t + s, key);
    if (p <= 0.0) w = 0.0;
    if (p >= 1.0) w = 1.0;

    vec3 col = mix(a.rgb, b.rgb, w);

    // Glow riding on the front, only while the transition runs.
    float x = (key - t) / s;
    float front = exp(-x * x * 2.0) * 4.0 * p * (1.0 - p);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    col += glowColor.rgb * front * edgeGlow * 0.5 * (1.0 + 1.2 * beat);

    gl_FragColor = vec4(col, mix(a.a, b.a, w));
}
