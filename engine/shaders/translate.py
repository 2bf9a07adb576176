"""A ShaderSource → GLSL 3.30 core vertex and fragment sources, without GL.

Published ISF files are mostly old GLSL (``gl_FragColor``, ``texture2D``,
``varying``). They are translated token by token on the same lines, and the
body is preceded by ``#line 1``, so a driver error about line N is about line N
of the user's file.

Declared for every shader: the ISF built-ins, its INPUTS, pass targets and
imported images, the ``IMG_*`` sampling macros, the ISF version 1 names it uses
(``isf_v1``), and the engine uniforms and Shadertoy aliases below — each of those
unless the file declares that name itself, at file scope, in that stage.

When an engine uniform's name is also the shader's own input (an ISF INPUT, a
pass target, an imported image or a gl-transitions parameter called
``audioLevel``, say), the shader's input wins: the engine's uniform is not
declared for that shader and its value is not fed to it (``Translated.not_fed``),
and a warning says so. Namespacing the engine's uniforms instead would break
every file that declares ``uniform float audioLevel;`` to get the live value,
which is how the engine's uniforms are documented to work; dropping them
changes nothing for a file without the clash. A file that declares an engine
name as its own plain variable (``vec3 iResolution = ...;``) wins the same way,
silently: that is an ordinary GLSL definition, not a clash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.shaders.conversions import HELPERS as CONVERSION_HELPERS
from engine.shaders.conversions import relax as relax_conversions
from engine.shaders.glsl import file_scope_names
from engine.shaders.isf_v1 import VERTEX_VARYINGS, legacy_names, without_coord_redeclaration
from engine.shaders.source import GLSL_TYPE, Dialect, ShaderSource

# name → GLSL type; set by the engine every frame.
ENGINE_UNIFORMS: dict[str, str] = {
    "audioLevel": "float",
    "audioBass": "float",
    "audioMid": "float",
    "audioTreble": "float",
    "beatPhase": "float",
    "beatPulse": "float",
    "bpm": "float",
    "iTime": "float",
    "iTimeDelta": "float",
    "iFrame": "int",
    "iResolution": "vec3",
}
BUILTINS: dict[str, str] = {
    "TIME": "float",
    "TIMEDELTA": "float",
    "RENDERSIZE": "vec2",
    "PASSINDEX": "int",
    "FRAMEINDEX": "int",
    "DATE": "vec4",
}

IMG_MACROS = """\
#define IMG_NORM_PIXEL(img, c) texture(img, c)
#define IMG_PIXEL(img, c) texture(img, (c) / vec2(textureSize(img, 0)))
#define IMG_THIS_NORM_PIXEL(img) texture(img, isf_FragNormCoord)
#define IMG_NORM_THIS_PIXEL(img) texture(img, isf_FragNormCoord)
#define IMG_THIS_PIXEL(img) texture(img, gl_FragCoord.xy / vec2(textureSize(img, 0)))
#define IMG_SIZE(img) vec2(textureSize(img, 0))
#define vv_FragNormCoord isf_FragNormCoord
"""

# Layer sampling for gl-transitions: fit transform, letterbox bars, no slot bleed.
GL_TRANSITION_PRELUDE = """\
uniform sampler2D uFrom;
uniform sampler2D uTo;
uniform vec4 uFromXform;
uniform vec4 uToXform;
uniform vec4 uFromRegion;
uniform vec4 uToRegion;
uniform float progress;
uniform float ratio;
vec4 isf_sampleLayer(sampler2D tex, vec4 xf, vec4 region, vec2 p) {
    vec2 t = p * xf.xy + xf.zw;
    if (t.x < 0.0 || t.y < 0.0 || t.x > region.x || t.y > region.y) {
        return vec4(0.0, 0.0, 0.0, 1.0);
    }
    vec4 c = texture(tex, clamp(t, region.zw, region.xy - region.zw));
    return vec4(c.rgb * c.a, 1.0);
}
vec4 getFromColor(vec2 p) { return isf_sampleLayer(uFrom, uFromXform, uFromRegion, p); }
vec4 getToColor(vec2 p) { return isf_sampleLayer(uTo, uToXform, uToRegion, p); }
"""

VERTEX_INIT = """\
out vec2 isf_FragNormCoord;
{outputs}void isf_vertShaderInit() {{
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    isf_FragNormCoord = p;
{assignments}    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}}
#define vv_vertShaderInit isf_vertShaderInit
"""

_OLD_GLSL = re.compile(r"\b(gl_FragColor|gl_FragData|texture2D|texture2DRect|varying|attribute|textureCube)\b")
_VERSION = re.compile(r"^[ \t]*#version[^\n]*", re.MULTILINE)
_RENAMES = [
    (re.compile(r"\bgl_FragData\s*\[\s*0\s*\]"), "isf_FragColor"),
    (re.compile(r"\bgl_FragColor\b"), "isf_FragColor"),
    (re.compile(r"\btexture2DRect\b"), "texture"),
    (re.compile(r"\btexture2DLod\b"), "textureLod"),
    (re.compile(r"\btexture2DProj\b"), "textureProj"),
    (re.compile(r"\btexture2D\b"), "texture"),
    (re.compile(r"\btextureCube\b"), "texture"),
]
# Words that old GLSL let people use as names and 3.30 reserves or shadows.
_RESERVED = ("texture", "sample", "smooth", "flat", "noperspective", "layout", "centroid", "patch",
             "subroutine", "filter", "active", "input", "output", "common", "partition", "resource")


@dataclass(frozen=True)
class Translated:
    vertex: str
    fragment: str
    not_fed: frozenset[str] = frozenset()  # engine uniforms the shader's own inputs replace
    warnings: tuple[str, ...] = ()
    relaxed_lines: frozenset[int] = frozenset()  # fragment lines changed by the conversions (relax=True)


def glsl_name(name: str) -> str:
    """The name a uniform gets in GLSL: words 3.30 reserves get a prefix (and the body is renamed alike)."""
    return f"isf_{name}_" if name in _RESERVED else name


def modernize(body: str, stage: str) -> str:
    """Old GLSL → 3.30 core, on the same lines. ``stage`` is "vertex" or "fragment"."""
    body = _VERSION.sub("", body)
    old = _OLD_GLSL.search(body) is not None
    for word in _RESERVED:
        if word == "texture":
            # In old GLSL every `texture` is a user's name; in new GLSL `texture(` is the function.
            pattern = r"\btexture\b" if old else r"\btexture\b(?!\s*\()"
        else:
            pattern = rf"\b{word}\b"
        body = re.sub(pattern, glsl_name(word), body)
    for rx, new in _RENAMES:
        body = rx.sub(new, body)
    if stage == "fragment":
        body = re.sub(r"\bvarying\b", "in", body)
    else:
        body = re.sub(r"\bvarying\b", "out", body)
        body = re.sub(r"\battribute\b", "in", body)
    return body


def _own_names(src: ShaderSource) -> set[str]:
    """The names a shader's description gives its own uniforms: inputs, pass targets, imported images."""
    names = {glsl_name(i.name) for i in src.inputs}
    names.update(glsl_name(p.target) for p in src.passes if p.target)
    names.update(glsl_name(imp.name) for imp in src.imported)
    return names


def image_names(src: ShaderSource) -> list[str]:
    """The sampler names of a shader: image and audio inputs, pass targets, imported images."""
    names = [glsl_name(i.name) for i in src.inputs if i.is_sampler]
    names += [glsl_name(p.target) for p in src.passes if p.target]
    return names + [glsl_name(imp.name) for imp in src.imported]


def _declarations(src: ShaderSource, own: set[str], not_fed: frozenset[str]) -> str:
    """Uniforms one stage may use, except the names that stage declares itself (``own``)."""
    lines = []
    for name, t in BUILTINS.items():
        if name not in own:
            lines.append(f"uniform {t} {name};")
    if src.dialect is Dialect.ISF:
        for i in src.inputs:
            if glsl_name(i.name) not in own:
                lines.append(f"uniform {GLSL_TYPE[i.type]} {glsl_name(i.name)};")
        for p in src.passes:
            if p.target and glsl_name(p.target) not in own:
                lines.append(f"uniform sampler2D {glsl_name(p.target)};")
        for imp in src.imported:
            if glsl_name(imp.name) not in own:
                lines.append(f"uniform sampler2D {glsl_name(imp.name)};")
    for name, t in ENGINE_UNIFORMS.items():
        if name not in own and name not in not_fed:
            lines.append(f"uniform {t} {name};")
    return "\n".join(lines) + "\n"


def _vertex_init(outputs: tuple[str, ...]) -> str:
    return VERTEX_INIT.format(
        outputs="".join(f"out vec3 {name};\n" for name in outputs),
        assignments="".join(f"    {name} = {VERTEX_VARYINGS[name][1]};\n" for name in outputs),
    )


def translate(src: ShaderSource, relax: bool = False) -> Translated:
    """The vertex and fragment sources to compile for this shader.

    ``relax`` also makes explicit the conversions Mesa's strict compiler refuses (``conversions``):
    for a fragment shader that failed to compile as written.
    """
    frag_body = without_coord_redeclaration(modernize(src.fragment, "fragment"))
    vert_body = without_coord_redeclaration(modernize(src.vertex, "vertex")) if src.vertex is not None else None
    relaxed_lines: frozenset[int] = frozenset()
    if relax:
        relaxed = relax_conversions(frag_body)
        frag_body, relaxed_lines = relaxed.text, relaxed.lines
    # Uniforms are the program's, so one declared in either stage is declared by neither prelude.
    vert_text = vert_body or ""
    uniforms = file_scope_names(frag_body, uniforms_only=True) | file_scope_names(vert_text, uniforms_only=True)
    frag_own = file_scope_names(frag_body) | uniforms
    vert_own = file_scope_names(vert_text) | uniforms
    not_fed = frozenset(_own_names(src) & ENGINE_UNIFORMS.keys())
    warnings = tuple(
        f"input {name} has the name of an engine uniform: the shader's own {name} wins, "
        f"so the engine's live {name} is not fed to this shader"
        for name in sorted(not_fed)
    )
    legacy = legacy_names(frag_body, vert_body, image_names(src), frag_own, vert_own)

    writes_own_output = re.search(r"^\s*(?:layout\s*\([^)]*\)\s*)?out\s+vec4\s+\w+", frag_body, re.M)
    frag = ["#version 330"]
    if not writes_own_output:
        frag.append("out vec4 isf_FragColor;")
    frag.append("in vec2 isf_FragNormCoord;")
    frag.append(_declarations(src, frag_own, not_fed))
    frag.append(IMG_MACROS)
    frag.append(legacy.fragment)
    if relax:
        frag.append(CONVERSION_HELPERS)
    if src.dialect is Dialect.GL_TRANSITION:
        frag.append(GL_TRANSITION_PRELUDE)
    frag.append("#line 1")
    frag.append(frag_body)
    if src.dialect is Dialect.GL_TRANSITION:
        frag.append("void main() { isf_FragColor = transition(isf_FragNormCoord); }")

    vert = ["#version 330", _vertex_init(legacy.vertex_outputs), _declarations(src, vert_own, not_fed), IMG_MACROS,
            legacy.vertex]
    if vert_body is not None:
        vert.append("#line 1")
        vert.append(vert_body)
    else:
        vert.append("void main() { isf_vertShaderInit(); }")
    return Translated(vertex="\n".join(vert) + "\n", fragment="\n".join(frag) + "\n", not_fed=not_fed,
                      warnings=warnings, relaxed_lines=relaxed_lines)
