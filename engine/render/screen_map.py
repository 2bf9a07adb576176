"""The screen's projection mapping inside the show: the program drawn into a canvas, then warped.

With a venue profile ([show] venue) the program is drawn into a canvas texture of the show's size,
and the first output of the profile warps it onto the screen (engine/render/mapping.py). The
outputs, the preview and the recording read the canvas: the program, unwarped. Without a profile
(or with a bad one, reported once) the program goes straight to the screen and this costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import moderngl

from engine.errors import EngineError
from engine.render.mapping import Mapper
from engine.render.venue import Venue, load_venue

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
        self.venue, self.mapper = venue, mapper
        log.info("venue %s: output %r of %d", path, venue.outputs[0].name, len(venue.outputs))
        return True

    def grid(self, on: bool) -> None:
        self.test_pattern = on
        if on and self.mapper is None:
            self.report("the alignment grid needs a venue profile ([show] venue, --venue FILE)")

    def target(self, screen: moderngl.Framebuffer, size: tuple[int, int]) -> moderngl.Framebuffer:
        """Where the program is drawn: the screen itself, or with a profile the canvas that ``warp`` maps."""
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
        if self.mapper is not None:
            self.mapper.release()
            self.mapper = None
        self._release_canvas()
