"""The seam to moderngl: contexts and programs, with driver errors made ours."""

from __future__ import annotations

import re
import sys
from typing import Any

import moderngl

from engine.errors import RenderError, ShaderError

# Mesa: "0:12(3): error: ..." ; NVIDIA: "0(12) : error C0000: ..."
_LINE = re.compile(r"^\s*\d+[:(](\d+)[):(]", re.MULTILINE)


def standalone_context() -> moderngl.Context:
    """An offscreen GL 3.3+ context: EGL on Linux (works without a display), the default elsewhere."""
    try:
        if sys.platform.startswith("linux"):
            return moderngl.create_standalone_context(backend="egl", require=330)  # type: ignore[arg-type]
        return moderngl.create_standalone_context(require=330)
    except Exception as err:  # glcontext raises plain Exception subclasses
        raise RenderError(
            f"cannot create a headless OpenGL context ({err}); on Debian install libegl1 and libgl1"
        ) from err


def driver_line(message: str) -> int | None:
    """The first source line number a driver's compile log points at."""
    m = _LINE.search(message)
    return int(m.group(1)) if m else None


def build_program(ctx: moderngl.Context, name: str, vertex: str, fragment: str) -> moderngl.Program:
    """Compile and link, turning the driver's complaint into a ShaderError(file, line, message)."""
    try:
        return ctx.program(vertex_shader=vertex, fragment_shader=fragment)
    except moderngl.Error as err:
        text = str(err)
        lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
        message = lines[0] if lines else text.strip().splitlines()[-1] if text.strip() else "compile failed"
        raise ShaderError(name, driver_line(text), message) from err


def set_uniform(prog: moderngl.Program, name: str, value: Any) -> None:
    """Set a uniform only if the driver kept it (unused uniforms are stripped)."""
    u = prog.get(name, None)
    if isinstance(u, moderngl.Uniform):
        u.value = value


def restore_framebuffer(ctx: moderngl.Context, previous: moderngl.Framebuffer | None,
                        viewport: tuple[int, int, int, int]) -> None:
    """Bind back the framebuffer (and viewport) a pass found bound; after a pass that drew elsewhere."""
    if previous is None or isinstance(previous.mglo, moderngl.InvalidObject):
        # Nothing bound yet, or the bound one was released: GL is on the default framebuffer.
        ctx.detect_framebuffer(0).use()
    else:
        previous.use()
        ctx.viewport = viewport
