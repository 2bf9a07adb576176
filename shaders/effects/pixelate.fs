/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Pixelate / LED wall: the picture is rebuilt from big cells, each the average colour of its area, drawn as flat squares, round LED dots with a soft glow, or rounded tiles. The grid is centred on the screen and breathes slowly; on the beat the cells jump bigger and settle back.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Stylize", "Pixel"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "cellSize", "TYPE": "float", "DEFAULT": 24.0, "MIN": 4.0, "MAX": 120.0, "LABEL": "Cell size (px at 1080p)"},
        {"NAME": "shape", "TYPE": "long", "DEFAULT": 1, "VALUES": [0, 1, 2], "LABELS": ["Squares", "LED dots", "Rounded tiles"], "LABEL": "Cell shape"},
        {"NAME": "gap", "TYPE": "float", "DEFAULT": 0.12, "MIN": 0.0, "MAX": 0.5, "LABEL": "Gap between cells"},
        {"NAME": "breathe", "TYPE": "float", "DEFAULT": 0.3, "MIN": 0.0, "MAX": 1.0, "LABEL": "Slow breathing"},
        {"NAME": "mixAmount", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.0, "MAX": 1.0, "LABEL": "Mix with original"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

// Rounded-box distance: p relative to the box centre, b half-size, r corner radius.
float roundBox(vec2 p, vec2 b, float r) {
    vec2 q = abs(p) - b + r;
    return length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - r;
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;
    vec2 pix = uv * RENDERSIZE;
    vec2 mid = RENDERSIZE * 0.5;

    // Breathing and beat change the cell size smoothly; the grid stays centred.
    float slow = sin(TIME * 0.4) * 0.5 + sin(TIME * 0.17 + 1.0) * 0.5;
    float cell = cellSize * (RENDERSIZE.y / 1080.0) * (1.0 + 0.18 * breathe * slow) * (1.0 + 0.8 * beat);
    cell = max(cell, 2.0);

    vec2 g = (pix - mid) / cell;
    vec2 ci = floor(g);
    vec2 local = g - ci - 0.5;  // -0.5..0.5 within the cell

    // Average colour of the cell from four taps.
    vec2 centre = (ci + 0.5) * cell + mid;
    vec2 q = vec2(0.25 * cell);
    vec3 c = IMG_NORM_PIXEL(inputImage, clamp((centre + vec2(-q.x, -q.y)) / RENDERSIZE, 0.0, 1.0)).rgb
           + IMG_NORM_PIXEL(inputImage, clamp((centre + vec2(q.x, -q.y)) / RENDERSIZE, 0.0, 1.0)).rgb
           + IMG_NORM_PIXEL(inputImage, clamp((centre + vec2(-q.x, q.y)) / RENDERSIZE, 0.0, 1.0)).rgb
           + IMG_NORM_PIXEL(inputImage, clamp((centre + vec2(q.x, q.y)) / RENDERSIZE, 0.0, 1.0)).rgb;
    c *= 0.25;

    float aa = 1.0 / cell;  // one output pixel in cell units
    float halfSize = 0.5 - 0.5 * gap;
    vec3 col;
    if (shape == 0) {
        float d = roundBox(local, vec2(halfSize), 0.0);
        col = c * (1.0 - smoothstep(-aa, aa, d));
    } else if (shape == 1) {
        // LED: a round emitter with a hot core and a soft glow into the gap.
        float r = length(local);
        float emitter = 1.0 - smoothstep(halfSize * 0.92 - aa, halfSize * 0.92 + aa, r);
        float core = exp(-r * r * 10.0);
        float glow = exp(-r * r * 5.0) * 0.25;
        vec3 lit = c * (0.75 + 0.35 * core) + c * c * 0.25 * core;
        col = lit * emitter + c * glow * (1.0 - emitter);
    } else {
        float d = roundBox(local, vec2(halfSize), halfSize * 0.45);
        float inside = 1.0 - smoothstep(-aa, aa, d);
        // A faint bevel: lighter at the top-left of each tile.
        float bevel = clamp(0.5 + (local.y - local.x) * 0.35, 0.0, 1.0);
        col = c * inside * (0.9 + 0.2 * bevel);
    }

    vec3 orig = IMG_NORM_PIXEL(inputImage, uv).rgb;
    gl_FragColor = vec4(clamp(mix(orig, col, mixAmount), 0.0, 1.0), 1.0);
}
