"""Generation benchmark: from a generator's answer to the show's image queue, and the offline generator's speed.

1. Answer -> show queue, for 1024x1024 PNG and WebP (target p95 < 40 ms). The real ``StabilityGenerator``
   (httpx) asks the real loopback ``MockStabilityServer`` (v2beta ``ultra``, aspect 1:1, so 1024x1024; no
   latency) for one image per prompt, and the real ``Pipeline._make`` takes it from there, exactly as in a
   show: ``engine.gen.decode.prepare`` on a ThreadPoolExecutor like the backstage's (2 workers),
   ``Journal.add_image`` through ``asyncio.to_thread`` into a temp folder (file fsync'd, then the SQLite row),
   then ``ShowImage`` onto ``Inbox.images``. Timed per image: from the moment ``generate()`` returns (a thin
   wrapper around the client stamps it: the response is in and parsed) to the moment the ShowImage is in the
   queue (the queue stamps its ``put``). Screens: 1920x1080 with ``render.max_image_size`` 2048 and fit
   letterbox, where a 1024x1024 image is not resized (``prepare`` only decodes), and 1280x720, where
   ``prepare`` also resizes it to 720x720 (LANCZOS).
   Baseline, same bytes, same run: the bare ``PIL.Image.open(...).convert("RGBA")``; pipeline/baseline
   (medians) is the pipeline's own overhead on top of decoding. Breakdown rows (``prepare`` and
   ``Journal.add_image`` called directly on the same image) and the HTTP round trip (request -> parsed
   response, mock's encoding included) are context, not targets.
2. ``procedural_image`` at 1024x1024 on one core (target < 300 ms per image, judged on p95): numpy's thread
   pools are limited to one thread before numpy is imported, and the process CPU time is printed beside the
   wall time (cpu/wall near 1.00 means one core did the work). Different prompts, cycling through the eight
   compositions. ``ProceduralGenerator.generate`` on the backstage-like executor, for the same prompts, is
   context; it tends to be faster than the direct call because a worker thread has its own glibc malloc
   arena, which reuses the big arrays' memory where the main thread's keeps taking fresh pages (page faults).

Why interleaved: on a shared machine the speed changes under us, so the four cases of part 1 take turns
image by image (the order reversing every round), and each image's baseline and breakdown run right after
its pipeline pass. The mock's pictures are smooth gradients; a line of context decodes a detailed picture
of the same size to show whether the content would change the decode time. Missed targets are reported,
never asserted: the script exits 0. Everything runs on 127.0.0.1 and is cleaned up (mock stopped, clients
closed, temp folder deleted).

Run from the repository root: ``.venv/bin/python bench/generation.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import queue
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# One core for numpy's thread pools: set before numpy is imported (here or by the engine).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import AudienceConfig, Config, with_overrides  # noqa: E402
from engine.contract import Inbox, ShowImage, ShowSnapshot, StateBoard  # noqa: E402
from engine.gen.base import GeneratedImage, GenerationRequest  # noqa: E402
from engine.gen.decode import prepare  # noqa: E402
from engine.gen.look import style_for  # noqa: E402
from engine.gen.mock_stability import MockStabilityServer  # noqa: E402
from engine.gen.pipeline import Pipeline  # noqa: E402
from engine.gen.procedural import ProceduralGenerator, procedural_image  # noqa: E402
from engine.gen.stability import StabilityGenerator  # noqa: E402
from engine.net.audience import Audience, Outbox, Prompt  # noqa: E402
from engine.store import Journal  # noqa: E402

KEY = "sk-bench-generation"
SIDE = 1024  # ultra at 1:1 answers 1024x1024; the procedural images are made at this size too
FORMATS = ("png", "webp")
SCREENS: tuple[tuple[int, int], ...] = ((1920, 1080), (1280, 720))
MAX_IMAGE_SIZE = 2048
FIT = "letterbox"
# The client allows at most stability.rate_limit (<= 150) requests per 10 s; each case has its own client,
# so keeping one case's requests within that means the limiter never makes a request wait.
RATE_LIMIT = 150
MAX_REQUESTS_PER_CASE = RATE_LIMIT
BACKSTAGE_WORKERS = 2  # engine/backstage.py: ThreadPoolExecutor(max_workers=2)
SETTLE_S = 0.2  # pause between closing the clients and stopping the mock

TARGET_PIPELINE_P95_MS = 40.0
TARGET_PROCEDURAL_MS = 300.0

STYLE_SUBJECTS = {
    "flow": "ink swirling in silk",
    "nebula": "a galaxy of stars",
    "mountains": "a mountain valley",
    "waves": "ocean waves on a beach",
    "skyline": "a city skyline",
    "mandala": "a lotus mandala",
    "crystal": "an ice crystal cave",
    "glow": "a glowing portal of light",
}
MOODS = ("calm", "rising", "dreamy", "quiet", "gentle", "golden", "misty", "bright")


# --- figures --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95)) if len(values) else float("nan")


def worst(values: Sequence[float]) -> float:
    return max(values, default=float("nan"))


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def print_row(label: str, cells: Sequence[float | str] = (), note: str = "") -> None:
    text = "".join(f"{c:>9.2f}" if isinstance(c, float) else f"{c:>9}" for c in cells)
    print(f"  {label:<46}{text:<27}  {note}".rstrip())


def three(values: Sequence[float]) -> list[float | str]:
    return [median(values), p95(values), worst(values)]


# --- instruments around the real objects ----------------------------------------------------


class StampedGenerator:
    """The Stability client as the pipeline sees it; notes when a request left and its answer came back."""

    def __init__(self, inner: StabilityGenerator) -> None:
        self.inner = inner
        self.name = inner.name
        self.sent = float("nan")
        self.answered = float("nan")
        self.images: list[GeneratedImage] = []
        self.error: BaseException | None = None

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        self.error = None
        self.sent = time.perf_counter()
        try:
            images = await self.inner.generate(request)
        except BaseException as err:
            self.error = err
            raise
        self.answered = time.perf_counter()  # the moment generate() returns: the response is in
        self.images = images
        return images

    async def aclose(self) -> None:
        await self.inner.aclose()


class NoFallback:
    """The pipeline's fallback: here a failed request must void the figures, not turn procedural."""

    name = "no-fallback"

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        raise RuntimeError(f"the mock request for {request.prompt_id} failed; figures would be void")

    async def aclose(self) -> None:
        pass


class StampingQueue(queue.SimpleQueue[ShowImage]):
    """``Inbox.images`` that notes when each image was put in it."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def put(self, item: ShowImage, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.stamps.append(time.perf_counter())


# --- part 1: answer -> show queue -----------------------------------------------------------


@dataclass
class Case:
    fmt: str
    screen: tuple[int, int]
    generator: StampedGenerator
    pipeline: Pipeline
    queue: StampingQueue
    pipeline_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)
    prepare_ms: list[float] = field(default_factory=list)
    journal_ms: list[float] = field(default_factory=list)
    roundtrip_ms: list[float] = field(default_factory=list)
    body_bytes: list[int] = field(default_factory=list)
    sizes: set[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=set)  # (decoded, shown)
    reports: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.fmt}-{self.screen[1]}p"

    @property
    def title(self) -> str:
        return f"{self.fmt.upper()} on a {self.screen[0]}x{self.screen[1]} screen"


def case_config(fmt: str, screen: tuple[int, int], url: str) -> Config:
    return with_overrides(Config(), {
        "stability.api_key": KEY,
        "stability.api_host": url,
        "stability.api": "v2beta",
        "stability.endpoint": "ultra",
        "stability.output_format": fmt,
        "stability.rate_limit": RATE_LIMIT,
        "stability.max_retries": 0,  # a failure must show, not hide behind a retry
        "stability.balance_interval": 0.0,
        "generation.aspect_ratio": "1:1",
        "generation.samples": 1,
        "render.max_image_size": MAX_IMAGE_SIZE,
        "show.fit": FIT,
        "window.width": screen[0],
        "window.height": screen[1],
    })


def make_case(fmt: str, screen: tuple[int, int], url: str, journal: Journal, pool: ThreadPoolExecutor) -> Case:
    cfg = case_config(fmt, screen, url)
    # env={}: the key and host come from the config above, never from this shell's STABILITY_* variables.
    generator = StampedGenerator(StabilityGenerator(cfg.stability, cfg.generation, env={}))
    stamping = StampingQueue()
    board = StateBoard()
    board.publish(ShowSnapshot(size=screen))
    audience = Audience(AudienceConfig())

    def deliver(_out: Outbox) -> None:
        pass

    reports: list[str] = []
    pipeline = Pipeline(cfg, audience, generator, NoFallback(), journal, Inbox(images=stamping), board,
                        deliver, pool, report=reports.append)
    return Case(fmt, screen, generator, pipeline, stamping, reports=reports)


def bare_decode(data: bytes) -> tuple[float, tuple[int, int]]:
    t0 = time.perf_counter()
    im = Image.open(io.BytesIO(data)).convert("RGBA")
    return ms_since(t0), im.size


async def one_image(case: Case, journal: Journal, n: int, record: bool) -> None:
    """One prompt through ``Pipeline._make``, then the baseline and breakdown on the same image."""
    text = f"a neon city at night, take {n} of {case.key}"
    prompt = Prompt(id=f"{case.key}-{n:04d}", client_id="bench", ip="127.0.0.1", text=text,
                    created=time.monotonic())
    journal.record_prompt(prompt.id, prompt.client_id, text, {})  # as the backstage does when it arrives
    stamps = len(case.queue.stamps)
    await case.pipeline._make(prompt)
    gen = case.generator
    if gen.error is not None or len(case.queue.stamps) != stamps + 1 or len(gen.images) != 1:
        why = gen.error or (case.reports[-1] if case.reports else "no image reached the queue")
        raise RuntimeError(f"{case.title}: prompt {prompt.id} did not make one image: {why}")
    window = (case.queue.stamps[-1] - gen.answered) * 1000.0
    shown = case.queue.get_nowait()
    image = gen.images[0]
    if image.data is None:
        raise RuntimeError(f"{case.title}: the Stability client answered without encoded bytes")
    bare, decoded = bare_decode(image.data)
    t0 = time.perf_counter()
    prepare(image, case.screen, MAX_IMAGE_SIZE, FIT)
    prepare_ms = ms_since(t0)
    t0 = time.perf_counter()
    journal.add_image(f"direct-{case.key}", image, {"prompt": text, "seed": image.seed, **image.metadata})
    journal_ms = ms_since(t0)
    if record:
        case.pipeline_ms.append(window)
        case.roundtrip_ms.append((gen.answered - gen.sent) * 1000.0)
        case.bare_ms.append(bare)
        case.prepare_ms.append(prepare_ms)
        case.journal_ms.append(journal_ms)
        case.body_bytes.append(len(image.data))
        case.sizes.add((decoded, (shown.pixels.shape[1], shown.pixels.shape[0])))


def detailed_decode_ms(fmt: str, reps: int) -> tuple[float, int]:
    """Median bare decode of a detailed 1024x1024 picture (a procedural one) in ``fmt``, and its size."""
    pixels = procedural_image("a city skyline in a storm", 7, SIDE, SIDE)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[..., :3]), "RGB").save(buf, format=fmt.upper())
    data = buf.getvalue()
    return median([bare_decode(data)[0] for _ in range(reps)]), len(data)


def report_case(case: Case) -> bool:
    ok = p95(case.pipeline_ms) < TARGET_PIPELINE_P95_MS
    ins = sorted({d for d, _ in case.sizes})
    outs = sorted({s for _, s in case.sizes})
    resized = any(d != s for d, s in case.sizes)
    size_note = (f"{'/'.join(f'{w}x{h}' for w, h in ins)} decoded -> {'/'.join(f'{w}x{h}' for w, h in outs)} "
                 f"in the queue ({'resized by prepare' if resized else 'not resized'})")
    print()
    print_row(f"{case.title}", ["median", "p95", "max"], f"(ms) {size_note}")
    print_row("response -> ShowImage in inbox.images", three(case.pipeline_ms),
              f"target p95 < {TARGET_PIPELINE_P95_MS:g} ms: {verdict(ok)}")
    print_row('baseline: Image.open().convert("RGBA")', three(case.bare_ms), "same bytes, main thread")
    ratio = median(case.pipeline_ms) / median(case.bare_ms)
    extra = median(case.pipeline_ms) - median(case.bare_ms)
    print_row("pipeline / baseline (medians)", [f"{ratio:.2f}x"], f"the pipeline's own overhead: {extra:+.2f} ms")
    print_row("  breakdown: prepare() called directly", three(case.prepare_ms))
    print_row("  breakdown: Journal.add_image called directly", three(case.journal_ms))
    print_row("context: HTTP round trip (generate() call)", three(case.roundtrip_ms),
              f"response {median(case.body_bytes) / 1024:.0f} KB (median)")
    return ok


async def part_one(images: int, warmup: int) -> list[bool]:
    met: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="stagecraft-bench-") as tmp:
        journal = Journal.open(Path(tmp))
        pool = ThreadPoolExecutor(max_workers=BACKSTAGE_WORKERS, thread_name_prefix="backstage-worker")
        mock = MockStabilityServer(KEY, port=0, scale=1.0, latency=0.0, credits=1e9)
        cases: list[Case] = []
        try:
            await mock.start()
            print(f"  mock: {mock.url} (v2beta ultra, 1:1, no latency); journal in {journal.folder} "
                  f"({filesystem_of(journal.folder)})")
            for screen in SCREENS:
                for fmt in FORMATS:
                    cases.append(make_case(fmt, screen, mock.url, journal, pool))
            for case in cases:
                journal.record_prompt(f"direct-{case.key}", "bench", "direct journal writes", {})
            n = 0
            for rnd in range(warmup + images):
                for case in cases if rnd % 2 == 0 else list(reversed(cases)):
                    await one_image(case, journal, n, record=rnd >= warmup)
                    n += 1
            for case in cases:
                met.append(report_case(case))
            print()
            for fmt in FORMATS:
                ms, size = detailed_decode_ms(fmt, reps=max(3, min(images, 9)))
                print_row(f"context: bare decode, detailed {fmt.upper()} picture", [ms],
                          f"a procedural {SIDE}x{SIDE} picture, {size / 1024:.0f} KB; compare the baselines")
        finally:
            for case in cases:
                await case.generator.aclose()
            # Let the mock's connection handlers see the clients leave and end on their own: stop() cancels
            # any still closing, and under Python 3.11.7 asyncio then logs a spurious CancelledError.
            await asyncio.sleep(SETTLE_S)
            await mock.stop()
            pool.shutdown(wait=True)
            journal.close()
    return met


def filesystem_of(path: Path) -> str:
    """The file system type under ``path`` (from /proc/mounts), or "file system unknown"."""
    target = str(path.resolve())
    best, kind = "", "file system unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1]
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, f"{parts[2]} at {point}"
    except OSError:
        pass
    return kind


# --- part 2: the procedural generator -------------------------------------------------------


def procedural_prompts(count: int) -> list[str]:
    styles = list(STYLE_SUBJECTS)
    return [f"{MOODS[(i // len(styles)) % len(MOODS)]} {STYLE_SUBJECTS[styles[i % len(styles)]]}, take {i}"
            for i in range(count)]


def direct(prompt: str) -> tuple[float, float]:
    """Wall and process-CPU milliseconds of ``procedural_image`` on this thread."""
    c0, t0 = time.process_time(), time.perf_counter()
    pixels = procedural_image(prompt, 0, SIDE, SIDE)
    wall, cpu = ms_since(t0), (time.process_time() - c0) * 1000.0
    if pixels.shape != (SIDE, SIDE, 4):
        raise RuntimeError(f"procedural_image made {pixels.shape}, not ({SIDE}, {SIDE}, 4)")
    return wall, cpu


async def through_executor(generator: ProceduralGenerator, request: GenerationRequest) -> tuple[float, float]:
    """Wall and process-CPU milliseconds of ``ProceduralGenerator.generate`` (its worker thread included)."""
    c0, t0 = time.process_time(), time.perf_counter()
    made = await generator.generate(request)
    wall, cpu = ms_since(t0), (time.process_time() - c0) * 1000.0
    if len(made) != 1 or made[0].pixels is None or made[0].pixels.shape != (SIDE, SIDE, 4):
        raise RuntimeError(f"ProceduralGenerator.generate did not make one {SIDE}x{SIDE} image")
    return wall, cpu


async def part_two(images: int, warmup: int) -> list[bool]:
    prompts = procedural_prompts(warmup + images)
    styles = [style_for(p) for p in prompts]
    pool = ThreadPoolExecutor(max_workers=BACKSTAGE_WORKERS, thread_name_prefix="backstage-worker")
    generator = ProceduralGenerator(pool)  # as make_generators builds it: on the backstage's pool
    direct_wall: list[float] = []
    direct_cpu: list[float] = []
    exec_wall: list[float] = []
    exec_cpu: list[float] = []
    by_style: dict[str, list[float]] = {}
    try:
        for i, prompt in enumerate(prompts):
            record = i >= warmup
            request = GenerationRequest(prompt_id=f"procedural-{i}", prompt=prompt, width=SIDE, height=SIDE)
            # Same prompt, same seed (0: from the text), same pixels both ways; which goes first alternates,
            # so neither always finds the memory the other just freed.
            if i % 2 == 0:
                wall, cpu = direct(prompt)
                ewall, ecpu = await through_executor(generator, request)
            else:
                ewall, ecpu = await through_executor(generator, request)
                wall, cpu = direct(prompt)
            if record:
                direct_wall.append(wall)
                direct_cpu.append(cpu)
                exec_wall.append(ewall)
                exec_cpu.append(ecpu)
                by_style.setdefault(styles[i], []).append(wall)
    finally:
        await generator.aclose()
        pool.shutdown(wait=True)
    cpu_ok = p95(direct_cpu) < TARGET_PROCEDURAL_MS
    wall_ok = p95(direct_wall) < TARGET_PROCEDURAL_MS
    print()
    print_row(f"procedural_image {SIDE}x{SIDE}, {len(direct_wall)} prompts", ["median", "p95", "max"],
              "(ms) one thread, on the main thread")
    print_row("process CPU time", three(direct_cpu), f"target p95 < {TARGET_PROCEDURAL_MS:g} ms: {verdict(cpu_ok)}")
    print_row("wall time", three(direct_wall), f"target p95 < {TARGET_PROCEDURAL_MS:g} ms: {verdict(wall_ok)}")
    print_row("cpu / wall (medians)", [f"{median(direct_cpu) / median(direct_wall):.2f}"], "1.00 = one core busy")
    print_row("context: ProceduralGenerator.generate, wall", three(exec_wall),
              f"on the {BACKSTAGE_WORKERS}-worker executor; same prompts")
    print_row("context: ProceduralGenerator.generate, CPU", three(exec_cpu), "process CPU time")
    per_style = ", ".join(f"{s} {median(v):.0f}" for s, v in sorted(by_style.items(), key=lambda kv: kv[0]))
    print(f"  wall median per composition (ms; {len(by_style)} of {len(STYLE_SUBJECTS)} seen): {per_style}")
    return [cpu_ok, wall_ok]


# --- entry point ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    images: int
    warmup: int


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=30, help="measured images per case (and procedural prompts)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured images per case first")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 images, 1 warm-up image")
    args = parser.parse_args(argv)
    images, warmup = (4, 1) if args.quick else (args.images, args.warmup)
    if images < 1 or warmup < 0 or images + warmup > MAX_REQUESTS_PER_CASE:
        parser.error(f"need images >= 1, warmup >= 0, images + warmup <= {MAX_REQUESTS_PER_CASE} "
                     "(one client's requests per 10 s)")
    return Settings(images=images, warmup=warmup)


def print_header(settings: Settings) -> None:
    threads = ", ".join(f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    print("Stagecraft generation benchmark: answer -> show queue, and the procedural generator")
    print(f"  Python {platform.python_version()} | {os.cpu_count()} CPUs | {platform.machine()} | "
          f"Pillow {PIL.__version__} | numpy {np.__version__} | httpx {httpx.__version__} | {threads}")
    print(f"  {settings.images} measured images per case after {settings.warmup} warm-up images; "
          "the cases take turns image by image")
    print(f"  prepare(): render.max_image_size={MAX_IMAGE_SIZE} fit={FIT}; "
          f"executor: ThreadPoolExecutor({BACKSTAGE_WORKERS}) like the backstage's")


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_args(argv)
    print_header(settings)
    met = asyncio.run(part_one(settings.images, settings.warmup))
    met += asyncio.run(part_two(settings.images, settings.warmup))
    print(f"\n{sum(met)} of {len(met)} targets met (figures are reported, never asserted)")


if __name__ == "__main__":
    main()
