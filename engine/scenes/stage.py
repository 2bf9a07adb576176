"""The show loop as a scene's ``Stage``: the compositor, the shader library and the director, seen narrowly.

Everything here runs on the render thread. The host is typed by what this module touches (Protocols
below), not by the show loop's class, so the scenes package imports nothing that touches GL and the
show loop can hand itself in (``ShowStage(self)``). Two members reached are the compositor's own:
its cache of fit transforms (a new fit must not meet images fitted the old way) and its join card's
settings (the QR mode changes, the rest of the card stays); the compositor has no public setter for
either yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.config import Config
from engine.scenes.scene import Scene, SceneCatalog
from engine.shaders.params import ParamError, ParamStore
from engine.shaders.source import InputType, ShaderSource, Value

if TYPE_CHECKING:
    from engine.render.compositor import JoinInfo


class _Entry(Protocol):
    @property
    def params(self) -> ParamStore: ...

    @property
    def source(self) -> ShaderSource | None: ...

    @property
    def usable(self) -> bool: ...


class _Library(Protocol):
    @property
    def generation(self) -> int: ...

    @property
    def entries(self) -> Mapping[str, _Entry]: ...

    def effects(self) -> list[str]: ...

    def transitions(self) -> list[str]: ...


class _Compositor(Protocol):
    effects: list[str]
    transition: str
    fit: str
    dream_mix: float

    @property
    def _fits(self) -> dict[Any, Any]: ...

    @property
    def _join(self) -> JoinInfo | None: ...

    def set_join(self, join: JoinInfo) -> None: ...

    def set_hud(self, pixels: np.ndarray | None) -> None: ...


class _Director(Protocol):
    transition: float


class Host(Protocol):
    """The parts of the show loop a scene reads and sets."""

    hud: bool
    _catalog_dirty: bool

    @property
    def cfg(self) -> Config: ...

    @property
    def compositor(self) -> _Compositor: ...

    @property
    def library(self) -> _Library: ...

    @property
    def director(self) -> _Director: ...

    def report(self, message: str) -> None: ...


class ShowStage:
    """``engine.scenes.deck.Stage`` on the show loop."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._catalog = SceneCatalog()
        self._catalog_of = -1  # the library generation it was made from

    def catalog(self) -> SceneCatalog:
        lib = self.host.library
        if self._catalog_of != lib.generation:
            self._catalog_of = lib.generation
            inputs = {name: {i.name: i for i in e.source.params}
                      for name, e in lib.entries.items() if e.usable and e.source is not None}
            self._catalog = SceneCatalog(frozenset(lib.effects()), frozenset(["crossfade", *lib.transitions()]),
                                         inputs)
        return self._catalog

    def look(self, shaders: Iterable[str] | None = None) -> Scene:
        host, comp = self.host, self.host.compositor
        names = list(shaders) if shaders is not None else [*comp.effects, comp.transition]
        params: dict[str, dict[str, Value]] = {}
        for name in names:
            entry = host.library.entries.get(name)
            if entry is None or entry.source is None:
                continue  # the built-in crossfade, or a shader gone from the library
            values = entry.params.values()
            params[name] = {i.name: values[i.name] for i in entry.source.params
                            if i.type is not InputType.EVENT and i.name in values}
        join = comp._join
        return Scene(
            effects=tuple(comp.effects), transition=comp.transition, transition_seconds=host.director.transition,
            fit=comp.fit, qr=join.qr_mode if join is not None else host.cfg.overlay.qr, hud=host.hud,
            dream_mix=comp.dream_mix if host.cfg.dream.enabled else None, params=params,
        )

    def switch(self, scene: Scene) -> None:
        host, comp = self.host, self.host.compositor
        if scene.effects is not None:
            comp.effects = list(scene.effects)
        if scene.transition is not None:
            comp.transition = scene.transition
        if scene.transition_seconds is not None:
            host.director.transition = scene.transition_seconds  # from the next transition on
        if scene.fit is not None and scene.fit != comp.fit:
            comp.fit = scene.fit
            comp._fits.clear()
        join = comp._join
        if scene.qr is not None and join is not None and scene.qr != join.qr_mode:
            comp.set_join(replace(join, qr_mode=scene.qr))  # remakes the cards: only when the mode changes
        if scene.hud is not None and scene.hud != host.hud:
            host.hud = scene.hud
            if not scene.hud:
                comp.set_hud(None)

    def set_param(self, shader: str, key: str, value: Value) -> None:
        entry = self.host.library.entries.get(shader)
        if entry is None:
            raise ParamError(f"no shader named {shader!r}")
        entry.params.set(key, value)

    def set_dream_mix(self, mix: float) -> None:
        if self.host.cfg.dream.enabled:
            self.host.compositor.dream_mix = min(1.0, max(0.0, mix))

    def params_changed(self) -> None:
        self.host._catalog_dirty = True

    def report(self, message: str) -> None:
        self.host.report(message)
