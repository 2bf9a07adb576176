"""The shader library: every effect and transition in ``shaders/``, kept live.

Lives on the render thread (it compiles). Changes reported by the watcher are
applied between frames; a file that fails to parse or compile keeps its last
good program running and carries the error until it is fixed. A file that goes
missing (deleted, or moved away for a moment by an editor's save) is treated the
same way: its entry stays, running its last good program with a "missing" error,
until the file comes back; only a shader that never loaded leaves the library.
Parameter values belong to the library entry, not to the program, so they
survive reloads and absences (see ``ParamStore.adapt`` for how they are refitted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import moderngl

from engine.contract import ParamInfo, ShaderInfo
from engine.errors import ShaderError
from engine.shaders.loader import SHADER_SUFFIXES, load_shader
from engine.shaders.params import ParamStore
from engine.shaders.program import IsfProgram, SharedTextures
from engine.shaders.source import Input, Kind, ShaderSource, shader_name

log = logging.getLogger(__name__)

WATCHED_SUFFIXES = (*SHADER_SUFFIXES, ".vs", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
PROBE_SIZE = (64, 36)
MISSING = "file is missing; the last good version is running"


@dataclass
class ShaderEntry:
    name: str
    path: Path
    source: ShaderSource | None = None
    program: IsfProgram | None = None  # the last version that compiled
    error: ShaderError | None = None
    params: ParamStore = field(default_factory=ParamStore)
    version: int = 0  # bumps on every successful (re)load

    @property
    def kind(self) -> Kind | None:
        return self.source.kind if self.source else None

    @property
    def usable(self) -> bool:
        return self.program is not None


def _param_info(inp: Input, value: object) -> ParamInfo:
    return ParamInfo(inp.name, inp.type.value, inp.label, inp.default, inp.min, inp.max, inp.values,
                     inp.labels, value)


class ShaderLibrary:
    def __init__(self, ctx: moderngl.Context, root: Path, shared: SharedTextures) -> None:
        self.ctx = ctx
        self.root = root
        self.shared = shared
        self.entries: dict[str, ShaderEntry] = {}
        self.generation = 0  # bumps whenever the list, a program or an error changes

    # --- loading ----------------------------------------------------------------
    def scan(self) -> None:
        """Load every shader file under the root (a missing folder is an empty library)."""
        if not self.root.is_dir():
            log.warning("shader folder %s does not exist: only the built-in shaders are available", self.root)
            return
        for path in sorted(self.root.rglob("*")):
            if path.suffix in SHADER_SUFFIXES and path.is_file():
                self.load(path)

    def load(self, path: Path) -> ShaderEntry:
        """(Re)load one file; on failure the entry keeps its last good program and records the error."""
        name = shader_name(path)
        entry = self.entries.get(name)
        if entry is not None and entry.path.resolve() != path.resolve():
            if entry.path.is_file():
                log.warning("%s: a shader named %s already exists (%s); this file is ignored", path, name, entry.path)
                return entry
            # Its own file is gone (renamed to another shader suffix?): this file takes over, values and all.
            log.info("shader %s now comes from %s (%s is missing)", name, path, entry.path)
            entry.path = path
        if entry is None:
            entry = ShaderEntry(name, path)
            self.entries[name] = entry
        self.generation += 1
        try:
            source = load_shader(path)
            program = IsfProgram(self.ctx, source, self.shared)
        except ShaderError as err:
            entry.error = err
            log.error("shader %s", err)
            return entry
        try:
            program.check_sizes(PROBE_SIZE, entry.params.fitted(source.inputs))
        except ShaderError as err:
            program.release()
            entry.error = err
            log.error("shader %s", err)
            return entry
        if entry.program is not None:
            entry.program.release()
        entry.source, entry.program, entry.error = source, program, None
        entry.params.adapt(source.inputs)
        entry.version += 1
        log.info("shader %s loaded (%s, %s)", name, source.kind.value, path)
        for warning in program.warnings:
            log.warning("shader %s: %s", path, warning)
        return entry

    def remove(self, path: Path) -> None:
        """The file is gone: a shader that ever loaded keeps running, flagged missing; one that never did leaves.

        Removing a live effect would silently drop it from the picture mid-show, and lose the
        VJ's values if the file comes back (an editor that saves by moving the file away first).
        """
        entry = self.entries.get(shader_name(path))
        if entry is None or entry.path.resolve() != path.resolve():
            return
        self.generation += 1
        if entry.program is not None:
            entry.error = ShaderError(str(path), None, MISSING)
            log.error("shader %s", entry.error)
            return
        del self.entries[entry.name]
        log.info("shader %s removed", entry.name)

    def apply_changes(self, paths: Iterable[Path]) -> None:
        """React to files that changed on disk: shaders, companion .vs files, imported images."""
        for path in sorted(set(paths)):
            if path.suffix in SHADER_SUFFIXES:
                if path.is_file():
                    self.load(path)
                else:
                    self.remove(path)
            else:
                for entry in list(self.entries.values()):
                    companion = entry.path.with_suffix(".vs") == path
                    depends = entry.source is not None and path.resolve() in {
                        p.resolve() for p in entry.source.depends
                    }
                    if (companion or depends) and entry.path.is_file():
                        self.load(entry.path)

    # --- asking -------------------------------------------------------------------
    def get(self, name: str) -> ShaderEntry | None:
        return self.entries.get(name)

    def effects(self) -> list[str]:
        return sorted(n for n, e in self.entries.items() if e.usable and e.kind in (Kind.EFFECT, Kind.GENERATOR))

    def transitions(self) -> list[str]:
        return sorted(n for n, e in self.entries.items() if e.usable and e.kind is Kind.TRANSITION)

    def errors(self) -> list[ShaderError]:
        return [e.error for e in sorted(self.entries.values(), key=lambda e: e.name) if e.error is not None]

    def catalog(self) -> tuple[ShaderInfo, ...]:
        """Every shader with its live parameters: what control surfaces show."""
        out = []
        for name in sorted(self.entries):
            e = self.entries[name]
            params = tuple(_param_info(i, e.params.get(i.name)) for i in (e.source.params if e.source else ()))
            out.append(ShaderInfo(name, e.kind.value if e.kind else "unknown", str(e.path),
                                  e.source.description if e.source else "", params,
                                  str(e.error) if e.error else None))
        return tuple(out)

    def release(self) -> None:
        for e in self.entries.values():
            if e.program is not None:
                e.program.release()
        self.entries.clear()
