"""Causal beat tracking that predicts the next beat, with manual tempo lock, nudge and resync.

Onset strength in, one hop at a time; beat events out, each fired *before* its beat sounds.

The model is a bar-pointer hidden Markov model (Whiteley et al. 2006; Krebs, Böck and Widmer
2015, as in madmom's online tracker) run forward only, driven by onset strength instead of a
neural network's beat activation:

- a state is (beat period in hops, hops since the last beat). Every hop the position advances
  by one; at the end of a period it wraps to 0 (a beat) and may change period, with probability
  ``exp(-lambda * (|ratio - 1| - 1 hop))`` so that tempo glides instead of jumping (one hop of
  change is free: it is the period's rounding), plus a small chance of a jump to any tempo;
- each hop's onset strength, normalized by its running mean, rewards the states that put a beat
  near this hop (a Gaussian of ``beat_width`` seconds) and penalizes those that put one on a
  quiet hop. The reward is zero-mean over a period and grows with the period (``period_scaling``
  just under 1), so a hypothesis gains for *where* it puts beats, not for how many it puts:
  without that, double tempo always wins on music with eighth notes;
- every ``salience_every`` hops the tempo states are also weighted by the autocorrelation
  salience of the last 6 s (``tempo.py``), which carries the 120 bpm prior.

The forward posterior is the belief *now*. Its most likely state says in how many hops the next
beat falls; when that beat would land before the next hop arrives (minus the configured input
latency), it is committed and fired with its predicted time. Committed beats are never taken
back: cutting a stream short cannot change the beats before the cut. When the belief jumps
past a beat it did not commit (a phase correction), the beat fires late, at once, if that is
still within ``late_hops`` of it in the room; ``BeatEvent.predicted`` tells the two apart.

After each fired beat the hops around it are scored. Two beats in a row that find no onset
while the music goes on mean the tempo changed (a new song): the belief is rebuilt from the
last two seconds of onsets (``_check_lost``), so the tracker is back within four beats instead
of the several seconds its inertia would take.

Confidence is how periodic the onsets of the last seconds are (``TempoSalience.periodicity``),
plus a little for how much the recent beats stood out. Silence and noise keep it under about 0.15;
no beat fires while it is under ``TrackerConfig.confidence_on`` (0.2) and ``bpm`` reads 0.

Times are *stream time*: seconds of audio consumed, the sound that is in the room at that
moment. With ``latency`` L (seconds between the sound in the room and its samples arriving),
the room is at ``now + L`` when a hop is processed, so a beat at time T fires while processing
audio up to ``T - L``.

Not thread-safe: call the controls (``lock_tempo``, ``nudge``, ``resync``) from the thread that
calls ``step`` (the audio thread), e.g. through a queue it drains before each block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from engine.audio.tempo import TempoSalience


@dataclass(frozen=True)
class TrackerConfig:
    """Tuned on the 20 dev clips (see bench/beats.py); the comments say what each one trades."""

    bpm_min: float = 60.0
    bpm_max: float = 200.0
    transition_lambda: float = 80.0  # tempo inertia: higher holds tempo through fills, adapts slower
    rounding_slack: float = 1.0  # hops of period change per beat that cost nothing
    tempo_jump: float = 1e-3  # chance per beat of a jump to any tempo (a new song)
    half_penalty: float = 0.2  # tempo salience lost per unit of autocorrelation at half the period
    evidence: float = 1.0  # weight of one hop's onset strength in the belief
    period_scaling: float = 0.9  # 1: evidence per beat grows with the period, so no tempo gains by beat count
    beat_width: float = 0.015  # s: how precisely an onset must fall on a beat to count for it
    contrast_clip: float = 4.0  # an onset at N times the running mean counts at most this much
    norm_seconds: float = 2.0  # time constant of the running mean that onsets are measured against
    salience_weight: float = 0.5  # exponent of the autocorrelation salience per update
    salience_seconds: float = 6.0  # onset history the tempo salience reads
    salience_every: int = 8  # hops between two salience updates (CPU)
    refractory: float = 0.75  # fraction of a period within which a second beat never fires
    late_hops: int = 2  # a missed beat up to this many hops ago still fires, late
    offset: float = 0.0  # s added to every predicted beat time (calibration)
    misses_to_reset: int = 2  # consecutive beats on nothing, while onsets go on, that mean a new tempo
    miss_level: float = 0.5  # a beat misses when no onset near it reaches this share of a typical hit
    reset_keep_old: float = 0.5  # weight of the old belief against the prior when rebuilding
    reset_keep: float = 2.0  # s of onset history the belief is rebuilt from and the salience keeps on a reset
    quiet_seconds: float = 1.0  # this long without any onset (digital silence, a held tone) ends confidence
    confidence_on: float = 0.2  # beats fire and bpm shows from this confidence up...
    confidence_off: float = 0.15  # ...until it drops under this one (hysteresis)
    periodicity_floor: float = 0.04  # periodicity of noise's onsets (tempo.py): confidence 0...
    periodicity_span: float = 0.12  # ...rising to 1 this much above it
    contrast_weight: float = 0.05  # confidence added per unit of on-beat onset contrast
    confidence_beats: float = 6.0  # beats the confidence averages over
    bar_beats: int = 4  # beats per bar for the bar counter
    # The downbeat's bass must beat every other beat's by this factor. Off (inf) by default: on
    # the dev clips the bass cue labels beats at chance (bench/beats.py); fine for a steady kick
    # on the one, as in a click-and-kick rehearsal track.
    downbeat_margin: float = math.inf


@dataclass(frozen=True)
class BeatEvent:
    """A fired beat: its time in stream time, its place in the bar (1..4, 0 when unsure)."""

    time: float
    bar_beat: int
    confidence: float
    predicted: bool = True  # False: fired late, after the tracker found it had missed it


@dataclass(frozen=True)
class TempoLock:
    """A manual tempo: beats at ``anchor + k * period`` for every integer k."""

    period: float
    anchor: float

    @property
    def bpm(self) -> float:
        return 60.0 / self.period

    def next_after(self, t: float) -> float:
        """The first grid beat strictly after ``t``."""
        return self.anchor + (math.floor((t - self.anchor) / self.period) + 1) * self.period


class _Pending:
    """A fired beat waiting for the hops around it, to score how well it hit."""

    __slots__ = ("hop", "index", "period_hops", "predicted")

    def __init__(self, hop: int, index: int, period_hops: int, predicted: bool) -> None:
        self.hop = hop
        self.index = index
        self.period_hops = period_hops
        self.predicted = predicted


class BeatTracker:
    """The tracker's whole state; ``step()`` once per hop with that hop's onset strength."""

    def __init__(self, frame_rate: float, latency: float = 0.0, config: TrackerConfig | None = None) -> None:
        cfg = config or TrackerConfig()
        if latency < 0:
            raise ValueError(f"latency must be >= 0 s, got {latency}")
        self.config = cfg
        self.frame_rate = frame_rate
        self.latency = latency
        fps = frame_rate
        self.periods = np.arange(round(60.0 * fps / cfg.bpm_max), round(60.0 * fps / cfg.bpm_min) + 1)
        periods = self.periods
        self._starts = np.concatenate([[0], np.cumsum(periods)[:-1]])
        self._ends = self._starts + periods - 1
        block = np.repeat(np.arange(len(periods)), periods)
        self._period_of = periods[block]
        self._phase = np.arange(int(periods.sum())) - self._starts[block]
        # Reward of a beat-like hop for each state: a Gaussian around the state's beat, zero-mean
        # over its period and scaled by the period (module docstring).
        dist = np.minimum(self._phase, self._period_of - self._phase) / fps
        kernel = np.exp(-0.5 * (dist / cfg.beat_width) ** 2)
        kernel -= (np.bincount(block, kernel) / periods)[block]
        self._kernel = kernel * (self._period_of / (0.5 * fps)) ** cfg.period_scaling * cfg.evidence
        self._weight = np.empty_like(self._kernel)  # a hop's evidence, reused every hop
        ratio = periods[None, :] / periods[:, None]
        # A change of one hop is the period's rounding, not a change of tempo: at 180 bpm the
        # true period falls between 28 and 29 hops and the tracker must alternate freely, or it
        # would rather take 90 bpm, whose 57 hops fit better.
        slack = cfg.rounding_slack / periods[:, None]
        trans = np.exp(-cfg.transition_lambda * np.maximum(np.abs(ratio - 1.0) - slack, 0.0))
        trans /= trans.sum(axis=1, keepdims=True)
        self._salience = TempoSalience(
            periods, fps, cfg.salience_seconds, update_every=cfg.salience_every, half_penalty=cfg.half_penalty
        )
        # Now and then music does jump: a new song, a half-time bridge. A small chance of leaving
        # any beat for any tempo (by the prior) lets strong new evidence take over within a few
        # beats instead of never, since a glide of 20% or an octave costs exp(-20) or worse.
        jump = self._salience.prior / self._salience.prior.sum()
        trans = (1.0 - cfg.tempo_jump) * trans + cfg.tempo_jump * jump[None, :]
        self._transition = trans / trans.sum(axis=1, keepdims=True)
        self._tempo_salience = np.ones(len(periods))
        self._belief = np.repeat(self._salience.prior / periods, periods)
        self._belief /= self._belief.sum()
        self._mean_decay = math.exp(-1.0 / (cfg.norm_seconds * fps))
        self._mean = 0.0
        self._low_mean = 0.0
        # Recent normalized onsets: beat scoring looks back a period, a reset rebuilds from them.
        self._history = np.zeros(max(2 * int(periods.max()), round(cfg.reset_keep * fps)) + 8)
        self._low_history = np.zeros_like(self._history)
        self._ratio_history = np.zeros_like(self._history)
        self.hops = 0
        self._lock: TempoLock | None = None
        self._last_beat = -math.inf
        self._recent: list[float] = []  # the last few fired beat times
        self._recent_period: float | None = None  # their median interval when they agree (``period``)
        self._beat_index = 0
        self._pending: list[_Pending] = []
        self._quiet = 0  # hops in a row without any onset strength
        self._misses = 0
        self._on_level = 0.0  # typical contrast on a beat that hit
        self.resets = 0  # times the tracker started over after losing the beat
        self._contrast = 0.0
        self._confident = False
        self._bar = np.zeros(cfg.bar_beats)
        self._bar_seen = 0
        # The current belief's reading, refreshed each hop.
        self._map_period = int(periods[len(periods) // 2])
        self._map_phase = 0
        self._next_beat = math.inf

    # --- reading -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Stream time of the audio consumed so far."""
        return self.hops / self.frame_rate

    @property
    def locked(self) -> TempoLock | None:
        return self._lock

    @property
    def period(self) -> float:
        """Seconds per beat of the current tempo (locked or tracked).

        Tracking, it is the median of the last fired beats' intervals when they agree: the most
        likely state alone can flicker to half tempo for a hop or two without firing any beat
        there, and a display should not.
        """
        if self._lock:
            return self._lock.period
        if self._recent_period is not None:
            return self._recent_period
        return self._map_period / self.frame_rate

    @property
    def confidence(self) -> float:
        """0..1: 1 when locked; tracking, how periodic the last seconds' onsets are (plus a little
        for how clearly the recent beats stood out), 0 after a second without any onset."""
        if self._lock:
            return 1.0
        cfg = self.config
        if self._quiet >= cfg.quiet_seconds * self.frame_rate:
            return 0.0
        periodic = (self._salience.periodicity - cfg.periodicity_floor) / cfg.periodicity_span
        return float(min(1.0, max(0.0, periodic + cfg.contrast_weight * max(self._contrast, 0.0))))

    @property
    def confident(self) -> bool:
        """Whether beats fire and tempo shows (hysteresis between confidence_off and confidence_on)."""
        return self._lock is not None or self._confident

    @property
    def bpm(self) -> float:
        """Current tempo, 0 when unsure."""
        return 60.0 / self.period if self.confident else 0.0

    @property
    def next_beat(self) -> float:
        """Predicted stream time of the next beat (inf when unsure)."""
        return self._next_beat if self.confident else math.inf

    @property
    def last_beat(self) -> float:
        """Stream time of the last fired beat (-inf before the first)."""
        return self._last_beat

    def bar_beat(self, index: int) -> int:
        """Place in the bar (1..bar_beats) of the beat with this running index, 0 when unsure.

        The downbeat is the slot whose beats carried the most bass onset over the last bars
        (kick drums land on the one). It is trusted only after two bars and when that slot
        stands out by ``downbeat_margin``, which it does not when the kick plays on 1 and 3 or
        on every beat: then this is 0.
        """
        n = self.config.bar_beats
        if self._bar_seen < 2 * n or math.isinf(self.config.downbeat_margin):
            return 0
        order = np.argsort(self._bar)
        top, second = self._bar[order[-1]], self._bar[order[-2]]
        if top <= 0 or second * self.config.downbeat_margin > top:
            return 0
        return (index - int(order[-1])) % n + 1

    # --- control (tap tempo, manual lock) ------------------------------------------------------

    def lock_tempo(self, bpm: float | None, phase_time: float | None = None) -> None:
        """Beat at ``bpm`` from now on; ``phase_time``: a time a beat falls on (default: keep the
        tracker's phase, or start now when it has none). ``None`` gives the tempo back to the tracker.
        """
        if bpm is None:
            self._lock = None
            return
        if not (20.0 <= bpm <= 400.0) or not math.isfinite(bpm):
            raise ValueError(f"bpm must be within 20..400, got {bpm}")
        if phase_time is None:
            if self._lock is not None:
                phase_time = self._lock.next_after(self.now + self.latency)
            elif self.confident and math.isfinite(self._next_beat):
                phase_time = self._next_beat
            else:
                phase_time = self.now + self.latency
        self._lock = TempoLock(60.0 / bpm, phase_time)

    def nudge(self, seconds: float) -> None:
        """Move the beat grid later by ``seconds`` (earlier when negative).

        Locked: the grid moves. Tracking: the belief itself is rotated, so the tracker keeps the
        new phase as long as the music does not contradict it (the fix for a tracker that sits
        on the offbeat: nudge it by half a beat).
        """
        if self._lock is not None:
            self._lock = TempoLock(self._lock.period, self._lock.anchor + seconds)
            return
        shift = round(seconds * self.frame_rate)
        if shift == 0:
            return
        belief = self._belief
        for start, period in zip(self._starts, self.periods, strict=True):
            block = belief[start : start + period]
            block[:] = np.roll(block, -shift)  # phase = hops since the beat: a later beat is fewer
        self._next_beat += shift / self.frame_rate

    def resync(self, beat_time: float) -> None:
        """A beat falls at ``beat_time`` (stream time): move the grid to the nearest such phase."""
        if self._lock is not None:
            self._lock = TempoLock(self._lock.period, beat_time)
            return
        if not math.isfinite(self._next_beat):
            return
        period = self._map_period / self.frame_rate
        nearest = self._next_beat + round((beat_time - self._next_beat) / period) * period
        self.nudge(beat_time - nearest)

    # --- the hop --------------------------------------------------------------------------

    def step(self, strength: float, low: float = 0.0) -> tuple[BeatEvent, ...]:
        """Advance one hop with its onset strength (all bands, bass bands); return beats fired."""
        cfg = self.config
        self.hops += 1
        hop = self.hops
        contrast = self._normalize(strength, low)
        self._advance(contrast)
        if hop % cfg.salience_every == 0:
            self._update_salience()
        self._score_pending()
        events: list[BeatEvent] = []
        if self._lock is not None:
            event = self._fire_locked()
        else:
            event = self._fire_tracked()
        if event is not None:
            events.append(event)
        return tuple(events)

    def _normalize(self, strength: float, low: float) -> float:
        cfg = self.config
        d = self._mean_decay
        self._mean = d * self._mean + (1 - d) * strength
        self._low_mean = d * self._low_mean + (1 - d) * low
        self._salience.push(strength)
        if strength <= 0.0 or self._mean <= 1e-9:
            contrast = 0.0  # silence or a steady tone: no evidence either way
            self._quiet += 1
            if self._quiet == round(cfg.quiet_seconds * self.frame_rate):
                # The music stopped: no flywheel through a second of nothing, start afresh.
                self._salience.clear_average()
                self._contrast = 0.0
                self._confident = False
        else:
            self._quiet = 0
            contrast = min(strength / self._mean, cfg.contrast_clip) - 1.0
        # Unclipped: a kick stands several times above a snare's low body, and that is the point.
        low_contrast = low / self._low_mean if self._low_mean > 1e-9 else 0.0
        i = self.hops % len(self._history)
        self._history[i] = contrast
        # Unclipped, so that a loud kick stands out from a hi-hat when checking for a lost beat.
        self._ratio_history[i] = strength / self._mean if self._mean > 1e-9 else 0.0
        self._low_history[i] = low_contrast
        return contrast

    def _propagate(self, contrast: float) -> None:
        """One hop of the forward filter: advance every state, weigh by the hop's onset contrast."""
        belief = self._belief
        wrapped = belief[self._ends] @ self._transition
        belief[1:] = belief[:-1].copy()
        belief[self._starts] = wrapped
        if contrast != 0.0:
            weight = self._weight
            np.multiply(self._kernel, contrast, out=weight)
            belief *= np.exp(weight, out=weight)
        total = belief.sum()
        if not math.isfinite(total) or total <= 0.0:
            belief[:] = 1.0 / len(belief)
        else:
            belief /= total

    def _advance(self, contrast: float) -> None:
        self._propagate(contrast)
        best = int(np.argmax(self._belief))
        self._map_period = int(self._period_of[best])
        to_beat = self._map_period - int(self._phase[best])  # hops until the next beat, 1..period
        self._map_phase = int(self._phase[best])
        self._next_beat = self.now + (to_beat - 0.5) / self.frame_rate + self.config.offset

    def _update_salience(self) -> None:
        salience = self._salience.salience()
        if salience is None:
            return
        self._tempo_salience = salience
        self._belief *= np.repeat(salience**self.config.salience_weight, self.periods)
        self._belief /= self._belief.sum()

    def _fire_tracked(self) -> BeatEvent | None:
        cfg = self.config
        fps = self.frame_rate
        period = self._map_period / fps
        now = self.now
        beat = self._next_beat
        if beat - self.latency < now + 1.0 / fps and beat - self._last_beat > cfg.refractory * period:
            return self._fire(beat, self.hops + self._map_period - self._map_phase, predicted=True)
        # A beat the belief says just passed unfired: fire it now if that is still close to it in
        # the room (with latency compensation the room is already ``latency`` past ``now``).
        missed = now - (self._map_phase + 0.5) / fps + cfg.offset
        late = now + self.latency - missed
        if late <= (cfg.late_hops + 0.5) / fps and missed - self._last_beat > cfg.refractory * period:
            return self._fire(now + self.latency, self.hops - self._map_phase, predicted=False)
        return None

    def _fire_locked(self) -> BeatEvent | None:
        lock = self._lock
        assert lock is not None
        now = self.now
        beat = lock.next_after(max(self._last_beat + 0.5 * lock.period, now + self.latency - 1.0 / self.frame_rate))
        self._next_beat = beat
        if beat - self.latency < now + 1.0 / self.frame_rate:
            return self._fire(beat, self.hops + round((beat - now) * self.frame_rate + 0.5), predicted=True)
        return None

    def _fire(self, time: float, hop: int, predicted: bool) -> BeatEvent | None:
        """Commit a beat at ``time``; ``hop``: the hop whose onset it is, scored once the hops around it are in."""
        self._last_beat = time
        self._recent = [*self._recent[-4:], time]
        self._recent_period = _steady_interval(self._recent)
        index = self._beat_index
        self._beat_index += 1
        self._pending.append(_Pending(hop, index, self._map_period, predicted))
        if not self.confident:
            return None
        return BeatEvent(time, self.bar_beat(index), self.confidence, predicted)

    def _check_lost(self, p: _Pending) -> None:
        """Count beats that missed the music while it went on; after a few, start over.

        The belief and the 6 s of autocorrelation are the tracker's inertia: through a fill they
        hold the beat, but after a real change of tempo they would keep it for several seconds.
        A beat misses when no hop within two of it reaches ``miss_level`` of a typical hit while
        one in the period before it did; a late beat misses too. After ``misses_to_reset`` in a
        row the belief is rebuilt from the prior and the last ``reset_keep`` seconds of onsets,
        and the salience forgets the rest, so the new tempo wins within a few beats.
        """
        cfg = self.config
        if cfg.misses_to_reset <= 0:
            return
        size = len(self._history)
        level = cfg.miss_level * self._on_level
        on_max = float(self._ratio_history[[(p.hop + k) % size for k in range(-2, 3)]].max())
        before = [(p.hop - k) % size for k in range(3, p.period_hops - 2)]
        active = bool(before) and float(self._ratio_history[before].max()) > level
        if active and (not p.predicted or on_max < level):
            self._misses += 1
        else:
            self._misses = 0
            self._on_level += 0.2 * (on_max - self._on_level)
        if self._misses >= cfg.misses_to_reset:
            self._misses = 0
            self.resets += 1
            self._refilter(cfg.reset_keep)
            self._salience.forget(cfg.reset_keep)

    def _refilter(self, seconds: float) -> None:
        """Start the belief over from the prior and run it through the last ``seconds`` of onsets.

        A few milliseconds once per reset: the new belief already knows the new tempo's last
        beats instead of waiting for the next ones.
        """
        size = len(self._history)
        hops = min(round(seconds * self.frame_rate), size - 1, self.hops)
        prior = np.repeat(self._salience.prior / self.periods, self.periods)
        # The old belief, wound back to where it was ``hops`` ago (each tempo's phases turn back by
        # as many hops), competes with the prior: a false alarm then costs little.
        old = self._belief.copy()
        for start, period in zip(self._starts, self.periods, strict=True):
            block = old[start : start + period]
            block[:] = np.roll(block, -(hops % period))
        keep = self.config.reset_keep_old
        self._belief = (1.0 - keep) * prior / prior.sum() + keep * old
        for hop in range(self.hops - hops + 1, self.hops + 1):
            self._propagate(float(self._history[hop % size]))

    def _score_pending(self) -> None:
        """Score fired beats whose surroundings are now known: contrast and bass for the bar counter."""
        cfg = self.config
        size = len(self._history)
        while self._pending and self.hops >= self._pending[0].hop + 2:
            p = self._pending.pop(0)
            if self.hops - p.hop + p.period_hops // 2 + 2 >= size:
                continue  # too old to score (a long block of silence in between)
            on = [(p.hop + k) % size for k in range(-2, 3)]
            off = [(p.hop - p.period_hops // 2 + k) % size for k in range(-2, 3)]
            # A late beat is a prediction that failed: it scores nothing (and would otherwise score
            # high, since it fires on the very onset that revealed the miss).
            hit = float(self._history[on].max() - self._history[off].max()) if p.predicted else 0.0
            w = 1.0 / cfg.confidence_beats
            self._contrast = (1 - w) * self._contrast + w * hit
            self._check_lost(p)
            slot = p.index % cfg.bar_beats
            self._bar[slot] += 0.25 * (float(self._low_history[on].max()) - self._bar[slot])
            self._bar_seen += 1
        conf = self.confidence
        if self._confident and conf < cfg.confidence_off:
            self._confident = False
        elif not self._confident and conf >= cfg.confidence_on:
            self._confident = True


def _steady_interval(times: list[float]) -> float | None:
    """The median interval of ``times`` when there are 4 or more and no interval is 1.2 times
    another; else None. Computed once per fired beat: ``period`` is read on every block."""
    if len(times) < 4:
        return None
    intervals = sorted(b - a for a, b in pairwise(times))
    if intervals[-1] >= 1.2 * intervals[0]:
        return None
    n = len(intervals)
    return intervals[n // 2] if n % 2 else 0.5 * (intervals[n // 2 - 1] + intervals[n // 2])
