"""One compiled shader with its pass buffers, drawn into any framebuffer.

The library swaps these objects on reload; callers ask the library for the
current one each frame, so a reload is invisible to them (the proxy idea of
moderngl-window, by name instead of by wrapper).
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import moderngl
import numpy as np
from PIL import Image

from engine.errors import ShaderError
from engine.render.gl import driver_line
from engine.shaders.expr import ExprError, evaluate
from engine.shaders.source import InputType, Pass, ShaderSource, Value
from engine.shaders.translate import Translated, glsl_name, image_names, translate

log = logging.getLogger(__name__)

GL_SAMPLER_2D = 0x8B5E
MAX_PASS_SIDE = 8192


@dataclass(frozen=True)
class AudioUniforms:
    """The audio features a frame's shaders see; all zero when there is no audio."""

    level: float = 0.0
    bass: float = 0.0
    mid: float = 0.0
    treble: float = 0.0
    beat_phase: float = 0.0
    beat_pulse: float = 0.0
    bpm: float = 0.0


@dataclass(frozen=True)
class FrameInputs:
    time: float
    delta: float
    frame: int
    audio: AudioUniforms = field(default_factory=AudioUniforms)
    date: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def date_uniform(now: dt.datetime | None = None) -> tuple[float, float, float, float]:
    """ISF's DATE: year, month, day, seconds since midnight."""
    now = now or dt.datetime.now()
    secs = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
    return (float(now.year), float(now.month), float(now.day), secs)


@dataclass(frozen=True)
class LayerBinding:
    """A gl-transition's layer: texture plus the fit transform that places it on screen."""

    texture: moderngl.Texture
    xform: tuple[float, float, float, float]
    region: tuple[float, float, float, float]


class SharedTextures:
    """Textures every shader may need: black for unbound images, audio rows for audio inputs."""

    AUDIO_SAMPLES = 512
    FFT_BINS = 256

    def __init__(self, ctx: moderngl.Context) -> None:
        self.black = ctx.texture((1, 1), 4, bytes(4))
        self.black.repeat_x = self.black.repeat_y = False
        self.waveform = ctx.texture((self.AUDIO_SAMPLES, 1), 4, dtype="f4")
        self.spectrum = ctx.texture((self.FFT_BINS, 1), 4, dtype="f4")
        for tex in (self.waveform, self.spectrum):
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
        self.write_audio(np.zeros(self.AUDIO_SAMPLES, np.float32), np.zeros(self.FFT_BINS, np.float32))

    def write_audio(self, waveform: np.ndarray, spectrum: np.ndarray) -> None:
        """Waveform in -1..1 (stored ISF-style as 0..1, silence at 0.5) and spectrum magnitudes 0..1."""
        wave = np.repeat((np.clip(waveform[: self.AUDIO_SAMPLES], -1, 1) * 0.5 + 0.5)[:, None], 4, 1)
        wave[:, 3] = 1.0
        spec = np.repeat(np.clip(spectrum[: self.FFT_BINS], 0, 1)[:, None], 4, 1)
        spec[:, 3] = 1.0
        self.waveform.write(np.ascontiguousarray(wave, dtype=np.float32))
        self.spectrum.write(np.ascontiguousarray(spec, dtype=np.float32))

    def release(self) -> None:
        for tex in (self.black, self.waveform, self.spectrum):
            tex.release()


class _PassBuffer:
    """A pass target: two textures in turn, so a pass can read its own last frame."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], floating: bool) -> None:
        self.size = size
        self.textures = []
        self.fbos = []
        for _ in range(2):
            tex = ctx.texture(size, 4, dtype="f4" if floating else "f1")
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            fbo = ctx.framebuffer(color_attachments=[tex])
            fbo.clear(0.0, 0.0, 0.0, 0.0)
            self.textures.append(tex)
            self.fbos.append(fbo)
        self.front = 0  # the one holding the last result

    @property
    def read(self) -> moderngl.Texture:
        return self.textures[self.front]

    @property
    def write_fbo(self) -> moderngl.Framebuffer:
        return self.fbos[1 - self.front]

    def swap(self) -> None:
        self.front = 1 - self.front

    def release(self) -> None:
        for fbo in self.fbos:
            fbo.release()
        for tex in self.textures:
            tex.release()


def compile_program(ctx: moderngl.Context, src: ShaderSource) -> tuple[moderngl.Program, Translated]:
    """Compile and link; a failure is a ShaderError naming the user's file and line.

    A file that Mesa's strict compiler refuses is tried once more with the conversions other
    drivers make silently (``conversions``). If that fails too, the error shown is the second
    compile's, unless it sits on a line the conversions changed: then it is the file's own.
    """
    code = translate(src)
    try:
        return ctx.program(vertex_shader=code.vertex, fragment_shader=code.fragment), code
    except moderngl.Error as err:
        strict = _shader_error(src, str(err))
        first = err
    relaxed = translate(src, relax=True)
    if not relaxed.relaxed_lines:
        raise strict from first
    try:
        prog = ctx.program(vertex_shader=relaxed.vertex, fragment_shader=relaxed.fragment)
    except moderngl.Error as err:
        second = _shader_error(src, str(err))
        on_changed_line = second.file == str(src.path) and second.line in relaxed.relaxed_lines
        raise (strict if on_changed_line else second) from first
    lines = ", ".join(str(n) for n in sorted(relaxed.relaxed_lines))
    note = (f"line{'s' if len(relaxed.relaxed_lines) > 1 else ''} {lines}: an int where a float or uint is needed "
            "(in a return, or beside a uint); Mesa's strict GLSL refuses that, so the conversion was made explicit")
    return prog, replace(relaxed, warnings=(*relaxed.warnings, note))


def _shader_error(src: ShaderSource, text: str) -> ShaderError:
    sections = {"vertex_shader": "", "fragment_shader": ""}
    current = None
    for line in text.splitlines():
        if line.strip() in sections:
            current = line.strip()
        elif current:
            sections[current] += line + "\n"
    for stage, body in (("fragment_shader", sections["fragment_shader"]), ("vertex_shader",
                                                                         sections["vertex_shader"])):
        errors = [ln.strip() for ln in body.splitlines() if "error" in ln.lower()]
        if errors:
            file = src.vertex_path if stage == "vertex_shader" and src.vertex_path else src.path
            message = errors[0].split("error:", 1)[-1].strip() if "error:" in errors[0] else errors[0]
            return ShaderError(str(file), driver_line(errors[0]), message)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and set(ln.strip()) != {"="}]
    return ShaderError(str(src.path), None, lines[-1] if lines else "the shader did not compile")


def load_image_rgba(path: str) -> np.ndarray:
    """An image file as RGBA rows, bottom row first (GL's order)."""
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGBA"), dtype=np.uint8)[::-1])


class IsfProgram:
    """A compiled shader that draws its passes into a target framebuffer."""

    def __init__(self, ctx: moderngl.Context, src: ShaderSource, shared: SharedTextures) -> None:
        self.ctx = ctx
        self.src = src
        self.shared = shared
        self.prog, code = compile_program(ctx, src)
        self.not_fed = code.not_fed  # engine uniforms this shader's own inputs replace
        self.warnings = code.warnings  # what a user should know, though the shader works
        self.vao = ctx.vertex_array(self.prog, [])
        self.uniforms: dict[str, moderngl.Uniform] = {
            name: m for name in self.prog if isinstance(m := self.prog[name], moderngl.Uniform)
        }
        self.samplers = [n for n, u in self.uniforms.items() if getattr(u, "gl_type", None) == GL_SAMPLER_2D]
        self._v1_images = [n for n in image_names(src)
                           if any(f"_{n}_{suffix}" in self.uniforms for suffix in ("imgRect", "imgSize", "flip"))]
        self.frame_index = 0
        self._buffers: dict[str, _PassBuffer] = {}
        self._bad_uniforms: set[str] = set()
        self._imported: dict[str, moderngl.Texture] = {}
        try:
            for imp in src.imported:
                pixels = load_image_rgba(str(imp.path))
                tex = ctx.texture((pixels.shape[1], pixels.shape[0]), 4, pixels)
                tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
                tex.repeat_x = tex.repeat_y = False
                self._imported[glsl_name(imp.name)] = tex
        except (OSError, ValueError) as err:
            self.release()
            raise ShaderError(str(src.path), None, f"IMPORTED image cannot be loaded: {err}") from err

    # --- drawing ---------------------------------------------------------------
    def render(
        self,
        target: moderngl.Framebuffer,
        size: tuple[int, int],
        frame: FrameInputs,
        params: Mapping[str, Value],
        images: Mapping[str, moderngl.Texture] | None = None,
        layers: tuple[LayerBinding, LayerBinding] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """Draw every pass; the last one (or any without TARGET) lands in ``target``.

        ``extra`` sets uniforms by name after the parameters (``progress`` for transitions).
        """
        images = images or {}
        self._set_common(frame, params, size)
        for name, value in (extra or {}).items():
            self._set(name, value)
        if layers is not None:
            for which, layer in zip(("From", "To"), layers, strict=True):
                self._set(f"u{which}Xform", layer.xform)
                self._set(f"u{which}Region", layer.region)
        passes = self.src.passes
        for index, p in enumerate(passes):
            pass_size = self._pass_size(p, size, params)
            buf = self._buffer(p, pass_size) if p.target else None
            fbo = buf.write_fbo if buf is not None else target
            fbo.use()
            self.ctx.viewport = (0, 0, *pass_size)
            self._set("PASSINDEX", index)
            self._set("RENDERSIZE", (float(pass_size[0]), float(pass_size[1])))
            self._set("iResolution", (float(pass_size[0]), float(pass_size[1]), 1.0))
            self._bind_samplers(images, layers)
            self.vao.render(moderngl.TRIANGLES, vertices=3)
            if buf is not None:
                buf.swap()
        self.frame_index += 1

    def _set_common(self, frame: FrameInputs, params: Mapping[str, Value], size: tuple[int, int]) -> None:
        a = frame.audio
        values: dict[str, object] = {
            "TIME": frame.time, "TIMEDELTA": frame.delta, "FRAMEINDEX": self.frame_index, "DATE": frame.date,
            "iTime": frame.time, "iTimeDelta": frame.delta, "iFrame": self.frame_index,
            "audioLevel": a.level, "audioBass": a.bass, "audioMid": a.mid, "audioTreble": a.treble,
            "beatPhase": a.beat_phase, "beatPulse": a.beat_pulse, "bpm": a.bpm,
            "ratio": size[0] / max(1, size[1]),
        }
        for name, value in values.items():
            if name not in self.not_fed:
                self._set(name, value)
        for inp in self.src.inputs:
            if inp.is_param and inp.name in params:
                self._set(glsl_name(inp.name), params[inp.name])

    def _set(self, name: str, value: Any) -> None:
        u = self.uniforms.get(name)
        if u is None or name in self._bad_uniforms:
            return
        try:
            if isinstance(value, tuple) and u.dimension == 1:
                value = value[0]
            elif not isinstance(value, tuple) and u.dimension > 1:
                value = (value,) * u.dimension
            fmt = str(getattr(u, "fmt", ""))
            if fmt.endswith("i"):  # int, ivec*, bool uniforms take integers
                value = tuple(round(float(v)) for v in value) if isinstance(value, tuple) else round(float(value))
            u.value = value
        except (TypeError, ValueError, struct.error, moderngl.Error) as err:
            # A file that declares an engine uniform with another type: skip it, say so once.
            self._bad_uniforms.add(name)
            log.warning("%s: uniform %s cannot take %r (%s)", self.src.path, name, value, err)

    def _bind_samplers(
        self, images: Mapping[str, moderngl.Texture], layers: tuple[LayerBinding, LayerBinding] | None
    ) -> None:
        for unit, name in enumerate(self.samplers):
            self._texture_for(name, images, layers).use(unit)
            self.uniforms[name].value = unit
        for name in self._v1_images:
            # A file declaring ISF 1's per-image uniforms itself: the whole image, upright (see isf_v1).
            tex = self._texture_for(name, images, layers)
            self._set(f"_{name}_imgRect", (0.0, 0.0, 1.0, 1.0))
            self._set(f"_{name}_imgSize", (float(tex.width), float(tex.height)))
            self._set(f"_{name}_flip", False)

    def _texture_for(
        self, name: str, images: Mapping[str, moderngl.Texture], layers: tuple[LayerBinding, LayerBinding] | None
    ) -> moderngl.Texture:
        if name in self._buffers:
            return self._buffers[name].read
        if name in self._imported:
            return self._imported[name]
        if layers is not None and name in ("uFrom", "uTo"):
            return layers[0 if name == "uFrom" else 1].texture
        for inp in self.src.inputs:
            if glsl_name(inp.name) == name:
                if inp.name in images:
                    return images[inp.name]
                if inp.type is InputType.AUDIO:
                    return self.shared.waveform
                if inp.type is InputType.AUDIO_FFT:
                    return self.shared.spectrum
        return images.get(name, self.shared.black)

    def _pass_size(self, p: Pass, size: tuple[int, int], params: Mapping[str, Value]) -> tuple[int, int]:
        if p.width is None and p.height is None:
            return size
        variables: dict[str, float] = {"WIDTH": size[0], "HEIGHT": size[1]}
        for k, v in params.items():
            if isinstance(v, int | float):
                variables[k] = float(v)
        out = []
        for expr, full in ((p.width, size[0]), (p.height, size[1])):
            if expr is None:
                out.append(full)
                continue
            try:
                value = evaluate(expr, variables)
            except ExprError as err:
                raise ShaderError(str(self.src.path), None, f"pass {p.target}: size {err}") from err
            out.append(int(min(MAX_PASS_SIDE, max(1, round(value)))) if value == value else full)
        return out[0], out[1]

    def _buffer(self, p: Pass, size: tuple[int, int]) -> _PassBuffer:
        assert p.target is not None
        name = glsl_name(p.target)
        buf = self._buffers.get(name)
        if buf is None or buf.size != size:
            if buf is not None:
                buf.release()
            buf = _PassBuffer(self.ctx, size, p.float)
            self._buffers[name] = buf
        return buf

    def check_sizes(self, size: tuple[int, int], params: Mapping[str, Value]) -> None:
        """Evaluate every pass size now, so a bad expression fails at load, not mid-show."""
        for p in self.src.passes:
            self._pass_size(p, size, params)

    def release(self) -> None:
        for buf in self._buffers.values():
            buf.release()
        self._buffers.clear()
        for tex in self._imported.values():
            tex.release()
        self._imported.clear()
        if getattr(self, "vao", None) is not None:
            self.vao.release()
        if getattr(self, "prog", None) is not None:
            self.prog.release()
