"""Ableton Link sync: the follower's logic, and a real Link session inside a loopback-only network namespace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from engine.audio.link import LinkFollower
from tests.engine_process import ROOT


class Hand:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def lock_bpm(self, bpm: float | None) -> None:
        self.calls.append(("lock", bpm))

    def resync(self, at: float | None = None) -> None:
        self.calls.append(("resync", at))


def test_no_peers_changes_nothing() -> None:
    """Alone in the session, the engine keeps following the music."""
    hand = Hand()
    LinkFollower(hand, clock=lambda: 10.0).update(0, 120.0, 3.5)
    assert hand.calls == []


def test_follows_tempo_and_puts_the_beat_where_it_fell() -> None:
    """With a peer: the tempo is locked, and each new beat resyncs at the moment it fell (not the poll)."""
    hand = Hand()
    f = LinkFollower(hand, clock=lambda: 10.0)
    f.update(1, 120.0, 7.25)  # a quarter beat (0.125 s) after beat 7
    assert hand.calls == [("lock", 120.0), ("resync", pytest.approx(9.875))]
    f.update(1, 120.0, 7.5)
    assert len(hand.calls) == 2  # same beat, same tempo: nothing new
    f.update(1, 126.0, 8.0)
    assert hand.calls[-2:] == [("lock", 126.0), ("resync", pytest.approx(10.0))]


def test_session_gone_hands_the_tempo_back() -> None:
    """When the last peer leaves, the lock is released."""
    hand = Hand()
    f = LinkFollower(hand, clock=lambda: 0.0)
    f.update(1, 120.0, 1.0)
    f.update(0, 120.0, 2.0)
    assert hand.calls[-1] == ("lock", None)


def test_real_link_session_in_a_loopback_only_namespace() -> None:
    """Two real Link peers (a DJ at 120 then 133 bpm, and the engine) in a namespace with only loopback."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        pytest.fail("unshare and ip (util-linux, iproute2) are needed to test Link without touching the network",
                    pytrace=False)
    flags = "-n" if os.geteuid() == 0 else "-rn"
    cmd = [unshare, flags, "sh", "-c", f"ip link set lo up && exec {sys.executable} {ROOT / 'tests' / 'link_probe.py'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    m = re.search(r"locks=\[(.*)\] resyncs=(\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    assert "133.0" in m.group(1) and int(m.group(2)) >= 2, out.stdout
