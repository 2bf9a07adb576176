"""Model folders checked before loading (engine/gen/local/folder.py): each problem is one line naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.gen.local.folder import LocalModelError, choose_variant, inspect_model, inspect_tiny_vae, variant_of
from tests.local_models import NATIVE, TinyModels


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def test_both_shapes_check_out(tiny_models: TinyModels) -> None:
    """The tiny SD and SDXL folders are what they claim, at their native size, without a checker."""
    sd, sdxl = inspect_model(tiny_models.sd), inspect_model(tiny_models.sdxl)
    assert (sd.kind, sd.class_name, sd.native_size, sd.safety_checker) == ("sd", "StableDiffusionPipeline",
                                                                           NATIVE, False)
    assert (sdxl.kind, sdxl.native_size) == ("sdxl", NATIVE)
    assert {"text_encoder_2", "tokenizer_2"} <= set(sdxl.components)


def test_a_safety_checker_is_seen(tiny_models: TinyModels) -> None:
    """A folder with a safety checker and its feature extractor says so."""
    assert inspect_model(tiny_models.sd_flagged).safety_checker


def test_a_missing_preset_folder_names_the_pull_command(tmp_path: Path) -> None:
    """The one line says which folder and the exact command that fills it."""
    with pytest.raises(LocalModelError, match=r"sd-turbo: no such model folder; fetch it with: "
                                              r"python -m engine models pull sd-turbo"):
        inspect_model(tmp_path / "sd-turbo", "sd-turbo")


def test_no_model_index_is_not_a_diffusers_folder(tmp_path: Path) -> None:
    """A folder without model_index.json is named as not a diffusers pipeline."""
    (tmp_path / "weights").mkdir()
    with pytest.raises(LocalModelError, match=r"weights: no model_index.json: not a diffusers pipeline folder"):
        inspect_model(tmp_path / "weights")


def test_a_broken_model_index_is_named(tiny_models: TinyModels, tmp_path: Path) -> None:
    """Unreadable JSON is one line naming the file."""
    folder = copy_of(tiny_models.sd, tmp_path)
    (folder / "model_index.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(LocalModelError, match=r"tiny-sd: model_index.json is not valid JSON"):
        inspect_model(folder)


def test_a_model_of_the_wrong_kind_is_refused(tiny_models: TinyModels, tmp_path: Path) -> None:
    """A pipeline class we do not run (here a Flux model) says which it is and which we run."""
    folder = copy_of(tiny_models.sd, tmp_path)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}), encoding="utf-8")
    with pytest.raises(LocalModelError, match=r"a FluxPipeline model; the local backend runs StableDiffusionPipeline "
                                              r"or StableDiffusionXLPipeline"):
        inspect_model(folder)


def test_a_missing_component_is_named(tiny_models: TinyModels, tmp_path: Path) -> None:
    """An incomplete download names the component folder that is not there."""
    folder = copy_of(tiny_models.sdxl, tmp_path)
    shutil.rmtree(folder / "text_encoder_2")
    with pytest.raises(LocalModelError, match=r"tiny-sdxl: the text_encoder_2/ folder is missing"):
        inspect_model(folder)


def test_a_component_without_weights_is_named(tiny_models: TinyModels, tmp_path: Path) -> None:
    """A component folder with its config but no weights is an incomplete download."""
    folder = copy_of(tiny_models.sd, tmp_path)
    for f in (folder / "unet").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(LocalModelError, match=r"unet/ has no weights"):
        inspect_model(folder)


def test_the_tiny_autoencoder_must_be_one(tiny_models: TinyModels, tmp_path: Path) -> None:
    """[local] tiny_vae pointing at something else (here a full VAE) is refused by name."""
    with pytest.raises(LocalModelError, match=r"a AutoencoderKL model, not an AutoencoderTiny"):
        inspect_tiny_vae(tiny_models.sd / "vae")
    with pytest.raises(LocalModelError, match=r"taesd: no such model folder; fetch it with: .* pull taesd"):
        inspect_tiny_vae(tmp_path / "taesd", "taesd")


def test_fp16_weights_are_recognised(tmp_path: Path) -> None:
    """fp16-only weights are loaded as the fp16 variant; with both, fp16 only when half precision is wanted."""
    assert variant_of(Path("diffusion_pytorch_model.fp16.safetensors")) == "fp16"
    assert variant_of(Path("model.fp16-00001-of-00002.safetensors")) == "fp16"
    assert variant_of(Path("model.safetensors")) is None
    (tmp_path / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"")
    assert choose_variant(tmp_path, half=False) == "fp16"
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    assert choose_variant(tmp_path, half=False) is None and choose_variant(tmp_path, half=True) == "fp16"
