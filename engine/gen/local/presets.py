"""The local models we know by name, and where ``[local] model`` and ``tiny_vae`` point on disk.

A preset is a Hugging Face repository in diffusers format plus the knobs its model card gives:
how many denoising steps, how much guidance, the size it was trained at, and the tiny
autoencoder (TAESD) that decodes its latents. ``python -m engine models pull NAME`` fetches one
into ``<models_dir>/NAME``; the show only ever reads folders (it never fetches).

``[local] model`` (and ``tiny_vae``) resolve the same way: an existing path is used as it is,
else a preset name means ``<models_dir>/<name>``, whether or not it was pulled yet (the folder
check then says how to pull it). Pure: no torch, no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.config import LocalConfig

Kind = Literal["sd", "sdxl"]
PULL = "python -m engine models pull"


@dataclass(frozen=True)
class Preset:
    """A model we can pull: its repository, its shape and the knobs its model card asks for."""

    name: str
    repo: str
    kind: Kind
    steps: int  # denoising steps for text-to-image
    cfg: float  # guidance scale; 0 = no classifier-free guidance (turbo models)
    size: int  # the longest side it was trained at
    tiny_vae: str  # the tiny autoencoder preset that fits its latents ("" = none needed)
    about: str


@dataclass(frozen=True)
class TinyVae:
    """A TAESD-style autoencoder: decodes latents in a few ms instead of the full VAE's tens of ms."""

    name: str
    repo: str
    kind: Kind
    about: str


# Steps, guidance and size come from each model card:
# - stabilityai/sd-turbo and stabilityai/sdxl-turbo: "num_inference_steps=1, guidance_scale=0.0" at 512x512
#   (SDXL-Turbo too was trained at 512x512); for image-to-image "num_inference_steps * strength >= 1".
# - IDKiro/sdxs-512-0.9: one step, "CFG set to 0"; its vae/ folder already is a tiny autoencoder
#   (the original one is in vae_large/, which the pull leaves out).
# - stable-diffusion-v1-5/stable-diffusion-v1-5: its example runs diffusers' defaults, 50 steps at guidance 7.5,
#   512x512; we take 25 steps (half the time; the usual choice for live use, not a card figure).
# - stabilityai/stable-diffusion-xl-base-1.0: 1024x1024; its example runs diffusers' defaults (50 steps,
#   guidance 5.0); we take 30 steps at 7.0, again a live compromise rather than a card figure.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("sd-turbo", "stabilityai/sd-turbo", "sd", 1, 0.0, 512, "taesd",
           "SD 2.1 distilled to 1 step (fastest good-looking choice on a GPU)"),
    Preset("sdxl-turbo", "stabilityai/sdxl-turbo", "sdxl", 1, 0.0, 512, "taesdxl",
           "SDXL distilled to 1 step, at 512x512"),
    Preset("sdxs-512", "IDKiro/sdxs-512-0.9", "sd", 1, 0.0, 512, "",
           "SD 2.1-sized one-step model with its own tiny decoder (fastest on a CPU)"),
    Preset("sd-1.5", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd", 25, 7.5, 512, "taesd",
           "classic SD 1.5 with its safety checker, 25 steps"),
    Preset("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl", 30, 7.0, 1024, "taesdxl",
           "SDXL base 1.0 at 1024x1024, 30 steps (needs a big GPU)"),
)}

TINY_VAES: dict[str, TinyVae] = {v.name: v for v in (
    TinyVae("taesd", "madebyollin/taesd", "sd", "tiny decoder for SD 1.x/2.x latents"),
    TinyVae("taesdxl", "madebyollin/taesdxl", "sdxl", "tiny decoder for SDXL latents"),
)}


@dataclass(frozen=True)
class Defaults:
    """Steps, guidance and size for a model, from its preset or guessed from its name and shape."""

    steps: int
    cfg: float
    size: int | None  # None: the model folder's own (the UNet's sample size x 8)


def defaults_for(name: str, kind: Kind) -> Defaults:
    """A preset's card values; for any other folder, one-step knobs when its name says it is distilled."""
    preset = PRESETS.get(name)
    if preset is not None:
        return Defaults(preset.steps, preset.cfg, preset.size)
    lowered = name.lower()
    if any(word in lowered for word in ("turbo", "sdxs", "lightning", "hyper")):
        return Defaults(1, 0.0, None)
    return Defaults(25, 7.5, None) if kind == "sd" else Defaults(30, 7.0, None)


@dataclass(frozen=True)
class Plan:
    """Where the configured model and tiny autoencoder are expected on disk (not yet checked)."""

    name: str  # the preset name, else the folder's name
    folder: Path
    preset: Preset | None
    tiny_vae: Path | None
    tiny_vae_preset: TinyVae | None
    models_dir: Path

    def pull_hint(self) -> str:
        """The command that fetches this model, when it is a preset ("" otherwise)."""
        return f"{PULL} {self.preset.name}" if self.preset is not None else ""


def resolve(name: str, models_dir: Path, known: dict[str, Preset] | dict[str, TinyVae]) -> Path:
    """An existing path as it is, else ``<models_dir>/<name>`` (for a preset, or any folder name)."""
    as_path = Path(name).expanduser()
    if as_path.exists() or (name not in known and (as_path.is_absolute() or len(as_path.parts) > 1)):
        return as_path
    return models_dir / name


def plan_for(cfg: LocalConfig) -> Plan | None:
    """``[local] model`` and ``tiny_vae`` resolved to folders; None when no model is configured."""
    if not cfg.model.strip():
        return None
    models_dir = Path(cfg.models_dir).expanduser()
    folder = resolve(cfg.model.strip(), models_dir, PRESETS)
    preset = PRESETS.get(cfg.model.strip()) or PRESETS.get(folder.name)
    tiny = cfg.tiny_vae.strip()
    tiny_folder = resolve(tiny, models_dir, TINY_VAES) if tiny else None
    tiny_preset = TINY_VAES.get(tiny) or (TINY_VAES.get(tiny_folder.name) if tiny_folder is not None else None)
    return Plan(preset.name if preset is not None and cfg.model.strip() == preset.name else folder.name,
                folder, preset, tiny_folder, tiny_preset, models_dir)
