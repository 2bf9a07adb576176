"""What the control page is told, built from the engine's state without sockets.

Each function turns one part of the show (snapshot, tempo, shader catalog, queue,
gallery, generation settings, backend, MIDI) into the plain dict of one message in
docs/vj-protocol.md. The hub sends a part again only when its dict changed.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.audio.live import Heard
from engine.config import Config, GenerationConfig, LocalConfig, StabilityConfig
from engine.contract import MappingOutput, ShaderInfo, ShaderProblem, ShowSnapshot
from engine.control.midi_input import MidiState
from engine.control.midi_map import target_dict
from engine.gen.images import image_url
from engine.ledger import GalleryItem
from engine.net.audience import Audience, Prompt
from engine.net.vj_protocol import SETTINGS
from engine.output.sink import OutputState

QUEUE_LIMIT = 200  # prompts listed per section; the page shows the totals beside them
GALLERY_LIMIT = 300
NUMBER_SETTINGS = ("width", "height", "cfg_scale", "steps", "samples", "strength")


def show_state(snap: ShowSnapshot) -> dict[str, Any]:
    return {
        "current": snap.current_id, "incoming": snap.incoming_id, "blackout": snap.blackout, "frozen": snap.frozen,
        "hud": snap.hud, "fps": round(snap.fps, 1), "frame_ms": round(snap.frame_ms, 2),
        "frame_p99_ms": round(snap.frame_p99_ms, 2), "queue_len": snap.queue_len, "effects": list(snap.effects),
        "transition": snap.transition, "size": list(snap.size), "errors": list(snap.errors),
        "dream_mix": round(snap.dream_mix, 3), "dream_fps": round(snap.dream_fps, 1),
        "outputs": [_output(o) for o in snap.outputs],
        "inputs": [{"name": i.name, "state": i.state, "detail": i.detail, "size": list(i.size)} for i in snap.inputs],
        "live_input": snap.live_input, "caption": snap.caption, "caption_hidden": snap.caption_hidden,
        "scenes": [asdict(s) for s in snap.scenes], "scene": snap.scene, "scene_seq": snap.scene_seq,
        "scene_style": snap.scene_style, "mapping_name": snap.mapping_name,
        "mapping_corners": [round(v, 5) for v in snap.mapping_corners], "mapping_grid": snap.mapping_grid,
        "mapping_outputs": [_mapping_output(o) for o in snap.mapping_outputs],
    }


def _mapping_output(o: MappingOutput) -> dict[str, Any]:
    """One venue output for the mapping editor: numbers flat as the mapping command takes them, rounded like
    the corners (1e-5 of the screen is far below a pixel)."""
    return {"name": o.name, "corners": [round(v, 5) for v in o.corners], "mesh": [round(v, 5) for v in o.mesh],
            "masks": [round(v, 5) for v in o.masks]}


def _output(o: OutputState) -> dict[str, Any]:
    return {"name": o.name, "state": o.state, "detail": o.detail, "receivers": o.receivers, "frames": o.frames,
            "dropped": o.dropped, "seconds": round(o.seconds, 1), "bytes": o.bytes, "file": Path(o.file).name}


def tempo_state(heard: Heard | None, link: bool = False) -> dict[str, Any]:
    if heard is None:
        return {"bpm": 0.0, "locked": False, "confidence": 0.0, "beats": 0, "bar_beat": 0, "source": "none",
                "audio": "no audio engine"}
    f = heard.features
    bpm = heard.locked_bpm or (f.bpm if f is not None else 0.0)
    if link:
        source = "link"
    elif heard.locked_bpm:
        source = "manual"
    else:
        source = "audio" if bpm else "none"
    return {
        "bpm": round(bpm, 1), "locked": heard.locked_bpm is not None,
        "confidence": round(f.confidence, 2) if f is not None else 0.0, "beats": heard.beats,
        "bar_beat": f.bar_beat if f is not None else 0, "source": source, "audio": heard.status.detail,
    }


def _shader(info: ShaderInfo) -> dict[str, Any]:
    return {"name": info.name, "path": info.path, "description": info.description, "error": info.error,
            "params": [asdict(p) for p in info.params]}


def shaders_state(catalog: Iterable[ShaderInfo], errors: Sequence[ShaderProblem]) -> dict[str, Any]:
    infos = list(catalog)
    return {
        "effects": [_shader(i) for i in infos if i.kind == "effect"],
        "transitions": [_shader(i) for i in infos if i.kind == "transition"],
        "errors": [asdict(e) for e in errors],
    }


def _item(audience: Audience, p: Prompt, now: float) -> dict[str, Any]:
    """One prompt for the page: its phone by handle, never by client id (a bearer credential)."""
    age = round(max(0.0, now - p.created), 1)
    return {"id": p.id, "text": p.text, "from": audience.handle(p.client_id), "age": age}


def queue_state(audience: Audience, now: float) -> dict[str, Any]:
    (pending, line), making = audience.waiting(), audience.generating()
    return {
        "pending": [_item(audience, p, now) for p in pending[:QUEUE_LIMIT]], "pending_total": len(pending),
        "line": [_item(audience, p, now) for p in line[:QUEUE_LIMIT]], "line_total": len(line),
        "generating": [_item(audience, p, now) for p in making],
    }


def gallery_state(items: Sequence[GalleryItem], url_prefix: str = "/vj/images/") -> dict[str, Any]:
    """Newest first; an image whose file the disk refused is still listed (its bytes are in memory)."""
    out = [{"id": i.id, "prompt_id": i.prompt_id, "text": i.text, "url": image_url(i.id, i.ext, url_prefix),
            "shown": True} for i in reversed(items[-GALLERY_LIMIT:])]
    return {"images": out}


def _choices(cls: type, name: str) -> list[str]:
    hints = typing.get_type_hints(cls, include_extras=False)
    return [str(v) for v in typing.get_args(hints[name])]


@functools.cache
def _fixed_choices() -> tuple[dict[str, list[str]], dict[str, list[float | None]]]:
    """The settings' choices and numeric ranges, from their config declarations: the same all show."""
    choices = {"aspect_ratio": _choices(GenerationConfig, "aspect_ratio"), "model": _choices(StabilityConfig, "model"),
               "img2img": _choices(GenerationConfig, "img2img")}
    fields = {f.name: f.metadata for f in dataclasses.fields(GenerationConfig)}
    limits = {k: [fields[k].get("min"), fields[k].get("max")] for k in NUMBER_SETTINGS}
    return choices, limits


# With the local model, the page's steps are the model's denoising steps (0 = its own; 1 for turbo models),
# not the v1 API's 10..50.
LOCAL_SETTINGS = {**SETTINGS, "steps": "local.steps"}


def _keys(local: bool) -> dict[str, str]:
    return LOCAL_SETTINGS if local else SETTINGS


def generation_state(cfg: Config, output_dir: str, style_presets: Iterable[str], local: bool = False
                     ) -> dict[str, Any]:
    """``local``: the primary backend is the local model (the settings then map to its knobs)."""
    settings = {}
    for name, key in _keys(local).items():
        section, field = key.split(".")
        settings[name] = getattr(getattr(cfg, section), field)
    choices, limits = _fixed_choices()
    if local:
        steps = next(f.metadata for f in dataclasses.fields(LocalConfig) if f.name == "steps")
        limits = {**limits, "steps": [steps.get("min"), steps.get("max")]}
    return {
        "settings": settings,
        "choices": {**choices, "style_preset": sorted(style_presets)},
        "limits": limits,
        "output_dir": output_dir,
    }


def settings_overrides(values: Mapping[str, object], local: bool = False) -> dict[str, object]:
    """The page's setting names → config keys (validated by ``config.with_overrides``)."""
    keys = _keys(local)
    return {keys[k]: v for k, v in values.items()}


def midi_state(state: MidiState | None) -> dict[str, Any]:
    if state is None:
        return {"available": False, "status": "MIDI off", "ports": [], "learning": None, "mappings": []}
    return {
        "available": state.available, "status": state.status, "ports": list(state.ports),
        "learning": target_dict(state.learning) if state.learning else None,
        "mappings": [{"control": asdict(c), "target": target_dict(t)} for c, t in state.mappings],
    }
