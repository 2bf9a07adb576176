"""The command line as users and scripts meet it: exit codes, headless runs, signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from engine.cli import build_parser, overrides_from_args, parse_size
from engine.errors import ConfigError
from tests.engine_process import EngineProcess, run_engine
from tests.fakes import HEADLESS_ENV, assert_not_uniform


def test_headless_snapshot_writes_the_last_frame(tmp_path: Path) -> None:
    """--headless --frames N --snapshot writes a PNG of --size and exits 0."""
    rc, out = run_engine(["--headless", "--frames", "5", "--size", "640x360", "--snapshot", "shot.png",
                          "--set", 'server.public_url="http://10.1.2.3:3000"'], tmp_path, HEADLESS_ENV)
    assert rc == 0, out
    img = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB"))
    assert img.shape == (360, 640, 3)
    assert_not_uniform(img)
    assert [r.text for r in zxingcpp.read_barcodes(img)] == ["http://10.1.2.3:3000"]


def test_missing_config_file_is_a_note_not_an_error(tmp_path: Path) -> None:
    """Without config.toml the engine runs on defaults and says so."""
    rc, out = run_engine(["--headless", "--frames", "1"], tmp_path, HEADLESS_ENV)
    assert rc == 0, out
    assert "no config file at config.toml: using the defaults" in out


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        ("[window]\nwidth = 10\n", [], "config error: [window] width: got 10, expected an integer from 64"),
        ("[show]\nfitt = 1\n", [], "config error: [show] fitt: unknown key"),
        ("", ["--size", "big"], "config error: --size: got 'big', expected WIDTHxHEIGHT"),
        ("", ["--set", "window.fps=-3"], "config error: [window] fps: got -3"),
        ("", ["--port", "70000"], "config error: [server] port: got 70000"),
        ("", ["--frames", "0"], "config error: --frames: got 0, expected a positive integer"),
        ("", ["--no-such-flag"], "error: unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, toml: str, args: list[str], expected: str) -> None:
    """Bad config or flags: exit code 2 and a single line naming the problem."""
    (tmp_path / "config.toml").write_text(toml)
    rc, out = run_engine(["--headless", "--frames", "1", *args], tmp_path, HEADLESS_ENV)
    assert rc == 2
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), out


def test_config_flag_reads_another_file(tmp_path: Path) -> None:
    """--config PATH is the file that counts."""
    (tmp_path / "other.toml").write_text("[window]\nwidth = 5\n")
    rc, out = run_engine(["--config", "other.toml", "--headless", "--frames", "1"], tmp_path, HEADLESS_ENV)
    assert rc == 2 and "[window] width" in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_running_show_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    """Without --frames the show runs until SIGTERM/SIGINT, then exits 0."""
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30"], tmp_path, HEADLESS_ENV)
    try:
        p.wait_for(r"headless: 320x180 .* 30 fps")
        p.proc.send_signal(sig)
        assert p.wait(20) == 0, p.output
        assert "show stopped" in p.output
        assert "Traceback" not in p.output
    finally:
        p.kill()


def test_sigterm_to_the_whole_group_stops_without_a_restart(tmp_path: Path) -> None:
    """systemd (or a closed terminal) signals every process: the backstage child waits for the show's word,
    so the show exits 0 without taking the child's end for a crash."""
    p = EngineProcess(["--headless", "--size", "320x180", "--fps", "30"], tmp_path, HEADLESS_ENV)
    try:
        p.wait_for(r"headless: 320x180 .* 30 fps")
        children = [int(pid) for task in Path(f"/proc/{p.proc.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
        assert children, "no backstage process"
        for child in children:  # the children first: the order in which the race was lost
            os.kill(child, signal.SIGTERM)
        p.proc.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0, p.output
        assert "show stopped" in p.output
        assert "restarting" not in p.output and "Traceback" not in p.output, p.output
    finally:
        p.kill()


def test_no_display_falls_back_to_headless(tmp_path: Path) -> None:
    """On a machine with no display the show still starts, headless, and says why."""
    rc, out = run_engine(["--frames", "2"], tmp_path, HEADLESS_ENV)
    assert rc == 0, out
    assert "no display found" in out


def test_parse_size() -> None:
    """WxH in either case, spaces tolerated."""
    assert parse_size("1920x1080") == (1920, 1080)
    assert parse_size(" 800 X 600 ") == (800, 600)
    with pytest.raises(ConfigError, match="--size"):
        parse_size("1920")


def test_named_flags_beat_set() -> None:
    """A named flag wins over --set for the same key."""
    args = build_parser().parse_args(["--set", "window.width=100", "--size", "640x360", "--fullscreen"])
    o = overrides_from_args(args)
    assert o["window.width"] == 640 and o["window.height"] == 360 and o["window.fullscreen"] is True


def test_unwritable_output_folder_is_a_clear_startup_error(tmp_path: Path) -> None:
    """--output under a regular file: exit 1 with one line naming the folder, before any window."""
    (tmp_path / "afile").write_text("x")
    rc, out = run_engine(["--headless", "--frames", "1", "--output", str(tmp_path / "afile" / "out")],
                         tmp_path, HEADLESS_ENV)
    assert rc == 1
    assert "error: cannot use show folder" in out and str(tmp_path / "afile") in out
    assert "Traceback" not in out


def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    """Another program on the audience port: exit 1 saying so, and how to pick another."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, out = run_engine(["--headless", "--frames", "1", "--port", str(port), "--set", 'server.host="127.0.0.1"'],
                             tmp_path, HEADLESS_ENV)
    assert rc == 1 and f"cannot listen on 127.0.0.1:{port}" in out and "--port" in out
    assert "Traceback" not in out


def test_check_shaders_help_is_a_usage_not_a_file(tmp_path: Path) -> None:
    """check-shaders --help prints its usage and exits 0 (it once looked for a file named --help)."""
    rc, out = run_engine(["check-shaders", "--help"], tmp_path)
    assert rc == 0, out
    assert out.startswith("usage: python -m engine check-shaders [-h] PATH...")
    assert "FAIL --help" not in out and "no shader files" not in out


@pytest.mark.parametrize(("args", "expected"), [
    (["--frobnicate", "x.fs"], "error: unrecognized arguments: --frobnicate"),
    ([], "error: expected at least one PATH"),
])
def test_check_shaders_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    """An unknown flag, or no path at all: exit code 2 and one line."""
    rc, out = run_engine(["check-shaders", *args], tmp_path)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(expected), out
