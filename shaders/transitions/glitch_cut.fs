/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Glitch cut: a short burst of digital breakup around the cut: horizontal slices tear and swap between the two pictures, blocks go coarse, colour channels drift apart. Calm at both ends; the beat makes the burst rougher.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Transition", "Glitch"],
    "INPUTS": [
        {"NAME": "startImage", "TYPE": "image"},
        {"NAME": "endImage", "TYPE": "image"},
        {"NAME": "progress", "TYPE": "float", "DEFAULT": 0.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Progress"},
        {"NAME": "intensity", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Glitch intensity"},
        {"NAME": "rate", "TYPE": "float", "DEFAULT": 10.0, "MIN": 2.0, "MAX": 30.0, "LABEL": "Glitch changes per second"},
        {"NAME": "split", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Colour split"},
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

vec3 pick(bool useEnd, vec2 q) {
    q = clamp(q, 0.0, 1.0);
    return useEnd ? IMG_NORM_PIXEL(endImage, q).rgb : IMG_NORM_PIXEL(startImage, q).rgb;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float p = clamp(progress, 0.0, 1.0);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    // Glitch envelope: zero at both ends, strongest around the cut.
    float bell = 4.0 * p * (1.0 - p);
    float g = bell * bell * intensity * (1.0 + 0.5 * beat);

    // The pattern changes rate times a second, plus a new one as progress moves on.
    int slot = int(floor(TIME * rate)) + int(floor(p * 12.0)) * 977;
    float bands = mix(8.0, 36.0, hash2i(ivec2(slot, 3)));
    float band = floor(uv.y * bands);
    float r1 = hash2i(ivec2(int(band), slot));
    float r2 = hash2i(ivec2(int(band) + 500, slot));
    float r3 = hash2i(ivec2(int(band) + 1000, slot));

    // Which picture: the cut moves through the slices around the middle; a few slices swap.
    float q = smoothstep(0.3, 0.7, p);
    bool showEnd = hash2i(ivec2(int(band) * 7 + 13, int(floor(p * 6.0)))) < q;
    if (r2 < g * 0.35) showEnd = !showEnd;
    if (p <= 0.0) showEnd = false;
    if (p >= 1.0) showEnd = true;

    vec2 c = uv;
    // Slices tear sideways.
    if (r1 < g * 0.7) {
        c.x += (r3 - 0.5) * 0.12 * g;
    }
    // Some slices go blocky.
    if (r3 < g * 0.3) {
        vec2 blk = RENDERSIZE / mix(8.0, 24.0, r1);
        c = (floor(c * blk) + 0.5) / blk;
    }

    vec2 off = vec2(0.012 * split * g * (0.5 + r2), 0.0);
    vec3 col;
    col.r = pick(showEnd, c + off).r;
    col.g = pick(showEnd, c).g;
    col.b = pick(showEnd, c - off).b;

    // A faint scan texture and a slight cold tint only while glitching.
    float scan = 0.5 + 0.5 * sin(uv.y * RENDERSIZE.y * 1.5);
    col *= 1.0 - 0.12 * g * scan;
    col = mix(col, col * vec3(0.9, 1.05, 1.15), 0.4 * g * step(r1, 0.2));

    gl_FragColor = vec4(col, 1.0);
}
