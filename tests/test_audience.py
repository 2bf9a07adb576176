"""Rate limits, duplicates, moderation, fairness and the VJ's operations, with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine.config import AudienceConfig
from engine.net.audience import BANNED, DUPLICATE, QUEUE_FULL, TOO_MANY, Audience, Outbox, Remembered
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


# --- bounded memory ------------------------------------------------------------------------------
FLOOD_BYTES_PER_PHONE = 4 * 1024  # README, "The audience": a phone of a flood of made-up ids, at most


def flood(a: Audience, clock: FakeClock, ids: int, addresses: int = 1, prompts: int = 1,
          word: str = "nonsense ") -> None:
    """``ids`` made-up client ids (as long as the page's) spread over ``addresses``, each sending ``prompts``
    prompts of the longest length; one id string per phone, as one connection has."""
    for i in range(ids):
        clock.now += 0.001
        client_id, ip = f"made-up-{i:016d}", f"6.6.{i % addresses // 256}.{i % addresses % 256}"
        for k in range(prompts):
            a.submit(client_id, ip, (f"{k} {i} " + word * 40)[: a.cfg.max_length])


def test_fifty_thousand_ids_from_one_address_stay_under_the_ceiling() -> None:
    """One address, 50,000 ids: at most max_phones_per_ip phones, each with a few prompts, and few buckets."""
    clock = FakeClock(100.0)
    a = audience(clock)
    flood(a, clock, 50_000)
    kept = a.remembered()
    assert kept.phones <= a.cfg.max_phones_per_ip
    assert kept.prompts <= kept.phones * 3 and kept.buckets <= 2 * a.cfg.burst * 4


def test_a_refused_new_id_leaves_nothing_behind() -> None:
    """Past the address's ceiling a new id hears why, and is not remembered at all."""
    from engine.net.audience import TOO_MANY_PHONES

    clock = FakeClock(100.0)
    a = audience(clock, max_phones_per_ip=2)
    a.submit("phone-1", "6.6.6.6", "one")
    a.submit("phone-2", "6.6.6.6", "two")
    before = a.remembered()
    s = last_state(a.submit("phone-3", "6.6.6.6", "three"), "phone-3")
    assert (s.state, s.reason) == (State.REJECTED, TOO_MANY_PHONES) and s.retry_after
    assert a.remembered() == before and a.statuses_for("phone-3") == []


def test_a_flood_of_made_up_ids_stays_under_the_stated_memory_ceiling() -> None:
    """Measured: ids past max_phones, each flooding refused prompts in a non-Latin script, cost under 4 KB a phone."""
    import gc
    import tracemalloc

    clock = FakeClock(100.0)
    a = audience(clock, max_phones=1000)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        flood(a, clock, 3_000, addresses=30, prompts=4, word="漢字仮名交じり文 ")
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert a.remembered().phones == a.cfg.max_phones
    assert used <= a.cfg.max_phones * FLOOD_BYTES_PER_PHONE, f"{used / a.cfg.max_phones:.0f} bytes per phone"


def test_an_idle_phone_is_forgotten_after_phone_memory() -> None:
    """Shown, then quiet for phone_memory: its history, prompts and buckets are all freed."""
    clock = FakeClock(100.0)
    a = audience(clock, phone_memory=600.0)
    sent = last_state(a.submit("a", "1.1.1.1", "a neon whale"))
    prompt, _ = a.next_prompt()
    assert prompt is not None
    a.set_state(sent.id, State.DONE, image_url="/images/x.png")
    clock.now += 599.0
    a.flush_positions()
    assert a.remembered().phones == 1 and [s.id for s in a.statuses_for("a")] == [sent.id]
    clock.now += 600.0  # the reload above counted as seen
    a.flush_positions()
    assert a.remembered() == Remembered(0, 0, 0) and a.statuses_for("a") == []


def test_a_phone_with_a_prompt_in_line_is_not_forgotten() -> None:
    """However long its prompt waits, the phone that sent it stays."""
    clock = FakeClock(100.0)
    a = audience(clock, phone_memory=60.0)
    sent = last_state(a.submit("a", "1.1.1.1", "a neon whale"))
    clock.now += 3600.0
    a.flush_positions()
    assert a.remembered().phones == 1 and a.status_of(sent.id).state is State.QUEUED


# --- the order of the checks ----------------------------------------------------------------------
class CountingFilter(WordFilter):
    def __init__(self) -> None:
        self.calls = 0

    def check(self, text: str) -> V:
        self.calls += 1
        return super().check(text)


def test_a_rate_limited_prompt_never_reaches_the_moderator() -> None:
    """The token buckets come first: only prompts within them cost a blocklist check."""
    clock = FakeClock(100.0)
    moderator = CountingFilter()
    a = Audience(AudienceConfig(cooldown=15.0, burst=2), moderator, clock)
    states = [last_state(a.submit("a", "1.1.1.1", f"idea {i} " + "xyz" * i)).state for i in range(50)]
    assert states.count(State.QUEUED) == 2 and moderator.calls == 2


def test_a_blocked_prompt_costs_a_token_too() -> None:
    """The blocklist's work is paid for: a phone sending blocked prompts is slowed like any other."""
    clock = FakeClock(100.0)
    moderator = CountingFilter()
    a = Audience(AudienceConfig(cooldown=15.0, burst=2), moderator, clock)
    reasons = [last_state(a.submit("a", "1.1.1.1", f"badword {i}")).reason or "" for i in range(10)]
    assert moderator.calls == 2 and all(r.startswith("Slow down") for r in reasons[2:])


# --- bans ---------------------------------------------------------------------------------------
def after_a_ban(clock: FakeClock, *known: str) -> Audience:
    """``prankster-1`` on 6.6.6.6 just banned, with the ``known`` phones seen on that address before it."""
    a = audience(clock, ban_memory=600.0)
    for client_id in (*known, "prankster-1"):
        a.submit(client_id, "6.6.6.6", f"a prompt from {client_id}")
    a.ban("prankster-1")
    return a


def sent_from_the_banned_address(a: Audience, client_id: str, text: str) -> PromptStatus:
    return last_state(a.submit(client_id, "6.6.6.6", text), client_id)


def test_a_banned_phone_back_with_a_fresh_id_from_the_same_address_is_refused() -> None:
    """Clearing storage makes a new id; on the same address within ban_memory it is banned too."""
    clock = FakeClock(100.0)
    a = after_a_ban(clock)
    clock.now += 5.0
    s = sent_from_the_banned_address(a, "prankster-2", "something rude again")
    assert (s.state, s.reason) == (State.REJECTED, BANNED)


def test_phones_known_on_that_address_before_the_ban_may_still_send() -> None:
    """Behind a shared address, the phones already there are not the banned one."""
    clock = FakeClock(100.0)
    a = after_a_ban(clock, "neighbour")
    clock.now += 30.0
    assert sent_from_the_banned_address(a, "neighbour", "a stormy sea").state is State.QUEUED


def test_after_ban_memory_a_new_id_on_that_address_may_send() -> None:
    """The tie lasts ban_memory seconds: long enough to deter, short enough for a shared address."""
    clock = FakeClock(100.0)
    a = after_a_ban(clock)
    clock.now += 601.0
    assert sent_from_the_banned_address(a, "newcomer", "a calm lake").state is State.QUEUED


def test_a_ban_by_address_refuses_every_phone_of_that_address() -> None:
    """Old and new ids alike; their waiting prompts leave the line; other addresses are untouched."""
    clock = FakeClock(100.0)
    a = audience(clock)
    a.submit("one", "6.6.6.6", "a calm lake")
    out = a.ban_address("6.6.6.6")
    assert [(c, s.state, s.reason) for c, s in out] == [("one", State.REJECTED, BANNED)]
    for cid in ("one", "two"):
        assert last_state(a.submit(cid, "6.6.6.6", f"from {cid}"), cid).reason == BANNED
    assert last_state(a.submit("three", "7.7.7.7", "elsewhere"), "three").state is State.QUEUED
    assert a.queued_count == 1


def test_a_handle_names_a_phone_without_giving_its_id_away() -> None:
    """Six characters, the same for every prompt of a phone, different between phones and between shows."""
    a, b = audience(FakeClock(100.0)), audience(FakeClock(100.0))
    cid = "k3J9-secret-client-id-xyz"
    handle = a.handle(cid)
    assert len(handle) == 6 and handle == a.handle(cid) and handle != a.handle(cid + "2")
    assert handle not in cid and b.handle(cid) != handle
