// Author: Stagecraft
// License: MIT
// Description: Swirl: the old picture is drawn into a whirlpool that keeps turning the same way while the new picture unwinds out of it, with a slight zoom into the eye.

uniform float strength; // = 5.0
uniform float radius; // = 0.8
uniform float zoom; // = 0.25

vec2 swirlMirror(vec2 p) {
    return 1.0 - abs(1.0 - mod(p, 2.0));
}

// Where to read a picture for a swirl of angle amount (radians at the centre) and scale.
vec2 swirlCoord(vec2 uv, float amount, float scale) {
    vec2 aspectV = vec2(ratio, 1.0);
    vec2 d = (uv - 0.5) * aspectV / scale;
    float r = length(d);
    float reach = max(radius, 0.01) * 0.5 * length(aspectV);
    float f = clamp(1.0 - r / reach, 0.0, 1.0);
    f = f * f * (3.0 - 2.0 * f);
    float a = amount * f;
    float c = cos(a);
    float s = sin(a);
    d = vec2(c * d.x - s * d.y, s * d.x + c * d.y);
    return swirlMirror(d / aspectV + 0.5);
}

vec4 transition(vec2 uv) {
    float p = clamp(progress, 0.0, 1.0);
    if (p <= 0.0) {
        return getFromColor(uv);
    }
    if (p >= 1.0) {
        return getToColor(uv);
    }
    float e = p * p * (3.0 - 2.0 * p);
    float bell = 4.0 * p * (1.0 - p);
    float scale = 1.0 + zoom * bell * bell;
    // One direction throughout: the old picture winds up, the new one arrives wound and unwinds.
    vec2 fromUV = swirlCoord(uv, strength * e, scale);
    vec2 toUV = swirlCoord(uv, -strength * (1.0 - e), scale);
    float w = smoothstep(0.3, 0.7, p);
    return mix(getFromColor(fromUV), getToColor(toUV), w);
}
