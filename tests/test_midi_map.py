"""MIDI mapping: learn, scale, trigger, save and load (mido messages, no ports needed)."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from engine.commands import Action, Command
from engine.control.midi_map import Control, MidiMap, Target

KNOB = mido.Message("control_change", channel=0, control=21, value=0)
PAD = mido.Message("note_on", channel=9, note=36, velocity=100)
SEGMENTS = Target("param", shader="kaleidoscope", param="segments", low=2.0, high=12.0)


def test_learn_binds_the_next_control_that_moves() -> None:
    """Pick a target, move a knob: that knob now drives the parameter across its range."""
    m = MidiMap()
    m.learn(SEGMENTS)
    assert m.handle(KNOB) is None  # the learning move itself changes nothing
    cmd = m.handle(KNOB.copy(value=127))
    assert cmd == Command(Action.PARAM, 12.0, name="kaleidoscope", key="segments", source="midi")
    assert m.handle(KNOB.copy(value=0)).value == 2.0  # type: ignore[union-attr]


def test_pads_trigger_actions_on_press_only() -> None:
    """A pad mapped to blackout fires on note on, not on note off."""
    m = MidiMap()
    m.learn(Target("blackout"))
    m.handle(PAD)
    assert m.handle(PAD) == Command(Action.BLACKOUT, source="midi")
    assert m.handle(mido.Message("note_off", channel=9, note=36)) is None


def test_a_knob_learned_for_the_dream_mix_sets_it_across_0_to_1() -> None:
    """The dream layer's mix is a level: the knob's position, 0..127 → 0..1, zero included (not a trigger)."""
    m = MidiMap()
    m.learn(Target("dream_mix"))
    m.handle(KNOB)
    assert m.handle(KNOB.copy(value=127)) == Command(Action.DREAM_MIX, 1.0, source="midi")
    assert m.handle(KNOB.copy(value=0)) == Command(Action.DREAM_MIX, 0.0, source="midi")
    mid = m.handle(KNOB.copy(value=64))
    assert mid is not None and mid.value == pytest.approx(64 / 127)


def test_the_dream_mix_mapping_survives_a_restart(tmp_path: Path) -> None:
    m = MidiMap()
    m.learn(Target("dream_mix"))
    m.handle(KNOB)
    m.save(tmp_path / "map.json")
    assert MidiMap.load(tmp_path / "map.json").mappings == {Control("cc", 0, 21): Target("dream_mix")}


def test_relearning_a_target_moves_it() -> None:
    """A target has one control at a time: learning it again replaces the old binding."""
    m = MidiMap()
    m.learn(SEGMENTS)
    m.handle(KNOB)
    m.learn(SEGMENTS)
    m.handle(KNOB.copy(control=22))
    assert list(m.mappings) == [Control("cc", 0, 22)]


def test_unmapped_and_other_messages_do_nothing() -> None:
    """Clock ticks, sysex and unmapped knobs produce no command."""
    m = MidiMap()
    assert m.handle(mido.Message("clock")) is None
    assert m.handle(KNOB) is None


def test_mappings_survive_a_restart(tmp_path: Path) -> None:
    """Saved to a file, loaded at start."""
    m = MidiMap()
    m.learn(SEGMENTS)
    m.handle(KNOB)
    m.learn(Target("tap"))
    m.handle(PAD)
    m.save(tmp_path / "midi.json")
    loaded = MidiMap.load(tmp_path / "midi.json")
    assert loaded.mappings == m.mappings


UNSAFE = '[{"control": {"kind": "cc", "channel": 0, "number": 1}, "target": {"action": "quit"}}]'


@pytest.mark.parametrize("content", ["not json", '[{"control": {"kind": "cc"}}]', UNSAFE])
def test_damaged_file_is_a_warning_not_a_crash(tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    """A broken or unsafe mappings file (quit is not mappable) loads as no mappings, with a warning."""
    (tmp_path / "midi.json").write_text(content)
    assert MidiMap.load(tmp_path / "midi.json").mappings == {}
    assert "ignoring" in caplog.text
