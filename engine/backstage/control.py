"""What the VJ's control page may do backstage: the ``Controls`` the hub is given, on the loop.

Every prompt operation goes through the ledger; images come back from the journal through the
ledger's keeper, read and decoded in the worker pool; settings are validated like config.toml.
Anything the page cannot have is a ``VjProtocolError`` with a code the page shows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from engine.cluster.jobs import ClusterStatus
from engine.commands import Action
from engine.config import Config, with_overrides
from engine.contract import Inbox, StateBoard
from engine.control.midi_input import MidiInput, MidiState
from engine.control.midi_map import Control, Target
from engine.errors import ConfigError
from engine.gen.base import Generator
from engine.gen.local.status import LocalStatus
from engine.gen.pipeline import from_journal, show_image
from engine.ledger import Ledger, LedgerError
from engine.net import vj_state
from engine.net.vj_protocol import VjProtocolError

if TYPE_CHECKING:
    from engine.gen.stability import StabilityStatus  # loaded only with the Stability backend

log = logging.getLogger(__name__)


class BackstageControls:
    """The backstage side of the control page (``engine.net.vj_hub.Controls``)."""

    def __init__(self, cfg: Config, ledger: Ledger, generators: tuple[Generator, Generator], inbox: Inbox,
                 board: StateBoard, pool: Executor, output_dir: str, midi: MidiInput | None = None,
                 on_settings: Callable[[Config], None] = lambda _c: None) -> None:
        self._cfg = cfg
        self.ledger = ledger
        self.generators = generators
        self.inbox = inbox
        self.board = board
        self.pool = pool
        self.output_dir = output_dir
        self.midi = midi
        self.on_settings = on_settings
        self.reports: list[str] = []  # backend problems in plain words, newest last (the backstage keeps 6)
        self.dream_state: Callable[[], dict[str, Any] | None] = lambda: None  # set when the dream layer runs
        self._reshow_seq = itertools.count(1)

    @property
    def cfg(self) -> Config:
        return self._cfg

    # --- reads ------------------------------------------------------------------------------------
    def queue_version(self) -> int:
        return self.ledger.audience.version

    def queue_state(self, now: float) -> dict[str, Any]:
        return vj_state.queue_state(self.ledger.audience, now)

    def midi_snapshot(self) -> MidiState | None:
        return self.midi.snapshot() if self.midi is not None else None

    def gallery_state(self) -> dict[str, Any]:
        return vj_state.gallery_state(self.ledger.gallery())

    def generation_state(self) -> dict[str, Any]:
        from engine.gen.stability import STYLE_PRESETS

        return vj_state.generation_state(self._cfg, self.output_dir, STYLE_PRESETS, local=self._local)

    @property
    def _local(self) -> bool:
        """The primary backend is the local model: the page's settings map to its knobs."""
        primary, fallback = self.generators
        return primary is not fallback and primary.name == "local"

    def backend_state(self) -> dict[str, Any]:
        status = self.primary_status()
        primary = self.generators[0]
        if isinstance(status, LocalStatus):  # the local model: its state, load progress, device, memory, speed
            return {"name": primary.name, "status": status.page_status, "line": self.generator_line(status),
                    "credits": None, "resume_in": 0.0, "errors": list(self.reports), "state": status.state.value,
                    "progress": round(status.progress, 3), "progress_line": status.line, "model": status.model,
                    "device": status.device, "memory_mb": round(status.memory_mb, 1),
                    "images_per_s": round(status.images_per_s, 3), "dream": self.dream_state()}
        if isinstance(status, ClusterStatus):  # generate workers over Redis: how many, and whether any
            state = "offline" if status.jobs is None or not status.workers else "ok"
            return {"name": primary.name, "status": state, "line": self.generator_line(status), "credits": None,
                    "resume_in": 0.0, "errors": list(self.reports), "workers": list(status.workers),
                    "jobs": status.jobs}
        return {"name": primary.name, "status": status.state if status else "ok", "line": self.generator_line(status),
                "credits": status.credits if status else None, "resume_in": status.resume_in if status else 0.0,
                "errors": list(self.reports)}

    def primary_status(self) -> StabilityStatus | LocalStatus | ClusterStatus | None:
        """The primary backend's health, when it has one to report (the offline generator has none)."""
        primary, fallback = self.generators
        status_of = getattr(primary, "status", None)
        return status_of() if status_of is not None and primary is not fallback else None

    def generator_line(self, status: StabilityStatus | LocalStatus | ClusterStatus | None = None) -> str:
        """The image backend as the VJ needs to see it: which one, healthy or not, credits left."""
        primary, fallback = self.generators
        if primary is fallback:
            return f"images: {primary.name} (offline)"
        s = status or self.primary_status()
        if s is None:
            return f"images: {primary.name}"
        if isinstance(s, LocalStatus | ClusterStatus):
            return f"images: {primary.name} {s.summary()}"
        credits = f"   credits {s.credits:g}" if s.credits is not None else ""
        problem = f"   ! {s.last_error}" if s.last_error else ""
        resume = f"   (offline images; next try in {s.resume_in:.0f} s)" if s.resume_in > 0 else ""
        return f"images: {primary.name} {s.state}{resume}{credits}{problem}"

    # --- operations ---------------------------------------------------------------------------------
    def prompt_op(self, op: str, prompt_id: str, reason: str | None = None, to: int = 0) -> None:
        try:
            self.ledger.operate(op, prompt_id, reason, to)
        except LedgerError as err:
            raise VjProtocolError(err.code, err.message) from err

    def vj_prompt(self, text: str) -> str:
        """The VJ's own prompt, generated next (the seed's "generate" button)."""
        return self.ledger.submit_vj(text)

    def reshow(self, image_id: str) -> None:
        """An image from the gallery back on screen now: read and decoded in the pool, then straight in."""
        if self.ledger.stored(image_id) is None:
            raise VjProtocolError("not_found", "No such image in this show.")
        size = self.board.read().size
        show_id = f"{image_id}-again{next(self._reshow_seq)}"
        caption = self.ledger.text_of_image(image_id)
        cfg = self._cfg

        async def load() -> None:
            try:
                pixels = await from_journal(self.ledger, image_id, size, cfg, self.pool)
            except Exception as err:
                self.report(f"re-show {image_id}: {err}")
                return
            self.inbox.images.put(await show_image(cfg, self.pool, show_id, pixels, caption, size, urgent=True))

        task = asyncio.get_running_loop().create_task(load(), name="reshow")
        _keep.add(task)
        task.add_done_callback(_keep.discard)

    def change_settings(self, values: Mapping[str, object]) -> None:
        """Generation settings for the next prompts, validated like config.toml."""
        try:
            cfg = with_overrides(self._cfg, vj_state.settings_overrides(values, local=self._local))
        except ConfigError as err:
            raise VjProtocolError("bad_message", str(err)) from err
        self._cfg = cfg
        self.on_settings(cfg)
        for g in set(self.generators):
            reconfigure = getattr(g, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(cfg)
        log.info("generation settings: %s", ", ".join(f"{k}={v!r}" for k, v in values.items()))

    def midi_learn(self, target: Target | None) -> None:
        if self.midi is None:
            raise VjProtocolError("failed", 'MIDI input is off: set [midi] input = "all" (or a port name).')
        if target is not None and target.action == Action.PARAM.value:
            info = next((p for s in self.board.catalog() if s.name == target.shader for p in s.params
                         if p.name == target.param), None)
            if info is None:
                raise VjProtocolError("not_found", f"No parameter {target.param!r} in shader {target.shader!r}.")
            low = info.min if isinstance(info.min, int | float) else 0.0
            high = info.max if isinstance(info.max, int | float) else 1.0
            target = Target(target.action, target.shader, target.param, float(low), float(high))
        self.midi.learn(target)

    def midi_forget(self, control: Control) -> None:
        if self.midi is None:
            raise VjProtocolError("failed", "MIDI input is off.")
        self.midi.forget(control)

    def report(self, message: str) -> None:
        """A problem the VJ should read (and the log keeps): the newest six stay on the page."""
        log.warning("%s", message)
        self.reports.append(message)
        del self.reports[:-6]


_keep: set[asyncio.Task[None]] = set()  # re-show tasks alive until done (the loop keeps only weak references)
