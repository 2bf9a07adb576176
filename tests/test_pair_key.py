"""P on the show machine: a one-time pairing code for the control page, printed on the console and nowhere else."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.commands import Action, command_for_key
from tests.engine_process import EngineProcess
from tests.test_backstage_process import make
from tests.test_vj_server import log_in
from tests.xwindow import XServer, find_window, press, start_xvfb

CODE = re.compile(r"VJ pairing code: (\S+) at (http://\S+/vj)")


@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = start_xvfb()
    yield server
    server.stop()


def test_p_is_the_pair_key() -> None:
    """P asks for a pairing code, from the keyboard."""
    cmd = command_for_key("p")
    assert cmd is not None and cmd.action is Action.PAIR and cmd.source == "keyboard"


def test_a_code_made_in_the_backstage_process_logs_in(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """pair() crosses the bridge; the code the child prints on the console opens the control page."""
    bp = make(tmp_path)
    bp.start()
    try:
        bp.pair()
        err = ""
        deadline = time.monotonic() + 20
        while (found := CODE.search(err)) is None:
            assert time.monotonic() < deadline, f"no pairing code on the console:\n{err}"
            time.sleep(0.05)
            err += capfd.readouterr().err
        code, url = found.groups()
        assert url == bp.vj_url
        log_in(f"http://127.0.0.1:{bp.port}", code, "code")
    finally:
        bp.stop()


def test_p_in_the_show_window_prints_a_code_on_the_console(xserver: XServer, tmp_path: Path) -> None:
    """The key on the projector's window: a code on the console, with the page's address."""
    p = EngineProcess(["--size", "320x180", "--fps", "30"], tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        press(xserver, find_window(xserver, "Stagecraft"), "p")
        line = p.wait_for("VJ pairing code: ")
        found = CODE.search(line)
        assert found is not None and "token" not in line, line
    finally:
        p.kill()
