/*{
    "ISFVSN": "2",
    "DESCRIPTION": "RGB split with digital glitch: the red and blue channels drift apart along a slowly turning direction, stronger towards the edges like a cheap lens; now and then a few horizontal slices tear sideways. The beat widens the split and triggers the tears.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Glitch", "Color"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "amount", "TYPE": "float", "DEFAULT": 0.35, "MIN": 0.0, "MAX": 1.0, "LABEL": "Split amount"},
        {"NAME": "spin", "TYPE": "float", "DEFAULT": 0.2, "MIN": -2.0, "MAX": 2.0, "LABEL": "Split direction speed"},
        {"NAME": "lens", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Stronger at the edges"},
        {"NAME": "glitch", "TYPE": "float", "DEFAULT": 0.25, "MIN": 0.0, "MAX": 1.0, "LABEL": "Slice glitches"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.6, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;
uniform float audioTreble;

// Integer hash of two ints, 0..1.
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

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);

    // ---- slice tears ----
    // Time is cut into short slots; in a few slots some horizontal bands tear sideways.
    float slotRate = 7.0;
    float slot = floor(TIME * slotRate);
    float slotRand = hash2i(ivec2(int(slot), 17));
    float chance = glitch * 0.35 + beat * 0.6;
    float shift = 0.0;
    float tearSplit = 0.0;
    if (slotRand < chance) {
        float bands = mix(6.0, 28.0, hash2i(ivec2(int(slot), 5)));
        float band = floor(uv.y * bands);
        float br = hash2i(ivec2(int(band), int(slot)));
        if (br < 0.15 + 0.3 * glitch) {
            float dir = hash2i(ivec2(int(band) + 101, int(slot))) - 0.5;
            shift = dir * (0.02 + 0.06 * glitch + 0.05 * beat);
            tearSplit = 1.0;
        }
    }
    vec2 p = vec2(uv.x + shift, uv.y);

    // ---- channel split ----
    float angle = TIME * spin + 0.7;
    vec2 dir = vec2(cos(angle), sin(angle) * aspect);
    float edge = length((uv - 0.5) * vec2(aspect, 1.0));
    float strength = amount * 0.02 * (1.0 + 2.0 * beat + 0.5 * beatReact * clamp(audioTreble, 0.0, 1.0))
                   * mix(1.0, 0.3 + 1.6 * edge, lens)
                   * (1.0 + 2.0 * tearSplit)
                   * (0.8 + 0.2 * sin(TIME * 1.3));
    vec2 off = dir / aspect * strength;

    // Three taps per outer channel blur the fringe a touch, so it reads as light, not as a bug.
    vec3 col;
    col.r = 0.5 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + off)).r
          + 0.25 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + off * 0.8)).r
          + 0.25 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p + off * 1.2)).r;
    col.g = IMG_NORM_PIXEL(inputImage, mirrorRepeat(p)).g;
    col.b = 0.5 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - off)).b
          + 0.25 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - off * 0.8)).b
          + 0.25 * IMG_NORM_PIXEL(inputImage, mirrorRepeat(p - off * 1.2)).b;

    // Torn slices get a faint cold tint, as a digital error would.
    col = mix(col, col * vec3(0.85, 1.0, 1.15), tearSplit * 0.5);
    gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
}
