"""The causal beat tracker on synthesized audio: accuracy, causality, control, and the beats CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import mir_eval
import numpy as np
import pytest
import soundfile

from engine.audio import Analyzer, Features, TrackerConfig
from engine.audio.beats_cli import main as beats_main
from tests import audio_synth as synth

WINDOW = 0.07  # s: the beat-tracking field's tolerance (mir_eval's default)


def blocks(signal: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(signal), size):
        yield signal[i : i + size]


def fired(analyzer: Analyzer, signal: np.ndarray, block: int = 512) -> np.ndarray:
    """Every beat time the analyzer fires while the signal streams through it."""
    times: list[float] = []
    for chunk in blocks(signal, block):
        times += analyzer.process(chunk).beat_times
    return np.array(times)


def track(signal: np.ndarray, sr: int, channels: int = 1, block: int = 512, latency: float = 0.0) -> np.ndarray:
    return fired(Analyzer(sr, channels, latency=latency), signal, block)


def f_measure(truth: np.ndarray, beats: np.ndarray) -> float:
    """mir_eval's beat F-measure: +-70 ms, beats before 5 s ignored."""
    if not len(beats):
        return 0.0  # mir_eval would warn, and warnings are errors here
    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(truth), mir_eval.beat.trim_beats(beats), WINDOW))


def assert_tracks(truth: np.ndarray, beats: np.ndarray, minimum: float = 0.9) -> None:
    score = f_measure(truth, beats)
    assert score > minimum, f"F-measure {score:.3f} <= {minimum}: {len(beats)} beats fired for {len(truth)} true"


# --- accuracy on steady patterns ------------------------------------------------------------


@pytest.mark.parametrize(("bpm", "sr"), [(70, 44100), (120, 48000), (180, 44100)])
def test_click_track_is_tracked(bpm: float, sr: int) -> None:
    """A metronome from 70 to 180 bpm scores F > 0.9."""
    truth = synth.beat_grid([(bpm, 16.0)])
    assert_tracks(truth, track(synth.clicks(truth, 16.0, sr), sr))


@pytest.mark.parametrize(("bpm", "sr"), [(70, 48000), (90, 44100), (128, 48000), (150, 44100), (180, 48000)])
def test_drum_pattern_is_tracked(bpm: float, sr: int) -> None:
    """Kick, snare and hi-hat from 70 to 180 bpm score F > 0.9."""
    truth = synth.beat_grid([(bpm, 16.0)])
    assert_tracks(truth, track(synth.drums(truth, 16.0, sr, seed=bpm), sr))


def test_stereo_int16_is_tracked() -> None:
    """Stereo int16 blocks track as well as mono float."""
    truth = synth.beat_grid([(110, 16.0)])
    signal = synth.to_int16(synth.stereo(synth.drums(truth, 16.0, 44100, seed=5)))
    assert_tracks(truth, track(signal, 44100, channels=2))


def test_22050_hz_is_tracked() -> None:
    """At 22.05 kHz the hop halves and the tracker still scores F > 0.9."""
    truth = synth.beat_grid([(100, 16.0)])
    assert_tracks(truth, track(synth.drums(truth, 16.0, 22050, seed=6), 22050))


def test_clipped_input_is_tracked() -> None:
    """A drum pattern overdriven into hard clipping still tracks."""
    truth = synth.beat_grid([(125, 16.0)])
    assert_tracks(truth, track(synth.clipped(synth.drums(truth, 16.0, 44100, seed=7)), 44100))


def test_quiet_input_is_tracked() -> None:
    """The same pattern 40 dB down tracks: onsets are measured against the running level."""
    truth = synth.beat_grid([(125, 16.0)])
    assert_tracks(truth, track(synth.drums(truth, 16.0, 44100, level=0.005, seed=7), 44100))


# --- no beats without rhythm ------------------------------------------------------------------


def run_features(signal: np.ndarray, sr: int, block: int = 512) -> list[Features]:
    analyzer = Analyzer(sr, 1)
    return [analyzer.process(chunk) for chunk in blocks(signal, block)]


def test_silence_fires_no_beat() -> None:
    """Silence: no beat, bpm 0, confidence 0."""
    feats = run_features(synth.silence(12.0, 48000), 48000)
    assert not any(f.beat for f in feats)
    assert all(f.bpm == 0.0 and f.confidence == 0.0 for f in feats)


@pytest.mark.parametrize("noise", [synth.white_noise, synth.pink_noise])
@pytest.mark.parametrize("seed", [1, 2])
def test_noise_fires_no_confident_beat(noise: Callable[..., np.ndarray], seed: int) -> None:
    """Noise stays under the confidence threshold: no beat fires and bpm reads 0."""
    feats = run_features(noise(20.0, 44100, seed=seed), 44100)
    assert max(f.confidence for f in feats) < TrackerConfig().confidence_on
    assert not any(f.beat for f in feats)
    assert all(f.bpm == 0.0 for f in feats)


def test_beats_stop_when_music_stops() -> None:
    """After the music gives way to silence, beats stop within a few seconds."""
    truth = synth.beat_grid([(120, 10.0)])
    signal = np.concatenate([synth.drums(truth, 10.0, 44100), synth.silence(10.0, 44100)])
    beats = track(signal, 44100)
    assert len(beats[beats < 10.0]) > 5
    assert not len(beats[beats > 14.0])


# --- tempo changes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [(120, 140), (100, 128), (120, 100)])
def test_recovers_from_tempo_change_within_four_beats(before: float, after: float) -> None:
    """After a jump in tempo, from the 5th new beat on every true beat has a fired beat within 70 ms and
    every fired beat is within 70 ms of a true one."""
    change, end = 12.0, 20.0
    truth = synth.beat_grid([(before, change), (after, end - change)])
    beats = track(synth.drums(truth, end, 44100, seed=3), 44100)
    new = truth[truth >= change]
    settled = new[4:]
    misses = [t for t in settled if np.min(np.abs(beats - t)) > WINDOW]
    assert not misses, f"true beats from the 5th after the change with no fired beat: {np.round(misses, 3)}"
    later = beats[(beats >= settled[0] - WINDOW) & (beats <= settled[-1] + WINDOW)]
    extra = [b for b in later if np.min(np.abs(truth - b)) > WINDOW]
    assert not extra, f"fired beats matching no true beat: {np.round(extra, 3)}"


# --- causality and block independence ---------------------------------------------------------


def test_cutting_the_input_short_keeps_earlier_beats() -> None:
    """The beats fired before a cut are the same whether the file goes on or not."""
    truth = synth.beat_grid([(97, 14.0)])
    signal = synth.drums(truth, 14.0, 48000, seed=8)
    whole = track(signal, 48000)
    cut = 9.3
    part = track(signal[: int(cut * 48000)], 48000)
    assert len(part) > 5
    np.testing.assert_array_equal(part, whole[: len(part)])


@pytest.mark.parametrize("block", [64, 1000, 4096])
def test_block_size_does_not_change_beats(block: int) -> None:
    """Blocks of any size fire exactly the beats of 512-frame blocks."""
    truth = synth.beat_grid([(133, 12.0)])
    signal = synth.drums(truth, 12.0, 44100, seed=9)
    np.testing.assert_array_equal(track(signal, 44100, block=block), track(signal, 44100, block=512))


def test_latency_fires_beats_earlier() -> None:
    """With 100 ms latency each beat fires about 100 ms sooner in the stream, at about the same time."""
    truth = synth.beat_grid([(120, 14.0)])
    signal = synth.drums(truth, 14.0, 44100, seed=10)

    def fire_moments(latency: float) -> list[tuple[float, float]]:
        analyzer = Analyzer(44100, 1, latency=latency)
        out = []
        for chunk in blocks(signal, 128):
            f = analyzer.process(chunk)
            out += [(t, f.time) for t in f.beat_times]
        return [(t, at) for t, at in out if 6.0 < t < 13.0]

    plain, early = fire_moments(0.0), fire_moments(0.1)
    assert len(plain) == len(early) > 10
    for (t0, at0), (t1, at1) in zip(plain, early, strict=True):
        assert abs(t1 - t0) < 0.02
        assert at0 - t0 == pytest.approx(0.0, abs=0.015)  # fired within a hop of the beat
        assert at1 - t1 == pytest.approx(-0.1, abs=0.015)


# --- manual control ---------------------------------------------------------------------------


def run_until(analyzer: Analyzer, signal: np.ndarray, start: float, end: float) -> list[float]:
    sr = analyzer.framing.sample_rate
    times: list[float] = []
    for chunk in blocks(signal[int(start * sr) : int(end * sr)], 512):
        times += analyzer.process(chunk).beat_times
    return times


def test_lock_tempo_fires_the_locked_grid() -> None:
    """Locked at 100 bpm from a phase time, beats fall on that grid whatever the music does."""
    truth = synth.beat_grid([(120, 12.0)])
    signal = synth.drums(truth, 12.0, 44100, seed=11)
    analyzer = Analyzer(44100, 1)
    run_until(analyzer, signal, 0.0, 4.0)
    analyzer.lock_tempo(100.0, phase_time=4.2)
    beats = np.array(run_until(analyzer, signal, 4.0, 12.0))
    np.testing.assert_allclose(beats, 4.2 + 0.6 * np.arange(len(beats)), atol=1e-9)
    assert analyzer.process(signal[:0]).bpm == pytest.approx(100.0)


def test_unlock_gives_the_tempo_back_to_the_tracker() -> None:
    """After unlocking, the tracker follows the music's tempo again."""
    truth = synth.beat_grid([(120, 16.0)])
    signal = synth.drums(truth, 16.0, 44100, seed=12)
    analyzer = Analyzer(44100, 1)
    analyzer.lock_tempo(90.0, phase_time=0.5)
    run_until(analyzer, signal, 0.0, 8.0)
    analyzer.lock_tempo(None)
    beats = np.array(run_until(analyzer, signal, 8.0, 16.0))
    assert f_measure(truth[truth > 9.0], beats[beats > 9.0]) > 0.9


def test_nudge_moves_the_locked_grid() -> None:
    """nudge(+40 ms) moves every later locked beat 40 ms later."""
    signal = synth.silence(10.0, 44100)
    analyzer = Analyzer(44100, 1)
    analyzer.lock_tempo(120.0, phase_time=1.0)
    run_until(analyzer, signal, 0.0, 3.1)
    analyzer.nudge(0.04)
    beats = np.array(run_until(analyzer, signal, 3.1, 6.0))
    np.testing.assert_allclose(beats, 3.54 + 0.5 * np.arange(len(beats)), atol=1e-9)


def test_resync_puts_a_locked_beat_now() -> None:
    """resync() with no time: a beat falls at the current time and the grid follows from it."""
    signal = synth.silence(6.0, 44100)
    analyzer = Analyzer(44100, 1, latency=0.05)
    analyzer.lock_tempo(120.0, phase_time=0.13)
    run_until(analyzer, signal, 0.0, 2.0)
    now = analyzer.time + analyzer.latency
    analyzer.resync()
    beats = np.array(run_until(analyzer, signal, 2.0, 5.0))
    np.testing.assert_allclose(beats, now + 0.5 * np.arange(len(beats)), atol=1e-9)


def test_nudge_moves_the_tracked_phase() -> None:
    """Tracking, nudge() moves the belief itself: the next beat fires that much later."""
    truth = synth.beat_grid([(120, 12.0)])
    signal = synth.drums(truth, 12.0, 44100, seed=13)
    analyzer = Analyzer(44100, 1)
    before = run_until(analyzer, signal, 0.0, 8.02)
    analyzer.nudge(0.1)
    after = run_until(analyzer, signal, 8.02, 8.6)
    expected = before[-1] + 0.5 + 0.1
    assert after[0] == pytest.approx(expected, abs=1.5 / analyzer.framing.frame_rate)


# --- bar counter -------------------------------------------------------------------------------


def test_bar_counter_finds_the_downbeat() -> None:
    """Enabled, with the kick only on the one, bar_beat reads 1 on the kick's beats once it is sure."""
    truth = synth.beat_grid([(120, 16.0)])  # the first true beat is a downbeat
    signal = synth.drums(truth, 16.0, 44100, seed=14, kicks=(0,), snares=(1, 3))
    analyzer = Analyzer(44100, 1, tracker=TrackerConfig(downbeat_margin=1.5))
    places: list[tuple[float, int]] = []
    for chunk in blocks(signal, 512):
        f = analyzer.process(chunk)
        places += [(t, f.bar_beat) for t in f.beat_times]
    late = [(t, bar) for t, bar in places if t > 8.0]
    assert late and all(bar != 0 for _, bar in late)
    for t, bar in late:
        index = int(np.argmin(np.abs(truth - t)))
        assert bar == index % 4 + 1, f"beat at {t:.2f} s read {bar}, is {index % 4 + 1}"


def test_bar_counter_is_off_by_default() -> None:
    """By default bar_beat stays 0: the bass cue is not reliable on real music."""
    truth = synth.beat_grid([(120, 12.0)])
    feats = run_features(synth.drums(truth, 12.0, 44100, kicks=(0,), snares=(1, 3)), 44100)
    assert any(f.beat for f in feats) and all(f.bar_beat == 0 for f in feats)


# --- the beats command -------------------------------------------------------------------------


@pytest.fixture
def drum_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    truth = synth.beat_grid([(115, 12.0)])
    path = tmp_path / "drums.flac"
    soundfile.write(path, synth.stereo(synth.drums(truth, 12.0, 44100, seed=15)), 44100)
    return path, truth


def test_cli_prints_the_beats_the_live_tracker_fires(
    drum_file: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    """One beat time per line, the same as feeding the analyzer live."""
    path, truth = drum_file
    assert beats_main([str(path)]) == 0
    printed = np.array([float(line) for line in capsys.readouterr().out.split()])
    data, sr = soundfile.read(path, dtype="float32", always_2d=True)
    np.testing.assert_allclose(printed, track(data, sr, channels=2), atol=5e-4)
    assert f_measure(truth, printed) > 0.9


def test_cli_bpm_prints_tempo_once_per_second(
    drum_file: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    """--bpm: 'time bpm confidence' each second, settling on the tempo."""
    path, _ = drum_file
    assert beats_main([str(path), "--bpm"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [int(r[0]) for r in rows] == list(range(1, 13))
    assert float(rows[-1][1]) == pytest.approx(115, rel=0.03)
    assert 0.0 <= float(rows[-1][2]) <= 1.0


def test_cli_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not audio: exit 2 and one line naming it."""
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert beats_main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.wav" in err[0]


def test_cli_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No file argument: exit 2 and one line."""
    assert beats_main([]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# --- the benchmark's cross-validation split ------------------------------------------------------


def test_bench_split_is_fixed_and_stratified_by_genre(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/beats.py splits the dev clips into two halves of one clip per genre, the same every run."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "bench" / "beats.py"
    spec = importlib.util.spec_from_file_location("bench_beats", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    genres = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    names = [f"{g}.{i:05d}" for g in genres for i in range(2)]
    halves = bench.split_halves(names)
    assert bench.split_halves(list(reversed(names))) == halves  # order of discovery does not matter
    for half in "AB":
        members = [n for n in names if halves[n] == half]
        assert len(members) == 10
        assert sorted(n.split(".")[0] for n in members) == genres
    # Both halves hold first and second clips alike (alternating by genre), not all of one index.
    assert {n.split(".")[1] for n in names if halves[n] == "A"} == {"00000", "00001"}
