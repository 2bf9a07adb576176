"""A checked model folder onto its device: the text-to-image pipeline and an image-to-image one sharing its weights.

Runs on the model worker's thread only. Loading takes tens of seconds for a real model, so it
reports its progress as it goes: the UNet (most of the bytes) is read on its own first, then
diffusers reads the rest of the pipeline around it, then everything moves to the device. Progress
is the share of weight bytes read so far, which is what the time goes into.

The image-to-image pipeline comes from ``AutoPipelineForImage2Image.from_pipe``: the same modules,
no second copy in memory. A TAESD tiny autoencoder, when configured, replaces the VAE in both.

Safety: when the folder carries a safety checker (and ``[local] safety``), diffusers runs it on every
image and reports what it flagged; otherwise one line in the log says what protects the show.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config import LocalConfig
from engine.gen.local.device import dtype_name, pick_device, pick_dtype
from engine.gen.local.folder import HALF, ModelFolder, choose_variant, inspect_model, inspect_tiny_vae, weight_files
from engine.gen.local.presets import Kind, Plan, defaults_for

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
MOVE_SHARE = 0.1  # of the progress bar, for moving the weights onto the device


@dataclass(frozen=True)
class Models:
    """What a job on the model worker gets: the loaded pipelines and how they run.

    ``text2img`` and ``img2img`` are diffusers pipelines (StableDiffusion[XL]Pipeline and its
    Img2Img twin) sharing one set of modules; call them only on the worker's thread.
    """

    text2img: Any
    img2img: Any
    device: str  # "cuda", "mps" or "cpu"
    dtype: Any  # torch.dtype of the weights
    kind: Kind  # "sd" (one text encoder) or "sdxl" (two)
    name: str  # preset or folder name
    folder: ModelFolder
    steps: int  # the model's own steps for text-to-image ([local] steps wins)
    cfg: float  # the model's own guidance ([local] cfg_scale wins)
    native_size: int  # the longest side it was made for ([local] size wins)
    safety: bool  # a safety checker runs on every image

    @property
    def device_line(self) -> str:
        return f"{self.device} {dtype_name(self.dtype)}"


def dtype_argument() -> str:
    """diffusers 0.40 renamed ``torch_dtype`` to ``dtype`` in pipeline loading (the old name now warns)."""
    try:
        major, minor = (int(p) for p in importlib.metadata.version("diffusers").split(".")[:2])
    except (ValueError, importlib.metadata.PackageNotFoundError):
        return "dtype"
    return "dtype" if (major, minor) >= (0, 40) else "torch_dtype"


def quiet_libraries() -> None:
    """No tqdm bars in the show's log (the VJ sees load progress on the page and the HUD instead), and
    only the libraries' errors: transformers' warnings are about its own optional parts (torchvision, say),
    and diffusers' SDXL image-to-image says "modules in AutoencoderKL should be kept in float32" twice per
    call, 40 lines a second under the dream layer."""
    import transformers.utils.logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    import diffusers.utils.logging as dlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()


def share_the_cpu(torch: Any) -> None:
    """On the CPU, torch computes on half the cores, leaving the rest to the show.

    Its kernels' threads wait for each other at every step: when another process (the render loop,
    the audience server) takes one of their cores, all of them stall. Measured on this 2-core machine
    while another process kept it busy, a 256 px tiny-model image took 1.0-1.3 s on torch's default two
    threads and 0.09-0.10 s on one.
    """
    threads = max(1, (os.cpu_count() or 2) // 2)
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)
        log.info("local model on the CPU: %d torch threads, the other cores left to the show", threads)


def _weight_bytes(folder: ModelFolder, names: tuple[str, ...]) -> int:
    return sum(f.stat().st_size for n in names for f in weight_files(folder.path / n))


def safety_note(name: str, folder: ModelFolder, wanted: bool) -> str | None:
    """The one log line when no safety checker runs on this model's images (None when one does)."""
    guard = ('the prompt blocklist (built in, plus [audience] blocklist_file) is what protects the show; '
             'set [audience] moderation = "approve" to see each prompt before it is made')
    if not folder.safety_checker:
        return f"local model {name} has no safety checker: {guard}"
    if not wanted:
        return f"local model {name}: its safety checker is off ([local] safety = false): {guard}"
    return None


def load_models(plan: Plan, cfg: LocalConfig, progress: Progress) -> Models:
    """Check, read and place the model; LocalModelError (or diffusers' own error) when it cannot be loaded."""
    progress(0.0, "checking the folder")
    folder = inspect_model(plan.folder, plan.preset.name if plan.preset is not None else "")
    tiny = inspect_tiny_vae(plan.tiny_vae, plan.tiny_vae_preset.name if plan.tiny_vae_preset else "") \
        if plan.tiny_vae is not None else None
    if plan.tiny_vae_preset is not None and plan.tiny_vae_preset.kind != folder.kind:
        log.warning("[local] tiny_vae %s decodes %s latents but %s is an %s model: its pictures will be wrong",
                    plan.tiny_vae_preset.name, plan.tiny_vae_preset.kind, plan.name, folder.kind)
    device = pick_device(cfg.device)
    dtype = pick_dtype(cfg.dtype, device)
    import torch

    quiet_libraries()
    from diffusers import AutoencoderTiny, AutoPipelineForImage2Image, AutoPipelineForText2Image, UNet2DConditionModel

    if device == "cpu":
        share_the_cpu(torch)
    half = dtype != torch.float32
    rest = tuple(n for n in folder.components if n != "unet")
    unet_bytes = _weight_bytes(folder, ("unet",))
    tiny_bytes = sum(f.stat().st_size for f in weight_files(tiny)) if tiny is not None else 0
    total = max(1, unet_bytes + _weight_bytes(folder, rest) + tiny_bytes)
    share = 1.0 - MOVE_SHARE

    progress(0.01, "reading unet")
    unet = UNet2DConditionModel.from_pretrained(folder.path, subfolder="unet", torch_dtype=dtype,
                                                variant=choose_variant(folder.path / "unet", half))
    progress(share * unet_bytes / total, "reading text encoders and vae")
    extra: dict[str, Any] = {name: None for name in folder.missing_optional}
    safety = folder.safety_checker and cfg.safety
    if folder.kind == "sd" and not safety:
        extra.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    variants = {choose_variant(folder.path / n, half) for n in folder.components}
    text2img = AutoPipelineForText2Image.from_pretrained(
        folder.path, unet=unet, variant=HALF if HALF in variants else None, **{dtype_argument(): dtype}, **extra)
    if tiny is not None:
        progress(share * (total - tiny_bytes) / total, "reading the tiny autoencoder")
        text2img.vae = AutoencoderTiny.from_pretrained(tiny, torch_dtype=dtype)
    progress(share, f"moving to {device}")
    text2img.to(device)
    text2img.set_progress_bar_config(disable=True)
    img2img = AutoPipelineForImage2Image.from_pipe(text2img)
    img2img.set_progress_bar_config(disable=True)
    note = safety_note(plan.name, folder, cfg.safety)
    if note is not None:
        log.warning("%s", note)
    own = defaults_for(plan.preset.name if plan.preset is not None else plan.name, folder.kind)
    progress(1.0, "loaded")
    return Models(text2img, img2img, device, dtype, folder.kind, plan.name, folder, own.steps, own.cfg,
                  own.size or folder.native_size, safety)
