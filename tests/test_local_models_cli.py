"""``python -m engine models list|pull`` (engine/gen/local/models_cli.py, pull.py): no network is ever used."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.gen.local.models_cli import main
from engine.gen.local.pull import choose_files
from tests.fakes import HEADLESS_ENV, ROOT
from tests.local_models import TinyModels

SD_TURBO_FILES = [  # the shape of stabilityai/sd-turbo's listing
    ".gitattributes", "README.md", "model_index.json", "sd_turbo.safetensors", "sd_turbo.fp16.safetensors",
    "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
    "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors",
]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_the_pull_takes_only_what_the_pipeline_loads() -> None:
    """model_index.json, the component configs and vocabularies, and fp16 weights: no root checkpoint."""
    assert choose_files(SD_TURBO_FILES) == [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors"]


def test_without_fp16_files_the_plain_safetensors_are_taken() -> None:
    """SDXS's shape: plain safetensors over .bin, and its unused vae_large/ left out."""
    files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.bin", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
             "vae_large/config.json", "vae_large/diffusion_pytorch_model.safetensors",
             "text_encoder/pytorch_model.bin", "text_encoder/config.json"]
    assert choose_files(files) == [
        "model_index.json", "text_encoder/config.json", "text_encoder/pytorch_model.bin", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]


def test_a_single_model_repository_takes_its_root_files() -> None:
    """A tiny autoencoder (madebyollin/taesd's shape): its config and safetensors, not the .pth or .bin."""
    files = ["README.md", "config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors",
             "taesd_decoder.pth", "taesd_encoder.pth", "images/screenshot.png"]
    assert choose_files(files) == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_pull_asks_the_hub_for_the_preset_and_checks_the_result(tiny_models: TinyModels, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository of the preset, only the chosen files, into <models_dir>/NAME; then the folder is checked."""
    import huggingface_hub

    asked: list[dict[str, Any]] = []

    def snapshot_download(repo_id: str, **kw: Any) -> str:
        asked.append({"repo_id": repo_id, **kw})
        shutil.copytree(tiny_models.sd, kw["local_dir"], dirs_exist_ok=True)  # as if fetched
        return str(kw["local_dir"])

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo: SD_TURBO_FILES)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    code, out = run("pull", "sd-turbo", "--models-dir", str(tmp_path))
    assert code == 0
    assert asked == [{"repo_id": "stabilityai/sd-turbo", "local_dir": str(tmp_path / "sd-turbo"),
                      "allow_patterns": choose_files(SD_TURBO_FILES)}]
    assert out.splitlines()[-1].startswith(f"done: {tmp_path / 'sd-turbo'} (")
    assert out.splitlines()[-1].endswith('; use it with [local] model = "sd-turbo"')


def test_pull_of_an_unknown_name_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 and the list of presets; nothing fetched."""
    assert run("pull", "sd-9000")[0] == 1
    assert capsys.readouterr().err == ("error: no preset named 'sd-9000'; the presets are sd-turbo, sdxl-turbo, "
                                       "sdxs-512, sd-1.5, sdxl, taesd, taesdxl\n")


def test_pull_offline_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    """With HF_HUB_OFFLINE=1 the real command fails at once: exit 1, one line, nothing written."""
    done = subprocess.run([sys.executable, "-m", "engine", "models", "pull", "sd-turbo", "--models-dir",
                           str(tmp_path)], cwd=ROOT, env={**HEADLESS_ENV, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("error: cannot fetch stabilityai/sd-turbo: HF_HUB_OFFLINE is set (offline mode); "
                           "pull on a machine with internet\n")
    assert not (tmp_path / "sd-turbo").exists()


def test_pull_without_huggingface_hub_names_the_install(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """No huggingface_hub: exit 1 and the command that installs it."""
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    assert run("pull", "taesd")[0] == 1
    assert capsys.readouterr().err == 'error: pulling models needs huggingface_hub: pip install -e ".[local]"\n'


def test_list_shows_presets_and_other_folders(tiny_models: TinyModels, tmp_path: Path) -> None:
    """Installed or not with size and folder; a broken preset folder says why; other model folders follow."""
    shutil.copytree(tiny_models.sd, tmp_path / "sd-turbo")
    shutil.copytree(tiny_models.sdxl, tmp_path / "my-xl")
    (tmp_path / "sdxl").mkdir()
    code, out = run("list", "--models-dir", str(tmp_path))
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert code == 0
    assert rows["sd-turbo"].split()[1] == "installed" and rows["sd-turbo"].endswith(str(tmp_path / "sd-turbo"))
    assert " MB " in rows["sd-turbo"] or " KB " in rows["sd-turbo"]
    assert rows["sdxs-512"].split()[1:] == ["not", "installed"]
    assert "incomplete: no model_index.json" in rows["sdxl"]
    assert rows["my-xl"].split()[1] == "SDXL"


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """--help exits 0 with the usage; no command is a usage error (2)."""
    assert run("--help")[0] == 0 and "list|pull" in capsys.readouterr().out
    assert run()[0] == 2 and "say list or pull NAME" in capsys.readouterr().err
