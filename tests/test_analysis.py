"""Analyzer: input handling, levels, spectrum, waveform, onsets and the shader-facing values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.audio import Analyzer, Features
from engine.audio.frames import Framing
from engine.shaders.program import AudioUniforms
from tests import audio_synth as synth


def tone(freq: float, seconds: float, sr: int, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def feed(analyzer: Analyzer, signal: np.ndarray, block: int = 512) -> list[Features]:
    return [analyzer.process(signal[i : i + block]) for i in range(0, len(signal), block)]


def last(analyzer: Analyzer, signal: np.ndarray, block: int = 512) -> Features:
    return feed(analyzer, signal, block)[-1]


# --- input handling -----------------------------------------------------------------------------


@pytest.mark.parametrize(("sr", "hop"), [(22050, 256), (44100, 512), (48000, 512), (96000, 1024)])
def test_hop_is_about_11_6_ms(sr: int, hop: int) -> None:
    """The hop is the power of two nearest 11.6 ms, the window four hops."""
    framing = Framing.for_rate(sr)
    assert (framing.hop, framing.window) == (hop, 4 * hop)


def test_time_counts_every_sample_consumed() -> None:
    """Features.time is the audio consumed, partial hops included."""
    analyzer = Analyzer(48000, 1)
    for n in (100, 511, 7, 2000):
        f = analyzer.process(np.zeros(n, dtype=np.float32))
    assert f.time == pytest.approx((100 + 511 + 7 + 2000) / 48000)


def test_int16_stereo_reads_like_float_mono() -> None:
    """An int16 stereo block with both sides equal gives the float mono levels."""
    signal = tone(440, 2.0, 44100)
    mono = last(Analyzer(44100, 1), signal)
    stereo = last(Analyzer(44100, 2), synth.to_int16(np.stack([signal, signal], axis=1)))
    assert stereo.level == pytest.approx(mono.level, abs=1e-3)
    np.testing.assert_allclose(stereo.spectrum, mono.spectrum, atol=2e-3)


def test_wrong_channel_count_is_refused() -> None:
    """A stereo block into a mono analyzer raises, naming both counts."""
    with pytest.raises(ValueError, match=r"2 channels.*made for 1"):
        Analyzer(44100, 1).process(np.zeros((512, 2), dtype=np.float32))


def test_wrong_dtype_is_refused() -> None:
    """int32 samples raise: only float and int16 are understood."""
    with pytest.raises(ValueError, match="float32 or int16"):
        Analyzer(44100, 1).process(np.zeros(512, dtype=np.int32))


def test_mono_block_into_stereo_analyzer_is_refused() -> None:
    """A 1-D block into a stereo analyzer raises: it cannot tell frames from interleaved samples."""
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        Analyzer(44100, 2).process(np.zeros(512, dtype=np.float32))


def test_non_finite_samples_do_not_poison_the_state() -> None:
    """NaN and inf in a block are read as silence/full scale; later features stay finite."""
    analyzer = Analyzer(44100, 1)
    bad = np.full(2048, np.nan, dtype=np.float32)
    bad[::2] = np.inf
    analyzer.process(bad)
    f = last(analyzer, tone(100, 1.0, 44100))
    assert all(math.isfinite(v) for v in (f.level, f.bass, f.mid, f.treble, f.onset_strength, f.confidence))
    assert np.isfinite(f.spectrum).all()


def test_empty_block_returns_features() -> None:
    """A zero-length block is fine and changes nothing."""
    f = Analyzer(44100, 2).process(np.zeros((0, 2), dtype=np.float32))
    assert f.time == 0.0 and not f.beat


# --- levels --------------------------------------------------------------------------------------


def test_silence_reads_zero() -> None:
    """Silence: level, bands and spectrum all 0."""
    f = last(Analyzer(44100, 1), synth.silence(2.0, 44100))
    assert (f.level, f.bass, f.mid, f.treble) == (0.0, 0.0, 0.0, 0.0)
    assert not f.spectrum.any()


@pytest.mark.parametrize(("freq", "band"), [(80, "bass"), (1000, "mid"), (8000, "treble")])
def test_a_tone_lights_its_band(freq: float, band: str) -> None:
    """A steady tone reads near 1 in its own band and near 0 in the others."""
    f = last(Analyzer(48000, 1), tone(freq, 2.0, 48000))
    values = {"bass": f.bass, "mid": f.mid, "treble": f.treble}
    assert values.pop(band) > 0.9
    assert max(values.values()) < 0.5


def test_levels_auto_gain_to_the_room() -> None:
    """A pattern 30 dB quieter reads about the same after a few seconds."""
    truth = synth.beat_grid([(120, 6.0)])
    loud = synth.drums(truth, 6.0, 44100, level=0.8)
    quiet = loud * np.float32(10 ** (-30 / 20))
    a, b = feed(Analyzer(44100, 1), loud)[-200:], feed(Analyzer(44100, 1), quiet)[-200:]
    for name in ("level", "bass", "mid", "treble"):
        mean_a = np.mean([getattr(f, name) for f in a])
        mean_b = np.mean([getattr(f, name) for f in b])
        assert mean_b == pytest.approx(mean_a, abs=0.1), name


def test_levels_follow_the_beat() -> None:
    """Bass jumps on a kick and falls between kicks."""
    truth = synth.beat_grid([(100, 6.0)])
    feats = feed(Analyzer(44100, 1), synth.drums(truth, 6.0, 44100, kicks=(0, 1, 2, 3), snares=()))
    bass = np.array([f.bass for f in feats[-300:]])
    assert bass.max() > 0.9 and bass.min() < 0.6


# --- spectrum and waveform -----------------------------------------------------------------------


def test_spectrum_is_256_bins_in_0_1() -> None:
    """The spectrum has 256 float32 bins within 0..1 and is read-only."""
    f = last(Analyzer(44100, 1), synth.pink_noise(1.0, 44100))
    assert f.spectrum.shape == (256,) and f.spectrum.dtype == np.float32
    assert f.spectrum.min() >= 0.0 and f.spectrum.max() <= 1.0
    assert not f.spectrum.flags.writeable


def test_spectrum_peak_sits_at_the_tone() -> None:
    """A 1 kHz tone peaks at the log-spaced bin of 1 kHz."""
    f = last(Analyzer(44100, 1), tone(1000, 1.0, 44100))
    expected = 256 * math.log(1000 / 30) / math.log(16000 / 30)
    assert abs(int(np.argmax(f.spectrum)) - expected) <= 2


def test_waveform_is_the_latest_512_samples() -> None:
    """The waveform is the last 512 samples of the mono mix, clipped to -1..1."""
    signal = synth.white_noise(0.1, 44100, level=0.6, seed=3)
    stereo = np.stack([signal, -signal], axis=1)  # mixes to silence
    assert not last(Analyzer(44100, 2), stereo, block=300).waveform.any()
    f = last(Analyzer(44100, 1), signal, block=300)
    assert f.waveform.shape == (512,) and f.waveform.dtype == np.float32
    np.testing.assert_array_equal(f.waveform, np.clip(signal[-512:], -1, 1))


def test_waveform_keeps_samples_across_small_blocks() -> None:
    """Blocks shorter than 512 frames still give the 512 latest samples."""
    signal = tone(300, 0.1, 44100)
    f = last(Analyzer(44100, 1), signal, block=64)
    np.testing.assert_array_equal(f.waveform, signal[-512:])


# --- onsets --------------------------------------------------------------------------------------


def test_onsets_fire_on_clicks() -> None:
    """Each click of a sparse click track flags an onset, and nothing else does."""
    truth = synth.beat_grid([(60, 8.0)], start=0.5)
    feats = feed(Analyzer(44100, 1), synth.clicks(truth, 8.0, 44100), block=256)
    onsets = [f.time for f in feats if f.onset]
    assert len(onsets) == len(truth)
    assert np.max(np.abs(np.array(onsets) - truth)) < 0.03


def test_steady_tone_has_no_onsets() -> None:
    """A held tone is not an onset after its start."""
    feats = feed(Analyzer(44100, 1), tone(220, 4.0, 44100))
    assert not [f for f in feats if f.onset and f.time > 0.5]


# --- shader values -------------------------------------------------------------------------------


def test_features_are_frozen() -> None:
    """Features is an immutable value: it crosses threads."""
    f = Analyzer(44100, 1).process(np.zeros(512, dtype=np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.level = 1.0  # type: ignore[misc]


def test_features_compare_by_value() -> None:
    """Two Features with the same numbers are equal (the arrays are left out of ==)."""
    assert Features(level=0.5, beat_times=(1.0,)) == Features(level=0.5, beat_times=(1.0,))


def test_to_uniforms_carries_the_shader_values() -> None:
    """to_uniforms() maps the features onto AudioUniforms field by field."""
    f = Features(level=0.1, bass=0.2, mid=0.3, treble=0.4, beat_phase=0.5, beat_pulse=0.6, bpm=128.0)
    assert f.to_uniforms() == AudioUniforms(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 128.0)


def test_beat_phase_and_pulse_follow_the_beats() -> None:
    """On a steady pattern, as each beat sounds pulse is ~1 and phase wraps; halfway, phase is ~0.5."""
    truth = synth.beat_grid([(120, 12.0)])
    feats = feed(Analyzer(44100, 1), synth.drums(truth, 12.0, 44100), block=128)
    times = np.array([f.time for f in feats])
    beats = [t for f in feats for t in f.beat_times if t > 8.0]
    assert len(beats) > 6
    for t in beats:
        at = int(np.searchsorted(times, t))  # the first block that ends after the beat sounded
        assert feats[at].beat_pulse > 0.9 and feats[at].beat_phase < 0.1
        assert feats[at - 1].beat_phase > 0.9
    late = [f for f in feats if f.time > 8.0]
    mid = [f for f in late if min(abs(f.time - t) for t in truth) > 0.2]
    assert all(0.3 < f.beat_phase < 0.7 and f.beat_pulse < 0.2 for f in mid)
    assert all(f.bpm == pytest.approx(120, rel=0.03) for f in late)
