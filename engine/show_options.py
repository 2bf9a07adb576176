"""What a show driver needs to run: resolved settings plus the wiring to the other threads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.audio.live import LiveAudio
from engine.config import Config
from engine.contract import Inbox, StateBoard


@dataclass
class ShowOptions:
    cfg: Config
    size: tuple[int, int]
    fps: float  # 0: unpaced
    join_url: str
    inbox: Inbox = field(default_factory=Inbox)
    board: StateBoard = field(default_factory=StateBoard)
    request_image: Callable[[], None] = lambda: None
    pair: Callable[[], None] = lambda: None  # P: a pairing code for the control page, on the console
    live: LiveAudio | None = None
    frames: int | None = None
    snapshot: Path | None = None
