"""How fast the screen must move for the line to be served in time: the hold, and each phone's wait.

A prompt in line at place ``k`` reaches the screen after about ``k`` images, each on screen for the
hold plus the transition (generation runs ahead of the screen, so it hides behind them). To keep the
last of ``n`` waiting prompts under ``max_wait``, each image may stay ``max_wait / n`` seconds at most:
the hold shrinks toward ``hold_min`` as the line grows, and grows back to ``hold`` as it empties. Below
``hold_min`` the screen cannot go faster; the audience's queue cap (``[audience] max_queue``) is then
what keeps the wait bounded.
"""

from __future__ import annotations

from engine.config import ShowConfig


def paced_hold(line: int, show: ShowConfig) -> float:
    """The hold for ``line`` prompts waiting or being made: ``[show] hold`` while the line is short, less
    (down to ``hold_min``) when waiting ``hold`` per image would take the last past ``max_wait``."""
    if show.max_wait <= 0 or line <= 0:
        return show.hold
    slot = show.max_wait / line - show.transition
    return max(min(show.hold_min, show.hold), min(show.hold, slot))


def expected_wait(position: int, hold: float, show: ShowConfig) -> float:
    """Seconds until the prompt at ``position`` (1 = next) is on screen, at the current hold."""
    return max(0, position) * (hold + show.transition)


def images_per_minute(hold: float, show: ShowConfig) -> float:
    """How many images the screen shows a minute at this hold (what the line drains at)."""
    return 60.0 / max(0.1, hold + show.transition)
