"""Token buckets, the phone book and the message gate: bounded memory of the crowd, with a fake clock."""

from __future__ import annotations

from engine.net.limits import (
    REFUSED_PER_CLIENT,
    STATUSES_PER_CLIENT,
    Buckets,
    Gate,
    MessageGate,
    PhoneBook,
)


class Prompts:
    """The audience's side of the phone book: which prompt ids are still in the show, which were freed."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.freed: list[str] = []

    def book(self, max_phones: int = 100, max_per_ip: int = 3, memory_s: float = 600.0,
             quiet_s: float = 30.0) -> PhoneBook:
        return PhoneBook(max_phones, max_per_ip, memory_s, quiet_s, self.live.__contains__, self.freed.append)


def test_a_key_that_never_took_has_no_bucket() -> None:
    """Asking whether a key may send makes no bucket: only a take does."""
    b = Buckets(2, 0.5)
    assert b.wait_time("a", 0.0) == 0.0 and len(b) == 0
    b.take("a", 0.0)
    assert "a" in b and len(b) == 1


def test_a_refilled_bucket_is_dropped() -> None:
    """Once full again a bucket says nothing a new one would not: the sweep lets it go."""
    b = Buckets(2, 0.5)  # one token back every 2 s
    b.take("a", 0.0)
    b.take("b", 1.0)
    assert b.sweep(1.9) == 0
    assert b.sweep(2.0) == 1 and "a" not in b and "b" in b
    assert b.sweep(3.0) == 1 and len(b) == 0


def test_buckets_without_a_rate_remember_nothing() -> None:
    """No cooldown, no limit: nothing is kept."""
    b = Buckets(2, 0.0)
    for _ in range(5):
        assert b.try_take("a", 0.0)
    assert len(b) == 0


def test_takes_sweep_the_table_as_they_go() -> None:
    """A thousand keys one after the other leave a handful of buckets, not a thousand."""
    b = Buckets(1, 1.0)
    for i in range(1000):
        b.take(f"k{i}", float(i))
    assert len(b) <= 2


def test_a_new_phone_past_its_address_ceiling_waits_while_the_others_are_recent() -> None:
    """At max_phones_per_ip, a new id is refused while every phone of that address was seen lately."""
    p = Prompts()
    book = p.book(max_per_ip=3, quiet_s=30.0)
    for i in range(3):
        assert book.admit(f"id{i}", "6.6.6.6", float(i)) is not None
    assert book.admit("id3", "6.6.6.6", 10.0) is None
    assert book.admit("other", "7.7.7.7", 10.0) is not None  # another address is not concerned
    assert book.per_ip("6.6.6.6") == 3


def test_the_least_recently_seen_quiet_idle_phone_of_the_address_makes_room() -> None:
    """Past the ceiling the address's oldest quiet idle phone is forgotten, prompts and all."""
    p = Prompts()
    book = p.book(max_per_ip=3, quiet_s=30.0)
    for i in range(3):
        book.admit(f"id{i}", "6.6.6.6", float(i))
        book.remember(f"id{i}", f"p{i}")
    book.seen("id0", 5.0)  # id1 is now the least recently seen
    assert book.admit("id3", "6.6.6.6", 40.0) is not None
    assert book.get("id1") is None and p.freed == ["p1"]
    assert book.get("id0") is not None and book.per_ip("6.6.6.6") == 3


def test_a_phone_with_a_prompt_in_the_show_is_never_forgotten_to_make_room() -> None:
    """Busy phones are skipped; with none idle the new phone is refused."""
    p = Prompts()
    book = p.book(max_per_ip=2, quiet_s=0.0)
    for i in range(2):
        book.admit(f"id{i}", "6.6.6.6", 0.0)
        book.remember(f"id{i}", f"p{i}")
        p.live.add(f"p{i}")
    assert book.admit("id2", "6.6.6.6", 100.0) is None
    p.live.discard("p1")
    assert book.admit("id2", "6.6.6.6", 100.0) is not None and book.get("id1") is None


def test_past_the_ceiling_in_all_the_least_recently_seen_idle_phone_goes() -> None:
    """max_phones holds across addresses: the oldest idle phone anywhere makes room."""
    p = Prompts()
    book = p.book(max_phones=3, max_per_ip=100)
    for i in range(5):
        assert book.admit(f"id{i}", f"10.0.0.{i}", float(i)) is not None
    assert list(book) == ["id2", "id3", "id4"]


def test_forced_phones_pass_both_ceilings() -> None:
    """The journal's and the VJ's prompts always find their phone."""
    p = Prompts()
    book = p.book(max_phones=10, max_per_ip=1)
    book.admit("a", "1.1.1.1", 0.0)
    p.live.add("pa")
    book.remember("a", "pa")
    assert book.admit("b", "1.1.1.1", 0.0, force=True) is not None and len(book) == 2


def test_an_idle_phone_expires_after_phone_memory() -> None:
    """Not seen for memory_s and nothing in the show: forgotten, its prompts freed."""
    p = Prompts()
    book = p.book(memory_s=600.0)
    book.admit("a", "1.1.1.1", 0.0)
    book.remember("a", "pa")
    assert book.expire(599.0) == 0
    assert book.expire(600.0) == 1 and book.get("a") is None and p.freed == ["pa"]
    assert book.per_ip("1.1.1.1") == 0


def test_a_busy_phone_outlives_phone_memory() -> None:
    """A phone whose prompt is still waiting is kept, and counted as seen."""
    p = Prompts()
    book = p.book(memory_s=600.0)
    book.admit("a", "1.1.1.1", 0.0)
    book.remember("a", "pa")
    p.live.add("pa")
    assert book.expire(1000.0) == 0 and book.get("a") is not None
    p.live.clear()
    assert book.expire(1599.0) == 0 and book.expire(1600.0) == 1


def test_history_keeps_the_latest_statuses_and_few_refusals() -> None:
    """20 statuses at most, of which 3 refusals: a phone flooding refusals keeps only the latest."""
    p = Prompts()
    book = p.book()
    book.admit("a", "1.1.1.1", 0.0)
    for i in range(50):
        book.remember("a", f"r{i}", refused=True)
    phone = book.get("a")
    assert phone is not None and phone.history == [f"r{i}" for i in range(50 - REFUSED_PER_CLIENT, 50)]
    for i in range(30):
        book.remember("a", f"ok{i}")
    assert len(phone.history) == STATUSES_PER_CLIENT and phone.refused == []
    assert len(p.freed) == 50 + 30 - STATUSES_PER_CLIENT


def test_the_gate_passes_a_burst_then_drops() -> None:
    """Within the burst every frame passes; past it frames are dropped until tokens come back."""
    gate = MessageGate("1.1.1.1", 5.0, 4, Buckets(100, 100.0), 0.0)
    assert [gate.admit(0.0) for _ in range(5)] == [Gate.PASS] * 4 + [Gate.DROP]
    assert gate.admit(0.2) is Gate.PASS


def test_a_flood_is_closed() -> None:
    """More than a burst's worth of dropped frames within 10 s: close the connection."""
    gate = MessageGate("1.1.1.1", 5.0, 4, Buckets(100, 100.0), 0.0)
    verdicts = [gate.admit(0.0) for _ in range(20)]
    assert verdicts[:4] == [Gate.PASS] * 4 and verdicts[4:8] == [Gate.DROP] * 4 and verdicts[8] is Gate.CLOSE


def test_an_address_shares_one_allowance_across_its_connections() -> None:
    """Three connections within their own limits still share their address's bucket."""
    shared = Buckets(6, 1.0)
    gates = [MessageGate("6.6.6.6", 100.0, 100, shared, 0.0) for _ in range(3)]
    verdicts = [g.admit(0.0) for _ in range(3) for g in gates]
    assert verdicts.count(Gate.PASS) == 6 and verdicts.count(Gate.DROP) == 3
    assert MessageGate("7.7.7.7", 100.0, 100, shared, 0.0).admit(0.0) is Gate.PASS
