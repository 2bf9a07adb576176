"""The scenes on the render thread: recall with a blend, save through the writer, the list for the pages.

The deck owns the folder (engine/scenes/store.py) and the blend running now (engine/scenes/blend.py);
it reaches the show only through a ``Stage`` (engine/scenes/stage.py is the show loop's), so the whole
recall and save logic is tested against a plain Python stage, without GL. Per frame it costs a queue
poll, and while a blend runs one ``set_param`` per gliding parameter; a scene is checked against the
shader library only when it is recalled or its file changes, and the list is rebuilt only when the
folder or the library changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from engine.commands import Action, Command
from engine.contract import SceneInfo
from engine.errors import ConfigError
from engine.scenes.blend import Blend, plan
from engine.scenes.scene import Scene, SceneCatalog, check_name, check_scene, dump_scene
from engine.scenes.store import Loaded, SceneFolder
from engine.shaders.params import ParamError
from engine.shaders.source import Value

log = logging.getLogger(__name__)

SCENE_ACTIONS = frozenset({Action.SCENE, Action.SCENE_SAVE, Action.SCENE_DELETE})
NO_STYLE = "none"  # scene_save's key for "no style preset" ("" = leave the style out of the scene)


class Stage(Protocol):
    """The show as a scene sees it (render thread only)."""

    def catalog(self) -> SceneCatalog:
        """The shader library now; the same object until the library changes."""
        ...

    def look(self, shaders: Iterable[str] | None = None) -> Scene:
        """The look now, every part, with the parameters of ``shaders`` (None: the chain's and the transition's)."""
        ...

    def switch(self, scene: Scene) -> None:
        """Set the parts that do not glide, where the scene has them: chain, transition, its duration, fit, overlay."""
        ...

    def set_param(self, shader: str, key: str, value: Value) -> None:
        """Set one parameter; ParamError when the shader or the parameter is not there (any more)."""
        ...

    def set_dream_mix(self, mix: float) -> None: ...

    def params_changed(self) -> None:
        """Values moved: the control pages' catalog is due a refresh."""
        ...

    def report(self, message: str) -> None: ...


class SceneDeck:
    def __init__(self, root: Path, blend_s: float, stage: Stage, watch: bool = True) -> None:
        self.folder = SceneFolder(root)
        self.blend_s = blend_s
        self.stage = stage
        self.blend: Blend | None = None
        self.recalled = ""  # the last scene recalled
        self.seq = 0  # recalls so far: a new number tells a control page a recall happened
        self.style: str | None = None  # the last recalled scene's style preset (None: it has none)
        self._infos: tuple[SceneInfo, ...] = ()
        self._infos_of: tuple[int, object] = (-1, None)
        self.folder.scan()
        catalog = stage.catalog()
        for entry in self.folder.entries.values():
            self._check(entry, catalog)
        if watch:
            self.folder.watch()
        log.info("scenes: %d in %s", len(self.folder.entries), root)

    # --- commands ----------------------------------------------------------------------------
    def command(self, cmd: Command, now: float) -> None:
        """SCENE (name, or value N: the Nth scene), SCENE_SAVE (name; key: style preset), SCENE_DELETE (name)."""
        if cmd.action is Action.SCENE_SAVE:
            style = None if not cmd.key else "" if cmd.key == NO_STYLE else cmd.key
            self.save(cmd.name, style)
            return
        number = cmd.value[0] if isinstance(cmd.value, tuple) and cmd.value else cmd.value
        name = self.folder.find(cmd.name, number if isinstance(number, int | float) else None)
        if name is None:
            known = ", ".join(self.folder.names()[:12]) or "none; save one from the VJ page"
            asked = repr(cmd.name) if cmd.name else f"number {number:g}" if isinstance(number, int | float) else "?"
            self.stage.report(f"no scene {asked} (scenes: {known})")
        elif cmd.action is Action.SCENE_DELETE:
            self.folder.delete(name)
        else:
            self.recall(name, now)

    def touched(self, cmd: Command) -> None:
        """A hand on a control during a blend wins over the blend, for that control."""
        if self.blend is None:
            return
        if cmd.action is Action.PARAM:
            self.blend.drop(cmd.name, cmd.key)
        elif cmd.action is Action.DREAM_MIX:
            self.blend.drop_dream()

    def recall(self, name: str, now: float) -> bool:
        """Switch to the scene and start its blend; a bad scene is reported and the look stays as it is."""
        entry = self.folder.entries[name]
        if entry.scene is None:
            self.stage.report(f"scene {name} not recalled: {entry.error}")
            return False
        try:
            scene = check_scene(entry.scene, self.stage.catalog(), entry.file)
        except ConfigError as err:
            self.stage.report(f"scene {name} not recalled: {err}")
            return False
        here = self.stage.look(scene.params)
        self.stage.switch(scene)
        dream = None
        if scene.dream_mix is not None and here.dream_mix is not None:
            dream = (here.dream_mix, scene.dream_mix)
        at_once, self.blend = plan(here.params, scene.params, now, self.blend_s, dream)
        for shader, key, value in at_once:
            self._set(shader, key, value)
        self.step(now)  # a cut ends here: its dream mix too
        self.recalled, self.style = name, scene.style_preset
        self.seq += 1
        self.stage.params_changed()
        log.info("scene %s recalled (%s)", name, f"blend {self.blend_s:g} s" if self.blend_s > 0 else "cut")
        return True

    def save(self, name: str, style: str | None) -> None:
        """The look now, as a scene file, written by the writer thread (the folder reports how it went)."""
        try:
            name = check_name(name)
        except ValueError as err:
            self.stage.report(str(err))
            return
        scene = replace(self.stage.look(), style_preset=style)
        self.folder.save(name, dump_scene(scene, name))

    # --- per frame ---------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """Take the folder's news, and move the blend on to ``now``."""
        if not self.folder.changes.empty():
            self._take()
        blend = self.blend
        if blend is None:
            return
        for shader, key, value in blend.sample(now):
            self._set(shader, key, value)
        mix = blend.dream_mix(now)
        if mix is not None:
            self.stage.set_dream_mix(mix)
        if blend.done(now):
            self.blend = None
            self.stage.params_changed()

    def _set(self, shader: str, key: str, value: Value) -> None:
        try:
            self.stage.set_param(shader, key, value)
        except ParamError as err:  # the shader changed under the blend: that track stops, once
            self.stage.report(f"scene {self.recalled or '?'}: {shader}: {err}")
            if self.blend is not None:
                self.blend.drop(shader, key)

    def _take(self) -> None:
        catalog = self.stage.catalog()
        for item in self.folder.take():
            if isinstance(item, str):
                self.stage.report(item)
            elif not item.gone:
                self._check(item, catalog)

    def _check(self, item: Loaded, catalog: SceneCatalog) -> None:
        """Report a file that cannot be recalled (it does not parse, or the library cannot take it), once."""
        if item.scene is None:
            self.stage.report(str(item.error))
            return
        try:
            check_scene(item.scene, catalog, item.file)
        except ConfigError as err:
            self.stage.report(str(err))
        else:
            log.info("scene %s read from %s", item.name, item.file)

    # --- state out ---------------------------------------------------------------------------
    def infos(self) -> tuple[SceneInfo, ...]:
        """The list for the control pages, rebuilt only when the folder or the shader library changed."""
        catalog = self.stage.catalog()
        if self._infos_of[0] == self.folder.generation and self._infos_of[1] is catalog:
            return self._infos
        out = []
        for index, name in enumerate(self.folder.names(), 1):
            entry = self.folder.entries[name]
            error = str(entry.error) if entry.error is not None else None
            if entry.scene is not None:
                try:
                    check_scene(entry.scene, catalog, entry.file)
                except ConfigError as err:
                    error = str(err)
            out.append(SceneInfo(name, index, error, entry.scene.style_preset if entry.scene else None))
        self._infos = tuple(out)
        self._infos_of = (self.folder.generation, catalog)
        return self._infos

    def close(self) -> None:
        self.folder.close()
