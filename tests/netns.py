"""Run Python in a loopback-only network namespace, for tests that open ports or multicast (NDI).

An NDI sender listens on 0.0.0.0 and announces itself by multicast: on the test machine's own network it
would be seen by (and could collide with) anything on the LAN. ``unshare -n`` gives the child a network of
its own holding only ``lo``. mDNS does not work there, so NDI is told to look on 127.0.0.1 through an
``ndi-config.v1.json`` in a folder named by ``NDI_CONFIG_DIR``. Where the namespace cannot be made (no
``unshare``, not permitted), the test is skipped with the reason.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NDI_CONFIG = {"ndi": {"networks": {"ips": "127.0.0.1"}}}
# $0 and $1 of the shell: the Python and the code, passed as arguments so that nothing needs quoting.
_SHELL = 'ip link set lo up && exec "$0" -c "$1"'


@functools.cache
def netns_problem() -> str | None:
    """Why a loopback-only namespace cannot be made here, or None when it can (asked once per session)."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    try:
        probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True,
                               timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`unshare -n` failed: {err}"
    if probe.returncode != 0:
        return f"`unshare -n` is not permitted here: {probe.stderr.strip() or f'exit {probe.returncode}'}"
    return None


def run_in_netns(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with this Python inside a fresh loopback-only namespace, the repository importable and
    NDI pointed at 127.0.0.1; ``env`` adds to (or overrides) the environment. Skips the test when no namespace
    can be made; a child still running after ``timeout`` s raises ``subprocess.TimeoutExpired``."""
    problem = netns_problem()
    if problem is not None:
        pytest.skip(f"needs a loopback-only network namespace: {problem}")
    with tempfile.TemporaryDirectory(prefix="ndi-config-") as config_dir:
        (Path(config_dir) / "ndi-config.v1.json").write_text(json.dumps(NDI_CONFIG))
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        child_env = {**os.environ, "PYTHONPATH": path, "NDI_CONFIG_DIR": config_dir, **(env or {})}
        return subprocess.run(["unshare", "-n", "sh", "-c", _SHELL, sys.executable, code], cwd=REPO, env=child_env,
                              capture_output=True, text=True, timeout=timeout, check=False)


def run_json_in_netns(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Like ``run_in_netns``, for code whose last line of output is JSON: that value. Fails the test, with the
    child's output, when it exits non-zero or prints no JSON."""
    done = run_in_netns(code, env, timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(f"child exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}",
                    pytrace=False)
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"child printed no JSON last\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}", pytrace=False)
