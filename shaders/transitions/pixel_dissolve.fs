/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Pixel dissolve: the old picture breaks down into ever bigger pixels in crisp power-of-two steps, the big blocks flip one by one (each with a small flash) to the new picture, which then resolves back to full sharpness.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Pixel"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "maxCell", "TYPE": "float", "DEFAULT": 64.0, "MIN": 8.0, "MAX": 200.0, "LABEL": "Biggest pixel (px at 1080p)"},
        {"NAME": "sparkle", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Flash when a block flips"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
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

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    vec2 mid = RENDERSIZE * 0.5;
    vec2 pix = uv * RENDERSIZE;

    // Pixelation ramps up over the first third, holds, and ramps down over the last third.
    float k = smoothstep(0.0, 0.33, p) * (1.0 - smoothstep(0.67, 1.0, p));
    float big = max(maxCell * RENDERSIZE.y / 1080.0, 2.0);
    // Cell = big / 2^level: nested grids (all centred), so the steps look deliberate.
    float level = floor((1.0 - k) * 7.0 + 0.5);
    float cell = big / exp2(level);

    // Which picture: each big block flips at its own moment in the middle of the transition.
    vec2 bigIdx = floor((pix - mid) / big);
    float rnd = hash2i(ivec2(bigIdx) + ivec2(311, 733));
    float q = smoothstep(0.3, 0.7, p);
    bool showEnd = rnd < q;
    if (p <= 0.0) showEnd = false;
    if (p >= 1.0) showEnd = true;

    vec2 coord = uv;
    if (cell > 1.0 && k > 0.0) {
        vec2 c = (floor((pix - mid) / cell) + 0.5) * cell + mid;
        coord = clamp(c / RENDERSIZE, 0.0, 1.0);
    }
    vec3 col = showEnd ? IMG_NORM_PIXEL(endImage, coord).rgb : IMG_NORM_PIXEL(startImage, coord).rgb;

    // A short flash on a block right after it flips.
    float since = q - rnd;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float flash = showEnd ? exp(-max(since, 0.0) * 30.0) : 0.0;
    flash *= 4.0 * p * (1.0 - p) * sparkle * (1.0 + beat);
    col = mix(col, vec3(1.0), clamp(flash * 0.5, 0.0, 1.0));

    gl_FragColor = vec4(col, 1.0);
}
