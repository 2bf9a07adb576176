"""Program out to other Windows apps through Spout (SpoutGL, the pybind11 wrapper of the Spout SDK).

SpoutGL (https://github.com/jlai/Python-SpoutGL, PyPI ``SpoutGL``) wraps the Spout SDK's C++ classes; its README
points to the SDK's documentation and its ``examples/image/sender.py`` for the CPU path used here:

- ``SpoutGL.SpoutSender()``, ``sender.setSenderName(name)``;
- ``sender.sendImage(buffer, width, height, GL_RGBA, invert, 0)``: a C-contiguous buffer of ``width * height * 4``
  bytes. The SDK copies buffer row 0 to the top row of the shared DirectX texture, and its docs make ``invert``
  "optional and false by default", so our top-first rows go with ``invert=False``. A new size re-makes the sender's
  texture inside ``sendImage`` (the SDK's ``CheckSender``). It returns False when the frame was not shared;
- ``sender.releaseSender()`` when done.

Spout needs an OpenGL context current on the thread that calls it, even for ``sendImage``: the SDK's ``OpenSpout``
returns false without one (``wglGetCurrentDC()``), and the SDK's author says the context must be made in the thread
where Spout is used (leadedge/Spout2 issue 39). The SDK's own ``CreateOpenGL()`` makes exactly that, a hidden window
with a context, for programs that have none; SpoutGL exposes it as ``createOpenGL()`` and ``closeOpenGL()``. The
sink makes it on its own thread in ``_open``, so the show's GL context (on the render thread) is never touched.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from engine.output.sink import OutputFrame, ThreadedSink, Unavailable

# Read when the sink opens, so tests can run the Windows path elsewhere.
PLATFORM = sys.platform

GL_RGBA = 0x1908  # the OpenGL enum (SpoutGL.enums.GL_RGBA), spelled here to spare an import

# sendImage may miss a frame now and then; this many misses in a row (~1 s of frames) means Spout cannot share.
MAX_MISSES = 60


class SpoutSink(ThreadedSink):
    """The program as a Spout sender named ``sender_name`` (Windows)."""

    name = "spout"

    def __init__(self, sender_name: str) -> None:
        self.sender_name = sender_name
        self._sender: Any = None
        self._misses = 0
        super().__init__()

    def _open(self) -> str:
        if PLATFORM != "win32":
            raise Unavailable("Spout is Windows only")
        try:
            spoutgl: Any = importlib.import_module("SpoutGL")
        except ImportError as err:
            raise Unavailable("no Spout library: pip install SpoutGL") from err
        sender = spoutgl.SpoutSender()
        if not sender.createOpenGL():
            raise Unavailable("Spout could not create an OpenGL context (is an OpenGL driver installed?)")
        self._sender = sender
        sender.setSenderName(self.sender_name)
        return f"Spout sender '{self.sender_name}'"

    def _send(self, frame: OutputFrame) -> None:
        w, h = frame.size
        if self._sender.sendImage(np.ascontiguousarray(frame.pixels), w, h, GL_RGBA, False, 0):
            self._misses = 0
            return
        self._misses += 1
        if self._misses >= MAX_MISSES:
            raise RuntimeError(f"Spout did not share {MAX_MISSES} frames in a row (no DirectX 11 or GL/DX sharing?)")

    def _close(self) -> None:
        sender, self._sender = self._sender, None
        if sender is None:
            return
        try:
            sender.releaseSender()  # frees GL objects, so while the context is still current
        finally:
            sender.closeOpenGL()
