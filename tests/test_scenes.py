"""Scenes: the file format, the blend, the deck on a plain stage, and recalls through the show's real paths
(the render loop on GL, MIDI through a JACK port, OSC over UDP, Shift+1 in a window).

Every scene file here is written under the test's own temporary folder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import mido
import moderngl
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from engine.backstage import Backstage
from engine.backstage.chores import SCENE_WATCH_S
from engine.commands import Action, Command, command_for_key
from engine.config import Config, MidiConfig, OscConfig
from engine.contract import Inbox, StateBoard
from engine.control.midi_input import MidiInput
from engine.control.midi_map import Control, MidiMap, Target, check_mappable
from engine.control.osc_map import OscError, command_for
from engine.control.osc_server import OscControl
from engine.errors import ConfigError
from engine.net import vj_protocol as vp
from engine.render.show_loop import ShowLoop
from engine.scenes.blend import Blend, plan
from engine.scenes.deck import SceneDeck
from engine.scenes.scene import Scene, SceneCatalog, check_name, check_scene, dump_scene, parse_scene
from engine.shaders.params import ParamError
from engine.shaders.source import Input, InputType, Value
from tests.engine_process import EngineProcess, free_port
from tests.fakes import SHADERS, make_config, quadrants, target, wait_for
from tests.test_midi_input import JACK, jack  # noqa: F401  (the module's private JACK server)
from tests.test_vj_server import TOKEN, page
from tests.xwindow import XServer, find_window, press, start_xvfb

INPUTS = {
    "glow": {i.name: i for i in (
        Input("amount", InputType.FLOAT, 0.5, 0.0, 2.0),
        Input("on", InputType.BOOL, False),
        Input("mode", InputType.LONG, 0, values=(0, 1, 2)),
        Input("center", InputType.POINT2D, (0.5, 0.5), (0.0, 0.0), (1.0, 1.0)),
        Input("tint", InputType.COLOR, (1.0, 1.0, 1.0, 1.0)),
        Input("flash", InputType.EVENT),
    )},
    "wipe": {"softness": Input("softness", InputType.FLOAT, 0.1, 0.0, 1.0)},
}
CATALOG = SceneCatalog(frozenset({"glow", "mirror"}), frozenset({"crossfade", "wipe"}), INPUTS)
LOOK = Scene(effects=("glow",), transition="wipe", transition_seconds=1.5, fit="cover", qr="idle", hud=True,
             dream_mix=0.25, style_preset="neon-punk",
             params={"glow": {"amount": 1.5, "on": True, "mode": 2, "center": (0.25, 0.75),
                              "tint": (1.0, 0.5, 0.0, 1.0)}, "wipe": {"softness": 0.4}})


# --- the file ---------------------------------------------------------------------------------------
def test_a_saved_scene_reads_back_the_same() -> None:
    """dump_scene writes every part; parse_scene and check_scene read the very same look back."""
    text = dump_scene(LOOK, "night drive")
    assert check_scene(parse_scene(text, "night drive.toml"), CATALOG, "night drive.toml") == LOOK
    assert "[params.glow]" in text and "center = [0.25, 0.75]" in text


def test_a_hand_written_scene_may_leave_keys_out() -> None:
    """Only the chain and one value: every other part is None, which a recall leaves as it is."""
    scene = parse_scene('effects = ["mirror"]\n[params.glow]\namount = 1\n', "f.toml")
    assert scene == Scene(effects=("mirror",), params={"glow": {"amount": 1}})
    assert check_scene(scene, CATALOG, "f.toml").params == {"glow": {"amount": 1.0}}


@pytest.mark.parametrize(("text", "match"), [
    ("effects = []\nfit = = 2\n", r"^scenes/x\.toml: not valid TOML: .*line 2"),
    ("efects = []", r"^scenes/x\.toml: efects: unknown key"),
    ("effects = 'glow'", r"^scenes/x\.toml: effects: expected a list of effect names"),
    ("fit = 'stretch'", r"^scenes/x\.toml: fit: expected one of letterbox, cover, got 'stretch'"),
    ("transition_seconds = 90", r"^scenes/x\.toml: transition_seconds: 90 is out of range 0 to 60"),
    ("[overlay]\nqr = 'sometimes'", r"^scenes/x\.toml: overlay\.qr: expected one of always, idle, off"),
    ("[overlay]\nhud = 1", r"^scenes/x\.toml: overlay\.hud: expected true or false"),
    ("[params.glow]\namount = 'lots'", r"^scenes/x\.toml: params\.glow\.amount: expected true/false, a number"),
])
def test_a_bad_file_names_the_file_and_the_key(text: str, match: str) -> None:
    """TOML and shape errors: one ConfigError, naming the file and the key."""
    with pytest.raises(ConfigError, match=match):
        parse_scene(text, "scenes/x.toml")


@pytest.mark.parametrize(("scene", "match"), [
    (Scene(effects=("glow", "sparkle")), r"x\.toml: effects\[1\]: no effect named 'sparkle'"),
    (Scene(transition="fold"), r"x\.toml: transition: no transition named 'fold'"),
    (Scene(params={"blur": {"size": 1.0}}), r"x\.toml: params\.blur: no shader named 'blur'"),
    (Scene(params={"glow": {"size": 1.0}}), r"x\.toml: params\.glow\.size: no parameter 'size' \(parameters: amount"),
    (Scene(params={"glow": {"amount": True}}), r"params\.glow\.amount: expected a number, got true"),
    (Scene(params={"glow": {"amount": 2.5}}), r"params\.glow\.amount: 2\.5 is out of range 0 to 2"),
    (Scene(params={"glow": {"on": 1}}), r"params\.glow\.on: expected true or false, got 1"),
    (Scene(params={"glow": {"mode": 5}}), r"params\.glow\.mode: 5 is not one of 0, 1, 2"),
    (Scene(params={"glow": {"mode": 1.5}}), r"params\.glow\.mode: expected a whole number, got 1\.5"),
    (Scene(params={"glow": {"center": (0.5, 1.5)}}), r"params\.glow\.center\[1\]: 1\.5 is out of range 0 to 1"),
    (Scene(params={"glow": {"tint": (1.0, 0.5)}}), r"params\.glow\.tint: expected a list of 3 or 4 numbers"),
    (Scene(params={"glow": {"flash": True}}), r"params\.glow\.flash: an event"),
])
def test_a_scene_the_library_cannot_take_names_the_key(scene: Scene, match: str) -> None:
    """Names, types and ranges are checked against the library: out of range is an error, never clamped."""
    with pytest.raises(ConfigError, match=match):
        check_scene(scene, CATALOG, "x.toml")


@pytest.mark.parametrize(("name", "kept"), [("intro", "intro"), ("Drop 2", "Drop 2"), ("año_nuevo-1", "año_nuevo-1"),
                                            (" lead ", "lead"), ("", None), ("../etc", None), ("a.b", None),
                                            ("-x", None), ("x" * 41, None)])
def test_scene_names_fit_a_file_and_an_address(name: str, kept: str | None) -> None:
    """Letters, digits, spaces, _ and - (trimmed): nothing that climbs out of the folder."""
    if kept is not None:
        assert check_name(name) == kept
    else:
        with pytest.raises(ValueError, match="scene name"):
            check_name(name)


# --- the blend ----------------------------------------------------------------------------------------
def glow(values: dict[str, Value]) -> dict[str, dict[str, Value]]:
    return {"glow": values}


def test_halfway_through_the_blend_a_float_is_halfway() -> None:
    """1 s blend from 0.5 to 1.5: 1.0 at 0.5 s, 1.5 at the end and after."""
    at_once, blend = plan(glow({"amount": 0.5}), glow({"amount": 1.5}), now=10.0, seconds=1.0)
    assert at_once == []
    [(shader, key, value)] = blend.sample(10.5)
    assert (shader, key) == ("glow", "amount") and value == pytest.approx(1.0)
    assert blend.sample(11.0) == blend.sample(12.0) == [("glow", "amount", 1.5)]
    assert not blend.done(10.99) and blend.done(11.0)


def test_points_and_colours_glide_component_by_component() -> None:
    """A point2D and a colour are halfway at half time, each component."""
    _, blend = plan(glow({"center": (0.0, 1.0), "tint": (0.0, 0.0, 0.0, 1.0)}),
                    glow({"center": (1.0, 0.0), "tint": (1.0, 0.5, 0.0, 1.0)}), now=0.0, seconds=2.0)
    assert dict((k, v) for _s, k, v in blend.sample(1.0)) == {"center": pytest.approx((0.5, 0.5)),
                                                             "tint": pytest.approx((0.5, 0.25, 0.0, 1.0))}


def test_bools_and_menus_switch_at_the_start() -> None:
    """A bool and a long have no in-between: they are set at the recall, not blended."""
    at_once, blend = plan(glow({"on": False, "mode": 0, "amount": 0.0}), glow({"on": True, "mode": 2, "amount": 1.0}),
                          now=0.0, seconds=4.0)
    assert sorted(at_once) == [("glow", "mode", 2), ("glow", "on", True)]
    assert [(k, v) for _s, k, v in blend.sample(0.0)] == [("amount", 0.0)]


def test_a_blend_of_zero_is_a_cut() -> None:
    """[scenes] blend = 0: every value is set at the recall and nothing is left to glide."""
    at_once, blend = plan(glow({"amount": 0.0, "center": (0.0, 0.0)}), glow({"amount": 1.0, "center": (1.0, 1.0)}),
                          now=0.0, seconds=0.0)
    assert sorted(at_once) == [("glow", "amount", 1.0), ("glow", "center", (1.0, 1.0))]
    assert blend.tracks == [] and blend.done(0.0)


def test_the_dream_mix_glides_like_a_number() -> None:
    """The dream layer's mix is a track of its own."""
    blend = Blend([], began=0.0, seconds=2.0, dream=(0.0, 0.8))
    assert blend.dream_mix(0.5) == pytest.approx(0.2) and blend.dream_mix(3.0) == pytest.approx(0.8)


# --- the deck on a plain stage ----------------------------------------------------------------------------
class FakeStage:
    """The show as a scene sees it, in plain Python (engine/scenes/deck.py Stage)."""

    def __init__(self) -> None:
        self.look_now = Scene(effects=("mirror",), transition="crossfade", transition_seconds=2.0, fit="letterbox",
                              qr="always", hud=False, dream_mix=0.0)
        self.values: dict[str, dict[str, Value]] = {
            "glow": {"amount": 0.5, "on": False, "mode": 0, "center": (0.5, 0.5), "tint": (1.0, 1.0, 1.0, 1.0)},
            "wipe": {"softness": 0.1}}
        self.reports: list[str] = []
        self.refreshes = 0

    def catalog(self) -> SceneCatalog:
        return CATALOG

    def look(self, shaders: Iterable[str] | None = None) -> Scene:
        names = list(shaders) if shaders is not None else [*(self.look_now.effects or ()), "wipe"]
        return replace(self.look_now, params={n: dict(self.values[n]) for n in names if n in self.values})

    def switch(self, scene: Scene) -> None:
        parts = {k: v for k, v in vars(scene).items() if v is not None and k not in ("params", "style_preset",
                                                                                     "dream_mix")}
        self.look_now = replace(self.look_now, **parts)

    def set_param(self, shader: str, key: str, value: Value) -> None:
        if shader not in self.values:
            raise ParamError(f"no shader named {shader!r}")
        self.values[shader][key] = value

    def set_dream_mix(self, mix: float) -> None:
        self.look_now = replace(self.look_now, dream_mix=mix)

    def params_changed(self) -> None:
        self.refreshes += 1

    def report(self, message: str) -> None:
        self.reports.append(message)


def deck_with(tmp_path: Path, scenes: dict[str, str], blend: float = 1.0) -> tuple[SceneDeck, FakeStage]:
    folder = tmp_path / "scenes"
    folder.mkdir(exist_ok=True)
    for name, text in scenes.items():
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    stage = FakeStage()
    return SceneDeck(folder, blend, stage, watch=False), stage


def test_a_recall_switches_the_chain_at_once_and_blends_the_values(tmp_path: Path) -> None:
    """Chain, transition, fit and overlay at the recall; numbers and the dream mix halfway at half the blend."""
    deck, stage = deck_with(tmp_path, {"night": dump_scene(LOOK, "night")}, blend=2.0)
    deck.command(Command(Action.SCENE, name="night"), now=100.0)
    assert stage.look_now.effects == ("glow",) and stage.look_now.fit == "cover" and stage.look_now.hud
    assert stage.values["glow"]["on"] is True and stage.values["glow"]["mode"] == 2  # switched at the start
    assert stage.values["glow"]["amount"] == pytest.approx(0.5)  # not yet moved
    deck.step(101.0)
    assert stage.values["glow"]["amount"] == pytest.approx(1.0)
    assert stage.values["glow"]["center"] == pytest.approx((0.375, 0.625))
    assert stage.look_now.dream_mix == pytest.approx(0.125)
    deck.step(102.5)
    assert stage.values["glow"]["amount"] == 1.5 and deck.blend is None
    assert (deck.recalled, deck.seq, deck.style) == ("night", 1, "neon-punk")
    deck.close()


def test_a_hand_on_a_control_takes_it_from_the_blend(tmp_path: Path) -> None:
    """The VJ moves glow.amount mid-blend: the blend lets go of it, and carries on with the rest."""
    deck, stage = deck_with(tmp_path, {"night": dump_scene(LOOK, "night")}, blend=2.0)
    deck.command(Command(Action.SCENE, 1.0), now=0.0)
    deck.touched(Command(Action.PARAM, 0.1, name="glow", key="amount"))
    stage.values["glow"]["amount"] = 0.1
    deck.step(1.0)
    assert stage.values["glow"]["amount"] == 0.1
    assert stage.values["wipe"]["softness"] == pytest.approx(0.25)
    deck.close()


def test_a_bad_scene_is_reported_and_the_look_stays(tmp_path: Path) -> None:
    """Out of range: reported at start (file and key) and again at its recall, nothing on the stage moves."""
    bad = dump_scene(replace(LOOK, params={"glow": {"amount": 9.0}}), "bad")
    deck, stage = deck_with(tmp_path, {"bad": bad, "good": dump_scene(LOOK, "good")})
    before = (stage.look_now, {k: dict(v) for k, v in stage.values.items()})
    deck.command(Command(Action.SCENE, name="bad"), now=0.0)
    assert (stage.look_now, stage.values) == before
    assert stage.reports and "bad.toml: params.glow.amount: 9 is out of range 0 to 2" in stage.reports[-1]
    assert [(i.name, i.index, i.error is not None) for i in deck.infos()] == [("bad", 1, True), ("good", 2, False)]
    deck.command(Command(Action.SCENE, name="good"), now=0.0)
    assert stage.look_now.effects == ("glow",)
    deck.close()


def test_scenes_are_numbered_in_name_order_ignoring_case(tmp_path: Path) -> None:
    """The Nth scene is the Nth name, A to Z whatever the case; a number past the end is reported."""
    deck, stage = deck_with(tmp_path, {n: "effects = []\n" for n in ("drop", "Build", "intro")})
    assert [i.name for i in deck.infos()] == ["Build", "drop", "intro"]
    deck.command(Command(Action.SCENE, 2.0), now=0.0)
    assert deck.recalled == "drop"
    deck.command(Command(Action.SCENE, 4.0), now=0.0)
    assert deck.recalled == "drop" and stage.reports[-1] == "no scene number 4 (scenes: Build, drop, intro)"
    deck.close()


def test_scene_delete_removes_the_file_and_the_entry(tmp_path: Path) -> None:
    """SCENE_DELETE: the writer deletes the file; the list loses it; deleting it again is reported."""
    deck, stage = deck_with(tmp_path, {"intro": "effects = []\n", "drop": "effects = []\n"})
    deck.command(Command(Action.SCENE_DELETE, name="intro"), now=0.0)

    def gone() -> bool:
        deck.step(0.0)
        return [i.name for i in deck.infos()] == ["drop"]

    wait_for(gone, what="the deleted scene is still listed")
    assert not (tmp_path / "scenes" / "intro.toml").exists()
    deck.command(Command(Action.SCENE_DELETE, name="intro"), now=0.0)
    assert stage.reports[-1].startswith("no scene 'intro'")
    deck.close()


def test_a_save_is_written_by_the_writer_thread(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SCENE_SAVE: the look now, with its style, in scenes/<name>.toml, written off the calling thread."""
    caplog.set_level(logging.INFO, logger="engine.scenes")
    deck, _stage = deck_with(tmp_path, {})
    deck.command(Command(Action.SCENE_SAVE, name="warm up", key="none"), now=0.0)

    def listed() -> bool:
        deck.step(0.0)
        return deck.infos() != ()

    wait_for(listed, what="the saved scene was not listed")
    saved = parse_scene((tmp_path / "scenes" / "warm up.toml").read_text(), "warm up.toml")
    assert saved.effects == ("mirror",) and saved.style_preset == "" and saved.params["wipe"] == {"softness": 0.1}
    assert [r.threadName for r in caplog.records if "saved to" in r.getMessage()] == ["scene-writer"]
    deck.close()


# --- keys, OSC, MIDI, page messages: the commands ----------------------------------------------------------
@pytest.mark.parametrize(("key", "shift", "expected"), [
    ("_3", True, Command(Action.SCENE, 3.0, source="keyboard")),
    ("EXCLAMATION", True, Command(Action.SCENE, 1.0, source="keyboard")),
    ("POUND", True, Command(Action.SCENE, 3.0, source="keyboard")),
    ("PARENLEFT", True, Command(Action.SCENE, 9.0, source="keyboard")),
    ("_3", False, Command(Action.EFFECT, 3.0, source="keyboard")),
    ("EXCLAMATION", False, None),
    ("B", True, Command(Action.BLACKOUT, source="keyboard")),
])
def test_shift_and_a_digit_recall_a_scene(key: str, shift: bool, expected: Command | None) -> None:
    """Shift+1..9 (the digit, or a US layout's shifted symbol) recall scenes; without Shift digits stay effects."""
    assert command_for_key(key, shift) == expected


@pytest.mark.parametrize(("address", "args", "expected"), [
    ("/engine/scene/2", [], Command(Action.SCENE, 2.0, source="osc")),
    ("/engine/scene/intro", [], Command(Action.SCENE, name="intro", source="osc")),
    ("/engine/scene", ["Drop 2"], Command(Action.SCENE, name="Drop 2", source="osc")),
    ("/engine/scene", [3], Command(Action.SCENE, 3.0, source="osc")),
])
def test_osc_addresses_recall_scenes(address: str, args: list[object], expected: Command) -> None:
    """By number in the address, by name in the address, or by either as the argument."""
    assert command_for(address, args) == expected


def test_an_osc_scene_without_a_scene_says_so() -> None:
    """/engine/scene alone: an OscError naming what is missing."""
    with pytest.raises(OscError, match="expected a scene's name or number"):
        command_for("/engine/scene", [])


def test_a_pad_learned_for_a_scene_recalls_it_on_press_only(tmp_path: Path) -> None:
    """Learn: the next note is the scene's; press recalls, release does nothing; the file keeps it."""
    m = MidiMap()
    m.learn(Target("scene", name="drop"))
    m.handle(mido.Message("note_on", channel=9, note=40, velocity=100))
    assert m.handle(mido.Message("note_on", channel=9, note=40, velocity=90)) == Command(Action.SCENE, name="drop",
                                                                                         source="midi")
    assert m.handle(mido.Message("note_off", channel=9, note=40)) is None
    m.save(tmp_path / "map.json")
    assert MidiMap.load(tmp_path / "map.json").mappings == {Control("note", 9, 40): Target("scene", name="drop")}


def test_a_scene_target_needs_its_name() -> None:
    """A MIDI scene target without a scene could not fire anything: refused."""
    with pytest.raises(ValueError, match="needs the scene's name"):
        check_mappable(Target("scene"))


@pytest.mark.parametrize(("msg", "match"), [
    ({"type": "command", "action": "scene_save", "name": "../x"}, "name: scene name"),
    ({"type": "command", "action": "scene_save"}, "name: scene name ''"),
    ({"type": "command", "action": "scene"}, "scene needs name"),
    ({"type": "midi_learn", "target": {"action": "scene"}}, "name: expected text"),
])
def test_the_page_scene_messages_are_checked(msg: dict[str, object], match: str) -> None:
    """A scene command or learn without a usable name is a bad_message, never a file outside the folder."""
    import json

    with pytest.raises(vp.VjProtocolError, match=match) as err:
        vp.parse(json.dumps(msg))
    assert err.value.code == "bad_message"


# --- the show loop on GL ---------------------------------------------------------------------------------------
SIZE = (160, 90)


def show_with(ctx: moderngl.Context, folder: Path, blend: float = 0.0, inbox: Inbox | None = None) -> ShowLoop:
    cfg: Config = make_config({"shaders.dir": str(SHADERS), "scenes.dir": str(folder), "scenes.blend": blend,
                               "show.transition": 0.0})
    return ShowLoop(ctx, cfg, SIZE, inbox or Inbox(), "http://127.0.0.1:3000")


@pytest.fixture
def fb(ctx: moderngl.Context) -> Iterator[moderngl.Framebuffer]:
    f = target(ctx, SIZE)
    yield f
    f.release()


class Frames:
    """Draws the show's frames into ``fb`` on a clock of its own that only goes forward."""

    def __init__(self, show: ShowLoop, fb: moderngl.Framebuffer) -> None:
        self.show, self.fb, self.now = show, fb, 100.0

    def next(self, dt: float = 0.01) -> np.ndarray:
        self.now += dt
        self.show.frame(self.now, self.fb)
        rgb = np.frombuffer(self.fb.read(components=3), dtype=np.uint8).reshape(SIZE[1], SIZE[0], 3)
        return rgb.astype(np.int16)

    def until(self, done: Callable[[], object], what: str, timeout: float = 10.0) -> None:
        """Frames, about a hundred a second, until ``done()`` holds."""
        wait_for(lambda: (self.next(), bool(done()))[1], timeout, what)


def watched(show: ShowLoop) -> None:
    """Wait until the show's scene watcher is up: files written from now on are seen."""
    wait_for(show.scenes.folder.watching.is_set, 5.0, "the scene watcher did not start")


def pixelate(show: ShowLoop) -> float:
    entry = show.library.get("pixelate")
    assert entry is not None
    value = entry.params.get("cellSize")
    assert isinstance(value, float)
    return value


def test_a_recalled_scene_draws_the_saved_frame(ctx: moderngl.Context, fb: moderngl.Framebuffer,
                                                tmp_path: Path) -> None:
    """Save the look, change chain and parameters, recall: the frame is the saved one again (the show is frozen,
    so shader time stands still)."""
    show = show_with(ctx, tmp_path / "scenes")
    frames = Frames(show, fb)
    try:
        show.inbox.images.put(quadrants((64, 64)))
        frames.until(lambda: show.board.read().current_id == "quads", "the image never showed")
        for cmd in (Command(Action.SET_EFFECT, name="pixelate"), Command(Action.PARAM, 40.0, name="pixelate",
                                                                        key="cellSize"), Command(Action.FREEZE, 1.0)):
            show.inbox.commands.put(cmd)
        saved = frames.next()
        show.inbox.commands.put(Command(Action.SCENE_SAVE, name="big cells"))
        frames.until(lambda: show.board.read().scenes, "the saved scene was never listed")
        show.inbox.commands.put(Command(Action.PARAM, 4.0, name="pixelate", key="cellSize"))
        show.inbox.commands.put(Command(Action.SET_EFFECT, name="posterize", slot=1))
        changed = frames.next(1.0)
        assert np.abs(changed - saved).mean() > 10.0, "the change did not change the picture"
        show.inbox.commands.put(Command(Action.SCENE, name="big cells"))
        back = frames.next(1.0)
        assert show.compositor.effects == ["pixelate"]
        assert np.abs(back - saved).max() <= 2, "the recalled look is not the saved one"
    finally:
        show.release()


def test_the_show_blends_a_recall_over_the_configured_seconds(ctx: moderngl.Context, fb: moderngl.Framebuffer,
                                                               tmp_path: Path) -> None:
    """[scenes] blend = 2: the chain at once, a float parameter halfway after 1 s, a bool at the start."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    (folder / "a.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 100.0\nshape = 2\n')
    show = show_with(ctx, folder, blend=2.0)
    try:
        show.apply(Command(Action.PARAM, 20.0, name="pixelate", key="cellSize"), 10.0)
        show.apply(Command(Action.SCENE, name="a"), 10.0)
        entry = show.library.get("pixelate")
        assert entry is not None and entry.params.get("shape") == 2 and show.compositor.effects == ["pixelate"]
        show.frame(11.0, fb)
        assert pixelate(show) == pytest.approx(60.0)
        show.frame(12.0, fb)
        assert pixelate(show) == 100.0 and show.scenes.blend is None
        assert (show.board.read().scene, show.board.read().scene_seq) == ("a", 1)
    finally:
        show.release()


def test_editing_a_scene_file_changes_what_its_recall_does(ctx: moderngl.Context, fb: moderngl.Framebuffer,
                                                          tmp_path: Path) -> None:
    """The watcher takes an edited file: the next recall brings the new value."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    file = folder / "drop.toml"
    file.write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 10.0\n')
    show = show_with(ctx, folder)
    try:
        show.apply(Command(Action.SCENE, name="drop"), 1.0)
        assert pixelate(show) == 10.0
        watched(show)
        file.write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 90.0\n')

        def reloaded() -> bool:
            scene = show.scenes.folder.entries["drop"].scene
            return scene is not None and scene.params["pixelate"]["cellSize"] == 90.0

        Frames(show, fb).until(reloaded, "the edited file was not reloaded")
        show.apply(Command(Action.SCENE, name="drop"), 2.0)
        assert pixelate(show) == 90.0
    finally:
        show.release()


def test_a_bad_scene_file_is_reported_and_the_others_still_recall(ctx: moderngl.Context, fb: moderngl.Framebuffer,
                                                                  tmp_path: Path) -> None:
    """A file broken on disk: one error naming file and key on the HUD and in the list; its recall changes
    nothing; the other scenes still recall."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    (folder / "good.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 30.0\n')
    show = show_with(ctx, folder)
    try:
        watched(show)
        (folder / "wild.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 500.0\n')
        (folder / "typo.toml").write_text('effects = ["pixelate"\n')
        Frames(show, fb).until(lambda: len(show.board.read().scenes) == 3, "the new files were not listed")
        errors = {i.name: i.error for i in show.board.read().scenes}
        assert errors["good"] is None
        assert errors["wild"] == f"{folder / 'wild.toml'}: params.pixelate.cellSize: 500 is out of range 4 to 120"
        assert str(errors["typo"]).startswith(f"{folder / 'typo.toml'}: not valid TOML")
        assert any("wild.toml: params.pixelate.cellSize" in e for e in show.board.read().errors)  # the HUD's
        show.apply(Command(Action.SCENE, name="wild"), 5.0)
        assert show.compositor.effects == [] and pixelate(show) != 500.0
        show.apply(Command(Action.SCENE, name="good"), 5.0)
        assert show.compositor.effects == ["pixelate"] and pixelate(show) == 30.0
    finally:
        show.release()


# --- MIDI and OSC, on today's paths --------------------------------------------------------------------------
CONTROLLER = "stagecraft-scene-pads"


def test_a_midi_pad_recalls_a_scene_through_a_real_port(jack: str, ctx: moderngl.Context,  # noqa: F811
                                                         fb: moderngl.Framebuffer, tmp_path: Path) -> None:
    """A note mapped to a scene, played on a JACK port: the show recalls the scene."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    (folder / "drop.toml").write_text('effects = ["pixelate"]\n[params.pixelate]\ncellSize = 77.0\n')
    m = MidiMap()
    m.mappings = {Control("note", 9, 36): Target("scene", name="drop")}
    m.save(tmp_path / "map.json")
    inbox = Inbox()
    show = show_with(ctx, folder, inbox=inbox)
    controller = mido.Backend(JACK, load=True).open_output(CONTROLLER, virtual=True)
    midi = MidiInput(MidiConfig(input=CONTROLLER, backend=JACK), inbox.commands, map_path=tmp_path / "map.json")
    midi.start()
    try:
        controller.send(mido.Message("note_on", channel=9, note=36, velocity=100))
        Frames(show, fb).until(lambda: show.board.read().scene == "drop", "the pad did not recall the scene")
        assert pixelate(show) == 77.0 and show.compositor.effects == ["pixelate"]
    finally:
        midi.stop()
        controller.close()
        show.release()


def test_a_scene_is_learned_from_the_page(jack: str, tmp_path: Path) -> None:  # noqa: F811
    """midi_learn {action: scene, name}: the next pad is bound, and pressing it sends the scene's recall."""
    controller = mido.Backend(JACK, load=True).open_output(CONTROLLER, virtual=True)
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "vj.token": TOKEN, "midi.input": CONTROLLER, "midi.backend": JACK,
                       "midi.map_file": str(tmp_path / "map.json")})
    b = Backstage(cfg, Inbox(), StateBoard(), "http://127.0.0.1")
    b.start()

    async def go() -> None:
        async with page(b) as p:
            await p.until(lambda: p.parts["midi"]["available"])
            ack = await p.ask(type="midi_learn", target={"action": "scene", "name": "drop"})
            assert ack["type"] == "ack"
            await p.until(lambda: p.parts["midi"]["learning"] == {"action": "scene", "shader": "", "param": "",
                                                                   "low": 0.0, "high": 1.0, "name": "drop"})
            controller.send(mido.Message("note_on", channel=0, note=48, velocity=99))
            await p.until(lambda: bool(p.parts["midi"]["mappings"]))
            assert p.parts["midi"]["mappings"][0]["target"]["name"] == "drop"
            controller.send(mido.Message("note_on", channel=0, note=48, velocity=99))
            cmd = await asyncio.to_thread(b.inbox.commands.get, True, 5.0)
            assert (cmd.action, cmd.name, cmd.source) == (Action.SCENE, "drop", "midi")

    try:
        asyncio.run(go())
    finally:
        b.stop()
        controller.close()


def test_an_osc_message_recalls_a_scene_over_udp(ctx: moderngl.Context, fb: moderngl.Framebuffer,
                                                 tmp_path: Path) -> None:
    """/engine/scene/2 from a UDP client: the second scene (by name) is recalled by the show, and the backstage
    takes its generation style with no control page open; a scene without a style then leaves it."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    (folder / "a intro.toml").write_text("effects = []\n")
    (folder / "b drop.toml").write_text('effects = ["pixelate"]\nstyle_preset = "anime"\n'
                                        '[params.pixelate]\ncellSize = 66.0\n')
    inbox = Inbox()
    show = show_with(ctx, folder, inbox=inbox)
    cfg = make_config({"server.host": "127.0.0.1", "server.port": free_port(), "generation.backend": "procedural",
                       "generation.style_preset": "cinematic"})
    backstage = Backstage(cfg, inbox, show.board, "http://127.0.0.1")
    backstage.start()
    style = lambda: backstage.parts.controls.cfg.generation.style_preset  # noqa: E731
    assert style() == "cinematic"

    async def send() -> None:
        osc = OscControl(OscConfig(enabled=True, host="127.0.0.1", port=0), inbox.commands, StateBoard())
        await osc.start()
        try:
            client = SimpleUDPClient("127.0.0.1", osc.port)
            client.send_message("/engine/scene/2", [])
            for _ in range(200):
                if osc.received:
                    break
                await asyncio.sleep(0.01)
            client.close()
        finally:
            osc.stop()

    try:
        asyncio.run(send())
        frames = Frames(show, fb)
        frames.until(lambda: show.board.read().scene == "b drop", "the OSC recall did not arrive")
        assert pixelate(show) == 66.0
        frames.until(lambda: style() == "anime", "the backstage did not take the scene's style")
        show.inbox.commands.put(Command(Action.SCENE, name="a intro"))
        frames.until(lambda: show.board.read().scene_seq == 2, "the second recall did not arrive")
        time.sleep(4 * SCENE_WATCH_S)  # the backstage looks every SCENE_WATCH_S
        assert style() == "anime"
    finally:
        backstage.stop()
        show.release()


# --- the keyboard, in a real window --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = start_xvfb()
    yield server
    server.stop()


def test_shift_1_in_the_window_recalls_the_first_scene(xserver: XServer, tmp_path: Path) -> None:
    """xdotool presses Shift+1 on the show's window: scene 1 of scenes/ (in the show's folder) is recalled."""
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "opening.toml").write_text('effects = []\n[overlay]\nhud = true\n')
    p = EngineProcess(["--size", "320x180", "--fps", "30", "--set", 'server.public_url="http://10.9.8.7:3000"'],
                      tmp_path, xserver.env())
    try:
        p.wait_for("window: 320x180")
        win = find_window(xserver, "Stagecraft")
        press(xserver, win, "shift+1")
        p.wait_for("scene opening recalled", timeout=10)
        press(xserver, win, "q")
        assert p.wait(20) == 0, p.output
    finally:
        p.kill()
    assert "Traceback" not in p.output
