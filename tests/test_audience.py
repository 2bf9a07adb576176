"""Rate limits, duplicates, moderation, fairness and the VJ's operations, with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.config import AudienceConfig
from engine.net.audience import DUPLICATE, QUEUE_FULL, TOO_MANY, Audience, Outbox
from engine.net.protocol import PromptStatus, State
from tests.fakes import FakeClock


@dataclass(frozen=True)
class V:
    allowed: bool
    reason: str = "Sorry, that prompt isn't allowed here."


class WordFilter:
    def check(self, text: str) -> V:
        return V("badword" not in text)


def audience(clock: FakeClock, **cfg: object) -> Audience:
    return Audience(AudienceConfig(**cfg), WordFilter(), clock)  # type: ignore[arg-type]


def last_state(out: Outbox, client: str = "a") -> PromptStatus:
    """The status the outbox sends first to ``client`` (the one about the prompt just handled)."""
    return next(s for c, s in out if c == client)


def test_accepted_prompt_is_queued_with_position() -> None:
    """A fine prompt is queued at position 1 and keeps its ref."""
    a = audience(FakeClock(100.0))
    s = last_state(a.submit("a", "1.1.1.1", "a neon whale", ref="r1"))
    assert (s.state, s.position, s.ref) == (State.QUEUED, 1, "r1")


def test_burst_then_cooldown() -> None:
    """Two prompts at once are fine, a third waits for the cooldown and says how long."""
    clock = FakeClock(100.0)
    a = audience(clock, cooldown=15.0, burst=2)
    assert last_state(a.submit("a", "ip", "one")).state is State.QUEUED
    assert last_state(a.submit("a", "ip", "two different")).state is State.QUEUED
    third = last_state(a.submit("a", "ip", "three again"))
    assert third.state is State.REJECTED and third.retry_after == pytest.approx(15.0)
    clock.now += 15.0
    assert last_state(a.submit("a", "ip", "three again")).state is State.QUEUED


def test_many_ids_from_one_address_are_limited_too() -> None:
    """A prankster rotating client ids on one address hits the per-address bucket."""
    a = audience(FakeClock(100.0), burst=1)
    states = [last_state(a.submit(f"id{i}", "6.6.6.6", f"prompt number {i} xyz"), f"id{i}").state
              for i in range(6)]
    assert states.count(State.QUEUED) == 4 and states[-1] is State.REJECTED


@pytest.mark.parametrize("again", ["A Neon Whale!", "a  neon whale", "a neón whale", "a neon whales"])
def test_duplicates_and_near_duplicates_are_refused(again: str) -> None:
    """Case, accents, punctuation or one letter do not make a prompt new."""
    clock = FakeClock(100.0)
    a = audience(clock, cooldown=0.0)
    a.submit("a", "ip", "a neon whale")
    s = last_state(a.submit("a", "ip", again))
    assert (s.state, s.reason) == (State.REJECTED, DUPLICATE)


def test_same_prompt_from_another_phone_is_fine() -> None:
    """Duplicates are per phone: two people may want the same thing."""
    a = audience(FakeClock(100.0))
    a.submit("a", "ip1", "a neon whale")
    assert last_state(a.submit("b", "ip2", "a neon whale"), "b").state is State.QUEUED


def test_blocklisted_prompt_is_rejected_politely() -> None:
    """The moderator's verdict becomes the reason; nothing is queued."""
    a = audience(FakeClock(100.0))
    s = last_state(a.submit("a", "ip", "a badword here"))
    assert s.state is State.REJECTED and "isn't allowed" in s.reason
    assert a.queued_count == 0


def test_queue_full() -> None:
    """Past max_queue the answer is the documented 'queue is full' with a retry hint."""
    a = audience(FakeClock(100.0), max_queue=2)
    a.submit("a", "1", "x one")
    a.submit("b", "2", "x two")
    s = last_state(a.submit("c", "3", "x three"), "c")
    assert (s.state, s.reason, s.retry_after) == (State.REJECTED, QUEUE_FULL, 60.0)


def test_pending_per_client_cap() -> None:
    """One phone cannot keep more than max_pending_per_client prompts waiting."""
    a = audience(FakeClock(100.0), cooldown=0.0, max_pending_per_client=2)
    a.submit("a", "ip", "first idea")
    a.submit("a", "ip", "second thing")
    assert last_state(a.submit("a", "ip", "third wish")).reason == TOO_MANY


def test_round_robin_serves_phones_in_turn() -> None:
    """Three prompts from a, one from b and c: the order is a, b, c, a, a."""
    a = audience(FakeClock(100.0), cooldown=0.0, burst=5, max_pending_per_client=5)
    for t in ("a1 cat", "a2 dog", "a3 bird"):
        a.submit("a", "ipa", t)
    a.submit("b", "ipb", "b1 fish")
    a.submit("c", "ipc", "c1 frog")
    order = []
    while (p := a.next_prompt()[0]) is not None:
        order.append(p.text.split()[0])
    assert order == ["a1", "b1", "c1", "a2", "a3"]


def test_positions_move_up_and_are_pushed() -> None:
    """Taking the next prompt tells the others their new position."""
    a = audience(FakeClock(100.0), cooldown=0.0)
    a.submit("a", "1", "first")
    a.submit("b", "2", "second")
    prompt, out = a.next_prompt()
    assert prompt is not None and last_state(out).state is State.GENERATING
    assert last_state(out, "b").position == 1


def test_approve_mode_holds_prompts_until_the_vj_says_yes() -> None:
    """In approve mode prompts wait without a position and are not served until approved."""
    a = audience(FakeClock(100.0), moderation="approve")
    s = last_state(a.submit("a", "1", "a castle"))
    assert s.state is State.QUEUED and s.position is None
    assert a.next_prompt()[0] is None
    assert [p.text for p in a.awaiting_approval()] == ["a castle"]
    a.approve(s.id)
    assert a.next_prompt()[0].id == s.id  # type: ignore[union-attr]


def test_vj_reject_and_remove() -> None:
    """A rejected prompt leaves the line with the VJ's reason."""
    a = audience(FakeClock(100.0), moderation="approve")
    s = last_state(a.submit("a", "1", "a castle"))
    out = a.reject(s.id, "Not tonight")
    assert (last_state(out).state, last_state(out).reason) == (State.REJECTED, "Not tonight")
    assert a.awaiting_approval() == []


def test_ban_rejects_waiting_prompts_and_future_ones() -> None:
    """A banned phone loses its waiting prompts and can send no more."""
    a = audience(FakeClock(100.0), cooldown=0.0)
    a.submit("a", "1", "one thing")
    a.ban("a")
    assert a.queued_count == 0
    assert last_state(a.submit("a", "1", "another")).state is State.REJECTED


def test_statuses_for_a_client_rebuild_the_page() -> None:
    """After a reload the phone gets each of its prompts' latest status."""
    a = audience(FakeClock(100.0), cooldown=0.0)
    first = last_state(a.submit("a", "1", "one thing"))
    a.set_state(first.id, State.DONE, image_url="/images/x.png")
    a.submit("a", "1", "another thing")
    statuses = a.statuses_for("a")
    assert [s.state for s in statuses] == [State.DONE, State.QUEUED]
    assert statuses[0].image_urls == ("/images/x.png",)


def test_new_prompt_position_matches_the_full_round_robin_order() -> None:
    """The fast per-phone count gives the same place in line as the full order, in any mix."""
    import random

    rng = random.Random(3)
    a = audience(FakeClock(100.0), cooldown=0.0, burst=50, max_pending_per_client=50, max_queue=1000, similarity=1.0)
    for i in range(150):
        client = f"c{rng.randrange(12)}"
        out = a.submit(client, client, f"prompt {i} {rng.random()}")
        status = last_state(out, client)
        assert status.position == a.positions()[status.id]
        if rng.random() < 0.2:
            a.next_prompt()


def test_others_hear_their_new_position_at_the_next_flush() -> None:
    """A newcomer can go ahead of a phone's second prompt; that phone is told at the flush."""
    a = audience(FakeClock(100.0), cooldown=0.0)
    a.submit("a", "1", "first")
    second = last_state(a.submit("a", "1", "second one"))
    assert second.position == 2
    a.submit("b", "2", "newcomer")
    moved = dict((s.id, s.position) for _c, s in a.flush_positions())
    assert moved == {second.id: 3}
    assert a.flush_positions() == []


def _fill(a: Audience, clock: FakeClock) -> dict[str, str]:
    """Three phones, two prompts each: fair order a1 b1 c1 a2 b2 c2."""
    ids: dict[str, str] = {}
    words = iter(["a red fox", "blue whale song", "tiny green robot", "ancient stone city", "glass jellyfish",
                  "burning violin"])
    for n in (1, 2):
        for c in "abc":
            clock.now += 1
            status = last_state(a.submit(c, f"10.0.0.{ord(c)}", next(words)), c)
            assert status.state is State.QUEUED, status.reason
            ids[f"{c}{n}"] = status.id
    return ids


def test_vj_moves_a_prompt_and_the_phones_that_moved_hear_it() -> None:
    """Moving c2 to the front pins it first; the rest keep the fair order and everyone behind is told."""
    clock = FakeClock(100.0)
    a = audience(clock, burst=5, cooldown=1.0)
    ids = _fill(a, clock)
    names = {v: k for k, v in ids.items()}
    a.flush_positions()
    out = a.move(ids["c2"], 0)
    assert [names[p.id] for p in a.line()] == ["c2", "a1", "b1", "c1", "a2", "b2"]
    told = {names[s.id]: s.position for _c, s in out}
    assert told == {"c2": 1, "a1": 2, "b1": 3, "c1": 4, "a2": 5, "b2": 6}
    a.move(ids["a1"], 4)  # down: everything up to its new place is pinned in the shown order
    assert [names[p.id] for p in a.line()] == ["c2", "b1", "c1", "a2", "a1", "b2"]
    served = [names[a.next_prompt()[0].id] for _ in range(6)]  # type: ignore[union-attr]
    assert served == ["c2", "b1", "c1", "a2", "a1", "b2"]
    assert a.move("p-nope", 0) == []


def test_vj_prompt_skips_the_line_without_limits_or_moderation() -> None:
    clock = FakeClock(100.0)
    a = audience(clock, burst=5, cooldown=1.0, moderation="approve")
    ids = _fill(a, clock)
    a.approve(ids["a1"])
    version = a.version
    vj = a.submit_vj("badword but the VJ may")  # the blocklist is for the audience
    assert a.version > version
    assert a.line()[0].id == vj.id and not vj.needs_approval
    assert a.submit_vj("badword but the VJ may").id != vj.id  # no duplicate check either
    prompt, _ = a.next_prompt()
    assert prompt is not None and prompt.client_id == "vj"
    assert [p.id for p in a.generating()] == [prompt.id]
    a.set_state(prompt.id, State.SHOWING)
    assert a.generating() == []


def test_queued_count_follows_every_way_in_and_out() -> None:
    clock = FakeClock(100.0)
    a = audience(clock, burst=5, cooldown=1.0)
    ids = _fill(a, clock)
    a.submit_vj("the VJ's own")
    assert a.queued_count == 7 == len(a.line())
    a.next_prompt()
    a.reject(ids["b2"])
    a.remove(ids["c2"])
    a.ban("a")
    assert a.queued_count == sum(1 for p in a.prompts.values() if p.state is State.QUEUED) == len(a.line()) == 2
