"""ISF version 1 names that version 2 hosts still accept, declared for the files that use them.

Sources relied on:

- the ISF spec's change log, "Differences from the first version of the ISF spec"
  (ISF_Spec README): ``vv_FragNormCoord`` became ``isf_FragNormCoord``, ``vv_vertShaderInit()``
  became ``isf_vertShaderInit()``, ``PERSISTENT_BUFFERS`` moved into ``PASSES`` (``isf.py``
  reads it);
- the reference hosts' generated GLSL (VVISF's ISFKit and the npm package
  interactive-shader-format 2.9.0, ``src/ISFParser.js``): for every image (input, pass target,
  imported file) they declare ``uniform vec4 _<image>_imgRect``, ``uniform vec2 _<image>_imgSize``
  and ``uniform bool _<image>_flip``, and sample through ``VVSAMPLER_2DBYPIXEL``/``2DBYNORM``
  (and the ``2DRECT`` pair) with those three as the "rect arguments"; they also declare the
  varyings ``isf_VertNorm``/``isf_VertPos`` (``vv_VertNorm``/``vv_VertPos`` in version 1),
  whose values those hosts never set;
- ofxISF's ``IMG_NORM_PIXEL_2D(image, pct, coord)``, ``IMG_PIXEL_2D`` and ``IMG_THIS_*_2D``, with
  a ``pct`` (the used fraction of the texture) argument, and their ``_RECT`` twins.

Here every image is a whole ``sampler2D`` the right way up, so an image's rect is
``(0, 0, 1, 1)``, its flip is false and its ``pct`` is ``(1, 1)`` whatever the file passes; the
``RECT`` functions take a ``sampler2D`` too (``texture2DRect`` is already ``texture``).
``isf_VertNorm`` is the quad's normal ``(0, 0, 1)`` and ``isf_VertPos`` its position in clip
space. Each name is declared only when the file uses it and does not declare it itself, so a
file that brings its own copy of a helper keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from engine.shaders.glsl import defines_function, uses

_VVSAMPLER = """\
vec4 VVSAMPLER_2DBYPIXEL(sampler2D s, vec4 rect, vec2 size, bool flip, vec2 loc) {
    vec2 c = vec2(loc.x / size.x * rect.z + rect.x, loc.y / size.y * rect.w + rect.y);
    if (flip) c.y = rect.w - loc.y / size.y * rect.w + rect.y;
    return texture(s, c);
}
vec4 VVSAMPLER_2DBYNORM(sampler2D s, vec4 rect, vec2 size, bool flip, vec2 norm) {
    return VVSAMPLER_2DBYPIXEL(s, rect, size, flip, norm * size);
}
#define VVSAMPLER_2DRECTBYPIXEL VVSAMPLER_2DBYPIXEL
#define VVSAMPLER_2DRECTBYNORM VVSAMPLER_2DBYNORM
"""
_VVSAMPLER_NAMES = ("VVSAMPLER_2DBYPIXEL", "VVSAMPLER_2DBYNORM", "VVSAMPLER_2DRECTBYPIXEL",
                    "VVSAMPLER_2DRECTBYNORM")
_PCT_MACROS = {
    "IMG_NORM_PIXEL_2D": "#define IMG_NORM_PIXEL_2D(img, pct, c) texture(img, (c) * (pct))",
    "IMG_PIXEL_2D": "#define IMG_PIXEL_2D(img, pct, c) texture(img, (c) / vec2(textureSize(img, 0)) * (pct))",
    "IMG_THIS_NORM_PIXEL_2D": "#define IMG_THIS_NORM_PIXEL_2D(img, pct) texture(img, isf_FragNormCoord * (pct))",
    "IMG_THIS_PIXEL_2D": "#define IMG_THIS_PIXEL_2D(img, pct) texture(img, isf_FragNormCoord * (pct))",
}
_PCT_MACROS.update({name.replace("_2D", "_RECT"): f"#define {name.replace('_2D', '_RECT')} {name}"
                    for name in list(_PCT_MACROS)})
# varying → (its version 1 name, the value isf_vertShaderInit gives it; p is the quad's corner in 0..1)
VERTEX_VARYINGS = {
    "isf_VertNorm": ("vv_VertNorm", "vec3(0.0, 0.0, 1.0)"),
    "isf_VertPos": ("vv_VertPos", "vec3(p * 2.0 - 1.0, 0.0)"),
}
_COORD_REDECLARED = re.compile(
    r"\b(?:in|out)\s+(?:(?:lowp|mediump|highp)\s+)?vec2\s+(?:isf|vv)_FragNormCoord\s*;"
)


@dataclass(frozen=True)
class Legacy:
    """What a file's version 1 names need, per stage."""

    fragment: str  # declarations and helpers for the fragment stage
    vertex: str  # the same for the vertex stage
    vertex_outputs: tuple[str, ...]  # varyings isf_vertShaderInit writes (from VERTEX_VARYINGS)


def without_coord_redeclaration(body: str) -> str:
    """Blank a file's own ``varying vec2 vv_FragNormCoord;``: the engine declares it (same line count)."""
    return _COORD_REDECLARED.sub(lambda m: " " * len(m.group(0)), body)


def legacy_names(fragment: str, vertex: str | None, images: Iterable[str], fragment_own: set[str],
                 vertex_own: set[str]) -> Legacy:
    """The version 1 names the bodies use and do not declare; ``*_own`` are the names each stage declares."""
    vertex = vertex or ""
    both = fragment + "\n" + vertex
    own = fragment_own | vertex_own
    shared: list[str] = []
    for image in images:
        for suffix, value in (("imgRect", "vec4(0.0, 0.0, 1.0, 1.0)"),
                              ("imgSize", f"vec2(textureSize({image}, 0))"), ("flip", "false")):
            name = f"_{image}_{suffix}"
            if name not in own and uses(both, name):
                shared.append(f"#define {name} {value}")
    for name, macro in _PCT_MACROS.items():
        if name not in own and uses(both, name) and not defines_function(both, name):
            shared.append(macro)
    if any(uses(both, n) for n in _VVSAMPLER_NAMES) and not any(defines_function(both, n) for n in _VVSAMPLER_NAMES):
        shared.append(_VVSAMPLER)
    frag: list[str] = []
    outputs: list[str] = []
    for name, (old, _) in VERTEX_VARYINGS.items():
        if name in own or old in own or not (uses(both, name) or uses(both, old)):
            continue
        frag.append(f"in vec3 {name};")
        outputs.append(name)
        shared.append(f"#define {old} {name}")
    frag_text, vert_text = "\n".join(frag + shared), "\n".join(shared)
    return Legacy(frag_text + "\n" if frag_text else "", vert_text + "\n" if vert_text else "", tuple(outputs))
