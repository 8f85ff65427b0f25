"""How figures and names read in what the operator is told: "1 frame", "9 frames", never "frame(s)"; a share
that is small but not nothing never reads "0%"; a stack's name said once in a line that names it already; and
the reload that fits how this process was started."""

from __future__ import annotations

import os
from typing import Protocol

_PLURALS: dict[str, str] = {}  # nouns whose plural is not noun + "s"
THIN = 0.4  # a negative one frame of which has this share of the target SNR is thin: a few frames reach it


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1 ("0 stacks", "1 stack", "12 stacks")."""
    return f"{n} {noun if n == 1 else _PLURALS.get(noun, noun + 's')}"


def share(fraction: float) -> str:
    """A share as a percentage with the digits it needs: '45%', '4.5%', '0.31%', '0.004%'; '0%' only for nothing
    at all (a light that reaches 0.3 % of the range is dim, not off)."""
    pct = 100 * fraction
    if pct <= 0:
        return "0%"
    if pct >= 10:
        return f"{pct:.0f}%"
    if pct >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


def unnamed(text: str, name: str) -> str:
    """`text` without a leading "name: " (a blend's error names its stack; a line that already shows the stack
    says its name once)."""
    return text.removeprefix(f"{name}: ")


def reload_hint() -> str:
    """How to reload this process's configuration: `systemctl reload` under systemd, else SIGHUP to this pid
    (both reload in place; nothing needs stopping)."""
    if os.environ.get("INVOCATION_ID"):  # systemd sets it for each unit it starts; MANAGERPID for a user's units
        return (
            "`systemctl --user reload medianscan`" if os.environ.get("MANAGERPID") else "`systemctl reload medianscan`"
        )
    return f"`kill -HUP {os.getpid()}` (or `systemctl reload medianscan` for the service)"


class FramesCount(Protocol):
    """What a `frames: auto` burst's count says of itself (records.FramesRecord): the words below read only these,
    so the ground floor's records may use them without the two importing each other."""

    @property
    def target(self) -> float: ...
    @property
    def single_snr(self) -> float: ...
    @property
    def expected_snr(self) -> float: ...
    @property
    def most(self) -> int: ...
    @property
    def reached(self) -> bool: ...


def frames_count(count: FramesCount) -> str:
    """Why a `frames: auto` burst shot as many frames as it did: 'dense negative: SNR 152 reached', or short of
    its target at the most frames."""
    kind = "thin negative" if count.single_snr >= THIN * count.target else "dense negative"
    if count.reached:
        return f"{kind}: SNR {count.expected_snr:.0f} reached"
    return f"{kind}: SNR {count.expected_snr:.0f} of {count.target:.0f} at the most frames, {count.most}"
