"""Fetching a preset from the Hugging Face Hub: only the files a diffusers pipeline loads.

A model repository carries far more than the pipeline reads: the whole model again as one
``.ckpt``/``.safetensors`` at its root, weights in two or three precisions and formats
(``.bin`` beside ``.safetensors``, fp32 beside fp16, EMA copies), ONNX and Flax exports, extra
decoders. We list the repository, then ask ``snapshot_download`` for exactly these:

* ``model_index.json``, and in each component folder the pipeline uses (unet, vae, text encoders,
  tokenizers, scheduler, safety checker and its feature extractor) its small files (configs,
  vocabularies, merges) and one set of weights: the fp16 variant where the repository has one (half
  the download; the loader upcasts it on the CPU), else the plain ``.safetensors``, else ``.bin``;
* for a single-model repository (a tiny autoencoder): its root config and weights, chosen the same way.

The download shows huggingface_hub's own progress bars. The show itself never calls this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from engine.gen.local.folder import HALF, variant_of

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler",
              "safety_checker", "feature_extractor")
SMALL_FILES = (".json", ".txt", ".model")  # configs, vocabularies and merges, sentencepiece models
WEIGHT_FORMATS = (".safetensors", ".bin")  # in order of preference


def pick_weights(files: Iterable[str]) -> list[str]:
    """One set of weights out of a folder's weight files: fp16 variant, else plain; safetensors, else bin."""
    files = list(files)
    for suffix in WEIGHT_FORMATS:
        candidates = [f for f in files if f.endswith(suffix)]
        half = [f for f in candidates if variant_of(Path(f)) == HALF]
        plain = [f for f in candidates if variant_of(Path(f)) is None]
        if half or plain:
            return sorted(half or plain)
    return []


def choose_files(files: Iterable[str]) -> list[str]:
    """The repository paths a diffusers load needs, out of everything the repository holds."""
    files = list(files)
    pipeline = "model_index.json" in files
    wanted = ["model_index.json"] if pipeline else []
    for folder in COMPONENTS if pipeline else ("",):
        inside = [f for f in files if str(PurePosixPath(f).parent) == (folder or ".")]
        wanted += [f for f in inside if f.endswith(SMALL_FILES)]
        wanted += pick_weights(inside)
    return sorted(wanted)


def list_repo(repo: str) -> list[str]:
    """Every file path in the repository (one Hub API call)."""
    from huggingface_hub import HfApi

    return list(HfApi().list_repo_files(repo))


def download(repo: str, folder: Path, files: list[str]) -> None:
    """Those files of ``repo`` into ``folder``, with the Hub's progress bars (resumes a cut download)."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo, local_dir=str(folder), allow_patterns=files)


def pull(repo: str, folder: Path, say: Callable[[str], None],
         lister: Callable[[str], list[str]] = list_repo,
         fetch: Callable[[str, Path, list[str]], None] = download) -> list[str]:
    """List, choose, fetch; returns the files fetched. Hub errors (offline, not found) propagate."""
    files = choose_files(lister(repo))
    if not files:
        raise ValueError(f"{repo} holds no diffusers model files")
    say(f"fetching {len(files)} files of {repo} into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    fetch(repo, folder, files)
    return files
