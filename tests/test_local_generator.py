"""The local backend through the real diffusers pipelines (engine/gen/local/generator.py, loader, paint).

Tiny random-weight pipelines in both shapes, loaded from their folders like a pulled model; each
image takes a fraction of a second on the CPU. Failures are injected where a real one would start:
a UNet forward pass that runs out of memory or hits a driver error, a NaN, a corrupt weights file.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.config import LocalConfig
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.local import paint
from engine.gen.local.generator import LocalGenerator
from engine.gen.local.loader import Models, load_models
from engine.gen.local.presets import plan_for
from engine.gen.local.status import LocalState
from tests.fakes import encoded_image, wait_for
from tests.local_models import TinyModels

Make = Callable[..., LocalGenerator]


@pytest.fixture
def make() -> Iterator[Make]:
    """LocalGenerators on a folder (one step, 128 px unless told), ready or failed when handed over."""
    made: list[LocalGenerator] = []

    def build(folder: Path, wait: bool = True, load: Any = None, **knobs: Any) -> LocalGenerator:
        cfg = LocalConfig(**{"model": str(folder), "steps": 1, "size": 128, "warmup": False, **knobs})
        plan = plan_for(cfg)
        assert plan is not None
        gen = LocalGenerator(cfg, plan, load=load)
        made.append(gen)
        if wait:
            wait_for(lambda: gen.status().state in (LocalState.READY, LocalState.FAILED), 60, "model loaded")
        return gen

    yield build
    for gen in made:
        asyncio.run(gen.aclose())


def generate(gen: LocalGenerator, prompt: str = "a paper boat", **kw: Any) -> list[GeneratedImage]:
    return asyncio.run(gen.generate(GenerationRequest("p1", prompt, **kw)))


def failure(gen: LocalGenerator, **kw: Any) -> GenerationError:
    with pytest.raises(GenerationError) as err:
        generate(gen, **kw)
    return err.value


def models_of(gen: LocalGenerator) -> Models:
    models = gen.worker.models
    assert models is not None
    return models


def assert_image(image: GeneratedImage, width: int, height: int) -> None:
    """An opaque RGBA picture of that size, from the local model."""
    assert image.pixels is not None and image.pixels.shape == (height, width, 4)
    assert image.pixels.dtype == np.uint8 and (image.pixels[..., 3] == 255).all()
    assert image.metadata["generator"] == "local" and image.metadata["size"] == f"{width}x{height}"


@pytest.mark.parametrize("shape", ["sd", "sdxl"])
def test_text_to_image_at_the_asked_size(tiny_models: TinyModels, make: Make, shape: str) -> None:
    """The request's shape at the model's own size (256 here), through the real pipeline."""
    gen = make(getattr(tiny_models, shape), size=0)
    [image] = generate(gen, width=1024, height=512, seed=3)
    assert_image(image, 256, 128)
    assert image.seed == 3 and image.metadata["model"] == f"tiny-{shape}"


@pytest.mark.parametrize("shape", ["sd", "sdxl"])
def test_image_to_image_at_the_asked_size(tiny_models: TinyModels, make: Make, shape: str) -> None:
    """An init image of another size and shape comes out at the asked size, and it changes the picture."""
    gen = make(getattr(tiny_models, shape))
    init = encoded_image((220, 40, 40), (300, 200))
    [evolved] = generate(gen, width=128, height=128, seed=5, init_image=init, strength=0.35)
    [fresh] = generate(gen, width=128, height=128, seed=5)
    assert_image(evolved, 128, 128)
    assert evolved.metadata["steps"] == "3"  # one step at 0.35 strength needs 3 scheduled steps
    assert not np.array_equal(evolved.pixels, fresh.pixels)


def test_each_sample_is_made_again_from_its_seed(tiny_models: TinyModels, make: Make) -> None:
    """Samples carry seed, seed + 1; asking for seed + 1 alone gives that second picture again."""
    gen = make(tiny_models.sd)
    first, second = generate(gen, seed=11, samples=2)
    assert (first.seed, second.seed) == (11, 12)
    [again] = generate(gen, seed=12)
    assert first.pixels is not None and second.pixels is not None and again.pixels is not None
    assert np.abs(again.pixels.astype(int) - second.pixels.astype(int)).max() <= 1
    assert not np.array_equal(first.pixels, second.pixels)


def test_seed_zero_picks_one_and_reports_it(tiny_models: TinyModels, make: Make) -> None:
    """Seed 0 draws a seed; the reported one makes the same picture again."""
    gen = make(tiny_models.sd)
    [drawn] = generate(gen, seed=0)
    [again] = generate(gen, seed=drawn.seed)
    assert drawn.seed > 0 and np.array_equal(drawn.pixels, again.pixels)  # type: ignore[arg-type]


def test_the_negative_prompt_reaches_the_model(tiny_models: TinyModels, make: Make) -> None:
    """With guidance on, another negative prompt makes another picture from the same seed."""
    gen = make(tiny_models.sd, cfg_scale=7.5)
    [a] = generate(gen, seed=2, negative_prompt="blurry")
    [b] = generate(gen, seed=2, negative_prompt="dark, grainy")
    assert a.metadata["cfg"] == "7.5" and not np.array_equal(a.pixels, b.pixels)  # type: ignore[arg-type]


def test_a_tiny_autoencoder_decodes_instead(tiny_models: TinyModels, make: Make) -> None:
    """[local] tiny_vae swaps the VAE in both pipelines; images still come at the asked size."""
    gen = make(tiny_models.sd, tiny_vae=str(tiny_models.taesd))
    assert type(models_of(gen).text2img.vae).__name__ == "AutoencoderTiny"
    assert models_of(gen).img2img.vae is models_of(gen).text2img.vae
    [image] = generate(gen, width=128, height=64)
    assert_image(image, 128, 64)


def test_while_loading_it_is_unavailable_with_its_progress(tiny_models: TinyModels, make: Make) -> None:
    """Until the model is ready, requests are UNAVAILABLE saying how far the load is (the show paints offline)."""
    gate = threading.Event()

    def slow(progress: Any) -> Models:
        progress(0.4, "reading unet")
        assert gate.wait(30)
        return load_models(plan, LocalConfig(model=str(tiny_models.sd), steps=1, size=128), progress)

    plan = plan_for(LocalConfig(model=str(tiny_models.sd)))
    gen = make(tiny_models.sd, wait=False, load=slow)
    wait_for(lambda: gen.status().progress == 0.4)
    err = failure(gen)
    assert err.kind is FailureKind.UNAVAILABLE and err.vj_message == "local model loading 40%"
    assert gen.status().summary() == "loading 40%: reading unet (offline images meanwhile)"
    gate.set()
    wait_for(lambda: gen.status().state is LocalState.READY, 60)
    assert_image(generate(gen)[0], 128, 128)


def test_the_warm_up_runs_before_ready(tiny_models: TinyModels, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """With [local] warmup, one image is made at the model's size before the first request."""
    warmed: list[int] = []
    real = paint.warm_up
    monkeypatch.setattr(paint, "warm_up", lambda models: (warmed.append(models.native_size), real(models)))
    gen = make(tiny_models.sd, warmup=True)
    assert gen.status().state is LocalState.READY and warmed == [256]


def test_the_status_names_model_device_memory_and_speed(tiny_models: TinyModels, make: Make) -> None:
    """What the VJ page shows: ready, the model, the device and precision, memory, images/s."""
    gen = make(tiny_models.sd)
    generate(gen)
    s = gen.status()
    assert (s.state, s.model, s.device, s.last_error) == (LocalState.READY, "tiny-sd", "cpu float32", None)
    assert s.memory_mb > 0 and s.images_per_s > 0 and s.load_s is not None
    assert s.summary().startswith("ready   tiny-sd on cpu float32, ")


def raise_once(module: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, times: int = 1) -> None:
    """``module``'s forward raises ``error`` the next ``times`` calls, then works again."""
    real = module.forward
    left = [times]

    def forward(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)


def test_out_of_memory_is_contained(tiny_models: TinyModels, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward pass out of GPU memory is a SERVER error naming the size; the next image is made."""
    gen = make(tiny_models.sd)
    raise_once(models_of(gen).text2img.unet, monkeypatch,
               torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"))
    err = failure(gen)
    assert err.kind is FailureKind.SERVER
    assert err.vj_message.startswith("local model ran out of GPU memory at 128x128; memory freed")
    assert gen.status().last_error == err.vj_message
    assert_image(generate(gen)[0], 128, 128)
    assert gen.status().last_error is None


def test_three_driver_errors_reload_the_model(tiny_models: TinyModels, make: Make,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each driver error is SERVER; after three in a row the model is loaded again and works."""
    gen = make(tiny_models.sd)
    raise_once(models_of(gen).text2img.unet, monkeypatch,
               RuntimeError("CUDA error: an illegal memory access was encountered"), times=3)
    for _ in range(3):
        err = failure(gen)
        assert err.kind is FailureKind.SERVER and "driver error: RuntimeError: CUDA error" in err.vj_message
    wait_for(lambda: gen.worker.snapshot().loads == 2 and gen.status().state is LocalState.READY, 60)
    assert_image(generate(gen)[0], 128, 128)


def test_a_nan_image_is_a_bad_response(tiny_models: TinyModels, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN out of the model is BAD_RESPONSE (the pipeline paints that prompt offline), with a hint."""
    gen = make(tiny_models.sd)
    unet = models_of(gen).text2img.unet
    real = unet.forward
    monkeypatch.setattr(unet, "forward", lambda *a, **k: tuple(t * float("nan") for t in real(*a, **k)))
    err = failure(gen)
    assert err.kind is FailureKind.BAD_RESPONSE
    assert err.vj_message.startswith("local model made NaN (not-a-number) pixels at 128x128")


def test_flagged_images_are_moderated(tiny_models: TinyModels, make: Make) -> None:
    """The folder's safety checker flags the image: MODERATED, the sender told politely, nothing shown."""
    gen = make(tiny_models.sd_flagged)
    assert models_of(gen).safety
    err = failure(gen)
    assert err.kind is FailureKind.MODERATED and err.vj_message == "the model's safety checker flagged the image"
    assert err.user_message == "Sorry, that prompt is not allowed here. Try something else!"


def test_safety_off_leaves_the_checker_out(tiny_models: TinyModels, make: Make) -> None:
    """[local] safety = false loads the model without its checker: the image is shown."""
    gen = make(tiny_models.sd_flagged, safety=False)
    assert models_of(gen).text2img.safety_checker is None
    assert_image(generate(gen)[0], 128, 128)


def test_without_a_checker_the_log_says_what_protects_the_show(tiny_models: TinyModels, make: Make,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """One line at load: no safety checker, so the blocklist and approve mode are the guard."""
    with caplog.at_level(logging.WARNING, logger="engine.gen.local.loader"):
        make(tiny_models.sdxl)
    [line] = [r.getMessage() for r in caplog.records if "safety checker" in r.getMessage()]
    assert line.startswith("local model tiny-sdxl has no safety checker: the prompt blocklist")
    assert '[audience] moderation = "approve"' in line


def test_a_model_that_cannot_load_fails_and_says_why(tiny_models: TinyModels, make: Make, tmp_path: Path) -> None:
    """Corrupt weights: the loader raises, the backend is failed with the reason, requests are UNAVAILABLE."""
    folder = Path(shutil.copytree(tiny_models.sd, tmp_path / "broken-sd"))
    [weights] = (folder / "unet").glob("*.safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    gen = make(folder)
    s = gen.status()
    assert s.state is LocalState.FAILED and s.line and s.page_status == "offline"
    err = failure(gen)
    assert err.kind is FailureKind.UNAVAILABLE and err.vj_message == f"local model failed: {s.line}"


def test_a_broken_model_index_fails_with_its_reason(tiny_models: TinyModels, make: Make, tmp_path: Path) -> None:
    """A folder that stopped checking out after start fails the load with the folder's own message."""
    folder = Path(shutil.copytree(tiny_models.sd, tmp_path / "bad-index"))
    (folder / "model_index.json").write_text("{", encoding="utf-8")
    gen = make(folder)
    assert gen.status().state is LocalState.FAILED
    assert gen.status().line.endswith("bad-index: model_index.json is not valid JSON (Expecting property name "
                                      "enclosed in double quotes: line 1 column 2 (char 1))")
