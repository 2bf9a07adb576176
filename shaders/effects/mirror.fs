/*{
    "ISFVSN": "2",
    "DESCRIPTION": "Symmetry mirror: one half (or quarter, or triangle) of the picture is reflected onto the rest. The picture glides slowly under the mirror so the symmetric shapes keep changing; a soft light runs along the mirror line. The beat gives a short zoom push and makes the line flare.",
    "CREDIT": "Stagecraft",
    "CATEGORIES": ["Geometry", "Mirror"],
    "INPUTS": [
        {"NAME": "inputImage", "TYPE": "image"},
        {"NAME": "mode", "TYPE": "long", "DEFAULT": 0, "VALUES": [0, 1, 2, 3, 4, 5], "LABELS": ["Left onto right", "Right onto left", "Top onto bottom", "Bottom onto top", "Four quarters", "Diagonal"], "LABEL": "Mirror"},
        {"NAME": "axis", "TYPE": "float", "DEFAULT": 0.0, "MIN": -0.4, "MAX": 0.4, "LABEL": "Mirror line offset"},
        {"NAME": "drift", "TYPE": "float", "DEFAULT": 0.4, "MIN": 0.0, "MAX": 1.0, "LABEL": "Glide under the mirror"},
        {"NAME": "seamGlow", "TYPE": "float", "DEFAULT": 0.2, "MIN": 0.0, "MAX": 1.0, "LABEL": "Glow on the mirror line"},
        {"NAME": "beatReact", "TYPE": "float", "DEFAULT": 0.5, "MIN": 0.0, "MAX": 1.0, "LABEL": "Beat reaction"}
    ]
}*/

uniform float beatPulse;

vec2 mirrorRepeat(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

void main() {
    vec2 uv = isf_FragNormCoord;
    float aspect = RENDERSIZE.x / max(RENDERSIZE.y, 1.0);
    float beat = clamp(beatPulse, 0.0, 1.0) * beatReact;

    // Zoom push on the beat, about the screen centre.
    vec2 p = (uv - 0.5) / (1.0 + 0.06 * beat) + 0.5;

    float m = 0.5 + axis;
    float seamDist = 1.0;  // distance to the mirror line, in screen heights
    if (mode == 0) {
        p.x = p.x > m ? 2.0 * m - p.x : p.x;
        seamDist = abs(uv.x - m) * aspect;
    } else if (mode == 1) {
        p.x = p.x < m ? 2.0 * m - p.x : p.x;
        seamDist = abs(uv.x - m) * aspect;
    } else if (mode == 2) {
        p.y = p.y < m ? 2.0 * m - p.y : p.y;
        seamDist = abs(uv.y - m);
    } else if (mode == 3) {
        p.y = p.y > m ? 2.0 * m - p.y : p.y;
        seamDist = abs(uv.y - m);
    } else if (mode == 4) {
        p.x = p.x > m ? 2.0 * m - p.x : p.x;
        p.y = p.y < 0.5 ? 1.0 - p.y : p.y;
        seamDist = min(abs(uv.x - m) * aspect, abs(uv.y - 0.5));
    } else {
        // Diagonal: reflect across the line through the centre at 45 degrees (in screen heights).
        vec2 q = (p - 0.5) * vec2(aspect, 1.0) - vec2(axis * aspect, 0.0);
        float s = q.y - q.x;
        if (s < 0.0) {
            q = q.yx;
        }
        seamDist = abs(s) * 0.70710678;
        p = (q + vec2(axis * aspect, 0.0)) / vec2(aspect, 1.0) + 0.5;
    }

    // The picture glides slowly under the fixed mirror, so the symmetric shapes evolve.
    vec2 glide = drift * vec2(0.12 * sin(TIME * 0.13) + 0.04 * sin(TIME * 0.31 + 1.0),
                              0.08 * sin(TIME * 0.11 + 2.0) + 0.03 * cos(TIME * 0.27));
    float zoomIn = 1.0 - 0.12 * drift;
    vec2 src = (p - 0.5) * zoomIn + 0.5 + glide;
    vec3 col = IMG_NORM_PIXEL(inputImage, mirrorRepeat(src)).rgb;

    // A soft light line along the mirror, breathing slowly and flaring on the beat.
    float glowW = 0.004 + 0.01 * beat;
    float line = exp(-seamDist * seamDist / (glowW * glowW)) + 0.35 * exp(-seamDist / (glowW * 6.0));
    float level = seamGlow * (0.5 + 0.2 * sin(TIME * 0.8) + 0.8 * beat);
    col += line * level * mix(col, vec3(1.0), 0.6) * 0.6;

    gl_FragColor = vec4(clamp(col, 0.0, 1.0), 1.0);
}
