"""Tiny random-weight diffusers pipelines, built from config and saved like a real model folder.

Both shapes the local backend serves: SD 1.x (one CLIP text encoder) and SDXL (two, the second with
a projection, and a UNet with ``addition_embed_type="text_time"``). Each is a few MB, its VAE has four
levels so the scale factor is 8 as in the real models, and its tokenizer is built from a vocab and
merges file written here (nothing is fetched). ``save_pretrained`` writes the same layout as a pulled
model, so the tests load them through the same code path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NATIVE = 256  # the tiny models' own size: UNet sample_size 32 x VAE scale factor 8
TOKENS = 77


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-level alphabet: every byte as a printable character (as in the original BPE)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def write_tokenizer_files(folder: Path) -> Path:
    """A CLIP BPE vocabulary of single characters and no merges: every text tokenizes, a character a token."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def _tokenizer(scratch: Path, pad: str = "<|endoftext|>") -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(write_tokenizer_files(scratch)), model_max_length=TOKENS,
                                         pad_token=pad)


def _text_config(tokenizer: Any, projection: int = 32) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=TOKENS, projection_dim=projection,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_act="gelu",
    )


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=NATIVE,
    )


def _scheduler() -> Any:
    from diffusers import EulerAncestralDiscreteScheduler

    # sd-turbo's own scheduler; "trailing" spacing lets one step start from pure noise
    return EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           timestep_spacing="trailing", steps_offset=1)


def safety_checker(flags: bool) -> tuple[Any, Any]:
    """The real ``StableDiffusionSafetyChecker``, tiny; ``flags``: every image is over its thresholds."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_attention_heads": 2,
                     "num_hidden_layers": 1, "vocab_size": 16, "bos_token_id": 0, "eos_token_id": 2,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 16, "num_attention_heads": 2,
                       "num_hidden_layers": 1, "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():  # cosine distance is >= -1: a threshold of -2 flags all, 2 flags none
        checker.concept_embeds_weights.fill_(-2.0 if flags else 2.0)
        checker.special_care_embeds_weights.fill_(2.0)
    extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return checker, extractor


def build_sd(folder: Path, checker: bool | None = None) -> Path:
    """An SD 1.x-shaped pipeline in ``folder``; ``checker``: None = no safety checker, else one that flags or not."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tokenizer = _tokenizer(folder.parent / f"{folder.name}-vocab")
    unet = UNet2DConditionModel(
        sample_size=NATIVE // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32, attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    parts: dict[str, Any] = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    if checker is not None:
        sc, fe = safety_checker(checker)
        parts = {"safety_checker": sc, "feature_extractor": fe, "requires_safety_checker": True}
    pipe = StableDiffusionPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(tokenizer)), tokenizer=tokenizer, unet=unet,
        scheduler=_scheduler(), image_encoder=None, **parts,
    )
    pipe.save_pretrained(folder)
    return folder


def build_sdxl(folder: Path) -> Path:
    """An SDXL-shaped pipeline in ``folder``: two text encoders, the second with a projection."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer = _tokenizer(folder.parent / f"{folder.name}-vocab")
    tokenizer_2 = _tokenizer(folder.parent / f"{folder.name}-vocab-2", pad="!")
    unet = UNet2DConditionModel(
        sample_size=NATIVE // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=(2, 4),
        use_linear_projection=True, cross_attention_dim=64,  # the two encoders' 32 + 32, concatenated
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop ids of 8 + the pooled 32
        transformer_layers_per_block=(1, 1),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(tokenizer)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer_2)), tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, unet=unet, scheduler=_scheduler(), add_watermarker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def build_tiny_vae(folder: Path) -> Path:
    """A TAESD-shaped ``AutoencoderTiny``: four levels, so it decodes the same latents at the same scale."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                    num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1)).save_pretrained(folder)
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@dataclass(frozen=True)
class TinyModels:
    """The tiny pipelines of a test session, each a real diffusers folder under ``root``."""

    root: Path
    sd: Path  # SD 1.x shape, no safety checker
    sdxl: Path  # SDXL shape
    sd_flagged: Path  # SD 1.x shape whose safety checker flags every image
    taesd: Path  # a tiny autoencoder for [local] tiny_vae


def build_all(root: Path) -> TinyModels:
    """Every shape the tests load, saved under ``root`` (a few seconds and about 5 MB in all)."""
    return TinyModels(root, build_sd(root / "tiny-sd"), build_sdxl(root / "tiny-sdxl"),
                      build_sd(root / "tiny-sd-flagged", checker=True), build_tiny_vae(root / "tiny-taesd"))
