"""The dream layer's loop (engine/gen/local/dream.py): pure parts, then the loop with a fake worker and model."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.config import DreamConfig, with_overrides
from engine.contract import Inbox, ShowSnapshot, StateBoard
from engine.gen.images import encode as encode_image
from engine.gen.local.dream import (
    DREAM_PRIORITY,
    DreamError,
    DreamLoop,
    Embeds,
    blend,
    dream_for,
    dream_size,
    dream_step,
    image_id_of,
    image_source,
    model_hold,
    morph_weight,
    one_step,
    program_source,
    prompt_on_screen,
)
from engine.gen.local.status import LocalState
from engine.gen.local.worker import AUDIENCE, Snapshot
from engine.store import Journal
from tests.fakes import make_config
from tests.local_models import TinyModels


# --- pure parts ---------------------------------------------------------------------------------------
def test_morph_weight_starts_at_0_and_ends_exactly_at_1() -> None:
    """Before and at its start the morph is the old prompt, at its end and after exactly the new one,
    eased between (never backwards)."""
    weights = [morph_weight(t / 10, 3.0) for t in range(-5, 40)]
    assert weights[:6] == [0.0] * 6 and weights[35:] == [1.0] * 10
    assert weights == sorted(weights) and 0.0 < morph_weight(1.5, 3.0) < 1.0
    assert morph_weight(1.5, 3.0) == pytest.approx(0.5)


def test_no_morph_time_is_the_new_prompt_at_once() -> None:
    """[dream] morph = 0 cuts from one prompt to the next."""
    assert morph_weight(0.0, 0.0) == 1.0


def test_blend_is_exact_at_both_ends_and_linear_between() -> None:
    """At 0 the old embeddings themselves, at 1 the new ones themselves; the pooled ones (SDXL) move alike."""
    a, b = Embeds(np.zeros((1, 3)), np.zeros(2)), Embeds(np.full((1, 3), 4.0), np.full(2, 8.0))
    assert blend(a, b, 0.0) is a and blend(a, b, 1.0) is b
    mid = blend(a, b, 0.25)
    assert np.allclose(mid.prompt, 1.0) and np.allclose(mid.pooled, 2.0)
    assert blend(Embeds(np.zeros(1)), Embeds(np.ones(1)), 0.5).pooled is None


@pytest.mark.parametrize("strength", [0.05, 0.07, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.35, 0.5, 0.51, 0.7, 0.99, 1.0])
def test_one_step_runs_exactly_one_denoising_step(strength: float) -> None:
    """Image-to-image runs int(steps × strength) steps: the count chosen makes that exactly 1."""
    steps = one_step(strength)
    assert int(steps * strength) == 1


def test_one_step_refuses_a_strength_out_of_range() -> None:
    with pytest.raises(ValueError, match="strength must be in"):
        one_step(0.0)


def test_dream_size_keeps_the_aspect_in_multiples_of_8() -> None:
    """The longest side is [dream] size; both sides are what the autoencoder takes (multiples of 8)."""
    assert dream_size(1920, 1080, 512) == (512, 288)
    assert dream_size(90, 160, 128) == (72, 128)
    assert dream_size(1000, 10, 256) == (256, 8)


def test_a_reshown_image_is_dreamt_on_as_its_stored_image() -> None:
    assert image_id_of("p1-0-again3") == "p1-0" and image_id_of("p1-0") == "p1-0" and image_id_of(None) is None


# --- the loop with a fake model -----------------------------------------------------------------------
class Clock:
    """Show time for the loop: its sleeps move it on at once."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class FakePipe:
    """A diffusers image-to-image pipeline that inverts colours and records how it was called."""

    def __init__(self, clock: Clock, step_s: float = 0.02) -> None:
        self.clock = clock
        self.step_s = step_s
        self.calls: list[dict[str, Any]] = []
        self.encoded: list[str] = []
        self.embeds: dict[str, np.ndarray] = {}
        self.fail: Exception | None = None
        self.nan = False

    def set_progress_bar_config(self, **_kw: object) -> None:
        pass

    def encode_prompt(self, prompt: str, device: object, num_images_per_prompt: int,
                      do_classifier_free_guidance: bool) -> tuple[np.ndarray, None]:
        assert not do_classifier_free_guidance and num_images_per_prompt == 1
        self.encoded.append(prompt)
        self.embeds[prompt] = np.full((1, 4, 8), float(len(self.embeds) + 1))
        return self.embeds[prompt], None

    def __call__(self, image: Any, strength: float, num_inference_steps: int, guidance_scale: float,
                 generator: object, output_type: str, prompt_embeds: Any, **extra: Any) -> SimpleNamespace:
        self.clock.t += self.step_s
        self.calls.append({"strength": strength, "steps": num_inference_steps, "guidance": guidance_scale,
                           "embeds": prompt_embeds, "size": image.size, "at": self.clock.t, **extra})
        if self.fail is not None:
            raise self.fail
        out = 1.0 - np.asarray(image, dtype=np.float32) / 255.0
        if self.nan:
            out[0, 0, 0] = np.nan
        return SimpleNamespace(images=[out], nsfw_content_detected=None)


class FakeWorker:
    """The model worker, running each job at once on the caller's thread."""

    def __init__(self, pipe: FakePipe) -> None:
        self.models = SimpleNamespace(img2img=pipe, text2img=pipe, device="cpu", dtype=None, kind="sd")
        self.priorities: list[int] = []

    def call(self, fn: Callable[[Any], Any], priority: int) -> Future[Any]:
        self.priorities.append(priority)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(self.models))
        except Exception as err:
            future.set_exception(err)
        return future


SOURCE = np.zeros((90, 160, 3), dtype=np.uint8)
SOURCE[:, :80] = 255  # left half white, right half black


class Rig:
    def __init__(self, **dream: object) -> None:
        self.clock = Clock()
        self.pipe = FakePipe(self.clock)
        self.worker = FakeWorker(self.pipe)
        self.frames: list[tuple[float, np.ndarray | None]] = []
        self.reports: list[str] = []
        self.text = "a red fox"
        self.mix_now = 0.5
        self.sources = 0
        self.hold: tuple[str, str] | None = None
        cfg = with_overrides(make_config(), {f"dream.{k}": v for k, v in
                                             {"size": 128, "fps": 10.0, "strength": 0.3, **dream}.items()})
        self.loop = DreamLoop(cfg.dream, self.worker, self.source, lambda: self.text, self.out,
                              lambda: self.mix_now, self.reports.append, self.clock, self.clock.sleep,
                              seed=7, hold=lambda: self.hold)

    async def source(self) -> np.ndarray | None:
        self.sources += 1
        return SOURCE

    def out(self, frame: np.ndarray | None) -> None:
        self.frames.append((self.clock.t, frame))

    def run(self, until: Callable[[], bool], spins: int = 20000) -> None:
        async def go() -> None:
            task = asyncio.create_task(self.loop.run())
            for _ in range(spins):
                if until():
                    break
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert until(), "the loop never got there"

        asyncio.run(go())

    @property
    def sent(self) -> list[np.ndarray]:
        return [f for _, f in self.frames if f is not None]


def test_the_loop_sends_inverted_frames_no_faster_than_its_fps() -> None:
    """Each frame is the model's answer on the source at the dream's size; frames start 1/fps apart at least."""
    rig = Rig(fps=10.0)
    rig.run(lambda: len(rig.sent) >= 6)
    frame = rig.sent[0]
    assert frame.shape == (72, 128, 3) and frame.dtype == np.uint8
    assert frame[36, 10].tolist() == [0, 0, 0] and frame[36, 120].tolist() == [255, 255, 255]  # inverted
    starts = [c["at"] for c in rig.pipe.calls]
    assert min(np.diff(starts)) >= 0.1 - 1e-9
    assert rig.loop.status().state == "running" and rig.loop.status().frames >= 6
    assert rig.loop.status().fps == pytest.approx(10.0)


def test_the_next_picture_is_asked_for_while_the_model_works() -> None:
    """The show answers a capture a frame or two later: the loop asks for the next picture before it hands the
    step to the model, so that wait never comes on top of a step; a pause drops the stale one."""
    rig = Rig(fps=10.0)
    asked_ahead: list[bool] = []
    real_call = rig.worker.call

    def call(fn: Callable[[Any], Any], priority: int) -> Future[Any]:
        if getattr(fn, "func", None) is dream_step:  # not the prompt's encoding
            asked_ahead.append(rig.loop._next is not None)
        return real_call(fn, priority)

    rig.worker.call = call  # type: ignore[method-assign]
    rig.run(lambda: len(rig.sent) >= 3)
    assert asked_ahead[:3] == [True, True, True]  # each step runs with the next picture already asked for
    assert rig.sources >= len(rig.sent) + 1
    rig.mix_now = 0.0
    rig.run(lambda: rig.loop.status().state == "paused")
    assert rig.loop._next is None


def test_each_step_is_one_unguided_denoising_step_on_the_prompt_embeddings() -> None:
    """strength × steps runs one step, no guidance, the prompt's embeddings (encoded once), below the audience."""
    rig = Rig(strength=0.3)
    rig.run(lambda: len(rig.sent) >= 3)
    for call in rig.pipe.calls:
        assert call["strength"] == 0.3 and int(call["steps"] * 0.3) == 1 and call["guidance"] == 0.0
        assert call["embeds"] is rig.pipe.embeds["a red fox"]
    assert rig.pipe.encoded == ["a red fox"]
    assert set(rig.worker.priorities) == {DREAM_PRIORITY} and DREAM_PRIORITY > AUDIENCE


def test_a_new_prompt_morphs_over_the_morph_time() -> None:
    """From the old prompt's embeddings exactly, through blends, to the new one's exactly, over [dream] morph."""
    rig = Rig(fps=10.0, morph=1.0)
    rig.run(lambda: len(rig.sent) >= 2)
    rig.text = "a blue whale"
    n = len(rig.pipe.calls)
    rig.run(lambda: len(rig.pipe.calls) >= n + 16)
    old, new = rig.pipe.embeds["a red fox"], rig.pipe.embeds["a blue whale"]
    after = rig.pipe.calls[n:]
    assert after[0]["embeds"] is old  # the morph starts where the picture was
    values = [float(np.mean(c["embeds"])) for c in after]
    assert values == sorted(values) and any(1.0 < v < 2.0 for v in values)
    changed_at = after[0]["at"]
    assert all(c["embeds"] is new for c in after if c["at"] - changed_at >= 1.0 + 0.05)
    assert after[-1]["embeds"] is new


def test_a_prompt_change_mid_morph_starts_from_what_was_shown() -> None:
    """A third prompt during a morph: the next frame is made with the last frame's blend, no jump."""
    rig = Rig(fps=10.0, morph=1.0)
    rig.run(lambda: len(rig.sent) >= 1)
    rig.text = "a blue whale"
    rig.run(lambda: len(rig.sent) >= 6)
    shown = rig.pipe.calls[-1]["embeds"]
    assert 1.0 < float(np.mean(shown)) < 2.0  # halfway between the fox and the whale
    rig.text = "a green owl"
    m = len(rig.pipe.calls)
    rig.run(lambda: len(rig.pipe.calls) >= m + 1)
    assert rig.pipe.calls[m]["embeds"] is shown


def test_a_failing_step_holds_the_last_frame_backs_off_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """Out of memory: nothing is sent (the show holds its frame), waits double up to 8 s, one line said;
    the next good step sends again and the waits start over."""
    rig = Rig()
    rig.run(lambda: len(rig.sent) >= 1)
    rig.pipe.fail = RuntimeError("CUDA out of memory")
    n = len(rig.clock.sleeps)
    with caplog.at_level(logging.WARNING, logger="engine.gen.local.dream"):
        rig.run(lambda: len(rig.clock.sleeps) >= n + 6)
    assert len(rig.sent) == 1
    assert rig.clock.sleeps[n:n + 6] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert caplog.text.count("CUDA out of memory") == 1 and rig.reports == ["dream: RuntimeError: CUDA out of memory"]
    assert rig.loop.status().state == "failing" and "out of memory" in rig.loop.status().error
    rig.pipe.fail = None
    rig.run(lambda: len(rig.sent) >= 2)
    assert rig.loop.status().state == "running" and rig.loop._backoff == 0.0


def test_a_nan_picture_is_never_sent() -> None:
    """A model that returns NaN: the step fails (DreamError) and the show keeps its last frame."""
    rig = Rig()
    rig.pipe.nan = True
    rig.run(lambda: len(rig.pipe.calls) >= 2)
    assert rig.sent == [] and DreamError.__name__ in rig.loop.status().error


def test_mix_zero_pauses_the_dream() -> None:
    """Nobody sees the layer at mix 0: no picture is asked of the show, no step runs, the state says paused."""
    rig = Rig()
    rig.mix_now = 0.0
    rig.run(lambda: len(rig.clock.sleeps) >= 5)
    assert rig.sources == 0 and rig.pipe.calls == [] and rig.loop.status().state == "paused"


def test_the_dream_waits_while_the_model_loads() -> None:
    """Loading: no job is queued behind the load; the state says starting and why."""
    rig = Rig()
    rig.hold = ("starting", "loading 40%: reading unet")
    rig.run(lambda: len(rig.clock.sleeps) >= 3)
    assert rig.worker.priorities == [] and rig.loop.status() .state == "starting"
    assert "loading 40%" in rig.loop.status().line()
    rig.hold = None
    rig.run(lambda: len(rig.sent) >= 1)


def test_model_hold_follows_the_worker_state() -> None:
    def snap(state: LocalState, line: str) -> Callable[[], Snapshot]:
        return lambda: Snapshot(state, 0.4, line, None, 1)

    assert model_hold(snap(LocalState.READY, "ready"))() is None
    assert model_hold(snap(LocalState.LOADING, "loading 40%"))() == ("starting", "loading 40%")
    assert model_hold(snap(LocalState.FAILED, "no such folder"))() == ("off", "local model: no such folder")


def test_stopping_takes_the_layer_away() -> None:
    """When the dream ends, the show is told to drop its layer instead of holding a frame forever."""
    rig = Rig()
    rig.run(lambda: len(rig.sent) >= 1)
    assert rig.frames[-1][1] is None


def test_a_picture_without_a_prompt_keeps_the_last_prompt() -> None:
    """A demo picture (no prompt) after an audience one: the dream goes on with the last prompt."""
    rig = Rig()
    rig.run(lambda: len(rig.sent) >= 1)
    rig.text = ""
    n = len(rig.pipe.calls)
    rig.run(lambda: len(rig.pipe.calls) >= n + 2)
    assert rig.pipe.encoded == ["a red fox"]


# --- sources and wiring ----------------------------------------------------------------------------------
def test_the_program_source_asks_the_show_for_a_scaled_picture() -> None:
    """A capture wish with the dream's size; the show's answer is the source; no answer in time is None."""
    inbox = Inbox()
    picture = program_source(inbox, 256)

    async def go() -> tuple[np.ndarray | None, int]:
        task = asyncio.create_task(picture())
        wish = await asyncio.to_thread(inbox.captures.get, True, 5)
        wish.answer.set_running_or_notify_cancel()
        wish.answer.set_result(SOURCE)
        return await task, wish.longest

    got, longest = asyncio.run(go())
    assert got is SOURCE and longest == 256


class FakeLedger:
    def __init__(self, images: dict[str, bytes], texts: dict[str, str]) -> None:
        self.images = images
        self.texts = texts
        self.reads: list[str] = []

    def text_of_image(self, image_id: str) -> str:
        return self.texts.get(image_id, "")

    async def image_bytes(self, image_id: str) -> bytes | None:
        self.reads.append(image_id)
        return self.images.get(image_id)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    p = ThreadPoolExecutor(1)
    yield p
    p.shutdown()


def test_the_image_source_decodes_the_image_on_screen_once(pool: ThreadPoolExecutor) -> None:
    """source = "image": the stored image on screen (a re-show too), at the dream's size, read once while it stays."""
    png = encode_image(np.full((100, 200, 3), 90, dtype=np.uint8), "png")
    ledger = FakeLedger({"p1-0": png}, {"p1-0": "a red fox"})
    board = StateBoard()
    picture = image_source(ledger, board, pool, 128)

    async def go() -> list[np.ndarray | None]:
        out = [await picture()]
        board.publish(ShowSnapshot(current_id="p1-0-again2"))
        out += [await picture(), await picture()]
        board.publish(ShowSnapshot(current_id="demo-3"))
        out.append(await picture())
        return out

    idle, first, again, demo = asyncio.run(go())
    assert idle is None and demo is None
    assert first is not None and first.shape == (64, 128, 3) and int(first[0, 0, 0]) == 90 and again is first
    assert ledger.reads == ["p1-0", "demo-3"]
    assert prompt_on_screen(ledger, board)() == ""
    board.publish(ShowSnapshot(current_id="p1-0-again2"))
    assert prompt_on_screen(ledger, board)() == "a red fox"


def test_the_dream_needs_the_local_model(caplog: pytest.LogCaptureFixture, pool: ThreadPoolExecutor) -> None:
    """[dream] on with another backend: no loop, and one line saying what it needs."""
    primary = SimpleNamespace(name="procedural")
    with caplog.at_level(logging.WARNING):
        assert dream_for(DreamConfig(enabled=True), primary, Inbox(), StateBoard(), FakeLedger({}, {}), pool) is None
    assert 'backend = "local"' in caplog.text
    loop = dream_for(DreamConfig(enabled=True, source="image"), SimpleNamespace(worker=FakeWorker(FakePipe(Clock()))),
                     Inbox(), StateBoard(), FakeLedger({}, {}), pool)
    assert loop is not None and loop.mix() == 0.0  # the show's mix, as its snapshot says


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_the_dream_with_the_real_worker_and_a_tiny_model(tiny_models: TinyModels, kind: str) -> None:
    """End to end on the CPU: a tiny random pipeline (SD 1.x, and SDXL with its pooled embeddings) loaded by the
    local backend's own loader and worker; the loop's frames are the configured dream size, made from the
    source, morphing into a new prompt, and reach the show's slot."""
    from engine.config import LocalConfig
    from engine.gen.local.loader import load_models
    from engine.gen.local.presets import plan_for
    from engine.gen.local.worker import ModelWorker

    cfg = LocalConfig(model=str(getattr(tiny_models, kind)), device="cpu")
    plan = plan_for(cfg)
    assert plan is not None
    worker = ModelWorker(lambda progress: load_models(plan, cfg, progress), name=f"tiny-{kind}")
    worker.start()
    inbox, board = Inbox(), StateBoard()
    board.publish(ShowSnapshot(dream_mix=0.5))
    dream = with_overrides(make_config(), {"dream.size": 128, "dream.fps": 20.0, "dream.strength": 0.5,
                                           "dream.morph": 30.0}).dream
    seen: list[np.ndarray] = []

    async def source() -> np.ndarray:
        return SOURCE

    def out(frame: np.ndarray | None) -> None:
        inbox.dream.put(frame)
        if frame is not None:
            seen.append(frame)

    loop = DreamLoop(dream, worker, source, lambda: "a neon jellyfish" if not seen else "a paper crane", out,
                     lambda: board.read().dream_mix, hold=model_hold(worker.snapshot))

    async def go() -> None:
        task = asyncio.create_task(loop.run())
        for _ in range(1200):  # loading and three frames take a few seconds on a busy CPU
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(go())
    finally:
        worker.close()
    assert len(seen) >= 3, loop.status()
    assert all(f.shape == (72, 128, 3) and f.dtype == np.uint8 for f in seen)
    assert not np.array_equal(seen[0], np.zeros_like(seen[0]))
    used = loop._morph.last_used
    assert used is not None and used is not loop._morph.end and used is not loop._morph.start  # mid-morph
    assert (used.pooled is not None) == (kind == "sdxl")
    assert inbox.dream.latest()[1] is None  # the loop ended: the layer goes away


def test_the_backstage_dreams_on_the_local_generators_worker(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """[dream] on with the local backend: the backstage starts the loop on the generator's own worker; it asks
    the show for its picture and the frames reach the show's dream slot; its state is on the HUD's lines."""
    from engine.backstage import Backstage, assembly
    from engine.config import LocalConfig
    from engine.gen.local.generator import LocalGenerator
    from engine.gen.local.presets import plan_for
    from engine.gen.procedural import ProceduralGenerator

    pipe = FakePipe(Clock())
    models = SimpleNamespace(img2img=pipe, text2img=pipe, device="cpu", dtype=None, kind="sd", device_line="cpu")
    local_cfg = LocalConfig(model="tiny", warmup=False)
    plan = plan_for(local_cfg)
    assert plan is not None
    local = LocalGenerator(local_cfg, plan, load=lambda _progress: models)  # type: ignore[arg-type,return-value]
    monkeypatch.setattr(assembly, "make_generators", lambda cfg, pool: (local, ProceduralGenerator(pool)))
    cfg = make_config({"dream.enabled": True, "dream.size": 128, "dream.fps": 20.0})
    inbox, board = Inbox(), StateBoard()
    board.publish(ShowSnapshot(dream_mix=0.5, size=(160, 90)))
    stop = threading.Event()
    wishes: list[int] = []

    def show() -> None:  # answers the dream's capture wishes as the render loop does
        while not stop.is_set():
            try:
                wish = inbox.captures.get(timeout=0.05)
            except queue.Empty:
                continue
            wishes.append(wish.longest)
            if wish.answer.set_running_or_notify_cancel():
                wish.answer.set_result(SOURCE)

    t = threading.Thread(target=show, daemon=True)
    t.start()
    b = Backstage(cfg, inbox, board, journal=journal, serve=False)
    b.start()
    try:
        for _ in range(500):
            seq, frame = inbox.dream.latest()
            if seq >= 2:
                break
            stop.wait(0.01)
        assert seq >= 2 and frame is not None and frame.shape == (72, 128, 3)
        assert set(wishes) == {128}
        state = b.dream_state()
        assert state is not None and state["state"] == "running" and state["prompt"] == ""
        assert any(line.startswith("dream: running") for line in b._hud_lines())
    finally:
        stop.set()
        b.stop()
        t.join(2)
    assert inbox.dream.latest()[1] is None  # the backstage stopped: the layer goes away
