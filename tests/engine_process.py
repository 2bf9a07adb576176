"""Run ``python -m engine`` as a real process and watch what it logs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port below the ephemeral range (so it never collides with client sockets)."""
    for port in range(21000 + os.getpid() % 500, 29000, 7):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class EngineProcess:
    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, module: str = "engine") -> None:
        """``module``: what ``python -m`` runs (a test's launcher that wraps the engine's main)."""
        full_env = {**(env or os.environ), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        if module == "engine" and "--port" not in args and (not args or args[0] not in ("check-shaders", "generate")):
            # Never the default 3000: a show (or another test run) may be using it.
            args = [*args, "--port", str(free_port())]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        """Block until a logged line matches ``pattern``; fail with the log if it never does."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r}; output was:\n{self.output}")
                self._changed.wait(min(left, 0.2))

    def wait(self, timeout: float = 30.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"engine did not exit within {timeout:.0f} s; output:\n{self.output}"
            ) from None
        self._reader.join(5)
        return rc

    def kill(self) -> None:
        """Make sure the process is gone and its pipe closed (call in a finally)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_engine(args: list[str], cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 60.0) -> tuple[int, str]:
    """Run to completion; (exit code, combined output)."""
    p = EngineProcess(args, cwd, env)
    try:
        return p.wait(timeout), p.output
    finally:
        p.kill()
