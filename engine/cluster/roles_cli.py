"""``python -m engine intake`` and ``python -m engine generate``: the cluster's two roles without a screen.

(``python -m engine show`` is the show's own command line with the cluster joined: ``engine/cli.py``.)
Each loads ``config.toml`` like the show, takes the same ``--set KEY=VALUE`` overrides, and answers a bad
key with one line and exit code 2, an unreachable Redis with one line and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.errors import ConfigError
from engine.logs import setup_logging
from engine.usage import EXIT_USAGE, StrictParser, UsageError

ROLES = ("intake", "generate")


def build_role_parser(role: str) -> argparse.ArgumentParser:
    what = {"intake": "the audience's HTTP/WebSocket server, stateless: run as many as the crowd needs",
            "generate": "a generation worker: takes jobs from the show's stream, sends back images"}[role]
    p = StrictParser(prog=f"python -m engine {role}", description=f"Stagecraft {role}: {what} (docs/cluster.md).")
    p.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    p.add_argument("--redis", metavar="URL", help='Redis URL, e.g. redis://10.0.0.2:6379/0 ([cluster] redis)')
    p.add_argument("--show", metavar="NAME", help="the show (screen) this serves ([cluster] show)")
    if role == "intake":
        p.add_argument("--port", type=int, metavar="N", help="port for the phones ([server] port)")
    else:
        p.add_argument("--generator", choices=["auto", "local", "stability", "procedural"],
                       help="image backend ([generation] backend)")
        p.add_argument("--model", metavar="NAME|DIR", help="the local model: a preset name or a diffusers folder")
        p.add_argument("--stability-mock", action="store_true",
                       help="rehearsal: answer Stability requests from a loopback mock")
        p.add_argument("--mock-latency", type=float, default=2.0, metavar="S",
                       help="seconds the mock takes per image (default 2)")
        p.add_argument("--name", help="this worker's name in the job group (default host-pid); a worker started "
                       "again under its old name takes back its unfinished jobs at once")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help='override any config key, e.g. --set cluster.claim_after=600 (repeatable)')
    return p


def overrides(role: str, args: argparse.Namespace) -> dict[str, Any]:
    named = {"cluster.redis": args.redis, "cluster.show": args.show, "log.level": args.log_level}
    if role == "intake":
        named["server.port"] = args.port
    else:
        named["generation.backend"] = args.generator
        named["local.model"] = args.model
    return config_mod.command_line_overrides(args.set, named)


def main(role: str, argv: Sequence[str]) -> int:
    setup_logging("info")
    try:
        args = build_role_parser(role).parse_args(list(argv))
        cfg = config_mod.with_overrides(config_mod.load(args.config), overrides(role, args))
    except UsageError as err:
        print(f"error: {err} (see python -m engine {role} --help)", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(cfg.log.level)
    if role == "intake":
        from engine.cluster.intake import main as intake_main

        return intake_main(cfg)
    from engine.cluster.worker import main as worker_main

    with _mocked(cfg, args) as cfg:
        return worker_main(cfg, args.name)


@contextlib.contextmanager
def _mocked(cfg: config_mod.Config, args: argparse.Namespace) -> Iterator[config_mod.Config]:
    """A worker in rehearsal: the Stability backend answered by the loopback mock, as the show's --stability-mock."""
    if not getattr(args, "stability_mock", False):
        yield cfg
        return
    from engine.gen.mock_stability import rehearsal

    with rehearsal(cfg, args.mock_latency) as mocked:
        yield mocked
