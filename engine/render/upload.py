"""Getting images onto the GPU without stalling a frame.

Two rules keep the frame time flat when a big image arrives:
- textures are allocated once, at start-up, as a ring of square slots of the
  largest accepted size (allocating a 2048² texture costs 8-17 ms on llvmpipe);
  an image is written into the corner of a free slot and the shader samples only
  that region;
- an image is written a band of rows at a time, within a byte budget per frame.
"""

from __future__ import annotations

import logging

import moderngl

from engine.contract import ShowImage
from engine.errors import ImageError
from engine.show import Layer

log = logging.getLogger(__name__)


class TextureSlots:
    """A fixed ring of RGBA8 textures, handed out and taken back by index."""

    def __init__(self, ctx: moderngl.Context, size: int, count: int) -> None:
        self.size = size
        self.textures: list[moderngl.Texture] = []
        for _ in range(count):
            tex = ctx.texture((size, size), 4)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = False
            tex.repeat_y = False
            self.textures.append(tex)
        self._free = list(range(count))

    @property
    def free_count(self) -> int:
        return len(self._free)

    def acquire(self) -> int | None:
        return self._free.pop(0) if self._free else None

    def release(self, index: int) -> None:
        if index not in self._free:
            self._free.append(index)

    def texture(self, index: int) -> moderngl.Texture:
        return self.textures[index]

    def release_all(self) -> None:
        for tex in self.textures:
            tex.release()
        self.textures.clear()
        self._free.clear()


class Uploader:
    """Streams one image at a time into a free slot, ``budget`` bytes per frame."""

    def __init__(self, slots: TextureSlots, budget: int) -> None:
        self.slots = slots
        self.budget = max(1, budget)
        self._image: ShowImage | None = None
        self._slot = -1
        self._row = 0

    @property
    def busy(self) -> bool:
        return self._image is not None

    @property
    def image_id(self) -> str | None:
        """The image being uploaded, if any."""
        return self._image.id if self._image is not None else None

    def check(self, image: ShowImage) -> None:
        limit = self.slots.size
        if image.width > limit or image.height > limit:
            raise ImageError(
                f"image {image.id}: {image.width}x{image.height} is larger than "
                f"render.max_image_size ({limit})"
            )

    def start(self, image: ShowImage) -> bool:
        """Begin uploading ``image``; False when no slot is free (try again next frame)."""
        self.check(image)
        slot = self.slots.acquire()
        if slot is None:
            return False
        self._image, self._slot, self._row = image, slot, 0
        return True

    def step(self) -> Layer | None:
        """Write the next band of rows; the finished Layer once the last band is in."""
        image = self._image
        if image is None:
            return None
        rows = max(1, self.budget // (image.width * 4))
        end = min(image.height, self._row + rows)
        band = image.pixels[self._row:end]
        self.slots.texture(self._slot).write(band, viewport=(0, self._row, image.width, end - self._row))
        self._row = end
        if end < image.height:
            return None
        layer = Layer(image.id, self._slot, image.width, image.height)
        self._image = None
        return layer
