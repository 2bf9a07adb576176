"""``python -m engine beats FILE``: the beats the live tracker would fire on a recording.

The file is decoded with soundfile (WAV, FLAC, OGG) and fed block by block to the same
``Analyzer`` the show runs, as if it arrived live. Each line is a beat's time in seconds as
the tracker predicted it when it fired: nothing is corrected afterwards, so cutting the file
short never changes the beats before the cut. ``--bpm`` prints "time bpm confidence" once per
second instead (bpm 0: unsure).

Exit codes: 0 done; 2 a usage error or an unreadable file, with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from engine.audio.analysis import Analyzer
from engine.usage import EXIT_USAGE, UsageError
from engine.usage import StrictParser as _Parser

EXIT_OK = 0




def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engine beats", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", help="audio file: WAV, FLAC or OGG")
    p.add_argument("--bpm", action="store_true", help="print 'time bpm confidence' once per second instead")
    p.add_argument("--block", type=int, default=512, metavar="N", help="frames per block fed to the analyzer")
    p.add_argument("--latency", type=float, default=0.0, metavar="S",
                   help="input latency to compensate: beats fire this much earlier (times do not move)")
    return p


def main(argv: Sequence[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
        if args.block < 1:
            raise UsageError(f"--block must be >= 1, got {args.block}")
        if args.latency < 0:
            raise UsageError(f"--latency must be >= 0, got {args.latency}")
    except UsageError as err:
        print(f"error: {err} (see python -m engine beats --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        import soundfile
    except ImportError as err:  # a dependency; say so rather than trace back
        print(f"error: reading audio files needs the soundfile package ({err})", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = soundfile.SoundFile(args.file)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as err:
        print(f"error: cannot read {args.file}: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with source:
            _run(source, args, out)
    except BrokenPipeError:  # `... | head`: the reader has had enough, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def _run(source: Any, args: argparse.Namespace, out: TextIO) -> None:
    """Feed the file to the live analyzer block by block and print what it fires, as it fires it."""
    analyzer = Analyzer(source.samplerate, source.channels, latency=args.latency)
    next_report = 1.0
    while True:
        block = source.read(args.block, dtype="float32", always_2d=True)
        if not len(block):
            break
        features = analyzer.process(block)
        if args.bpm:
            while features.time >= next_report:
                print(f"{next_report:.0f} {features.bpm:.1f} {features.confidence:.2f}", file=out)
                next_report += 1.0
        else:
            for t in features.beat_times:
                print(f"{t:.3f}", file=out)
