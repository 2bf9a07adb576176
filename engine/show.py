"""What is on screen and what comes next: the show's state machine, without GL.

The director decides, from the time alone, which image is current, which is
coming in, how far the transition has gone and how dark the blackout is. The
render thread asks it once per frame for a ``FramePlan`` and draws that plan, so
every rule here is tested with plain numbers for time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """An image that is on the GPU: which texture slot holds it, and its size there."""

    id: str
    slot: int
    width: int
    height: int


@dataclass(frozen=True)
class FramePlan:
    """Everything the compositor needs to draw one frame."""

    current: Layer | None  # None: the idle visual
    incoming: Layer | None
    progress: float  # 0..1 through the transition; 0 when none runs
    blackout: float  # 0 = picture, 1 = black
    retired: tuple[Layer, ...] = ()  # layers no longer needed; their slots are free






@dataclass(frozen=True)
class BeatInfo:
    """The beat as this frame sees it (from the audio thread, or tap tempo)."""

    beat: bool  # a beat fell since the last frame
    count: int  # beats since the start, for "every N beats"
    bar_beat: int  # 1..4, 0 when unknown
    period: float  # seconds per beat; 0 when there is no confident tempo


class Director:
    """Hold, transition and blackout rules.

    An image stays at least ``hold`` seconds, then the next ready one comes in over
    ``transition`` seconds. ``request_next`` skips the rest of the hold. Blackout
    fades over ``blackout_fade`` seconds and can reverse mid-fade without a jump.
    """

    def __init__(self, transition: float, hold: float, blackout_fade: float, max_ready: int = 2,
                 transition_on: str = "time", every: int = 1) -> None:
        self.transition = transition
        self.transition_on = transition_on  # time | beat | bar
        self.every = max(1, every)
        self._duration = transition
        self.hold = hold
        self.blackout_fade = blackout_fade
        self.max_ready = max_ready
        self.current: Layer | None = None
        self.incoming: Layer | None = None
        self._ready: deque[Layer] = deque()
        self._shown_at = 0.0
        self._started_at = 0.0
        self._skip = False
        self._retired: list[Layer] = []
        self._black_target = False
        self._black_from = 0.0
        self._black_since = 0.0
        self.pinned: str | None = None  # a layer that stays on screen past its hold (a live input) until unpinned

    # --- images -------------------------------------------------------------
    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def held_ids(self) -> tuple[str, ...]:
        """Every image the director holds: on screen, coming in, and waiting in line."""
        layers = (self.current, self.incoming, *self._ready)
        return tuple(layer.id for layer in layers if layer is not None)

    @property
    def wants_more(self) -> bool:
        return len(self._ready) < self.max_ready

    def offer(self, layer: Layer, front: bool = False) -> None:
        """A freshly uploaded image joins the line (at its head when the VJ asked for it now)."""
        if front:
            self._ready.appendleft(layer)
            self._skip = True
        else:
            self._ready.append(layer)

    def request_next(self) -> bool:
        """Skip the hold. False when nothing is ready yet (the caller may ask for one)."""
        self._skip = True
        return bool(self._ready) or self.incoming is not None

    # --- blackout -----------------------------------------------------------
    @property
    def blackout_on(self) -> bool:
        return self._black_target

    def set_blackout(self, on: bool, now: float) -> None:
        if on == self._black_target:
            return
        self._black_from = self.blackout_level(now)
        self._black_since = now
        self._black_target = on

    def blackout_level(self, now: float) -> float:
        target = 1.0 if self._black_target else 0.0
        if self.blackout_fade <= 0:
            return target
        step = (now - self._black_since) / self.blackout_fade
        if self._black_target:
            return min(1.0, self._black_from + step)
        return max(0.0, self._black_from - step)

    # --- the frame ----------------------------------------------------------
    def update(self, now: float, beat: BeatInfo | None = None, wall: float | None = None) -> FramePlan:
        """The plan at show time ``now``; the blackout fades on ``wall`` time, so it works while the show is frozen."""
        if self.incoming is not None and now - self._started_at >= self._duration:
            self._finish_transition(now)
        if self.incoming is None and self._ready and self._due(now) and self._on_cue(beat):
            self.incoming = self._ready.popleft()
            self._started_at = now
            self._duration = self._length(beat)
            self._skip = False
            if self._duration <= 0:
                self._finish_transition(now)
        progress = 0.0
        if self.incoming is not None:
            progress = min(1.0, max(0.0, (now - self._started_at) / self._duration))
        retired = tuple(self._retired)
        self._retired.clear()
        return FramePlan(self.current, self.incoming, progress, self.blackout_level(now if wall is None else wall),
                         retired)

    def _synced(self, beat: BeatInfo | None) -> bool:
        return self.transition_on != "time" and beat is not None and beat.period > 0

    def _on_cue(self, beat: BeatInfo | None) -> bool:
        """Time mode, no confident tempo, or the VJ said now: go. Otherwise wait for the beat (or bar)."""
        if self._skip or self.current is None or not self._synced(beat):
            return True
        assert beat is not None
        if not beat.beat:
            return False
        if self.transition_on == "bar":
            return beat.bar_beat == 1 if beat.bar_beat else beat.count % (4 * self.every) == 0
        return beat.count % self.every == 0

    def _length(self, beat: BeatInfo | None) -> float:
        """In beat mode a transition lasts whole beats, so the new image lands on a beat too."""
        if not self._synced(beat) or self.transition <= 0:
            return self.transition
        assert beat is not None
        return max(1, round(self.transition / beat.period)) * beat.period

    def _due(self, now: float) -> bool:
        if self.current is not None and self.current.id == self.pinned and not self._skip:
            return False
        return self.current is None or self._skip or now - self._shown_at >= self.hold

    def _finish_transition(self, now: float) -> None:
        if self.current is not None:
            self._retired.append(self.current)
        self.current = self.incoming
        self.incoming = None
        self._shown_at = now
