"""Building the backstage from the config: every part made once, wired to the others, in one place.

The order is the dependency order: audience → scribe → ledger (resumed from the journal) →
generators → servers → pipeline → control surfaces. A part that cannot start raises
``BackstageError`` with the one line the VJ needs, and ``Backstage.start()`` re-raises it on the
caller's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from engine.audio.live import LiveAudio
from engine.config import Config
from engine.contract import Inbox, StateBoard
from engine.control.midi_input import MidiInput
from engine.control.osc_server import OscControl
from engine.errors import BackstageError
from engine.gen.backends import make_generators
from engine.gen.base import Generator
from engine.gen.images import content_type, ext_of, sniff
from engine.gen.pipeline import Pipeline
from engine.ledger import GalleryItem, Ledger, Resumed, Step, StoredImage
from engine.line_pace import expected_wait
from engine.net.audience import Audience, Outbox
from engine.net.i18n import best_language_for
from engine.net.moderation import Moderator
from engine.net.server import AudienceServer
from engine.net.vj_auth import TokenGate
from engine.net.vj_hub import VjHub
from engine.net.vj_server import VjRoutes
from engine.store import Journal

if TYPE_CHECKING:
    from engine.cluster.show_role import ClusterShow  # only with [cluster] redis: redis-py is an extra

from .control import BackstageControls
from .scribe import Scribe

log = logging.getLogger(__name__)

RESUME_LIMIT = 5000  # prompts of this show read back after a restart


@dataclass
class Parts:
    """Everything the backstage runs; made by ``assemble``, stopped in reverse by ``Backstage``."""

    ledger: Ledger
    scribe: Scribe
    generators: tuple[Generator, Generator]
    controls: BackstageControls
    server: AudienceServer | None = None
    pipeline: Pipeline | None = None
    vj: VjRoutes | None = None
    hub: VjHub | None = None
    midi: MidiInput | None = None
    osc: OscControl | None = None
    port: int | None = None
    vj_url: str = ""
    cluster: ClusterShow | None = None  # the show role's Redis parts ([cluster] redis; engine/cluster)


async def assemble(cfg: Config, inbox: Inbox, board: StateBoard, pool: Executor, journal: Journal | None,
                   join_url: str, vj_token: str, serve: bool, live: LiveAudio | None,
                   held_by_show: tuple[str, ...] = ()) -> Parts:
    moderator = Moderator.from_files(user_file=Path(cfg.audience.blocklist_file)
                                     if cfg.audience.blocklist_file else None)
    audience = Audience(cfg.audience, moderator)
    parts: Parts | None = None
    cluster = await _open_cluster(cfg) if cfg.cluster.redis else None

    def deliver(out: Outbox) -> None:  # statuses reach phones through the server, once it runs
        if parts is not None and parts.server is not None:
            parts.server.deliver(out)
        if cluster is not None and cluster.link is not None:  # and every intake's phones, through Redis
            cluster.link.deliver(out)

    def apply(step: Step) -> None:
        assert parts is not None
        parts.scribe.apply(step)
        if step.wake and parts.pipeline is not None:
            parts.pipeline.wake()
        if step.feed is not None and parts.server is not None:
            parts.server.broadcast_feed(step.feed)
        if step.feed is not None and cluster is not None and cluster.link is not None:
            cluster.link.feed(step.feed)

    def report(message: str) -> None:
        if parts is not None:
            parts.controls.report(message)
        else:
            log.warning("%s", message)

    scribe = Scribe(journal, deliver, report, pool)
    if cluster is None:
        ledger = Ledger(audience, scribe, apply)
        generators = make_generators(cfg, pool)
    else:
        from engine.cluster.show_role import PublishingKeeper
        from engine.gen.procedural import ProceduralGenerator

        ledger = Ledger(audience, PublishingKeeper(scribe, lambda: cluster.link), apply)
        generators = (cluster.remote, ProceduralGenerator(pool))  # the workers', else offline images
    log.info("generator: %s (fallback %s)", generators[0].name, generators[1].name)
    output_dir = str(journal.folder) if journal is not None else cfg.store.output_dir
    controls = BackstageControls(cfg, ledger, generators, inbox, board, pool, output_dir)
    parts = Parts(ledger, scribe, generators, controls, cluster=cluster)
    if journal is not None:
        prompts, gallery = await asyncio.get_running_loop().run_in_executor(pool, read_back, journal)
        ledger.resume(prompts, gallery, held_by_show)
    if cluster is not None:  # after the resume: a prompt delivered again is then one the ledger knows
        cluster.attach(ledger)
        await cluster.start()
    if not serve:
        return parts
    await _serve(parts, cfg, inbox, board, pool, join_url, vj_token, live)
    return parts


async def _serve(parts: Parts, cfg: Config, inbox: Inbox, board: StateBoard, pool: Executor, join_url: str,
                 vj_token: str, live: LiveAudio | None) -> None:
    """The servers, the pipeline and the control surfaces: what only a serving backstage has."""
    try:
        gate = TokenGate(vj_token)
    except ValueError as err:
        raise BackstageError(str(err)) from err
    if cfg.vj.host and not cfg.vj.port:
        raise BackstageError("[vj] host needs [vj] port too (or leave both empty to share the audience server)")
    ledger, controls = parts.ledger, parts.controls
    parts.hub = VjHub(controls, board, inbox.commands, pool, join_url, live, sessions=gate)
    images = _image_lookup(ledger)
    parts.vj = VjRoutes(cfg.vj, gate, parts.hub.handle, images)
    own_port = cfg.vj.port != 0
    parts.server = AudienceServer(cfg.server, cfg.audience, ledger, images=images,
                                  vj=None if own_port else parts.vj)
    primary, fallback = parts.generators
    parts.server.per_place = expected_wait(1, cfg.show.hold, cfg.show)
    parts.server.best_language = best_language_for(primary.name)  # the hint under the phone's prompt box
    parts.server.captions = cfg.overlay.captions  # phones are told their words may appear on the big screen
    parts.pipeline = Pipeline(cfg, ledger, primary, fallback, inbox, board, pool, report=controls.report)
    controls.on_settings = lambda new: setattr(parts.pipeline, "cfg", new)
    try:
        await parts.server.start()
    except OSError as err:
        raise BackstageError(
            f"cannot listen on {cfg.server.host}:{cfg.server.port} ({err.strerror or err}); "
            "is another engine running? pick another with --port") from err
    parts.port = parts.server.port
    log.info("audience server on %s:%d", cfg.server.host, parts.port)
    if own_port:
        host = cfg.vj.host or cfg.server.host
        try:
            await parts.vj.start(host, cfg.vj.port)
        except OSError as err:
            raise BackstageError(f"control page: cannot listen on {host}:{cfg.vj.port} "
                                 f"({err.strerror or err}); set [vj] port to another one") from err
    parts.vj_url = vj_url(cfg, join_url, parts.port, parts.vj.port)
    log.warning("VJ control page: %s?token=%s", parts.vj_url, vj_token)
    if cfg.midi.input != "none":
        parts.midi = controls.midi = MidiInput(cfg.midi, inbox.commands)
        parts.midi.start()
        log.info("%s", parts.midi.snapshot().status)
    if cfg.osc.enabled:
        try:
            parts.osc = OscControl(cfg.osc, inbox.commands, board, live)
            await parts.osc.start()
        except (OSError, ValueError) as err:
            raise BackstageError(f"OSC: cannot listen on {cfg.osc.host}:{cfg.osc.port} ({err})") from err


async def _open_cluster(cfg: Config) -> ClusterShow:
    from engine.cluster.show_role import open_cluster

    return await open_cluster(cfg)


def _image_lookup(ledger: Ledger) -> Callable[[str], Awaitable[tuple[bytes, str] | None]]:
    """The servers' image route: bytes and type by id, read off the loop."""

    async def lookup(image_id: str) -> tuple[bytes, str] | None:
        data = await ledger.image_bytes(image_id)
        return None if data is None else (data, content_type(sniff(data) or "png"))

    return lookup


def read_back(journal: Journal) -> tuple[list[Resumed], list[GalleryItem]]:
    """In the pool, at start-up: this show's prompts (oldest first) and gallery, for the ledger to resume."""
    prompts: list[Resumed] = []
    texts: dict[str, str] = {}
    for rec in reversed(journal.prompts(limit=RESUME_LIMIT)):
        images = tuple(StoredImage(i.id, ext_of(i.path)) for i in journal.images(rec.id) if i.path)
        prompts.append(Resumed(rec.id, rec.client_id, rec.text, rec.state, rec.reason, rec.approved, images))
        texts[rec.id] = rec.text
    gallery = []
    for image in journal.gallery():
        text = texts.get(image.prompt_id)
        if text is None:
            found = journal.prompt(image.prompt_id)
            text = found.text if found is not None else ""
        gallery.append(GalleryItem(image.id, image.prompt_id, text, ext_of(image.path)))
    return prompts, gallery


def vj_url(cfg: Config, join_url: str, port: int | None, vj_port: int | None) -> str:
    """Where the VJ opens the control page: the join URL's host, or [vj] host and port of its own."""
    base = urlsplit(join_url or f"http://127.0.0.1:{port}")
    if vj_port is not None:
        host = cfg.vj.host if cfg.vj.host not in ("", "0.0.0.0", "::") else base.hostname or "127.0.0.1"
        return f"http://{host}:{vj_port}/vj"
    return urlunsplit((base.scheme, base.netloc, "/vj", "", ""))

