"""Program out to other Mac apps through Syphon (syphon-python's Metal server).

syphon-python (https://github.com/cansik/syphon-python, PyPI ``syphon-python``, module ``syphon``) documents the
CPU-to-Metal path this sink uses, as in its ``examples/MetalServerVideoExample.py``:

- ``syphon.SyphonMetalServer(name)`` starts a server on the system's default Metal device (``server.device``);
- ``syphon.utils.raw.create_mtl_texture(device, width, height)`` makes an RGBA8 texture, re-made when the
  program's size changes;
- ``syphon.utils.numpy.copy_image_to_mtl_texture(image, texture)`` copies an (h, w, 4) uint8 array into it;
- ``server.publish_frame_texture(texture, is_flipped=True)`` publishes it: our rows are top first, as in that
  example's OpenCV frames, which it publishes flipped;
- ``server.has_clients`` and ``server.stop()``.

The Syphon framework documents its Metal server as safe to use from any thread. The sink's thread is not the main
thread, so each frame runs inside ``objc.autorelease_pool()``: the command buffer the server makes per frame is
autoreleased, and without a pool per frame it would be freed only when the thread ends. A Syphon client that
starts after the server asks for it by a distributed notification, which Cocoa delivers on the main thread's run
loop: the show's window (pyglet) keeps that loop running on macOS.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from engine.output.sink import OutputFrame, ThreadedSink, Unavailable

# Read when the sink opens, so tests can run the macOS path elsewhere.
PLATFORM = sys.platform


class SyphonSink(ThreadedSink):
    """The program as a Syphon server named ``server_name`` (macOS)."""

    name = "syphon"

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self._server: Any = None
        self._texture: Any = None
        self._texture_size: tuple[int, int] | None = None
        self._objc: Any = None
        self._raw: Any = None
        self._numpy: Any = None
        super().__init__()

    def _open(self) -> str:
        if PLATFORM != "darwin":
            raise Unavailable("Syphon is macOS only")
        try:
            syphon: Any = importlib.import_module("syphon")
            self._raw = importlib.import_module("syphon.utils.raw")
            self._numpy = importlib.import_module("syphon.utils.numpy")
            self._objc = importlib.import_module("objc")  # PyObjC, which syphon-python is built on
        except ImportError as err:
            raise Unavailable("no Syphon library: pip install syphon-python") from err
        with self._objc.autorelease_pool():
            self._server = syphon.SyphonMetalServer(self.server_name)
        return f"Syphon server '{self.server_name}'"

    def _send(self, frame: OutputFrame) -> None:
        pixels = np.ascontiguousarray(frame.pixels)
        size = frame.size
        with self._objc.autorelease_pool():
            if self._texture is None or self._texture_size != size:
                self._texture = self._raw.create_mtl_texture(self._server.device, size[0], size[1])
                self._texture_size = size
            self._numpy.copy_image_to_mtl_texture(pixels, self._texture)
            self._server.publish_frame_texture(self._texture, is_flipped=True)

    def _close(self) -> None:
        server, self._server = self._server, None
        self._texture = None
        if server is not None:
            with self._objc.autorelease_pool():
                server.stop()

    def _receivers(self) -> int:
        server = self._server  # read once: the sink's thread may close it meanwhile
        if server is None:
            return -1
        return 1 if server.has_clients else 0  # Syphon tells only whether any client is attached, not how many
