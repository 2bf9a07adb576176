/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Print halftone: the picture becomes a grid of anti-aliased dots whose size follows brightness. Three looks: glowing colour dots on black, four-ink CMYK print on paper, or one ink on paper. The screen slowly turns; the dots swell on the beat.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Stylize", "Halftone"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "style", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1, 2], "LABELS": ["Colour dots", "CMYK print", "Single ink"], "LABEL": "Style"},
        {"NAME": "cellSize", "TYPE": "float", "DEFAULT": 14.0, "MIN": 4.0, "MAX": 60.0, "LABEL": "Dot spacing (px at 1080p)"},
        {"NAME": "angle", "TYPE": "float", "DEFAULT": 20.0, "MIN": 0.0, "MAX": 90.0, "LABEL": "Screen angle"},
        {"NAME": "spin", "TYPE": "float", "DEFAULT": 0.04, "MIN": -0.5, "MAX": 0.5, "LABEL": "Screen rotation speed"},
        {"NAME": "inkColor", "TYPE": "color", "DEFAULT": [0.08, 0.1, 0.28, 1.0], "LABEL": "Ink colour (single ink)"},
        {"NAME": "mixAmount", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Mix with original"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

const float DEG = 0.01745329;

vec2 rotate2(vec2 p, float a) {
    float c = cos(a);
    float s = sin(a);
    return vec2(c * p.x - s * p.y, s * p.x + c * p.y);
}

vec3 sampleAt(vec2 p) {
    return IMG_NORM_PIXEL(inputImage, clamp(p, 0.0, 1.0)).rgb;
}

// Coverage of a dot of radius r (cell units) at distance d, anti-aliased over aa.
float dotCover(float d, float r, float aa) {
    return 1.0 - smoothstep(r - aa, r + aa, d);
}

// Dot value from a picture colour, for each ink: 0..3 = C, M, Y, K; 4 = light; 5 = dark.
float inkValue(vec3 c, int ink) {
    float k = 1.0 - max(c.r, max(c.g, c.b));
    vec3 cmy = (1.0 - c - k) / max(1.0 - k, 1e-3);
    float l = dot(c, vec3(0.2126, 0.7152, 0.0722));
    if (ink == 0) return cmy.x;
    if (ink == 1) return cmy.y;
    if (ink == 2) return cmy.z;
    if (ink == 3) return k;
    if (ink == 4) return l;
    return 1.0 - l;
}

// One screen turned by ang: looks at the four dots around the pixel (big dots overlap
// their neighbours' cells) and returns the coverage in w and the colour of the
// strongest dot in rgb.
vec4 screenDots(vec2 pix, float ang, float cell, float maxR, int ink, float aa) {
    vec2 centre = RENDERSIZE * 0.5;
    vec2 g = rotate2(pix - centre, -ang) / cell;
    vec2 base = floor(g - 0.5);
    vec4 best = vec4(0.0);
    for (int j = 0; j < 2; j++) {
        for (int i = 0; i < 2; i++) {
            vec2 cc = base + vec2(float(i), float(j)) + 0.5;
            vec2 back = rotate2(cc * cell, ang) + centre;
            vec3 c = sampleAt(back / RENDERSIZE);
            float r = sqrt(clamp(inkValue(c, ink), 0.0, 1.0)) * maxR;
            float cov = dotCover(length(g - cc), r, aa);
            if (cov > best.w) {
                best = vec4(c, cov);
            }
        }
    }
    return best;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    vec2 pix = uv * RENDERSIZE;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    float cell = max(cellSize * RENDERSIZE.y / 1080.0, 2.0);
    float aa = 0.75 / cell;  // about one and a half pixels of soft edge
    float baseAng = angle * DEG + TIME * spin;
    float grow = 1.0 + 0.25 * beat;
    vec3 orig = IMG_NORM_PIXEL(inputImage, uv).rgb;
    vec3 col;

    if (style == 1) {
        // CMYK: four screens at the classic different angles, inks multiplied on paper.
        vec3 paper = vec3(0.97, 0.95, 0.9);
        col = paper;
        float angs[4] = float[4](15.0, 75.0, 0.0, 45.0);
        vec3 inks[4] = vec3[4](vec3(0.0, 0.62, 0.88), vec3(0.9, 0.1, 0.55), vec3(1.0, 0.9, 0.0), vec3(0.12));
        for (int i = 0; i < 4; i++) {
            vec4 d = screenDots(pix, baseAng + angs[i] * DEG, cell, 0.7 * grow, i, aa);
            col *= mix(vec3(1.0), inks[i], d.w);
        }
    } else if (style == 0) {
        // Glowing colour dots on black: dot area follows brightness.
        vec4 d = screenDots(pix, baseAng, cell, 0.68 * grow, 4, aa);
        vec3 vivid = d.rgb / max(max(d.r, max(d.g, d.b)), 0.2);
        col = mix(d.rgb, vivid, 0.35) * d.w;
    } else {
        // One ink on paper: darker picture, bigger dots.
        vec3 paper = vec3(0.96, 0.94, 0.88);
        vec4 d = screenDots(pix, baseAng, cell, 0.72 * grow, 5, aa);
        col = mix(paper, inkColor.rgb, d.w);
    }

    gl_FragColor = vec4(mix(orig, col, mixAmount), 1.0);
}
