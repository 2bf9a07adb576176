"""The ledger with plain calls: each transition's statuses, journal writes and wake-ups, no I/O."""

from __future__ import annotations

import asyncio

import pytest

from engine.config import AudienceConfig
from engine.contract import State
from engine.gen.base import GeneratedImage
from engine.ledger import (
    GalleryItem,
    Ledger,
    LedgerError,
    MarkShown,
    RecordPrompt,
    Resumed,
    SetApproval,
    SetState,
    Step,
    StoredImage,
)
from engine.net.audience import Audience
from tests.fakes import MemoryKeeper


def ledger(**audience: object) -> tuple[Ledger, list[Step]]:
    steps: list[Step] = []
    cfg = AudienceConfig(**{"cooldown": 0.0, "burst": 10, "max_pending_per_client": 10, **audience})  # type: ignore[arg-type]
    return Ledger(Audience(cfg), MemoryKeeper(), steps.append), steps


def states(step: Step) -> list[State]:
    return [s.state for _c, s in step.outbox]


def show(led: Ledger, text: str = "a red fox", samples: int = 1) -> tuple[str, list[str]]:
    """A prompt submitted, generated and handed to the show: its id and its image ids."""
    pid = led.submit("phone-1", "1.2.3.4", text).outbox[0][1].id
    prompt = led.next_prompt()
    assert prompt is not None and prompt.id == pid
    ids = []
    for _ in range(samples):
        stored = asyncio.run(led.store_image(prompt, GeneratedImage(data=b"\x89PNG\r\n\x1a\n")))
        led.handed_to_show(prompt, stored.id)
        ids.append(stored.id)
    return pid, ids


def test_an_accepted_prompt_is_recorded_and_wakes_the_pipeline() -> None:
    """submit → a queued status, a RecordPrompt write, and a wake-up, handed to the sink."""
    led, steps = ledger()
    step = led.submit("phone-1", "1.2.3.4", "a red fox", ref="r1")
    assert states(step) == [State.QUEUED] and step.wake
    assert step.writes == (RecordPrompt(step.outbox[0][1].id, "phone-1", "a red fox", {"moderation": "auto"}),)
    assert steps == [step]


def test_a_refused_prompt_writes_nothing() -> None:
    """A duplicate is refused with a reason: nothing to journal, nothing to generate."""
    led, _ = ledger()
    led.submit("phone-1", "1.2.3.4", "a red fox")
    step = led.submit("phone-1", "1.2.3.4", "A red fox!")
    assert states(step) == [State.REJECTED] and step.writes == () and not step.wake


def test_next_prompt_marks_it_generating_in_the_journal() -> None:
    """Taking a prompt from the line tells its phone and writes the new state."""
    led, steps = ledger()
    pid = led.submit("phone-1", "1.2.3.4", "a red fox").outbox[0][1].id
    assert led.next_prompt() is not None
    assert steps[-1].writes == (SetState(pid, State.GENERATING),) and states(steps[-1]) == [State.GENERATING]
    assert led.next_prompt() is None


def test_the_vj_rejects_with_a_reason_in_memory_and_journal() -> None:
    """operate("reject") refuses a waiting prompt: the phone hears it, the journal records both facts."""
    led, _ = ledger()
    pid = led.submit("phone-1", "1.2.3.4", "a red fox").outbox[0][1].id
    step = led.operate("reject", pid, "not tonight")
    assert states(step)[0] is State.REJECTED
    assert step.writes == (SetApproval(pid, False, "not tonight"), SetState(pid, State.REJECTED, "not tonight"))


def test_operations_on_unknown_or_served_prompts_are_refused() -> None:
    """No such prompt, or one no longer waiting: a LedgerError the control page can show."""
    led, _ = ledger()
    with pytest.raises(LedgerError, match="No such prompt"):
        led.operate("approve", "p-missing")
    pid = led.submit("phone-1", "1.2.3.4", "a red fox").outbox[0][1].id
    led.next_prompt()
    with pytest.raises(LedgerError, match="generating, not waiting"):
        led.operate("reject", pid)


def test_a_ban_refuses_every_waiting_prompt_of_the_phone() -> None:
    """ban → each waiting prompt rejected, in memory and with its own writes."""
    led, _ = ledger()
    a = led.submit("phone-1", "1.2.3.4", "a red fox").outbox[0][1].id
    b = led.submit("phone-1", "1.2.3.4", "a blue whale").outbox[0][1].id
    step = led.ban("phone-1")
    assert {w.prompt_id for w in step.writes if isinstance(w, SetState)} == {a, b}
    assert states(led.submit("phone-1", "1.2.3.4", "a green hill")) == [State.REJECTED]


def test_on_screen_then_off_screen_is_showing_then_done() -> None:
    """The show's current image: showing (with its URL, a feed line, the gallery); replaced: done."""
    led, _ = ledger()
    pid, (image,) = show(led)
    (shown,) = led.on_screen([image, None])
    assert states(shown) == [State.SHOWING] and shown.outbox[0][1].image_urls == (f"/images/{image}.png",)
    assert shown.writes == (SetState(pid, State.SHOWING), MarkShown(image)) and shown.feed == "a red fox"
    assert led.gallery() == [GalleryItem(image, pid, "a red fox", "png")]
    (left,) = led.on_screen(["someone-else"])
    assert states(left) == [State.DONE] and left.writes == (SetState(pid, State.DONE),)


def test_done_waits_for_every_sample() -> None:
    """Two images: done only once both were on screen and have left it."""
    led, _ = ledger()
    pid, (first, second) = show(led, samples=2)
    led.on_screen([first])
    (second_shown,) = led.on_screen([second])  # the first left, but the second is still on screen
    assert states(second_shown) == [State.SHOWING]
    (left,) = led.on_screen([])
    assert states(left) == [State.DONE] and led.prompts[pid].state is State.DONE


def test_pictures_of_nobody_pass_unnoticed() -> None:
    """Demo pictures and re-shows are on screen without any prompt changing."""
    led, steps = ledger()
    before = len(steps)
    assert led.on_screen(["demo-1-0", "img-again1"]) == [] and len(steps) == before


def test_resume_puts_interrupted_prompts_back_in_line() -> None:
    """After a restart: generating → queued, showing → done (both written), images and gallery known again."""
    led, _ = ledger()
    img = StoredImage("p-b-1", "jpg")
    step = led.resume([
        Resumed("p-a", "phone-1", "a red fox", State.GENERATING, None, None),
        Resumed("p-b", "phone-2", "a blue whale", State.SHOWING, None, None, (img,)),
        Resumed("p-c", "phone-3", "a green hill", State.REJECTED, "no", False),
    ], [GalleryItem("p-b-1", "p-b", "a blue whale", "jpg")])
    assert step.writes == (SetState("p-a", State.QUEUED), SetState("p-b", State.DONE)) and step.wake
    assert led.prompts["p-b"].image_urls == ["/images/p-b-1.jpg"] and led.stored("p-b-1") == img
    assert [i.id for i in led.gallery()] == ["p-b-1"] and led.text_of_image("p-b-1") == "a blue whale"
    prompt = led.next_prompt()
    assert prompt is not None and prompt.id == "p-a"


def test_in_approve_mode_a_resumed_prompt_without_a_decision_still_waits_for_the_vj() -> None:
    """A prompt the VJ had not decided on before the restart is not served until approved."""
    led, _ = ledger(moderation="approve")
    led.resume([Resumed("p-a", "phone-1", "a red fox", State.QUEUED, None, None)], [])
    assert led.next_prompt() is None
    led.approve("p-a")
    assert led.next_prompt() is not None


def test_after_a_crash_images_the_show_holds_are_watched_not_made_again() -> None:
    """A prompt cut off while its image waited in the show: not back in line; shown, then done, once."""
    led, _ = ledger()
    img = StoredImage("p-a-1", "png")
    step = led.resume([Resumed("p-a", "phone-1", "a red fox", State.GENERATING, None, None, (img,))], [],
                      held=["p-a-1"])
    assert step.writes == () and led.next_prompt() is None and led.take_rehand() == []
    (shown,) = led.on_screen(["p-a-1"])
    assert states(shown) == [State.SHOWING] and MarkShown("p-a-1") in shown.writes
    (left,) = led.on_screen([])
    assert states(left) == [State.DONE]


def test_after_a_crash_an_image_made_but_lost_is_handed_again() -> None:
    """An image in the journal that neither the show holds nor was ever shown goes to the show again."""
    led, _ = ledger()
    img = StoredImage("p-a-1", "png")
    led.resume([Resumed("p-a", "phone-1", "a red fox", State.GENERATING, None, None, (img,))], [], held=[])
    ((prompt, again),) = led.take_rehand()
    assert prompt.id == "p-a" and again == img and led.next_prompt() is None
    assert states(led.on_screen(["p-a-1"])[0]) == [State.SHOWING]


def test_after_a_crash_the_image_on_screen_is_done_only_when_it_leaves() -> None:
    """A prompt on screen at the crash stays "showing" while the show holds its image."""
    led, _ = ledger()
    img = StoredImage("p-a-1", "png")
    step = led.resume([Resumed("p-a", "phone-1", "a red fox", State.SHOWING, None, None, (img,))],
                      [GalleryItem("p-a-1", "p-a", "a red fox", "png")], held=["p-a-1"])
    assert step.writes == () and led.prompts["p-a"].state is State.SHOWING
    led.on_screen(["p-a-1"])
    (left,) = led.on_screen(["demo-1-0"])
    assert states(left) == [State.DONE]


def test_ban_address_by_prompt_id_refuses_that_address_in_memory_and_journal() -> None:
    """operate("ban_address") finds the address from the prompt: its waiting prompts refused, its phones too."""
    led, _ = ledger()
    a = led.submit("phone-1", "1.2.3.4", "a red fox").outbox[0][1].id
    b = led.submit("phone-2", "1.2.3.4", "a blue whale").outbox[0][1].id
    kept = led.submit("phone-3", "5.6.7.8", "a green hill").outbox[0][1].id
    step = led.operate("ban_address", a)
    assert {w.prompt_id for w in step.writes if isinstance(w, SetState)} == {a, b}
    assert states(led.submit("phone-4", "1.2.3.4", "a grey cat")) == [State.REJECTED]
    assert led.prompts[kept].state is State.QUEUED


def test_a_prompt_from_the_journal_has_no_address_to_ban() -> None:
    """After a restart the prompts' addresses are unknown: ban_address says so rather than banning nobody."""
    led, _ = ledger()
    led.resume([Resumed("p-a", "phone-1", "a red fox", State.QUEUED, None, None)], [])
    with pytest.raises(LedgerError, match="address is not known"):
        led.operate("ban_address", "p-a")
