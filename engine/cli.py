"""Command line: parse, load config, start the show, map failures to exit codes.

Exit codes: 0 the show ended normally (closed, quit, signal, ``--frames`` done);
2 a usage or configuration error (one line naming the key); 1 anything else that
stopped the show from starting (no GL, no window), with one line saying why.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import __version__
from engine import config as config_mod
from engine.errors import ConfigError, EngineError
from engine.logs import setup_logging
from engine.usage import EXIT_USAGE, UsageError
from engine.usage import StrictParser as _Parser

log = logging.getLogger("engine")

EXIT_OK, EXIT_FAILURE = 0, 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m engine",
        description="Stagecraft: real-time visuals for live shows.",
        epilog="Also: python -m engine check-shaders PATH...  (parse, compile and draw each shader once); "
               "python -m engine devices  (list sound inputs); python -m engine beats FILE [--bpm]; "
               "python -m engine models list|pull NAME [--to DIR]  (local AI models); "
               "python -m engine show|intake|generate ...  (the cluster's roles over Redis: docs/cluster.md)",
    )
    p.add_argument("--version", action="version", version=f"stagecraft {__version__}")
    p.add_argument("--config", type=Path, help="config file (default ./config.toml)")
    p.add_argument("--fullscreen", action="store_true", default=None, help="start fullscreen")
    p.add_argument("--screen", type=int, metavar="N", help="monitor index for fullscreen")
    p.add_argument("--size", metavar="WxH", help="window size, or render size when headless")
    p.add_argument("--headless", action="store_true", help="render offscreen (EGL), no window")
    p.add_argument("--frames", type=int, metavar="N", help="quit after N frames")
    p.add_argument("--snapshot", type=Path, metavar="PNG", help="write the last frame to this PNG")
    p.add_argument("--fps", type=float, metavar="F",
                   help="frame rate cap (default window.fps; headless with --frames: unpaced)")
    p.add_argument("--port", type=int, metavar="N", help="audience server port")
    p.add_argument("--generator", choices=["auto", "local", "stability", "procedural"],
                   help="image backend (auto: local with a model and a GPU, else Stability with a key, else offline)")
    p.add_argument("--model", metavar="NAME|DIR", help="the local model: a preset name or a diffusers folder")
    p.add_argument("--dream", action="store_true", default=None, help="the live dream layer (needs the local model)")
    p.add_argument("--output", metavar="DIR", help="output folder for images and the journal")
    p.add_argument("--audio", metavar="DEVICE", help='sound input: "default", an index or part of a name')
    p.add_argument("--audio-file", metavar="FILE", help="play a WAV/FLAC/OGG file as the sound input (rehearsal)")
    p.add_argument("--link", action="store_true", default=None, help="follow an Ableton Link session's tempo")
    p.add_argument("--osc", action="store_true", default=None, help="listen for OSC control (see docs/osc.md)")
    p.add_argument("--midi", metavar="PORT", default=None,
                   help='MIDI input: "all", part of a port name, or "none" (MIDI learn on the control page)')
    p.add_argument("--vj-token", metavar="TOKEN", default=None,
                   help="the control page's token (8+ characters); default: a random one per show")
    p.add_argument("--stability-mock", action="store_true",
                   help="rehearse against a loopback mock of the Stability API (no key, no network)")
    p.add_argument("--mock-latency", type=float, default=2.0, metavar="S",
                   help="seconds each mock Stability answer takes (with --stability-mock)")
    p.add_argument("--fit", choices=["letterbox", "cover"], help="how images meet the screen's shape")
    p.add_argument("--effect", action="append", metavar="NAME",
                   help="effect in the chain, repeatable up to 3 (--effect none: no effect)")
    p.add_argument("--transition", metavar="NAME", help="transition: crossfade or a library name")
    p.add_argument("--hud", action="store_true", default=None, help="show the HUD at start")
    p.add_argument("--redis", metavar="URL", help="Redis URL for `python -m engine show` ([cluster] redis)")
    p.add_argument("--venue", metavar="FILE", help="venue profile for projection mapping (venue.toml)")
    p.add_argument("--ndi", metavar="NAME", help="send the program as this NDI source")
    p.add_argument("--virtualcam", action="store_true", default=None, help="send the program to a virtual camera")
    p.add_argument("--syphon", metavar="NAME", help="publish the program as this Syphon server (macOS)")
    p.add_argument("--spout", metavar="NAME", help="publish the program as this Spout sender (Windows)")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="FILE",
                   help="record the program from the start (to FILE, or a time-stamped file in the output folder)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set show.transition=1.5 (repeatable)")
    return p


def build_check_shaders_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m engine check-shaders",
        usage="%(prog)s [-h] PATH...",
        description="Lint shaders before a show: parse, compile and draw each one frame in a headless context. "
                    "One line per file (ok PATH, warn PATH: message, or FAIL PATH:LINE: message), then a count; "
                    "exit code 0 only if every file passes.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="a shader file, or a folder to search for them")
    return p


def check_shaders_paths(argv: Sequence[str]) -> list[str]:
    """The paths ``check-shaders`` was given; a UsageError for an unknown flag or none at all."""
    paths: list[str] = build_check_shaders_parser().parse_args(argv).paths
    if not paths:
        raise UsageError("expected at least one PATH")
    return paths


_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    m = _SIZE.match(text)
    if not m:
        raise ConfigError("--size", f"got {text!r}, expected WIDTHxHEIGHT like 1280x720")
    return int(m.group(1)), int(m.group(2))


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Named flags and ``--set`` pairs as ``{"section.key": value}``; named flags win."""
    named: dict[str, Any] = {}
    if args.size is not None:
        named["window.width"], named["window.height"] = parse_size(args.size)
    named |= {
        "window.fullscreen": args.fullscreen,
        "window.screen": args.screen,
        "window.fps": args.fps,
        "server.port": args.port,
        "generation.backend": args.generator,
        "local.model": args.model,
        "dream.enabled": args.dream,
        "store.output_dir": args.output,
        "audio.device": args.audio,
        "audio.file": args.audio_file,
        "audio.link": args.link,
        "osc.enabled": args.osc,
        "midi.input": args.midi,
        "vj.token": args.vj_token,
        "show.fit": args.fit,
        "shaders.effects": [e for e in args.effect if e != "none"] if args.effect else None,
        "shaders.transition": args.transition,
        "overlay.hud": args.hud,
        "show.venue": args.venue,
        "cluster.redis": args.redis,
        "output.ndi": args.ndi,
        "output.virtualcam": args.virtualcam,
        "output.syphon": args.syphon,
        "output.spout": args.spout,
        "record.enabled": True if args.record is not None else None,
        "record.file": args.record or None,
        "log.level": args.log_level,
    }
    return config_mod.command_line_overrides(args.set, named)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "check-shaders":
        try:
            paths = check_shaders_paths(argv[1:])
        except UsageError as err:
            print(f"error: {err} (see python -m engine check-shaders --help)", file=sys.stderr)
            return EXIT_USAGE
        setup_logging("warning")
        from engine.shaders.check import run as check_shaders

        return check_shaders(paths)
    if argv and argv[0] == "devices":
        from engine.audio.input import list_devices

        print(list_devices())
        return EXIT_OK
    if argv and argv[0] == "models":
        setup_logging("warning")
        from engine.gen.local.models_cli import main as models

        return models(argv[1:])
    if argv and argv[0] in ("intake", "generate"):  # the cluster's roles without a screen (docs/cluster.md)
        from engine.cluster.roles_cli import main as role_main

        return role_main(argv[0], argv[1:])
    show_role = bool(argv) and argv[0] == "show"  # the show joined to the cluster's Redis ([cluster] redis)
    if show_role:
        argv = argv[1:]
    if argv and argv[0] == "beats":
        setup_logging("warning")
        from engine.audio.beats_cli import main as beats

        return beats(argv[1:])
    setup_logging("info")
    try:
        args = build_parser().parse_args(argv)
        if args.frames is not None and args.frames < 1:
            raise ConfigError("--frames", f"got {args.frames}, expected a positive integer")
        cfg = config_mod.load(args.config)
        cfg = config_mod.with_overrides(cfg, overrides_from_args(args))
    except UsageError as err:
        print(f"error: {err} (see python -m engine --help)", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(cfg.log.level)
    if not show_role:
        if cfg.cluster.redis:
            log.info("[cluster] redis is set, but `python -m engine` runs all in one, without Redis; "
                     "`python -m engine show` joins the cluster")
            cfg = config_mod.with_overrides(cfg, {"cluster.redis": ""})
    elif not _cluster_reachable(cfg):
        return EXIT_FAILURE
    return run_show(cfg, args)


def _cluster_reachable(cfg: config_mod.Config) -> bool:
    """The show role's start-up check: Redis answers, or one line and exit code 1."""
    import asyncio

    from engine.cluster.link import ClusterError, close, connect

    async def check() -> None:
        await close(await connect(cfg.cluster.redis))

    try:
        asyncio.run(check())
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return False
    return True


def run_show(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    # Imported here so `--help` and config errors answer without loading GL.
    from engine import app
    from engine.net.lan import join_url
    from engine.show_options import ShowOptions

    headless = bool(args.headless)
    if not headless and not app.display_available():
        log.warning("no display found (DISPLAY is not set): running headless; use --headless to say so")
        headless = True
    fps = cfg.window.fps
    if headless and args.frames is not None and args.fps is None:
        fps = 0.0  # scripted runs go as fast as they can
    opts = ShowOptions(
        cfg=cfg,
        size=(cfg.window.width, cfg.window.height),
        fps=fps,
        join_url=join_url(cfg.server),
        frames=args.frames,
        snapshot=args.snapshot,
    )
    try:
        with contextlib.ExitStack() as stack:
            if args.stability_mock:
                from engine.gen.mock_stability import rehearsal

                opts.cfg = stack.enter_context(rehearsal(opts.cfg, args.mock_latency))
            app.run(opts, headless=headless)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
