"""Is this folder a model the local backend can load? Read from its files alone (no torch, no network).

A diffusers pipeline folder holds ``model_index.json`` (which pipeline class, which components)
and one subfolder per component. Loading a broken folder fails deep inside diffusers with a
trace the VJ cannot act on, and only after seconds of reading weights; checking first turns each
problem into one line naming the folder and what is wrong, and, for a preset, the command that
fetches it. The same reading serves ``models list``.

    LocalModelError (EngineError)   the model cannot be used (its folder here, its device in ``device``):
                                    ``str(err)`` is the whole story, one line
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.gen.local.presets import PULL, Kind

PIPELINES: dict[str, Kind] = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "sd": ("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
    "sdxl": ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
}
WITH_WEIGHTS = frozenset({"unet", "vae", "text_encoder", "text_encoder_2", "safety_checker"})
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HALF = "fp16"  # the weight variant the pull prefers and the loader asks for when it is there


class LocalModelError(EngineError):
    """The local model cannot be used: its folder is missing, not diffusers, the wrong kind or incomplete,
    or the device asked for is not there."""


@dataclass(frozen=True)
class ModelFolder:
    """A checked pipeline folder: what it is and what it carries."""

    path: Path
    kind: Kind
    class_name: str
    components: tuple[str, ...]  # the ones model_index.json names and the folder has
    missing_optional: tuple[str, ...]  # named but absent, and not needed (safety checker, image encoder)
    safety_checker: bool  # a safety checker and its feature extractor are both there
    native_size: int  # the UNet's sample size x the VAE's scale factor: the size it was made for
    variant: str | None  # "fp16" when the UNet's weights come only (or also) as fp16 files


def _where(path: Path) -> str:
    return str(path)


def _read_json(file: Path, folder: Path) -> dict[str, object]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise LocalModelError(f"{_where(folder)}: cannot read {file.name} ({err.strerror or err})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LocalModelError(f"{_where(folder)}: {file.name} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise LocalModelError(f"{_where(folder)}: {file.name} is not a JSON object")
    return data


def weight_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)) \
        if folder.is_dir() else []


def variant_of(file: Path) -> str | None:
    """``model.fp16.safetensors`` → "fp16"; ``model.safetensors`` (or a shard of it) → None."""
    stem = file.name.rsplit(".", 1)[0]
    parts = stem.split(".")
    if len(parts) < 2:
        return None
    return parts[-1].split("-")[0] or None


def choose_variant(component: Path, half: bool) -> str | None:
    """"fp16" when the component's weights come only as fp16 files, or also and ``half`` precision is wanted."""
    variants = {variant_of(f) for f in weight_files(component)}
    if HALF in variants and (half or None not in variants):
        return HALF
    return None


def _native_size(folder: Path, components: tuple[str, ...]) -> int:
    """The UNet's sample size times the VAE's down-sampling (2 per level past the first)."""
    unet = _read_json(folder / "unet" / "config.json", folder)
    sample = unet.get("sample_size")
    scale = 8
    if "vae" in components and (folder / "vae" / "config.json").is_file():
        vae = _read_json(folder / "vae" / "config.json", folder)
        channels = vae.get("block_out_channels")
        if isinstance(channels, list) and channels and vae.get("_class_name") == "AutoencoderKL":
            scale = 2 ** (len(channels) - 1)
    size = sample[0] if isinstance(sample, list) and sample else sample
    return int(size) * scale if isinstance(size, int) and size > 0 else 512


def missing_folder_message(path: Path, pull_name: str = "") -> str:
    how = f"; fetch it with: {PULL} {pull_name}" if pull_name else ""
    return f"{_where(path)}: no such model folder{how}"


def inspect_model(path: Path, pull_name: str = "") -> ModelFolder:
    """Check ``path`` is a loadable SD 1.x/2.x or SDXL pipeline folder; LocalModelError otherwise.

    ``pull_name``: the preset that would fill this folder, named in the message when it is missing.
    """
    if not path.is_dir():
        if path.exists():
            raise LocalModelError(f"{_where(path)}: not a folder (a diffusers model is a folder with "
                                   "model_index.json; single .safetensors/.ckpt files are not supported)")
        raise LocalModelError(missing_folder_message(path, pull_name))
    index_file = path / "model_index.json"
    if not index_file.is_file():
        how = f" (fetch one with: {PULL} {pull_name})" if pull_name else ""
        raise LocalModelError(f"{_where(path)}: no model_index.json: not a diffusers pipeline folder{how}")
    index = _read_json(index_file, path)
    class_name = str(index.get("_class_name", ""))
    kind = PIPELINES.get(class_name)
    if kind is None:
        allowed = " or ".join(PIPELINES)
        raise LocalModelError(f"{_where(path)}: a {class_name or 'nameless'} model; the local backend runs "
                               f"{allowed} folders (SD 1.x/2.x, SDXL and their turbo versions)")
    named = {k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)
             and len(v) == 2 and v[0] is not None and v[1] is not None}
    for name in REQUIRED[kind]:
        if name not in named:
            raise LocalModelError(f"{_where(path)}: model_index.json names no {name}, which a {class_name} needs")
        sub = path / name
        if not sub.is_dir():
            raise LocalModelError(f"{_where(path)}: the {name}/ folder is missing (model_index.json names it); "
                                   "the download is incomplete")
        if name in WITH_WEIGHTS and not weight_files(sub):
            raise LocalModelError(f"{_where(path)}: {name}/ has no weights (*.safetensors or *.bin); "
                                   "the download is incomplete")
    present = tuple(sorted(n for n in named if (path / n).is_dir()))
    missing = tuple(sorted(named - set(present)))
    checker = "safety_checker" in present and "feature_extractor" in present \
        and bool(weight_files(path / "safety_checker"))
    return ModelFolder(path, kind, class_name, present, missing, checker, _native_size(path, present),
                       choose_variant(path / "unet", half=False))


def inspect_tiny_vae(path: Path, pull_name: str = "") -> Path:
    """Check ``path`` holds an ``AutoencoderTiny`` (config.json and weights); LocalModelError otherwise."""
    if not path.is_dir():
        raise LocalModelError(missing_folder_message(path, pull_name))
    config = path / "config.json"
    if not config.is_file():
        raise LocalModelError(f"{_where(path)}: no config.json: not a diffusers autoencoder folder")
    class_name = _read_json(config, path).get("_class_name")
    if class_name != "AutoencoderTiny":
        raise LocalModelError(f"{_where(path)}: a {class_name or 'nameless'} model, not an AutoencoderTiny "
                               "(TAESD/TAESDXL)")
    if not weight_files(path):
        raise LocalModelError(f"{_where(path)}: no weights (*.safetensors or *.bin); the download is incomplete")
    return path


def is_pipeline_folder(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def size_on_disk(path: Path) -> int:
    """Bytes of every file under ``path`` (0 when it is not there)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
