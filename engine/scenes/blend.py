"""The arithmetic of a scene recall: what switches at once, and what glides over the blend.

A recall does not jump: numbers, points and colours go from where they are to the scene's values in
a straight line over ``[scenes] blend`` seconds (so halfway through the blend a value is halfway),
and so does the dream layer's mix. What has no "between" switches at the start: true/false inputs,
menus and whole-number inputs (``long``, ``int``), like the chain, the transition and the fit (those
the deck sets itself). A blend of 0 seconds is a cut: everything switches at the start.

Pure functions and one small class, no GL and no clock of their own (time comes in), so a blend is
tested by asking for its values at chosen times. Per frame the render thread asks ``Blend.sample``
for the values of the tracks still running: one multiply-add per number, nothing allocated past the
list it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.shaders.source import Value

Setting = tuple[str, str, Value]  # (shader, parameter, value)


def glides(start: Value | None, end: Value) -> bool:
    """Whether a value can go smoothly from ``start`` to ``end``: numbers and same-sized vectors do; true/false
    and whole numbers (menus, counts) do not, and neither does a value with nothing to start from."""
    if start is None or isinstance(start, bool | int) or isinstance(end, bool | int):
        return False
    if isinstance(start, tuple) or isinstance(end, tuple):
        return isinstance(start, tuple) and isinstance(end, tuple) and len(start) == len(end)
    return True


def lerp(start: Value, end: Value, t: float) -> Value:
    """``start`` moved a fraction ``t`` (0..1) of the way to ``end``; values that do not glide jump at 0."""
    if not glides(start, end):
        return end
    if isinstance(start, tuple) and isinstance(end, tuple):
        return tuple(a + (b - a) * t for a, b in zip(start, end, strict=True))
    if isinstance(start, float) and isinstance(end, float):
        return start + (end - start) * t
    return end


@dataclass(frozen=True)
class Track:
    """One parameter on its way from ``start`` to ``end``."""

    shader: str
    key: str
    start: Value
    end: Value


class Blend:
    """The tracks of one recall, from ``began`` for ``seconds``; ``dream`` is the mix's (from, to) if it moves."""

    def __init__(self, tracks: list[Track], began: float, seconds: float,
                 dream: tuple[float, float] | None = None) -> None:
        self.tracks = tracks
        self.began = began
        self.seconds = seconds
        self.dream = dream

    def fraction(self, now: float) -> float:
        """How far the blend has gone at ``now``: 0 at the recall, 1 at the end and after."""
        if self.seconds <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - self.began) / self.seconds))

    def done(self, now: float) -> bool:
        return self.fraction(now) >= 1.0 or not (self.tracks or self.dream)

    def sample(self, now: float) -> list[Setting]:
        """Every running track's value at ``now`` (the end values once the blend is over)."""
        t = self.fraction(now)
        return [(tr.shader, tr.key, lerp(tr.start, tr.end, t)) for tr in self.tracks]

    def dream_mix(self, now: float) -> float | None:
        if self.dream is None:
            return None
        a, b = self.dream
        return a + (b - a) * self.fraction(now)

    def drop(self, shader: str, key: str) -> None:
        """The VJ moved this parameter by hand during the blend: from now on it is theirs."""
        self.tracks = [tr for tr in self.tracks if tr.shader != shader or tr.key != key]

    def drop_dream(self) -> None:
        self.dream = None


def plan(current: Mapping[str, Mapping[str, Value]], target: Mapping[str, Mapping[str, Value]], now: float,
         seconds: float, dream: tuple[float, float] | None = None) -> tuple[list[Setting], Blend]:
    """A recall from ``current`` to ``target`` (shader → parameter → value): what to set at once, and the blend.

    A value already at its target is left alone; ``dream`` (from, to) glides like a number, or is set at
    once by a cut (it is then the blend's only track, finished at its first sample).
    """
    now_values: list[Setting] = []
    tracks: list[Track] = []
    for shader, values in target.items():
        here = current.get(shader, {})
        for key, end in values.items():
            start = here.get(key)
            if start == end:
                continue
            if seconds > 0 and start is not None and glides(start, end):
                tracks.append(Track(shader, key, start, end))
            else:
                now_values.append((shader, key, end))
    if dream is not None and dream[0] == dream[1]:
        dream = None
    return now_values, Blend(tracks, now, seconds, dream)
