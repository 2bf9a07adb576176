"""The screen's projection mapping inside the show: the program drawn into a canvas, then warped.

With a venue profile ([show] venue) the program is drawn into a canvas texture of the show's size,
and the first output of the profile warps it onto the screen (engine/render/mapping.py). The
outputs, the preview and the recording read the canvas: the program, unwarped. Without a profile
(or with a bad one, reported once) the program goes straight to the screen and this costs nothing.

The control page edits any output of the venue live (Action.MAPPING: its corners, mesh, one mesh point or its
masks; engine/render/mapping_edits.py decodes them): each edit is checked as if read from the file, applied at
once, and the whole venue written back to its file by a short-lived writer thread (the render thread never
touches the disk), so the fit survives a restart. Edits faster than the disk coalesce: the writer always writes
the newest venue, and one writer runs at a time.

``venue`` is the one source of truth for every output; only the first has a mapper here. Code drawing the other
outputs (in windows of their own) watches ``edits``, which grows by one with each applied edit, and re-reads
``venue`` when it changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypedDict

import moderngl

from engine.commands import Action, Command, toggled
from engine.contract import MappingOutput
from engine.errors import EngineError
from engine.render.mapping import Mapper
from engine.render.mapping_edits import edited, flat_corners, flat_masks, flat_mesh
from engine.render.venue import Venue, check_venue, load_venue, save_venue

log = logging.getLogger(__name__)


class MappingFields(TypedDict):
    """The snapshot's mapping fields (ShowSnapshot.mapping_*), as ``ScreenMap.snapshot_fields`` gives them."""

    mapping_name: str
    mapping_corners: tuple[float, ...]
    mapping_grid: bool
    mapping_outputs: tuple[MappingOutput, ...]


class ScreenMap:
    """Render-thread owner of the venue profile, its mapper and the canvas."""

    def __init__(self, ctx: moderngl.Context, report: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.report = report
        self.venue: Venue | None = None
        self.mapper: Mapper | None = None
        self.test_pattern = False  # the alignment grid instead of the program (key G, /engine/grid)
        self.screen_size: tuple[int, int] | None = None  # the window's pixels, when the canvas is wider (screens.py)
        self._canvas: moderngl.Framebuffer | None = None
        self._texture: moderngl.Texture | None = None
        self.path = ""  # the venue file, where edits are saved
        self.corners: tuple[float, ...] = ()  # the mapped output's corners, x0, y0 .. x3, y3 (the snapshot's)
        self.flat_outputs: tuple[MappingOutput, ...] = ()  # every output, flattened for the snapshot (made per edit)
        self.edits = 0  # edits applied so far: a new number means ``venue`` changed
        # The writer thread: the newest venue not yet written, and why the last write failed (reported by the
        # render thread on its next frame). Both are swapped whole under the lock.
        self._save_lock = threading.Lock()
        self._unsaved: Venue | None = None
        self._saver: threading.Thread | None = None
        self._save_error: str | None = None

    @property
    def output_name(self) -> str:
        """The name of the output the screen is mapped by ("" without a profile)."""
        return self.venue.outputs[0].name if self.venue is not None else ""

    def load(self, path: str) -> bool:
        """Warp the screen by the profile's first output; a bad profile is one error, and the screen unwarped."""
        try:
            venue = load_venue(path)
            mapper = Mapper(self.ctx, venue.outputs[0])
        except EngineError as err:
            self.report(f"venue profile not used, the picture is unwarped: {err}")
            return False
        if self.mapper is not None:
            self.mapper.release()
        self.venue, self.mapper, self.path = venue, mapper, path
        self._flatten()
        log.info("venue %s: output %r of %d", path, venue.outputs[0].name, len(venue.outputs))
        return True

    def command(self, cmd: Command) -> None:
        """Action.GRID (value 1/0 sets, none toggles) or Action.MAPPING (name: the output, "" the first; key and
        value: the edit, see engine/render/mapping_edits.py)."""
        if cmd.action is Action.GRID:
            self.grid(toggled(self.test_pattern, cmd.value))
            return
        if isinstance(cmd.value, tuple):
            values: tuple[float, ...] = cmd.value
        else:
            values = () if cmd.value is None else (cmd.value,)
        self.edit(cmd.name, cmd.key, values)

    def edit(self, name: str, key: str, values: Sequence[float]) -> bool:
        """Apply one edit to the output ``name`` ("" = the first) and save the venue.

        A bad edit (a shape the key does not take, a value off its range, corners that are not a convex quad,
        an unknown output) is one error and changes nothing.
        """
        if self.venue is None or self.mapper is None:
            self.report("mapping edits need a venue profile ([show] venue, --venue FILE)")
            return False
        names = [o.name for o in self.venue.outputs]
        index = names.index(name) if name in names else 0 if not name else -1
        if index < 0:
            self.report(f"mapping: no output {name!r} in the venue (its outputs: {', '.join(map(repr, names))})")
            return False
        outputs = list(self.venue.outputs)
        try:
            outputs[index] = edited(outputs[index], key, values)
            venue = check_venue(replace(self.venue, outputs=tuple(outputs)), self.path)
            if index == 0:
                self.mapper.update(venue.outputs[0])
        except EngineError as err:
            self.report(f"mapping edit not applied: {err}")
            return False
        self.venue = venue
        self.edits += 1
        self._flatten()
        self._save_later(venue)
        return True

    def edit_corners(self, values: Sequence[float]) -> bool:
        """Move the mapped output's corners (x0, y0 .. x3, y3: top-left first, clockwise) and save the venue."""
        return self.edit("", "corners", values)

    def _flatten(self) -> None:
        """The snapshot's view of the venue, made once per edit rather than once per frame."""
        outputs = self.venue.outputs if self.venue is not None else ()
        self.flat_outputs = tuple(MappingOutput(o.name, flat_corners(o), flat_mesh(o.mesh), flat_masks(o.masks))
                             for o in outputs)
        self.corners = self.flat_outputs[0].corners if self.flat_outputs else ()

    def snapshot_fields(self) -> MappingFields:
        """Every mapping field of the show's snapshot (``ShowSnapshot(**fields)``)."""
        return {"mapping_name": self.output_name, "mapping_corners": self.corners,
                "mapping_grid": self.test_pattern, "mapping_outputs": self.flat_outputs}

    # --- saving, off the render thread ---------------------------------------------------------------------
    def _save_later(self, venue: Venue) -> None:
        with self._save_lock:
            self._unsaved = venue
            if self._saver is not None:
                return  # the running writer takes the newest venue when it is done with the one it writes
            self._saver = threading.Thread(target=self._write, name="venue-save", daemon=True)
            self._saver.start()

    def _write(self) -> None:
        """The writer thread: write the newest unsaved venue until there is none."""
        while True:
            with self._save_lock:
                venue, self._unsaved = self._unsaved, None
                if venue is None:
                    self._saver = None
                    return
            try:
                save_venue(venue, self.path)
            except (EngineError, OSError) as err:
                self._save_error = f"venue profile not saved (the edit is live until the show stops): {err}"

    def wait_saved(self, timeout: float = 5.0) -> bool:
        """Wait until every edit is on disk; False if the writer still runs after ``timeout`` seconds."""
        saver = self._saver
        if saver is not None:
            saver.join(timeout)
        return self._saver is None

    def grid(self, on: bool) -> None:
        self.test_pattern = on
        log.info("alignment grid %s", "on" if on else "off")
        if on and self.mapper is None:
            self.report("the alignment grid needs a venue profile ([show] venue, --venue FILE)")

    def target(self, screen: moderngl.Framebuffer, size: tuple[int, int]) -> moderngl.Framebuffer:
        """Where the program is drawn: the screen itself, or with a profile the canvas that ``warp`` maps."""
        if self._save_error is not None:
            error, self._save_error = self._save_error, None
            self.report(error)
        if self.mapper is None:
            return screen
        if self._canvas is None or self._canvas.size != size:
            self._release_canvas()
            texture = self.ctx.texture(size, 4)
            texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            texture.repeat_x = texture.repeat_y = False
            self._canvas = self.ctx.framebuffer(color_attachments=[texture])
            self._texture = texture
        return self._canvas

    def warp(self, screen: moderngl.Framebuffer, size: tuple[int, int]) -> None:
        """After the program is drawn into the canvas: the mapping pass onto the screen."""
        if self.mapper is not None and self._texture is not None:
            self.mapper.render(self._texture, screen, self.screen_size or size, self.test_pattern)

    @property
    def canvas(self) -> moderngl.Texture | None:
        """The program drawn this frame, unwarped, that every output window maps (None without a profile)."""
        return self._texture if self.mapper is not None else None

    def _release_canvas(self) -> None:
        if self._canvas is not None:
            for attachment in self._canvas.color_attachments:
                attachment.release()
            self._canvas.release()
        self._canvas = self._texture = None

    def release(self) -> None:
        self.wait_saved()  # the last edit reaches the disk before the show goes
        if self.mapper is not None:
            self.mapper.release()
            self.mapper = None
        self._release_canvas()
