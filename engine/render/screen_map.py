"""The screen's projection mapping inside the show: the program drawn into a canvas, then warped.

With a venue profile ([show] venue) the program is drawn into a canvas texture of the show's size,
and the first output of the profile warps it onto the screen (engine/render/mapping.py). The
outputs, the preview and the recording read the canvas: the program, unwarped. Without a profile
(or with a bad one, reported once) the program goes straight to the screen and this costs nothing.

The control page edits the mapped output's corners live (Action.MAPPING): each edit is checked as if read
from the file, applied at once, and the whole venue written back to its file by a short-lived writer thread
(the render thread never touches the disk), so the fit survives a restart. Edits faster than the disk
coalesce: the writer always writes the newest venue, and one writer runs at a time.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import replace

import moderngl

from engine.commands import Action, Command, toggled
from engine.errors import EngineError
from engine.render.mapping import Mapper
from engine.render.venue import Venue, check_venue, load_venue, save_venue

log = logging.getLogger(__name__)


class ScreenMap:
    """Render-thread owner of the venue profile, its mapper and the canvas."""

    def __init__(self, ctx: moderngl.Context, report: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.report = report
        self.venue: Venue | None = None
        self.mapper: Mapper | None = None
        self.test_pattern = False  # the alignment grid instead of the program (key G, /engine/grid)
        self._canvas: moderngl.Framebuffer | None = None
        self._texture: moderngl.Texture | None = None
        self.path = ""  # the venue file, where edits are saved
        self.corners: tuple[float, ...] = ()  # the mapped output's corners, x0, y0 .. x3, y3 (the snapshot's)
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
        self._set_corners()
        log.info("venue %s: output %r of %d", path, venue.outputs[0].name, len(venue.outputs))
        return True

    def command(self, cmd: Command) -> None:
        """Action.GRID (value 1/0 sets, none toggles) or Action.MAPPING (name, key "corners", 8 numbers)."""
        if cmd.action is Action.GRID:
            self.grid(toggled(self.test_pattern, cmd.value))
        elif cmd.key != "corners":
            self.report(f"mapping: cannot edit {cmd.key!r} (only the corners)")
        elif cmd.name and cmd.name != self.output_name:
            self.report(f"mapping: no mapped output {cmd.name!r} (the screen is mapped by {self.output_name!r})")
        else:
            values = cmd.value if isinstance(cmd.value, tuple) else ()
            self.edit_corners(values)

    def edit_corners(self, values: tuple[float, ...]) -> bool:
        """Move the mapped output's corners (x0, y0 .. x3, y3: top-left first, clockwise) and save the venue.

        A bad quad (not 8 finite numbers, off the allowed range, not convex) is one error and changes nothing.
        """
        if self.venue is None or self.mapper is None:
            self.report("mapping edits need a venue profile ([show] venue, --venue FILE)")
            return False
        if len(values) != 8 or not all(math.isfinite(v) for v in values):
            self.report(f"mapping: expected 8 numbers for the corners (x0, y0 .. x3, y3), got {len(values)}")
            return False
        old = self.venue.outputs[0]
        quad = tuple((float(values[i]), float(values[i + 1])) for i in range(0, 8, 2))
        edited = replace(old, corners=(quad[0], quad[1], quad[2], quad[3]))
        try:
            venue = check_venue(replace(self.venue, outputs=(edited, *self.venue.outputs[1:])), self.path)
            self.mapper.update(venue.outputs[0])
        except EngineError as err:
            self.report(f"mapping edit not applied: {err}")
            return False
        self.venue = venue
        self._set_corners()
        self._save_later(venue)
        return True

    def _set_corners(self) -> None:
        corners = self.venue.outputs[0].corners if self.venue is not None else ()
        self.corners = tuple(float(v) for p in corners for v in p)

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
            self.mapper.render(self._texture, screen, size, self.test_pattern)

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
