"""MIDI input through real ports: a private dummy JACK server, a virtual controller, real callbacks.

The controller is a virtual JACK output port opened from the test; ``MidiInput``
finds it by name and connects to it, exactly as it would to a USB controller.
A "fence" (a knob mapped to a marker parameter) proves that nothing came before
it: JACK keeps one port's messages in order, so no test waits for silence.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import pytest

from engine.commands import Action, Command
from engine.config import MidiConfig
from engine.control.midi_input import MidiInput, matching_ports
from engine.control.midi_map import Control, MidiMap, Target
from tests.fakes import wait_for
from tests.jack import JackServer

JACK = "mido.backends.rtmidi/UNIX_JACK"
PORT = "stagecraft-test-ctl"
WAIT_S = 3.0

SEGMENTS = Target("param", shader="kaleidoscope", param="segments", low=2.0, high=12.0)
ZOOM = Target("param", shader="tunnel", param="zoom", low=-1.0, high=1.0)
KNOB = Control("cc", 0, 21)
PAD = Control("note", 9, 36)
FENCE = Control("cc", 15, 119)
MAPPINGS = {KNOB: SEGMENTS, PAD: Target("blackout"), FENCE: Target("param", shader="fence", param="seen")}


# --- a private JACK server --------------------------------------------------------------
@pytest.fixture(scope="module")
def jack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dummy JACK server of our own (no sound card needed), the default for this module's clients."""
    server = JackServer(f"stagecraft-test-{os.getpid()}", tmp_path_factory.mktemp("jack") / "jackd.log")
    with pytest.MonkeyPatch.context() as mp:
        try:
            server.start()
            mp.setenv("JACK_DEFAULT_SERVER", server.name)
            mp.setenv("JACK_NO_START_SERVER", "1")
            yield server.name
        finally:
            server.stop()


# --- a controller and the engine's MIDI input -------------------------------------------
@dataclass
class Rig:
    midi: MidiInput
    controller: Any
    commands: queue.SimpleQueue[Command]
    map_path: Path
    changes: list[int] = field(default_factory=list)

    def send(self, kind: str, **fields: Any) -> None:
        self.controller.send(mido.Message(kind, **fields))

    def next_command(self) -> Command:
        try:
            return self.commands.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"no command arrived within {WAIT_S} s")

    def commands_before_fence(self) -> list[Command]:
        """Every command the messages sent so far produced (the fence knob marks the end)."""
        self.send("control_change", channel=FENCE.channel, control=FENCE.number, value=127)
        got: list[Command] = []
        while (command := self.next_command()).name != "fence":
            got.append(command)
        return got


def write_map(path: Path, mappings: dict[Control, Target]) -> None:
    m = MidiMap()
    m.mappings = dict(mappings)
    m.save(path)


def saved_mappings(path: Path) -> dict[Control, Target]:
    return {Control(**item["control"]): Target(**item["target"]) for item in json.loads(path.read_text())}


def param(target: Target, value: float) -> Command:
    return Command(Action.PARAM, value, name=target.shader, key=target.param, source="midi")


@pytest.fixture
def controller(jack: str) -> Iterator[Any]:
    """A virtual controller: the test plays it, the engine listens to it."""
    port = mido.Backend(JACK, load=True).open_output(PORT, virtual=True)
    yield port
    port.close()


@pytest.fixture
def rig(controller: Any, tmp_path: Path) -> Iterator[Rig]:
    map_path = tmp_path / "midi-map.json"
    write_map(map_path, MAPPINGS)
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
    changes: list[int] = []
    midi = MidiInput(MidiConfig(input=PORT, backend=JACK), commands, on_change=lambda: changes.append(1),
                     map_path=map_path)
    midi.start()
    yield Rig(midi, controller, commands, map_path, changes)
    midi.stop()


# --- the main path ------------------------------------------------------------------------
def test_opens_the_port_it_was_asked_for(rig: Rig) -> None:
    """The status names the controller's port; the mappings file was loaded."""
    state = rig.midi.snapshot()
    assert state.available
    assert len(state.ports) == 1 and PORT in state.ports[0]
    assert state.status == f"MIDI: {state.ports[0]}"
    assert dict(state.mappings) == MAPPINGS


def test_mapped_knob_drives_its_parameter(rig: Rig) -> None:
    """A CC is scaled from 0..127 into the parameter's range."""
    for value in (127, 0, 127 // 2):
        rig.send("control_change", channel=KNOB.channel, control=KNOB.number, value=value)
    assert [rig.next_command() for _ in range(3)] == [
        param(SEGMENTS, 12.0), param(SEGMENTS, 2.0), param(SEGMENTS, 2.0 + 63 / 127 * 10.0)]


def test_mapped_pad_fires_on_press_only(rig: Rig) -> None:
    """A pad mapped to blackout fires on note on; note off (or note on at velocity 0) does nothing."""
    rig.send("note_on", channel=PAD.channel, note=PAD.number, velocity=100)
    rig.send("note_off", channel=PAD.channel, note=PAD.number)
    rig.send("note_on", channel=PAD.channel, note=PAD.number, velocity=0)
    assert rig.commands_before_fence() == [Command(Action.BLACKOUT, source="midi")]


def test_learn_binds_saves_and_notifies(rig: Rig) -> None:
    """Learn, move a knob: the binding is in the file, on_change ran, and the knob drives the target."""
    rig.midi.learn(ZOOM)
    assert rig.midi.snapshot().learning == ZOOM
    rig.send("control_change", channel=2, control=30, value=10)
    wait_for(lambda: bool(rig.changes), WAIT_S, "on_change after learning")
    assert saved_mappings(rig.map_path)[Control("cc", 2, 30)] == ZOOM
    assert rig.midi.snapshot().learning is None
    rig.send("control_change", channel=2, control=30, value=127)
    assert rig.commands_before_fence() == [param(ZOOM, 1.0)]  # the learning move itself sent nothing


def test_clock_and_sysex_do_not_steal_a_learn(rig: Rig) -> None:
    """While learning, messages no mapping can use are skipped: the next knob is the one bound."""
    rig.midi.learn(ZOOM)
    rig.send("clock")
    rig.send("sysex", data=[0x7E, 0x7F, 0x06, 0x01])
    rig.send("pitchwheel", channel=0, pitch=4000)
    rig.send("control_change", channel=0, control=40, value=64)
    wait_for(lambda: bool(rig.changes), WAIT_S, "on_change after learning")
    assert rig.midi.snapshot().mappings[-1] == (Control("cc", 0, 40), ZOOM)


def test_forget_unbinds_and_saves(rig: Rig) -> None:
    """A forgotten knob leaves the file, on_change runs, and moving it does nothing."""
    rig.midi.forget(KNOB)
    assert rig.changes == [1]
    assert KNOB not in saved_mappings(rig.map_path)
    rig.send("control_change", channel=KNOB.channel, control=KNOB.number, value=127)
    assert rig.commands_before_fence() == []


def test_other_messages_are_ignored(rig: Rig) -> None:
    """Clock, sysex, pitchwheel, program changes and unmapped knobs produce no command."""
    rig.send("clock")
    rig.send("start")
    rig.send("sysex", data=[0x7E, 0x7F, 0x06, 0x01])
    rig.send("pitchwheel", channel=0, pitch=-8192)
    rig.send("program_change", channel=0, program=5)
    rig.send("control_change", channel=0, control=99, value=127)
    assert rig.commands_before_fence() == []


class FailingQueue(queue.SimpleQueue[Command]):
    """An inbox whose first two puts fail."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 2

    def put(self, item: Command, block: bool = True, timeout: float | None = None) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("inbox broken")
        super().put(item, block, timeout)


def test_an_error_in_the_callback_is_logged_once_and_midi_goes_on(
        controller: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two failures in the callback: one log line, and the next message still arrives."""
    write_map(tmp_path / "map.json", MAPPINGS)
    commands = FailingQueue()
    midi = MidiInput(MidiConfig(input=PORT, backend=JACK), commands, map_path=tmp_path / "map.json")
    midi.start()
    try:
        for value in (0, 0, 127):
            controller.send(mido.Message("control_change", channel=0, control=KNOB.number, value=value))
        assert commands.get(timeout=WAIT_S) == param(SEGMENTS, 12.0)
    finally:
        midi.stop()
    assert [r.levelno for r in caplog.records if "inbox broken" in r.getMessage()] == [logging.ERROR]


def test_a_save_failure_is_a_warning(controller: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The mappings file cannot be written: a warning, on_change still runs, the binding still works."""
    commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
    changes: list[int] = []
    midi = MidiInput(MidiConfig(input=PORT, backend=JACK), commands, on_change=lambda: changes.append(1),
                     map_path=tmp_path / "no-such-dir" / "map.json")
    midi.start()
    try:
        midi.learn(ZOOM)
        controller.send(mido.Message("control_change", channel=0, control=5, value=1))
        wait_for(lambda: bool(changes), WAIT_S, "on_change after learning")
        controller.send(mido.Message("control_change", channel=0, control=5, value=0))
        assert commands.get(timeout=WAIT_S) == param(ZOOM, -1.0)
    finally:
        midi.stop()
    assert "cannot save mappings" in caplog.text


def test_all_opens_every_input(controller: Any, tmp_path: Path) -> None:
    """input = "all" listens to every input port, the controller's among them."""
    midi = MidiInput(MidiConfig(input="all", backend=JACK), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    midi.start()
    try:
        assert any(PORT in name for name in midi.snapshot().ports)
    finally:
        midi.stop()


# --- the engine goes on without MIDI --------------------------------------------------------
def test_midi_off_does_nothing(tmp_path: Path) -> None:
    """input = "none": no backend is touched, the status says MIDI is off."""
    midi = MidiInput(MidiConfig(input="none"), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    midi.start()
    state = midi.snapshot()
    assert (state.available, state.status, state.ports) == (False, "MIDI off", ())


def test_no_alsa_sequencer_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """mido's default backend (rtmidi on ALSA) without /dev/snd/seq: a status that says why, no exception."""
    if Path("/dev/snd/seq").exists():
        pytest.skip("this machine has an ALSA sequencer: the failure this test checks cannot happen here")
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    caplog.set_level(logging.INFO)
    midi = MidiInput(MidiConfig(input="all"), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    midi.start()
    state = midi.snapshot()
    assert (state.available, state.status) == (False, "no MIDI backend (ALSA sequencer not available)")
    assert "ALSA sequencer not available" in caplog.text


def test_no_jack_server_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JACK backend with no server running: the status says so."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"stagecraft-test-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    midi = MidiInput(MidiConfig(input="all", backend=JACK), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    midi.start()
    assert midi.snapshot().status == "no MIDI backend (JACK server not running)"


def test_unknown_backend_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A backend module that does not exist: a warning and a status naming it."""
    midi = MidiInput(MidiConfig(input="all", backend="mido.backends.nonexistent"), queue.SimpleQueue(),
                     map_path=tmp_path / "m.json")
    midi.start()
    state = midi.snapshot()
    assert not state.available
    assert state.status.startswith("no MIDI backend (mido.backends.nonexistent: ")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_port_that_matches_nothing_is_named(jack: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A port name that matches no input: a warning, and the status says which name."""
    midi = MidiInput(MidiConfig(input="APC", backend=JACK), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    midi.start()
    assert midi.snapshot().status.startswith("no MIDI input matching 'APC'")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_stop_twice_and_never_started(rig: Rig, tmp_path: Path) -> None:
    """stop() closes the ports once; again, or on an input never started, it does nothing."""
    rig.midi.stop()
    rig.midi.stop()
    assert rig.midi.snapshot().ports == ()
    MidiInput(MidiConfig(), queue.SimpleQueue(), map_path=tmp_path / "m.json").stop()


def test_stop_while_a_knob_streams(controller: Any, tmp_path: Path) -> None:
    """stop() under steady traffic (2 kHz, like a knob swept with MIDI clock running) returns promptly.

    mido's own close() can hang here: see "Closing" in midi_input's docstring."""
    write_map(tmp_path / "m.json", MAPPINGS)
    streaming = threading.Event()
    streaming.set()

    def stream() -> None:
        knob = mido.Message("control_change", channel=KNOB.channel, control=KNOB.number, value=64)
        while streaming.is_set():
            controller.send(knob)
            time.sleep(0.0005)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        for _ in range(3):
            commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
            midi = MidiInput(MidiConfig(input=PORT, backend=JACK), commands, map_path=tmp_path / "m.json")
            midi.start()
            assert commands.get(timeout=WAIT_S).name == SEGMENTS.shader  # the stream is arriving
            began = time.monotonic()
            midi.stop()
            assert time.monotonic() - began < 1.0
    finally:
        streaming.clear()
        sender.join()


def test_damaged_map_file_is_an_empty_map(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A broken mappings file: a warning and no mappings; the input still starts."""
    (tmp_path / "m.json").write_text("{not json")
    midi = MidiInput(MidiConfig(), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    assert midi.snapshot().mappings == ()
    assert "ignoring" in caplog.text


def test_learn_refuses_an_unmappable_action(tmp_path: Path) -> None:
    """quit cannot be mapped (the file would not load back): learn says so and changes nothing."""
    midi = MidiInput(MidiConfig(), queue.SimpleQueue(), map_path=tmp_path / "m.json")
    with pytest.raises(ValueError, match="cannot be mapped to 'quit'"):
        midi.learn(Target("quit"))
    assert midi.snapshot().learning is None


def test_port_names_match_by_part_ignoring_case() -> None:
    """"all" takes every port once; otherwise any port whose name contains the text."""
    names = ["APC mini mk2 MIDI 1", "Launch Control XL", "APC mini mk2 MIDI 1"]
    assert matching_ports(names, "apc") == ["APC mini mk2 MIDI 1"]
    assert matching_ports(names, "ALL") == ["APC mini mk2 MIDI 1", "Launch Control XL"]
    assert matching_ports(names, "nanoKONTROL") == []
