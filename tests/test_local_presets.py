"""Presets and where [local] model / tiny_vae point (engine/gen/local/presets.py): pure, no torch."""

from __future__ import annotations

from pathlib import Path

from engine.config import LocalConfig
from engine.gen.local.presets import PRESETS, TINY_VAES, defaults_for, plan_for


def test_no_model_configured_is_no_plan() -> None:
    """An empty [local] model means no local backend at all."""
    assert plan_for(LocalConfig(model="  ")) is None


def test_a_preset_name_lives_in_the_models_folder(tmp_path: Path) -> None:
    """"sd-turbo" means <models_dir>/sd-turbo, pulled or not, with the preset's pull command."""
    plan = plan_for(LocalConfig(model="sd-turbo", models_dir=str(tmp_path), tiny_vae="taesd"))
    assert plan is not None
    assert plan.folder == tmp_path / "sd-turbo" and plan.preset is PRESETS["sd-turbo"]
    assert plan.tiny_vae == tmp_path / "taesd" and plan.tiny_vae_preset is TINY_VAES["taesd"]
    assert plan.pull_hint() == "python -m engine models pull sd-turbo"


def test_an_existing_folder_is_used_as_it_is(tmp_path: Path) -> None:
    """A path that exists is the model, wherever it is; its name is the folder's."""
    (tmp_path / "my-model").mkdir()
    plan = plan_for(LocalConfig(model=str(tmp_path / "my-model"), models_dir="elsewhere"))
    assert plan is not None and plan.folder == tmp_path / "my-model" and plan.name == "my-model"
    assert plan.preset is None and plan.pull_hint() == ""


def test_a_missing_path_stays_a_path(tmp_path: Path) -> None:
    """A path that is not there is not looked for in the models folder (the folder check names it)."""
    plan = plan_for(LocalConfig(model=str(tmp_path / "gone" / "model"), models_dir=str(tmp_path)))
    assert plan is not None and plan.folder == tmp_path / "gone" / "model"


def test_the_presets_carry_their_model_cards_knobs() -> None:
    """Turbo and SDXS: one step, no guidance, 512; SD 1.5 and SDXL: more steps with guidance."""
    one_step = [PRESETS[n] for n in ("sd-turbo", "sdxl-turbo", "sdxs-512")]
    assert all(p.steps == 1 and p.cfg == 0.0 and p.size == 512 for p in one_step)
    assert (PRESETS["sd-1.5"].steps, PRESETS["sd-1.5"].cfg, PRESETS["sd-1.5"].size) == (25, 7.5, 512)
    assert (PRESETS["sdxl"].kind, PRESETS["sdxl"].size) == ("sdxl", 1024)
    assert all(TINY_VAES[p.tiny_vae].kind == p.kind for p in PRESETS.values() if p.tiny_vae)


def test_other_folders_get_knobs_from_their_name_and_shape() -> None:
    """A folder named like a distilled model gets one step; others the classic steps for their shape."""
    assert defaults_for("my-sdxl-lightning", "sdxl").steps == 1
    assert defaults_for("tiny-sd", "sd") == defaults_for("anything", "sd")
    assert defaults_for("tiny-sd", "sd").size is None and defaults_for("tiny-sdxl", "sdxl").steps == 30
