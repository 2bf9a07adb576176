"""Effect-chain and transition choices: pure list logic, shared by every control surface."""

from __future__ import annotations

MAX_EFFECTS = 3


def toggle(chain: list[str], name: str, limit: int = MAX_EFFECTS) -> list[str]:
    """Remove ``name`` if it is in the chain, else add it at the end (a full chain swaps its last)."""
    if name in chain:
        return [n for n in chain if n != name]
    if len(chain) >= limit:
        return [*chain[: limit - 1], name]
    return [*chain, name]


def set_slot(chain: list[str], slot: int, name: str, limit: int = MAX_EFFECTS) -> list[str]:
    """Put ``name`` in ``slot`` (0-based; past the end appends); an empty name clears the slot."""
    if not 0 <= slot < limit:
        raise ValueError(f"slot {slot + 1} does not exist (1 to {limit})")
    out = [n for n in chain if n != name] if name else list(chain)
    if not name:
        return [n for i, n in enumerate(out) if i != slot]
    if slot < len(out):
        out[slot] = name
    else:
        out.append(name)
    return out[:limit]


def cycle(names: list[str], current: str, step: int) -> str:
    """The name ``step`` places after ``current`` in ``names``, wrapping around."""
    if not names:
        return current
    i = names.index(current) if current in names else -1 if step > 0 else 0
    return names[(i + step) % len(names)]
