"""The backstage process at the show's end: it stops when the show says so, and is never restarted then."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from engine.backstage.process import BackstageProcess
from tests.test_backstage_process import make


def child_pid(bp: BackstageProcess) -> int:
    assert bp._proc is not None and bp._proc.pid is not None
    return bp._proc.pid


def test_the_backstage_ignores_sigterm_and_stops_when_told(tmp_path: Path) -> None:
    """A SIGTERM sent to the group reaches the child too: it lives on until the show says stop."""
    bp = make(tmp_path)
    bp.start()
    try:
        os.kill(child_pid(bp), signal.SIGTERM)
        time.sleep(1.0)
        assert bp._proc is not None and bp._proc.is_alive() and bp.restarts == 0
    finally:
        bp.stop()
    assert bp._proc is not None and bp._proc.exitcode == 0


def test_a_backstage_that_dies_after_shutdown_began_is_not_restarted(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Once the show is stopping, the child's death is the end, not a crash: no restart, no error."""
    bp = make(tmp_path)
    bp.start()
    try:
        bp.begin_shutdown()
        os.kill(child_pid(bp), signal.SIGKILL)
        time.sleep(1.5)
        assert bp.restarts == 0
    finally:
        bp.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
