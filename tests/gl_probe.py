"""A probe run inside the backstage process (pickled by reference): imports nothing that touches GL."""

from __future__ import annotations

import sys
from typing import Any

GL_PACKAGES = ("moderngl", "glcontext", "pyglet")


def gl_modules(backstage: Any, question: Any) -> list[str]:
    """The GL modules loaded in this process, as the backstage process answers a probe."""
    return sorted(m for m in sys.modules if m.split(".")[0] in GL_PACKAGES)
