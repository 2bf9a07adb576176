"""What crosses the pipe between the show's process and the backstage process, one frozen type each.

Each side has one dispatcher (``match`` on these types): ``process._ChildSide.handle`` in the
backstage process, ``BackstageProcess._handle`` in the show's. Everything here pickles (numpy arrays,
the contract's frozen values, commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.audio.live import Heard
from engine.commands import Command
from engine.contract import ShaderInfo, ShowImage, ShowSnapshot


# --- backstage → show ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """The backstage serves: where the phones and the VJ reach it."""

    port: int | None
    vj_url: str


@dataclass(frozen=True)
class Failed:
    """The backstage could not start; the one line the VJ reads."""

    reason: str


@dataclass(frozen=True)
class ImageOut:
    image: ShowImage


@dataclass(frozen=True)
class CommandOut:
    command: Command


@dataclass(frozen=True)
class HudOut:
    pixels: np.ndarray


@dataclass(frozen=True)
class DreamOut:
    """The dream layer's newest frame (None: the layer goes away); only the newest waiting one is sent."""

    pixels: np.ndarray | None


@dataclass(frozen=True)
class Viewers:
    """How many control pages watch the preview (the show grabs one only while some do)."""

    count: int


@dataclass(frozen=True)
class CaptureAsk:
    """A copy of the program output is wanted (image-to-image, the dream); answered by ``Captured`` with this
    number. ``longest``: as ``engine.contract.CaptureWish``."""

    number: int
    longest: int = 0


@dataclass(frozen=True)
class Tempo:
    """Link moved the tempo: the show's audio engine follows."""

    op: Literal["lock_bpm", "resync"]
    value: float | None


@dataclass(frozen=True)
class ProbeAnswer:
    value: Any  # a benchmark's answer, or the exception its probe raised


ToShow = Ready | Failed | ImageOut | CommandOut | HudOut | DreamOut | Viewers | CaptureAsk | Tempo | ProbeAnswer


# --- show → backstage ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotIn:
    snapshot: ShowSnapshot
    received: int  # images the show's side has taken off the pipe so far (the rest are in flight)


@dataclass(frozen=True)
class HeardIn:
    heard: Heard


@dataclass(frozen=True)
class CatalogIn:
    catalog: tuple[ShaderInfo, ...]


@dataclass(frozen=True)
class PreviewIn:
    pixels: np.ndarray


@dataclass(frozen=True)
class RequestImage:
    """Space: make an image now."""


@dataclass(frozen=True)
class Pair:
    """P: a pairing code for the control page, printed on the backstage's console."""


@dataclass(frozen=True)
class Captured:
    number: int
    pixels: np.ndarray | None
    error: str | None


@dataclass(frozen=True)
class ProbeAsk:
    question: Any


@dataclass(frozen=True)
class Stop:
    pass


ToBackstage = SnapshotIn | HeardIn | CatalogIn | PreviewIn | RequestImage | Pair | Captured | ProbeAsk | Stop
