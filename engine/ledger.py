"""The one owner of a prompt's life: every change of state, in memory and in the journal, in step.

    phone ─ submit ─▶ queued ─ next_prompt ─▶ generating ─ store_image ─▶ (in the show's queue)
        ─ on_screen ─▶ showing ─ on_screen ─▶ done          (or rejected / failed with a reason)

The audience (``net/audience.py``) knows the line, the limits and the statuses phones see; the
journal (``store/``) keeps it all on disk. Before the ledger the two were updated side by side
at eight call sites; now the pipeline, the server and the control page call only the ledger.

Sans-I/O: each transition changes memory at once and returns a ``Step`` (the statuses to deliver,
the journal writes, whether the pipeline has new work), which it also hands to the ``sink`` it was
built with. The sink (``backstage/scribe.py`` in the show) commits the writes off the event loop
and delivers the statuses once they are committed, so a phone hears "queued" only when its prompt
is on disk, and no phone ever waits for an image file's fsync. Images go through the ``keeper``
seam, the one awaitable here: writing an image file is slow, and the pipeline must know its id.

Every method runs on the backstage loop (one thread): no locks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.contract import State
from engine.errors import EngineError
from engine.gen.base import GeneratedImage
from engine.gen.images import image_url
from engine.net.audience import NO_ADDRESS, NOT_THIS_TIME, Audience, Outbox, Prompt
from engine.net.protocol import PromptStatus

log = logging.getLogger(__name__)


# --- what the journal must write ---------------------------------------------------------------
@dataclass(frozen=True)
class RecordPrompt:
    prompt_id: str
    client_id: str
    text: str
    settings: Mapping[str, object]


@dataclass(frozen=True)
class SetState:
    prompt_id: str
    state: State
    reason: str | None = None


@dataclass(frozen=True)
class SetApproval:
    prompt_id: str
    approved: bool
    reason: str | None = None


@dataclass(frozen=True)
class MarkShown:
    image_id: str


Write = RecordPrompt | SetState | SetApproval | MarkShown


@dataclass(frozen=True)
class Step:
    """What one transition asks of the world: write these, then tell these phones."""

    outbox: tuple[tuple[str, PromptStatus], ...] = ()
    writes: tuple[Write, ...] = ()
    wake: bool = False  # the pipeline has a prompt to look at
    feed: str | None = None  # a phone's prompt went on screen: the line for everyone's feed

    def __bool__(self) -> bool:
        return bool(self.outbox or self.writes or self.wake or self.feed)


@dataclass(frozen=True)
class StoredImage:
    """An image safely in the journal: its id names it everywhere after; ``ext`` is its file type."""

    id: str
    ext: str


@dataclass(frozen=True)
class GalleryItem:
    """An image that has been on screen, for the control page's gallery (and its "show again")."""

    id: str
    prompt_id: str
    text: str
    ext: str


@dataclass(frozen=True)
class Resumed:
    """A prompt read back from the journal after a restart, with its images."""

    id: str
    client_id: str
    text: str
    state: State
    reason: str | None
    approved: bool | None
    images: tuple[StoredImage, ...] = ()


class Keeper(Protocol):
    """Where image bytes live (the journal's files); slow, so awaited off the loop."""

    def add_image(self, prompt_id: str, image: GeneratedImage, metadata: Mapping[str, object]
                  ) -> Awaitable[StoredImage]: ...

    def image_bytes(self, image_id: str) -> Awaitable[bytes | None]: ...


class LedgerError(EngineError):
    """A control-page operation on a prompt the ledger cannot act on; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Flight:
    """A prompt whose images are in the show's hands: done once each was shown and has left."""

    prompt: Prompt
    images: list[str] = field(default_factory=list)
    shown: set[str] = field(default_factory=set)


GALLERY_KEEP = 500  # images the control page can list and show again


class Ledger:
    def __init__(self, audience: Audience, keeper: Keeper, sink: Callable[[Step], None] = lambda _s: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.audience = audience
        self.keeper = keeper
        self.sink = sink
        self.clock = clock
        self.last_prompt_at = 0.0  # the latest phone prompt (the backstage collects garbage when quiet)
        self._flights: dict[str, _Flight] = {}  # prompt id → its images in the show's hands
        self._by_image: dict[str, _Flight] = {}
        self._on_screen: set[str] = set()
        self._gallery: dict[str, GalleryItem] = {}  # image id → item, in first-shown order
        self._stored: dict[str, StoredImage] = {}  # this show's stored images by id (gallery and re-show)
        self.last_image: str | None = None  # the newest stored image (image-to-image from the previous one)
        self._rehand: list[tuple[Prompt, StoredImage]] = []
        # A ban ("client" or "address", who), told beyond this show: every intake's gate (engine/cluster).
        self.on_ban: Callable[[str, str], None] = lambda _kind, _who: None

    @property
    def prompts(self) -> Mapping[str, Prompt]:
        return self.audience.prompts

    def _emit(self, outbox: Outbox | Sequence[tuple[str, PromptStatus]] = (), writes: Iterable[Write] = (),
              wake: bool = False, feed: str | None = None) -> Step:
        step = Step(tuple(outbox), tuple(writes), wake, feed)
        if step:
            self.sink(step)
        return step

    def _settings(self) -> dict[str, object]:
        return {"moderation": self.audience.cfg.moderation}

    # --- intake ------------------------------------------------------------------------------
    def submit(self, client_id: str, ip: str, text: str, ref: str | None = None,
               prompt_id: str | None = None) -> Step:
        """A phone's prompt: queued (journaled before the phone hears it) or refused with a reason.

        ``prompt_id``: given by an intake (engine/cluster); the same id again is the same prompt, told again
        where it stands and not written twice (delivery over Redis is at least once).
        """
        self.last_prompt_at = self.clock()
        known = prompt_id is not None and prompt_id in self.audience.prompts
        outbox = self.audience.submit(client_id, ip, text, ref, prompt_id)
        writes = [] if known else [RecordPrompt(s.id, client_id, s.text, self._settings())
                                   for _c, s in outbox if s.state is State.QUEUED]
        return self._emit(outbox, writes, wake=bool(writes))

    def submit_vj(self, text: str) -> str:
        """The VJ's own prompt, generated next; its id."""
        prompt = self.audience.submit_vj(text)
        self._emit([(prompt.client_id, prompt.status())],
                   [RecordPrompt(prompt.id, prompt.client_id, prompt.text, self._settings())], wake=True)
        return prompt.id

    def statuses_for(self, client_id: str) -> list[PromptStatus]:
        return self.audience.statuses_for(client_id)

    def flush_positions(self) -> Step:
        return self._emit(self.audience.flush_positions())

    # --- the VJ's decisions ----------------------------------------------------------------------
    def approve(self, prompt_id: str) -> Step:
        out = self.audience.approve(prompt_id)
        return self._emit(out, [SetApproval(prompt_id, True, None)], wake=True)

    def reject(self, prompt_id: str, reason: str = NOT_THIS_TIME) -> Step:
        out = self.audience.reject(prompt_id, reason)
        return self._emit(out, self._refusal(prompt_id, reason))

    def remove(self, prompt_id: str) -> Step:
        """Out of the line by the VJ's hand; the phone hears it was not shown."""
        out = self.audience.remove(prompt_id)
        prompt = self.audience.prompts.get(prompt_id)
        return self._emit(out, self._refusal(prompt_id, prompt.reason if prompt else None) if out else ())

    def ban(self, client_id: str) -> Step:
        """No more prompts from this phone this show; its waiting prompts are refused."""
        self.on_ban("client", client_id)
        return self._banned(self.audience.ban(client_id))

    def ban_address(self, ip: str) -> Step:
        """No more prompts from this address this show (every phone behind it); its waiting prompts are refused."""
        self.on_ban("address", ip)
        return self._banned(self.audience.ban_address(ip))

    def _banned(self, out: Outbox) -> Step:
        # The outbox also tells other phones their new places in line: only the refused are written as such.
        writes = [w for _c, s in out if s.state is State.REJECTED for w in self._refusal(s.id, s.reason)]
        return self._emit(out, writes)

    def move(self, prompt_id: str, to: int) -> Step:
        return self._emit(self.audience.move(prompt_id, to))

    def operate(self, op: str, prompt_id: str, reason: str | None = None, to: int = 0) -> Step:
        """One control-page operation on a prompt by id: approve, reject, remove, move, ban or ban_address."""
        prompt = self.audience.prompts.get(prompt_id)
        if prompt is None:
            raise LedgerError("not_found", "No such prompt (it may have been served already).")
        if op == "ban":
            return self.ban(prompt.client_id)
        if op == "ban_address":
            if prompt.ip in NO_ADDRESS:
                raise LedgerError("failed", "That prompt's address is not known (it came from the journal or the VJ).")
            return self.ban_address(prompt.ip)
        if op == "move":
            return self.move(prompt_id, to)
        if op == "remove":
            return self.remove(prompt_id)
        if op not in ("approve", "reject"):
            raise LedgerError("bad_message", f"Unknown operation {op!r}.")
        if prompt.state is not State.QUEUED:
            raise LedgerError("not_found", f"That prompt is {prompt.state.value}, not waiting.")
        return self.approve(prompt_id) if op == "approve" else self.reject(prompt_id, reason or NOT_THIS_TIME)

    @staticmethod
    def _refusal(prompt_id: str, reason: str | None) -> tuple[Write, ...]:
        return SetApproval(prompt_id, False, reason), SetState(prompt_id, State.REJECTED, reason)

    # --- generating ------------------------------------------------------------------------------
    def next_prompt(self) -> Prompt | None:
        """The next prompt to generate (the VJ's picks, then round-robin), now generating."""
        prompt, out = self.audience.next_prompt()
        if prompt is None:
            return None
        self._emit(out, [SetState(prompt.id, State.GENERATING)])
        return prompt

    def finish(self, prompt: Prompt, state: State, reason: str | None) -> Step:
        """A prompt's end: done, rejected or failed (with the reason its phone reads)."""
        self._flights.pop(prompt.id, None)
        out = self.audience.set_state(prompt.id, state, reason)
        return self._emit(out, [SetState(prompt.id, state, reason)])

    async def store_image(self, prompt: Prompt, image: GeneratedImage) -> StoredImage:
        """Into the journal (file, then row) before it may be shown; the show then knows it by this id.

        Raises the keeper's error (the journal refused it); the pipeline reports it and shows the image anyway.
        """
        meta: dict[str, Any] = {"prompt": prompt.text, "seed": image.seed, **image.metadata}
        stored = await self.keeper.add_image(prompt.id, image, meta)
        self._stored[stored.id] = stored
        self.last_image = stored.id
        return stored

    def handed_to_show(self, prompt: Prompt, image_id: str) -> None:
        """This image of this prompt is in the show's queue: watch for it on screen."""
        flight = self._flights.setdefault(prompt.id, _Flight(prompt))
        flight.images.append(image_id)
        self._by_image[image_id] = flight

    async def image_bytes(self, image_id: str) -> bytes | None:
        return await self.keeper.image_bytes(image_id)

    # --- the show tells what is on screen ----------------------------------------------------------
    def on_screen(self, visible: Iterable[str | None]) -> list[Step]:
        """The images on screen now (current and incoming): statuses for what came and what left."""
        now = {i for i in visible if i}
        steps = [self._shown(i) for i in now - self._on_screen]
        steps += [self._left(i) for i in self._on_screen - now]
        self._on_screen = now
        return [s for s in steps if s]

    def _shown(self, image_id: str) -> Step:
        flight = self._by_image.get(image_id)
        if flight is None:  # a demo picture or a re-show: nobody's prompt
            return Step()
        prompt = flight.prompt
        flight.shown.add(image_id)
        stored = self._stored.get(image_id, StoredImage(image_id, "png"))
        out = self.audience.set_state(prompt.id, State.SHOWING, image_url=image_url(image_id, stored.ext))
        if image_id not in self._gallery:
            self._gallery[image_id] = GalleryItem(image_id, prompt.id, prompt.text, stored.ext)
            while len(self._gallery) > GALLERY_KEEP:
                del self._gallery[next(iter(self._gallery))]
        writes: list[Write] = [SetState(prompt.id, State.SHOWING)]
        if image_id in self._stored:  # an image the journal refused has no row to mark
            writes.append(MarkShown(image_id))
        return self._emit(out, writes, feed=prompt.text if prompt.ip != "demo" else None)

    def _left(self, image_id: str) -> Step:
        flight = self._by_image.pop(image_id, None)
        if flight is None:
            return Step()
        if all(i in flight.shown for i in flight.images) and not any(i in self._by_image for i in flight.images):
            return self.finish(flight.prompt, State.DONE, None)
        return Step()

    # --- the control page reads ----------------------------------------------------------------------
    def gallery(self) -> list[GalleryItem]:
        """Every image of this show that has been on screen, in the order it was first shown."""
        return list(self._gallery.values())

    def stored(self, image_id: str) -> StoredImage | None:
        return self._stored.get(image_id)

    def text_of_image(self, image_id: str) -> str:
        item = self._gallery.get(image_id)
        return item.text if item is not None else ""

    # --- after a restart ---------------------------------------------------------------------------
    def resume(self, prompts: Sequence[Resumed], gallery: Sequence[GalleryItem], held: Collection[str] = ()) -> Step:
        """The journal's prompts back in memory, oldest first, around what the show still holds.

        ``held``: the images the show has in its hands (on screen, coming in, waiting, still in its inbox)
        when this backstage starts after a crash of the last one. A prompt whose images were made is never
        generated again: images the show holds are watched for, as if this backstage had handed them;
        images made but neither held nor ever shown (lost in the hand-over) are handed again from the
        journal (``take_rehand``). A prompt cut off before any image was made goes back in line; one cut
        off on screen whose images are all gone is done. Phones get their history back.
        """
        writes: list[Write] = []
        approve_mode = self.audience.cfg.moderation == "approve"
        in_show = set(held)
        ever_shown = {item.id for item in gallery}
        watched = 0
        for rec in prompts:
            state = rec.state
            waiting: list[StoredImage] = []
            if state in (State.GENERATING, State.SHOWING):
                waiting = [i for i in rec.images if i.id in in_show or i.id not in ever_shown]
                if not waiting:
                    state = State.QUEUED if state is State.GENERATING and not rec.images else State.DONE
                    writes.append(SetState(rec.id, state))
            prompt = Prompt(rec.id, rec.client_id, "restored", rec.text, self.clock(), state=state,
                            reason=rec.reason, needs_approval=rec.approved is None and approve_mode)
            prompt.image_urls = [image_url(i.id, i.ext) for i in rec.images]
            for image in rec.images:
                self._stored[image.id] = image
            self.audience.restore(prompt)
            if waiting:
                watched += 1
                if state is State.GENERATING:
                    self.audience.set_state(prompt.id, State.GENERATING)  # counted as being made, not in line
                for image in waiting:
                    self.handed_to_show(prompt, image.id)
                    if image.id not in in_show:
                        self._rehand.append((prompt, image))
        for item in gallery[-GALLERY_KEEP:]:
            self._gallery[item.id] = item
        back_in_line = sum(1 for p in self.audience.prompts.values() if p.state is State.QUEUED)
        if back_in_line or watched:
            log.info("resuming from the journal: %d prompts in line, %d with images in the show or handed again "
                     "(%d)", back_in_line, watched, len(self._rehand))
        return self._emit(writes=writes, wake=back_in_line > 0)

    def take_rehand(self) -> list[tuple[Prompt, StoredImage]]:
        """Images made before a restart that never reached the show: the pipeline hands them over again."""
        out, self._rehand = self._rehand, []
        return out
