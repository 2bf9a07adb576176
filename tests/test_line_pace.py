"""The line's pace: the hold that keeps the wait near max_wait, and each place's expected wait."""

from __future__ import annotations

import asyncio
import json
import queue
from types import SimpleNamespace

import pytest

from engine.commands import Action, Command
from engine.config import AudienceConfig, ShowConfig
from engine.contract import State
from engine.line_pace import expected_wait, images_per_minute, paced_hold
from engine.net.audience import Audience
from tests.fakes import direct_ledger

SHOW = ShowConfig(hold=8.0, hold_min=3.0, transition=2.0, max_wait=180.0)


def test_a_short_line_keeps_the_usual_hold() -> None:
    """Ten waiting at 10 s an image is 100 s, inside 180 s: nothing changes."""
    assert paced_hold(10, SHOW) == 8.0 and paced_hold(0, SHOW) == 8.0


def test_a_long_line_shortens_the_hold_to_meet_the_target() -> None:
    """Thirty waiting: 180 s / 30 = 6 s an image, so 4 s of hold after the 2 s transition."""
    assert paced_hold(30, SHOW) == pytest.approx(4.0)


def test_the_hold_never_goes_below_its_minimum() -> None:
    """A hundred waiting would need 0 s of hold: the screen stays at hold_min, its fastest pace."""
    assert paced_hold(100, SHOW) == 3.0


def test_max_wait_zero_means_a_fixed_hold() -> None:
    """With no target the hold is [show] hold whatever the line."""
    assert paced_hold(500, ShowConfig(hold=8.0, max_wait=0.0)) == 8.0


def test_expected_wait_counts_images_ahead() -> None:
    """Third in line at a 4 s hold and 2 s transitions: about 18 s; and the screen's pace a minute."""
    assert expected_wait(3, 4.0, SHOW) == pytest.approx(18.0) and images_per_minute(4.0, SHOW) == pytest.approx(10.0)


def test_the_backstage_tells_the_show_its_new_pace() -> None:
    """Forty prompts waiting: the pace chore sends the show a shorter hold, once."""
    from engine.backstage.chores import pace_the_line

    ledger = direct_ledger(Audience(AudienceConfig(cooldown=0.0, burst=50, max_pending_per_client=50)),
                           lambda _out: None)
    words = ["lantern", "whale", "forest", "comet", "violin", "desert", "glacier", "tiger"]
    for n in range(40):
        step = ledger.submit(f"phone-pace{n:04d}", f"10.0.{n}.1", f"a {words[n % 8]} made of {n} colours")
        assert step.outbox[0][1].state.value == "queued"
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
    server = SimpleNamespace(per_place=10.0)

    async def run() -> None:
        task = asyncio.create_task(pace_the_line(SHOW, ledger, commands, period=0.01, server=server))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(run())
    sent = commands.get_nowait()
    assert sent.action is Action.HOLD and sent.value == pytest.approx(3.0) and commands.empty()
    assert server.per_place == pytest.approx(5.0)  # what each waiting phone's wait is now counted in


def test_a_queued_phone_hears_its_expected_wait() -> None:
    """Third in line at 6 s an image: the status on the wire says about 18 s."""
    from engine.net.protocol import PromptStatus, status

    msg = json.loads(status(PromptStatus("p-1", "a whale", State.QUEUED, position=3), per_place=6.0))
    assert msg["position"] == 3 and msg["wait"] == 18
    waiting = json.loads(status(PromptStatus("p-2", "a whale", State.QUEUED), per_place=6.0))
    assert "wait" not in waiting
