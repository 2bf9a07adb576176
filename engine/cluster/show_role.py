"""The show role's side of the cluster: its backstage, joined to the crowd's Redis.

``python -m engine show`` is the one-process show with three seams turned outwards, and nothing else:

- prompts: besides its own phones (the show still serves phones and the VJ page itself), ``ShowLink`` reads
  the prompt stream every intake adds to and hands each entry to the same ``Ledger.submit``, under the id the
  intake gave it. One ledger owns the line, so the fair order (round-robin across phones) is the same
  whichever intake a phone is on, and a prompt delivered twice is kept once;
- statuses: every step the scribe has journaled is delivered to local phones and to Redis (each phone's
  history and the status channel every intake listens to), and only then are the prompts' entries
  acknowledged; feeds, bans and images go the same way;
- generation: the primary generator is ``RemoteGenerator`` (jobs stream → generate workers → results
  stream), with the offline generator behind it, so a show whose workers are all gone still shows images.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.cluster.jobs import RemoteGenerator
from engine.cluster.keys import Keys
from engine.cluster.link import ClusterError, close, connect, redacted
from engine.cluster.show_link import ShowLink
from engine.cluster.wire import PromptEntry
from engine.config import ClusterConfig, Config
from engine.errors import BackstageError
from engine.gen.base import GeneratedImage
from engine.ledger import Ledger, StoredImage

log = logging.getLogger(__name__)


@dataclass
class ClusterShow:
    """The show's Redis parts, made before the ledger (the generator) and wired after it (``attach``)."""

    r: Any
    keys: Keys
    cfg: ClusterConfig
    remote: RemoteGenerator
    link: ShowLink | None = None

    def attach(self, ledger: Ledger) -> ShowLink:
        """Read the prompt stream into ``ledger``; bans made on this show reach every intake's gate."""

        def submit(entry: PromptEntry) -> object:
            return ledger.submit(entry.client_id, entry.ip, entry.text, entry.ref, prompt_id=entry.id)

        self.link = ShowLink(self.r, self.keys, self.cfg, submit)
        ledger.on_ban = self._ban
        return self.link

    def _ban(self, kind: str, who: str) -> None:
        if self.link is not None:
            if kind == "client":
                self.link.ban_client(who)
            else:
                self.link.ban_address(who)

    async def start(self) -> None:
        await self.remote.start()
        if self.link is not None:
            await self.link.start()

    async def aclose(self) -> None:
        if self.link is not None:
            await self.link.aclose()
        await self.remote.aclose()
        await close(self.r)


async def open_cluster(cfg: Config) -> ClusterShow:
    """Connect and make the remote generator; an unreachable Redis is one ``BackstageError`` line."""
    try:
        r = await connect(cfg.cluster.redis)
    except ClusterError as err:
        raise BackstageError(str(err)) from err
    keys = Keys(cfg.cluster.show)
    show = ClusterShow(r, keys, cfg.cluster, RemoteGenerator(r, keys, cfg.cluster))
    log.info("cluster: show %r on Redis %s", cfg.cluster.show, redacted(cfg.cluster.redis))
    return show


class PublishingKeeper:
    """The ledger's keeper, with every journaled image also put where every intake can serve it."""

    def __init__(self, keeper: Any, link: Callable[[], ShowLink | None]) -> None:
        self.keeper = keeper
        self.link = link

    async def add_image(self, prompt_id: str, image: GeneratedImage, metadata: Mapping[str, object]
                        ) -> StoredImage:
        stored: StoredImage = await self.keeper.add_image(prompt_id, image, metadata)
        link = self.link()
        if link is not None:
            data = image.data if image.data is not None else await self.keeper.image_bytes(stored.id)
            if data is not None:
                link.put_image(stored.id, data)
        return stored

    def image_bytes(self, image_id: str) -> Awaitable[bytes | None]:
        result: Awaitable[bytes | None] = self.keeper.image_bytes(image_id)
        return result
