varying vec2 shifted;
void main() {
    isf_vertShaderInit();
    shifted = vec2(shift, 0.0);
}
