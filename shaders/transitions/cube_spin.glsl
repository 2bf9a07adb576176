// Author: Stagecraft
// License: MIT
// Description: Cube spin: both pictures are faces of a box that turns a quarter turn about the vertical axis, stepping back from the camera in the middle of the turn, over a dark floor that softly reflects it.

uniform float perspective; // = 0.7
uniform float unzoom; // = 0.35
uniform float reflection; // = 0.3
uniform float shading; // = 0.35

const float CUBE_PI = 3.14159265;

// Ray against the box |x| <= hx, |y| <= 0.5, |z| <= hx. Returns t (or -1) and the face in f:
// 1 = front (+z), 2 = right (+x), 0 = other.
float cubeHit(vec3 ro, vec3 rd, float hx, out int f, out vec3 hit) {
    vec3 b = vec3(hx, 0.5, hx);
    // Keep every component away from zero: no infinities, whatever the driver does with them.
    vec3 safe = vec3(abs(rd.x) < 1e-6 ? 1e-6 : rd.x, abs(rd.y) < 1e-6 ? 1e-6 : rd.y, abs(rd.z) < 1e-6 ? 1e-6 : rd.z);
    vec3 inv = 1.0 / safe;
    vec3 t0 = (-b - ro) * inv;
    vec3 t1 = (b - ro) * inv;
    vec3 tmin = min(t0, t1);
    vec3 tmax = max(t0, t1);
    float tn = max(max(tmin.x, tmin.y), tmin.z);
    float tf = min(min(tmax.x, tmax.y), tmax.z);
    f = 0;
    hit = vec3(0.0);
    if (tn > tf || tf < 0.0) {
        return -1.0;
    }
    hit = ro + rd * tn;
    if (tmin.z >= tmin.x && tmin.z >= tmin.y && ro.z > 0.0) {
        f = 1;
    } else if (tmin.x >= tmin.y && tmin.x >= tmin.z && ro.x > hx) {
        f = 2;
    }
    return tn;
}

vec3 rotY(vec3 v, float a) {
    float c = cos(a);
    float s = sin(a);
    return vec3(c * v.x + s * v.z, v.y, -s * v.x + c * v.z);
}

// Colour seen along a ray from a camera, box turned by angle; ok = 0 on a miss.
vec3 shadeRay(vec3 ro, vec3 rd, float angle, float hx, float p, out float ok) {
    // Into box space: turn the ray the other way.
    vec3 lro = rotY(ro, angle);
    vec3 lrd = rotY(rd, angle);
    int f;
    vec3 h;
    float t = cubeHit(lro, lrd, hx, f, h);
    ok = 0.0;
    if (t < 0.0 || f == 0) {
        return vec3(0.0);
    }
    ok = 1.0;
    if (f == 1) {
        vec2 q = vec2(h.x / (2.0 * hx) + 0.5, h.y + 0.5);
        return getFromColor(clamp(q, 0.0, 1.0)).rgb * (1.0 - shading * p);
    }
    vec2 q = vec2(-h.z / (2.0 * hx) + 0.5, h.y + 0.5);
    return getToColor(clamp(q, 0.0, 1.0)).rgb * (1.0 - shading * (1.0 - p));
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
    float angle = e * CUBE_PI * 0.5;
    float hx = 0.5 * ratio;
    // Focal length: with the camera at hx + focal, a front face fills the screen exactly.
    float focal = 1.0 / max(perspective, 0.05);
    float bell = 4.0 * p * (1.0 - p);
    // Steps back in the middle of the turn; smooth (zero speed) at both ends.
    float back = unzoom * bell * bell * (1.0 + focal);
    vec3 ro = vec3(0.0, 0.0, hx + focal + back);
    vec3 rd = vec3((uv.x - 0.5) * ratio, uv.y - 0.5, -focal);

    float ok;
    vec3 col = shadeRay(ro, rd, angle, hx, p, ok);
    if (ok > 0.5) {
        return vec4(col, 1.0);
    }
    // Missed the box: dark backdrop, and the floor below reflects the box.
    float env = bell;
    vec3 bg = mix(vec3(0.02, 0.02, 0.03), vec3(0.07, 0.07, 0.1), uv.y);
    if (rd.y < 0.0) {
        float floorY = -0.5 - 0.02;
        float tf = (floorY - ro.y) / rd.y;
        vec3 fp = ro + rd * tf;
        vec3 mro = vec3(fp.x, 2.0 * floorY - fp.y, fp.z);
        vec3 mrd = vec3(rd.x, -rd.y, rd.z);
        float okr;
        vec3 refl = shadeRay(mro - mrd * 0.001, mrd, angle, hx, p, okr);
        // The reflection fades towards the bottom of the screen.
        bg += refl * okr * reflection * 0.6 * smoothstep(0.0, 0.45, uv.y);
    }
    return vec4(bg * env, 1.0);
}
