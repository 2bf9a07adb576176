"""Live inputs as a layer of the show: the picked source's newest frame, in a texture slot, on screen.

A live input enters like an image: it takes a texture slot, joins the director's line at its head
and comes in through the current transition, under the effect chain. While it is on screen it is
pinned (the hold never moves past it) and each new frame from its source overwrites its slot, at
most one frame per show frame. Picking "" unpins it: the next image comes in as usual and the
slot is released when the live layer leaves the screen. Sources open and retry on their own
threads (engine/inputs/source.py), so a missing camera or NDI sender is a status line; the pick
waits for its first frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from engine.config import InputConfig, parse_wxh
from engine.inputs.source import InputState, ThreadedSource
from engine.render.upload import TextureSlots
from engine.show import Director, Layer

log = logging.getLogger(__name__)

LIVE_PREFIX = "live:"


def make_sources(cfg: InputConfig) -> dict[str, ThreadedSource]:
    """The sources the config offers, by the name the VJ picks them with ("camera", "ndi")."""
    sources: dict[str, ThreadedSource] = {}
    if cfg.camera:
        from engine.inputs.camera import CameraSource

        size = parse_wxh("[input] camera_size", cfg.camera_size)
        sources["camera"] = CameraSource(cfg.camera, size=size, fps=cfg.camera_fps)
    if cfg.ndi:
        from engine.inputs.ndi_source import NdiSource

        sources["ndi"] = NdiSource(cfg.ndi)
    for source in sources.values():
        source.max_size = cfg.max_size
    return sources


def is_live(layer_id: str) -> bool:
    return layer_id.startswith(LIVE_PREFIX)


class LiveInputs:
    """Render-thread owner of the live layer; ``pick`` and ``step`` are called there, ``states`` anywhere."""

    def __init__(self, sources: Mapping[str, ThreadedSource], report: Callable[[str], None]) -> None:
        self.sources = dict(sources)
        self.report = report
        self.active = ""  # the picked source's name; "" = the images
        self.layer: Layer | None = None  # the live layer the director holds, if any
        self._seq = 0  # the source's frame last written
        self._count = 0  # live layers made, for unique ids

    def pick(self, name: str, director: Director) -> None:
        """Show source ``name`` as the picture ("" or "none": back to the images)."""
        name = "" if name == "none" else name
        if name and name not in self.sources:
            offered = ", ".join(self.sources) or "none: set [input] camera or ndi"
            self.report(f"no live input {name!r} (offered: {offered})")
            return
        if name == self.active:
            return
        self.active = name
        director.pinned = None
        if self.layer is not None and self._held(director):
            director.request_next()  # the next image replaces the old live layer (or the new one does)
        self.layer = None
        if name:
            state = self.sources[name].state()
            if state.state != "on":
                self.report(f"live input {name}: {state.state} ({state.detail}); it shows with its first frame")
        log.info("live input: %s", name or "off (images)")

    def step(self, slots: TextureSlots, director: Director) -> bool:
        """Bring the newest frame of the picked source to the GPU; True when a frame was written."""
        if not self.active:
            return False
        if self.layer is not None and not self._held(director):
            self.layer = None  # it left the screen (its slot is back in the pool)
        seq, frame = self.sources[self.active].latest()
        if frame is None or (self.layer is not None and seq == self._seq):
            return False
        h, w = frame.shape[:2]
        if w > slots.size or h > slots.size:
            self.report(f"live input {self.active}: {w}x{h} exceeds render.max_image_size; lower [input] max_size")
            self.active = ""
            return False
        layer = self.layer
        if layer is None or (layer.width, layer.height) != (w, h):
            slot = slots.acquire()
            if slot is None:
                return False  # every slot holds an image: try again next frame
            self._count += 1
            layer = Layer(f"{LIVE_PREFIX}{self.active}:{self._count}", slot, w, h)
            slots.texture(slot).write(frame, viewport=(0, 0, w, h))
            director.offer(layer, front=True)
            director.pinned = layer.id
            if self.layer is not None:
                director.request_next()
            self.layer = layer
        else:
            slots.texture(layer.slot).write(frame, viewport=(0, 0, w, h))
        self._seq = seq
        return True

    def _held(self, director: Director) -> bool:
        return self.layer is not None and self.layer.id in director.held_ids()

    def states(self) -> tuple[InputState, ...]:
        return tuple(source.state() for source in self.sources.values())

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
