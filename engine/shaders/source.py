"""What a shader file says, without GL: the description both dialects parse into.

ISF and gl-transitions files are parsed by their own modules (``isf``,
``gltransition``); both produce a ``ShaderSource``, so translation, parameters
and the library never ask which dialect a shader was written in except where
the GLSL differs (``Dialect``). Keeping these types apart from either parser
lets each parser depend on them without depending on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class InputType(StrEnum):
    FLOAT = "float"
    BOOL = "bool"
    LONG = "long"
    COLOR = "color"
    POINT2D = "point2D"
    EVENT = "event"
    IMAGE = "image"
    AUDIO = "audio"
    AUDIO_FFT = "audioFFT"
    # gl-transitions declare plain GLSL uniforms; these cover the rest of them.
    INT = "int"
    VEC2 = "vec2"
    VEC3 = "vec3"
    VEC4 = "vec4"
    IVEC2 = "ivec2"


SAMPLER_TYPES = frozenset({InputType.IMAGE, InputType.AUDIO, InputType.AUDIO_FFT})
GLSL_TYPE = {
    InputType.FLOAT: "float",
    InputType.BOOL: "bool",
    InputType.LONG: "int",
    InputType.COLOR: "vec4",
    InputType.POINT2D: "vec2",
    InputType.EVENT: "bool",
    InputType.IMAGE: "sampler2D",
    InputType.AUDIO: "sampler2D",
    InputType.AUDIO_FFT: "sampler2D",
    InputType.INT: "int",
    InputType.VEC2: "vec2",
    InputType.VEC3: "vec3",
    InputType.VEC4: "vec4",
    InputType.IVEC2: "ivec2",
}
VECTOR_SIZE = {
    InputType.COLOR: 4, InputType.POINT2D: 2, InputType.VEC2: 2, InputType.VEC3: 3,
    InputType.VEC4: 4, InputType.IVEC2: 2,
}

Value = float | int | bool | tuple[float, ...]


class Kind(StrEnum):
    EFFECT = "effect"  # reads inputImage
    TRANSITION = "transition"  # startImage → endImage by progress
    GENERATOR = "generator"  # makes its own picture; usable as an effect


class Dialect(StrEnum):
    ISF = "isf"
    GL_TRANSITION = "gl-transition"


@dataclass(frozen=True)
class Input:
    name: str
    type: InputType
    default: Value | None = None
    min: Value | None = None
    max: Value | None = None
    label: str = ""
    values: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def is_sampler(self) -> bool:
        return self.type in SAMPLER_TYPES

    @property
    def is_param(self) -> bool:
        """A live parameter a control surface can change (not an image)."""
        return not self.is_sampler


@dataclass(frozen=True)
class Pass:
    target: str | None = None
    persistent: bool = False
    float: bool = False
    width: str | None = None  # expression, e.g. "$WIDTH/2"
    height: str | None = None


@dataclass(frozen=True)
class Imported:
    name: str
    path: Path


@dataclass(frozen=True)
class ShaderSource:
    """Everything about a shader file that does not need GL."""

    name: str
    path: Path
    kind: Kind
    dialect: Dialect
    fragment: str  # the GLSL body, header blanked out, file line numbers kept
    inputs: tuple[Input, ...] = ()
    passes: tuple[Pass, ...] = (Pass(),)
    imported: tuple[Imported, ...] = ()
    vertex: str | None = None  # companion .vs text
    vertex_path: Path | None = None
    description: str = ""
    credit: str = ""
    categories: tuple[str, ...] = ()
    depends: tuple[Path, ...] = field(default_factory=tuple)  # files whose change reloads this one

    @property
    def params(self) -> tuple[Input, ...]:
        return tuple(i for i in self.inputs if i.is_param)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)


def shader_name(path: Path) -> str:
    """The library name of a shader file: its stem."""
    return path.stem
