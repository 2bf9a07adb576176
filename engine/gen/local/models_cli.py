"""``python -m engine models list|pull``: which local models are on disk, and fetching a preset.

    python -m engine models list [--models-dir DIR]
        each preset (and tiny autoencoder): installed or not, its folder, its size on disk;
        then any other diffusers folder found in the models folder
    python -m engine models pull NAME [--to DIR] [--models-dir DIR]
        fetch a preset from the Hugging Face Hub into DIR (default <models_dir>/NAME), with progress
        bars; run it on a machine with internet, then carry the folder to the show machine

The models folder is ``[local] models_dir`` from ``--config`` (default ./config.toml) unless
``--models-dir`` says otherwise. Exit codes: 0 done; 1 an error (unknown preset, no network, no
huggingface_hub, a download that does not check out), one line on stderr; 2 a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from engine.config import load
from engine.errors import ConfigError
from engine.gen.local.folder import LocalModelError, inspect_model, inspect_tiny_vae, is_pipeline_folder, size_on_disk
from engine.gen.local.presets import PRESETS, TINY_VAES
from engine.gen.local.pull import pull
from engine.usage import EXIT_USAGE, UsageError
from engine.usage import StrictParser as _Parser

EXIT_OK, EXIT_ERROR = 0, 1
INSTALL_LOCAL = 'pip install -e ".[local]"'




def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--config", type=Path, help="config file for [local] models_dir (default ./config.toml)")
    common.add_argument("--models-dir", metavar="DIR", help="the models folder (default [local] models_dir)")
    p = _Parser(prog="python -m engine models", description="Local AI models: what is installed, and fetching one.")
    sub = p.add_subparsers(dest="command", metavar="list|pull", parser_class=_Parser)
    sub.add_parser("list", parents=[common], help="presets installed or not, with their size; other model folders")
    pull_p = sub.add_parser("pull", parents=[common], help="fetch a preset from the Hugging Face Hub (needs internet)")
    pull_p.add_argument("name", help="a preset: " + ", ".join([*PRESETS, *TINY_VAES]))
    pull_p.add_argument("--to", metavar="DIR", help="the folder to fetch into (default <models_dir>/NAME)")
    return p


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _state(folder: Path, tiny: bool) -> str:
    if not folder.exists():
        return "not installed"
    try:
        inspect_tiny_vae(folder) if tiny else inspect_model(folder)
    except LocalModelError as err:
        return f"incomplete: {str(err).removeprefix(str(folder) + ': ')}"
    return "installed"


def list_models(models_dir: Path, out: TextIO) -> int:
    print(f"models in {models_dir}/ (fetch one with: python -m engine models pull NAME)", file=out)
    rows = [(p.name, p.about, False) for p in PRESETS.values()] + [(v.name, v.about, True) for v in TINY_VAES.values()]
    for name, about, tiny in rows:
        folder = models_dir / name
        state = _state(folder, tiny)
        size = human(size_on_disk(folder)) if folder.exists() else ""
        where = str(folder) if folder.exists() else ""
        print(f"  {name:<11} {state:<14} {size:>9}  {where}".rstrip(), file=out)
        print(f"  {'':<11} {about}", file=out)
    known = set(PRESETS) | set(TINY_VAES)
    others = sorted(f for f in models_dir.iterdir() if f.is_dir() and f.name not in known
                    and is_pipeline_folder(f)) if models_dir.is_dir() else []
    if others:
        print(f"other diffusers folders in {models_dir}/ ([local] model = the folder's path):", file=out)
    for folder in others:
        try:
            kind = inspect_model(folder).kind
            state = "SDXL" if kind == "sdxl" else "SD"
        except LocalModelError as err:
            state = f"not usable: {str(err).removeprefix(str(folder) + ': ')}"
        print(f"  {folder.name:<11} {state:<14} {human(size_on_disk(folder)):>9}  {folder}", file=out)
    return EXIT_OK


def _fetch_error(repo: str, err: Exception) -> str:
    name = type(err).__name__
    if name == "OfflineModeIsEnabled":
        return f"cannot fetch {repo}: HF_HUB_OFFLINE is set (offline mode); pull on a machine with internet"
    if name in ("RepositoryNotFoundError", "GatedRepoError"):
        return f"cannot fetch {repo}: the Hub refused it ({name}); a gated model needs `hf auth login` first"
    text = str(err).strip().splitlines()[0] if str(err).strip() else name
    return f"cannot fetch {repo} (no network? {name}: {text[:200]})"


def pull_model(name: str, models_dir: Path, to: str | None, out: TextIO) -> int:
    preset, tiny = PRESETS.get(name), TINY_VAES.get(name)
    if preset is None and tiny is None:
        names = ", ".join([*PRESETS, *TINY_VAES])
        print(f"error: no preset named {name!r}; the presets are {names}", file=sys.stderr)
        return EXIT_ERROR
    repo = preset.repo if preset is not None else tiny.repo if tiny is not None else ""
    try:
        import huggingface_hub  # noqa: F401  # asked for here so its absence is one line, not a trace
    except ImportError:
        print(f"error: pulling models needs huggingface_hub: {INSTALL_LOCAL}", file=sys.stderr)
        return EXIT_ERROR
    folder = Path(to).expanduser() if to else models_dir / name
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retry chatter; our line says it all
    try:
        pull(repo, folder, lambda line: print(line, file=out))
    except Exception as err:  # the Hub's errors (offline, network, not found) are many types: one line each
        print(f"error: {_fetch_error(repo, err)}", file=sys.stderr)
        return EXIT_ERROR
    try:
        inspect_tiny_vae(folder) if tiny is not None else inspect_model(folder)
    except LocalModelError as err:
        print(f"error: fetched, but {err}", file=sys.stderr)
        return EXIT_ERROR
    use = f'[local] tiny_vae = "{name}"' if tiny is not None else f'[local] model = "{name}"'
    where = "" if folder == models_dir / name else f' (or "{folder}")'
    print(f"done: {folder} ({human(size_on_disk(folder))}); use it with {use}{where}", file=out)
    return EXIT_OK


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
        if args.command is None:
            raise UsageError("say list or pull NAME")
    except UsageError as err:
        print(f"error: {err} (see python -m engine models --help)", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as done:  # --help has printed itself
        return done.code if isinstance(done.code, int) else EXIT_OK
    if args.models_dir:
        models_dir = Path(args.models_dir).expanduser()
    else:
        try:
            models_dir = Path(load(args.config).local.models_dir).expanduser()
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_ERROR
    if args.command == "list":
        return list_models(models_dir, out)
    return pull_model(args.name, models_dir, args.to, out)
