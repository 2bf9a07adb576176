"""The pipeline with fake generators and a hand-driven show: every status, fallback and failure path."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.backstage.scribe import Scribe
from engine.config import AudienceConfig, Config, with_overrides
from engine.contract import Inbox, ShowSnapshot, State, StateBoard
from engine.gen.base import FailureKind, GeneratedImage, GenerationError, GenerationRequest
from engine.gen.pipeline import Pipeline
from engine.ledger import Ledger, Step
from engine.net.audience import Audience, Outbox
from engine.net.protocol import PromptStatus
from engine.store import Journal
from tests.fakes import encoded_image


class FakeGenerator:
    def __init__(self, name: str, outcome: Callable[[GenerationRequest], list[GeneratedImage]]) -> None:
        self.name = name
        self.outcome = outcome
        self.calls: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.calls.append(request)
        return self.outcome(request)

    async def aclose(self) -> None:
        pass


def ok(color: tuple[int, int, int] = (255, 0, 0)) -> Callable[[GenerationRequest], list[GeneratedImage]]:
    return lambda req: [GeneratedImage(data=encoded_image(color), seed=7 + i) for i in range(req.samples)]


def fail(kind: FailureKind) -> Callable[[GenerationRequest], list[GeneratedImage]]:
    def outcome(req: GenerationRequest) -> list[GeneratedImage]:
        raise GenerationError(kind, f"{kind.value} happened")
    return outcome


class Rig:
    def __init__(self, tmp: Path, primary: FakeGenerator, fallback: FakeGenerator,
                 overrides: dict[str, object] | None = None) -> None:
        self.cfg = with_overrides(Config(), {"generation.in_flight": 1, **(overrides or {})})
        self.audience = Audience(AudienceConfig(cooldown=0.0, burst=10, max_pending_per_client=10))
        self.journal = Journal.open(tmp)
        self.inbox = Inbox()
        self.board = StateBoard()
        self.board.publish(ShowSnapshot(size=(320, 180)))
        self.sent: list[PromptStatus] = []
        self.reports: list[str] = []
        self.pool = ThreadPoolExecutor(1)
        self.scribe = Scribe(self.journal, self.deliver, self.reports.append, self.pool)
        self.ledger = Ledger(self.audience, self.scribe, self.apply)
        self.pipeline = Pipeline(self.cfg, self.ledger, primary, fallback, self.inbox, self.board, self.pool,
                                 report=self.reports.append)

    def apply(self, step: Step) -> None:
        self.scribe.apply(step)
        if step.wake:
            self.pipeline.wake()

    def deliver(self, out: Outbox) -> None:
        self.sent += [s for _c, s in out]

    def submit(self, text: str) -> str:
        return self.ledger.submit("phone-1", "1.2.3.4", text).outbox[0][1].id

    def states(self, prompt_id: str) -> list[State]:
        states: list[State] = []
        for s in self.sent:
            if s.id == prompt_id and (not states or states[-1] is not s.state):
                states.append(s.state)
        return states

    def show(self, current: str | None, incoming: str | None = None) -> None:
        self.board.publish(ShowSnapshot(size=(320, 180), current_id=current, incoming_id=incoming))

    def run(self, script: Callable[[Rig], Awaitable[None]]) -> None:
        async def main() -> None:
            task = asyncio.create_task(self.pipeline.run())
            try:
                await asyncio.wait_for(script(self), 10)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        try:
            asyncio.run(main())
        finally:
            self.scribe.close()
            self.pool.shutdown()
            self.journal.close()


async def until(cond: Callable[[], bool]) -> None:
    while not cond():
        await asyncio.sleep(0.01)


def images_in(rig: Rig) -> list[str]:
    out = []
    while not rig.inbox.images.empty():
        out.append(rig.inbox.images.get_nowait().id)
    return out


def test_prompt_goes_generating_showing_done(tmp_path: Path) -> None:
    """The sender hears each step; the journal follows; the image is decoded into the show's queue."""
    rig = Rig(tmp_path, FakeGenerator("p", ok()), FakeGenerator("f", ok()))

    async def script(r: Rig) -> None:
        pid = r.submit("a red fox")
        await until(lambda: not r.inbox.images.empty())
        image = r.inbox.images.get_nowait()
        assert image.pixels.shape == (64, 64, 4) and image.pixels[0, 0, 0] == 255
        r.show(None, image.id)
        await until(lambda: State.SHOWING in r.states(pid))
        assert r.sent[-1].image_urls == (f"/images/{image.id}.png",)
        r.show("something-else")
        await until(lambda: State.DONE in r.states(pid))
        assert r.states(pid) == [State.QUEUED, State.GENERATING, State.SHOWING, State.DONE]
        assert r.journal.prompt(pid).state is State.DONE  # type: ignore[union-attr]
        assert [i.id for i in r.journal.gallery()] == [image.id]
    rig.run(script)


def test_primary_failure_falls_back_to_the_offline_generator(tmp_path: Path) -> None:
    """A backend error costs nothing but a VJ report: the fallback makes the image."""
    fallback = FakeGenerator("offline", ok((0, 255, 0)))
    rig = Rig(tmp_path, FakeGenerator("stability", fail(FailureKind.SERVER)), fallback)

    async def script(r: Rig) -> None:
        r.submit("a green hill")
        await until(lambda: not r.inbox.images.empty())
        assert r.inbox.images.get_nowait().pixels[0, 0, 1] == 255
        assert len(fallback.calls) == 1 and any("using offline" in m for m in r.reports)
    rig.run(script)


@pytest.mark.parametrize("kind", [FailureKind.MODERATED, FailureKind.UNPROCESSABLE])
def test_prompt_faults_reach_the_sender_without_fallback(tmp_path: Path, kind: FailureKind) -> None:
    """A moderated or refused prompt is rejected with a human reason, not retried elsewhere."""
    fallback = FakeGenerator("offline", ok())
    rig = Rig(tmp_path, FakeGenerator("stability", fail(kind)), fallback)

    async def script(r: Rig) -> None:
        pid = r.submit("something")
        await until(lambda: State.REJECTED in r.states(pid))
        assert r.sent[-1].reason and "Sorry" in r.sent[-1].reason
        assert fallback.calls == [] and r.inbox.images.empty()
        assert r.journal.prompt(pid).state is State.REJECTED  # type: ignore[union-attr]
    rig.run(script)


def test_corrupt_image_fails_the_prompt_cleanly(tmp_path: Path) -> None:
    """Undecodable bytes: 'failed' with a reason, nothing reaches the show, the VJ hears why."""
    rig = Rig(tmp_path, FakeGenerator("p", lambda req: [GeneratedImage(data=b"\x89PNG\r\n\x1a\nbroken")]),
              FakeGenerator("f", ok()))

    async def script(r: Rig) -> None:
        pid = r.submit("a broken thing")
        await until(lambda: State.FAILED in r.states(pid))
        assert r.inbox.images.empty() and any("could not be decoded" in m for m in r.reports)
    rig.run(script)


def test_every_sample_is_shown_before_done(tmp_path: Path) -> None:
    """samples = 2: both images go to the show; done comes after both were on screen."""
    rig = Rig(tmp_path, FakeGenerator("p", ok()), FakeGenerator("f", ok()), {"generation.samples": 2})

    async def script(r: Rig) -> None:
        pid = r.submit("twins")
        await until(lambda: r.inbox.images.qsize() == 2)
        first, second = images_in(r)
        r.show(first)
        await until(lambda: State.SHOWING in r.states(pid))
        r.show(second)
        await asyncio.sleep(0.2)
        assert State.DONE not in r.states(pid)
        r.show(None)
        await until(lambda: State.DONE in r.states(pid))
        assert len(r.sent[-1].image_urls) == 2
    rig.run(script)


def test_generation_waits_while_the_show_has_a_backlog(tmp_path: Path) -> None:
    """With images already waiting in the show, the next prompt stays queued."""
    primary = FakeGenerator("p", ok())
    rig = Rig(tmp_path, primary, FakeGenerator("f", ok()))
    rig.board.publish(ShowSnapshot(size=(320, 180), queue_len=5))

    async def script(r: Rig) -> None:
        pid = r.submit("patience")
        await asyncio.sleep(0.3)
        assert primary.calls == [] and r.states(pid) == [State.QUEUED]
        r.board.publish(ShowSnapshot(size=(320, 180), queue_len=0))
        await until(lambda: State.GENERATING in r.states(pid))
    rig.run(script)


def test_images_are_sized_for_the_screen(tmp_path: Path) -> None:
    """A 1024x1024 answer for a 320x180 letterboxed screen is decoded at 180x180."""
    rig = Rig(tmp_path, FakeGenerator("p", lambda req: [GeneratedImage(data=encoded_image((9, 9, 9), 1024))]),
              FakeGenerator("f", ok()))

    async def script(r: Rig) -> None:
        r.submit("big")
        await until(lambda: not r.inbox.images.empty())
        assert r.inbox.images.get_nowait().pixels.shape == (180, 180, 4)
    rig.run(script)


def test_pixels_from_a_local_generator_are_used_as_they_are(tmp_path: Path) -> None:
    """The procedural generator hands pixels, not bytes; they go to the show and the journal as PNG."""
    px = np.zeros((90, 160, 4), np.uint8)
    px[..., 2] = 200
    px[..., 3] = 255
    rig = Rig(tmp_path, FakeGenerator("p", lambda req: [GeneratedImage(pixels=px, seed=1)]), FakeGenerator("f", ok()))

    async def script(r: Rig) -> None:
        pid = r.submit("blue")
        await until(lambda: not r.inbox.images.empty())
        assert r.inbox.images.get_nowait().pixels[0, 0, 2] == 200
        assert r.journal.images(pid)[0].path.endswith(".png")  # type: ignore[union-attr]
    rig.run(script)


def test_img2img_previous_sends_the_last_image(tmp_path: Path) -> None:
    """With img2img = previous, the second prompt's request carries the first image's bytes."""
    primary = FakeGenerator("p", ok())
    rig = Rig(tmp_path, primary, FakeGenerator("f", ok()), {"generation.img2img": "previous"})

    async def script(r: Rig) -> None:
        r.submit("first")
        await until(lambda: r.inbox.images.qsize() == 1)
        r.submit("second")
        await until(lambda: len(primary.calls) == 2)
        assert primary.calls[0].init_image is None
        assert primary.calls[1].init_image == encoded_image((255, 0, 0))
    rig.run(script)


def test_img2img_program_asks_the_show_for_its_picture(tmp_path: Path) -> None:
    """With img2img = program, the show's captured frame goes out as a PNG init image."""
    primary = FakeGenerator("p", ok())
    rig = Rig(tmp_path, primary, FakeGenerator("f", ok()), {"generation.img2img": "program"})

    async def script(r: Rig) -> None:
        r.submit("from the screen")
        wish = await asyncio.to_thread(r.inbox.captures.get, True, 5)  # the show thread's side
        assert wish.longest == 0  # the whole output, as the projector shows it
        wanted = wish.answer
        wanted.set_running_or_notify_cancel()
        wanted.set_result(np.full((18, 32, 3), 77, np.uint8))
        await until(lambda: len(primary.calls) == 1)
        sent = Image.open(io.BytesIO(primary.calls[0].init_image or b""))
        assert sent.size == (32, 18) and sent.getpixel((0, 0)) == (77, 77, 77)
    rig.run(script)


def test_a_stability_lockout_paints_offline_at_once_and_sends_nothing_more(tmp_path: Path) -> None:
    """A 429 without Retry-After (the API's 60 s lockout): the prompt and the next ones get offline images at
    once, Stability hears one request only, and the VJ sees when it will be asked again."""
    import httpx

    from engine.config import StabilityConfig
    from engine.gen.stability import StabilityGenerator

    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(429, json={"name": "rate_limit_exceeded", "errors": ["too many"]})

    stability = StabilityGenerator(StabilityConfig(api_key="sk-test", api_host="https://api.example"), env={},
                                   transport=httpx.MockTransport(handler))
    fallback = FakeGenerator("offline", ok((0, 255, 0)))
    rig = Rig(tmp_path, FakeGenerator("stability", ok()), fallback)
    rig.pipeline.primary = stability

    async def script(r: Rig) -> None:
        for text in ("a green hill", "a blue lake", "a grey owl"):
            r.submit(text)
        await until(lambda: r.inbox.images.qsize() == 3)
        assert len(fallback.calls) == 3 and len(sent) == 1
        status = stability.status()
        assert status.state == "degraded" and 55 < status.resume_in <= 60
        assert any("rate limiting us (429) for 60 s; using offline" in m for m in r.reports)
        await stability.aclose()
    rig.run(script)
