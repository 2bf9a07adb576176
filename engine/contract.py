"""The contract between the show's threads and the backstage: what crosses, and how.

The show thread (GL) and the backstage (asyncio, in a thread or a process of its own)
share nothing mutable. Work goes in through the ``Inbox`` (queues the show drains a
bounded amount of each frame); state comes out on the ``StateBoard`` (references to
frozen values, replaced whole). This module holds both and every value that crosses
them, and imports nothing that touches GL, so the backstage process, the pipeline and
the OSC server never load the renderer.

Ownership: the show thread is the only writer of the snapshot, the catalog and the
preview; the backstage is the only writer of ``preview_viewers``. Readers take the
reference they find; a value is never mutated after it is published.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from engine.commands import Command
from engine.errors import ImageError
from engine.inputs.source import InputState
from engine.output.sink import OutputState


class State(StrEnum):
    """Where a prompt is in its life: the phone, the journal and the control page all use these words."""

    QUEUED = "queued"
    GENERATING = "generating"
    SHOWING = "showing"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


FINAL_STATES = frozenset({State.DONE, State.REJECTED, State.FAILED})


@dataclass(frozen=True, eq=False)
class ShowImage:
    """A decoded image on its way to the screen: RGBA rows, top row first.

    ``caption_pixels``: its caption band painted backstage (engine/render/captions.py), RGBA rows top first,
    the full width of the screen it was painted for; None when captions are off or there are no words.
    """

    id: str
    pixels: np.ndarray
    caption: str = ""
    urgent: bool = False  # the VJ asked for it: it goes ahead of the images already waiting
    caption_pixels: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = self.pixels
        if not isinstance(p, np.ndarray) or p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] != 4:
            raise ImageError(f"image {self.id}: expected an (h, w, 4) uint8 array")
        if p.shape[0] < 1 or p.shape[1] < 1:
            raise ImageError(f"image {self.id}: empty")
        if not p.flags.c_contiguous:
            object.__setattr__(self, "pixels", np.ascontiguousarray(p))
        c = self.caption_pixels
        if c is not None:
            if not isinstance(c, np.ndarray) or c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 4 \
                    or c.shape[0] < 1 or c.shape[1] < 1:
                raise ImageError(f"image {self.id}: expected its caption as an (h, w, 4) uint8 array")
            if not c.flags.c_contiguous:
                object.__setattr__(self, "caption_pixels", np.ascontiguousarray(c))

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class ShaderProblem:
    """A shader that does not compile, as other threads and the backstage process see it (file, line, why)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class SceneInfo:
    """A scene file as control pages list it (engine/scenes/): ``index`` is its 1-based number in the
    sorted list (OSC, Shift+1..9); ``error`` why it cannot be recalled now; ``style`` its style preset."""

    name: str
    index: int
    error: str | None = None
    style: str | None = None


@dataclass(frozen=True)
class MappingOutput:
    """One output of the venue profile as control pages edit it, flattened as the mapping command takes it
    (engine/render/mapping_edits.py): ``mesh`` is ``(cols, rows, x0, y0, ..)`` or ``()``, ``masks``
    ``(n1, x, y, .., n2, x, y, ..)``."""

    name: str
    corners: tuple[float, ...]
    mesh: tuple[float, ...] = ()
    masks: tuple[float, ...] = ()


@dataclass(frozen=True)
class ShowSnapshot:
    """The show's state as the other threads may read it; replaced whole, never mutated."""

    frame: int = 0
    time: float = 0.0
    fps: float = 0.0
    frame_ms: float = 0.0
    frame_p99_ms: float = 0.0
    work_ms: float = 0.0
    cpu_ms: float = 0.0
    current_id: str | None = None
    incoming_id: str | None = None
    queue_len: int = 0
    blackout: bool = False
    frozen: bool = False
    hud: bool = False
    fullscreen: bool = False
    size: tuple[int, int] = (0, 0)
    errors: tuple[str, ...] = field(default_factory=tuple)
    effects: tuple[str, ...] = ()
    transition: str = "crossfade"
    shader_errors: tuple[ShaderProblem, ...] = ()
    audio: str = "no audio"
    held: tuple[str, ...] = ()  # images taken from the inbox and not yet retired (on screen, coming, waiting)
    taken: int = 0  # images taken from the inbox since the show started (the inbox is first in, first out)
    dream_mix: float = 0.0  # the dream layer's opacity over the program (0 = off)
    dream_fps: float = 0.0  # dream frames that reached the screen per second, lately
    outputs: tuple[OutputState, ...] = ()  # NDI, virtual camera, Syphon, Spout, recording: each one's state
    inputs: tuple[InputState, ...] = ()  # the live inputs offered ([input]) and how each one is doing
    live_input: str = ""  # the live input picked to show ("camera", "ndi"); "" = the images
    caption: str = ""  # the words of the caption on screen now ("" when none is: captions off, or its time is up)
    caption_hidden: bool = False  # ... and the VJ hid it (Action.CAPTION)
    scenes: tuple[SceneInfo, ...] = ()  # the scenes folder's files, sorted (engine/scenes/)
    scene: str = ""  # the scene recalled last ("" = none yet)
    scene_seq: int = 0  # recalls so far: a new number is a new recall (the page then sends its style preset)
    scene_style: str | None = None  # that scene's generation style preset ("" = none; None = it keeps the style)
    mapping_name: str = ""  # the output the screen is mapped by (the venue profile's first; "" = no profile)
    mapping_corners: tuple[float, ...] = ()  # its corners x0, y0 .. x3, y3 (top-left first, clockwise); () = none
    mapping_grid: bool = False  # the alignment grid shows instead of the program (Action.GRID)
    mapping_outputs: tuple[MappingOutput, ...] = ()  # every output of the venue profile, the first is the above


@dataclass(frozen=True)
class ParamInfo:
    """One live parameter, as control surfaces list it."""

    name: str
    type: str
    label: str
    default: object
    min: object
    max: object
    values: tuple[int, ...]
    labels: tuple[str, ...]
    value: object


@dataclass(frozen=True)
class ShaderInfo:
    """A shader of the library as control surfaces see it: its inputs and whether it compiles."""

    name: str
    kind: str
    path: str
    description: str
    params: tuple[ParamInfo, ...]
    error: str | None


class StateBoard:
    """The show's latest state, for other threads: references swapped whole, never mutated.

    The snapshot changes every frame; the shader catalog (every shader and its live
    parameters, for control surfaces) only when the library or a value changes. The preview
    (a small RGB copy of the output for the control pages) comes a few times a second, and only
    while ``preview_viewers`` (written backstage; a plain int is read and written whole) is above 0.
    """

    def __init__(self) -> None:
        self._snapshot = ShowSnapshot()
        self._catalog: tuple[ShaderInfo, ...] = ()
        self.preview_viewers = 0
        self._preview: tuple[int, np.ndarray | None] = (0, None)

    def publish(self, snapshot: ShowSnapshot) -> None:
        self._snapshot = snapshot

    def read(self) -> ShowSnapshot:
        return self._snapshot

    def publish_catalog(self, catalog: tuple[ShaderInfo, ...]) -> None:
        self._catalog = catalog

    def catalog(self) -> tuple[ShaderInfo, ...]:
        return self._catalog

    def publish_preview(self, pixels: np.ndarray) -> None:
        """Show thread only: the newest preview, (h, w, 3) uint8 top row first, never written again."""
        self._preview = (self._preview[0] + 1, pixels)

    def preview(self) -> tuple[int, np.ndarray | None]:
        """(sequence number, pixels) of the newest preview: a new number means a new picture to send."""
        return self._preview


@dataclass(frozen=True, eq=False)
class CaptureWish:
    """A request for a copy of the program output, answered through ``answer`` as (h, w, 3) uint8 rows, top first.

    ``longest`` 0: the whole output as the projector shows it, drawn again and read at once (image-to-image,
    a few times a minute). ``longest`` N: scaled so its longest side is N pixels, taken before the dream layer
    and the overlays (the dream must not dream its own frames, the HUD or the QR code) and read back without
    waiting (engine/render/preview.py): the answer comes a frame or two later, so the dream can ask every frame.
    """

    answer: Future[np.ndarray]
    longest: int = 0


class DreamSlot:
    """The dream layer's newest frame: the backstage puts, the show reads; newer frames replace older ones.

    Nothing queues: a frame the show had no time to take is simply replaced, so a slow show never falls
    behind and a slow dream never holds the show (it draws the frame it has). The pair (sequence number,
    frame) is replaced whole by its one writer (the backstage's thread, or the bridge's receive thread)
    and read whole by the show: no lock on the render path. ``None`` as a frame takes the layer away.
    """

    def __init__(self) -> None:
        self._latest: tuple[int, np.ndarray | None] = (0, None)

    def put(self, frame: np.ndarray | None, block: bool = True, timeout: float | None = None) -> None:
        """A new frame, (h, w, 3 or 4) uint8 top row first; the arguments after it are a queue's, unused."""
        self._latest = (self._latest[0] + 1, frame)

    def latest(self) -> tuple[int, np.ndarray | None]:
        """(sequence number, frame): a number the reader has not seen means a frame it has not drawn."""
        return self._latest


@dataclass
class Inbox:
    """What other threads hand to the show: decoded images and control commands."""

    images: queue.SimpleQueue[ShowImage] = field(default_factory=queue.SimpleQueue)
    commands: queue.SimpleQueue[Command] = field(default_factory=queue.SimpleQueue)
    hud: queue.SimpleQueue[np.ndarray] = field(default_factory=queue.SimpleQueue)  # painted backstage
    shader_changes: queue.SimpleQueue[Path] = field(default_factory=queue.SimpleQueue)  # from the watcher
    # Requests for a copy of the program output (image-to-image and the dream from the projector's picture).
    captures: queue.SimpleQueue[CaptureWish] = field(default_factory=queue.SimpleQueue)
    dream: DreamSlot = field(default_factory=DreamSlot)  # the dream layer's newest frame (engine/gen/local/dream.py)
