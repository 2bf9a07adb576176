"""A private dummy JACK server for tests (no sound card needed): started, killed and started again by pid.

Its clients find it by name through the environment (``JACK_DEFAULT_SERVER``, and ``JACK_NO_START_SERVER``
so that none starts a server of its own); ``env`` is that environment. Without jackd the test fails, it is
not skipped: ``make test`` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

START_S = 10.0
STOP_S = 10.0


class JackServer:
    """``jackd -n NAME --no-realtime -d dummy``: the same name each start, its output in ``log_path``."""

    def __init__(self, name: str, log_path: Path, rate: int = 48000, period: int = 512) -> None:
        jackd = shutil.which("jackd")
        if jackd is None or shutil.which("jack_lsp") is None:
            pytest.fail("jackd/jack_lsp missing: `make test` installs the Debian package jackd2", pytrace=False)
        self.name = name
        self.log_path = log_path
        self.args = [jackd, "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate), "-p", str(period)]
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers ``jack_lsp``."""
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                         env=self.env)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"jackd exited with {self.proc.returncode}:\n{self.log()}")
            if self.answers():
                return
            time.sleep(0.05)
        pytest.fail(f"jackd did not answer within {START_S:g} s:\n{self.log()}")

    def answers(self) -> bool:
        return subprocess.run(["jack_lsp"], env=self.env, capture_output=True, check=False).returncode == 0

    def kill(self) -> None:
        """SIGKILL, as a crash would: its clients are left to notice."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then the files a killed server of this name left in /dev/shm. jackd waits 5 s for a client that
        vanished mid-cycle before it exits; killed meanwhile (after STOP_S), it would stay in JACK's registry of
        servers (8 at most for all users) until a server of the same name starts again."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for leftover in Path("/dev/shm").glob(f"jack*_{self.name}_*"):
            leftover.unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
