"""How counts read in what the operator is told: "1 frame", "9 frames", never "frame(s)"."""

from __future__ import annotations

_PLURALS: dict[str, str] = {}  # nouns whose plural is not noun + "s"


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1 ("0 stacks", "1 stack", "12 stacks")."""
    return f"{n} {noun if n == 1 else _PLURALS.get(noun, noun + 's')}"
