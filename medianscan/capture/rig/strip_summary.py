"""What a strip run did (capture.rig.tile_strip), said in one sentence at its end."""

from __future__ import annotations

from dataclasses import dataclass, field

from medianscan.wording import counted


@dataclass
class StripSummary:
    """What a strip run did, in one sentence at its end."""

    negatives: list[str] = field(default_factory=list)  # finished in this run (shot, or carried on)
    tiles: int = 0
    blanks: list[int] = field(default_factory=list)  # places on the strip (this run's count) found blank
    live_view: bool = True
    ended: bool = False
    stopped: str | None = None
    seconds: float = 0.0
    last: str = ""  # the last tile run's sentence
    enough: bool = False  # shot as many negatives as asked (a plain scan-tiles on the strip: one)
    after: str = ""  # the negative the strip's end was found after
    wide_gaps: list[str] = field(default_factory=list)  # negatives after which the gap was seen too wide
    edges_unseen: int = 0  # gaps where the film's edges across the strip were not seen (planned on the stage's line)

    def said(self) -> str:
        done = counted(len(self.negatives), "negative")
        names = ""
        if self.negatives:
            names = f" ({self.negatives[0]}" + (f" to {self.negatives[-1]}" if len(self.negatives) > 1 else "") + ")"
        head = f"strip run: {done} shot{names}, {counted(self.tiles, 'tile')} in {self.seconds:.0f} s"
        if self.blanks:
            places = ", ".join(ordinal(b) for b in self.blanks)
            head += f"; {counted(len(self.blanks), 'blank negative')} skipped (the {places} on the strip)"
        if self.wide_gaps:
            head += f"; the gap after {', '.join(self.wide_gaps)} seen wider than tiles.gap_mm allows: the next " \
                    "negative planned from the gap's near edge and the nominal gap (its leading edge as clear as the " \
                    "base)"  # fmt: skip
        if self.edges_unseen:
            head += f"; the film's edges not seen at {counted(self.edges_unseen, 'gap')}: those negatives planned on " \
                    "the stage's line (it drifts off the film by 0.3-0.4 mm a negative)"  # fmt: skip
        if not self.live_view:
            head += "; each negative placed by the pitch alone (no live view on this body)"
        if self.ended and not self.live_view:
            return f"{head}; {counted(len(self.negatives), 'negative')} one pitch apart, as " \
                   "tiles.negatives_without_live_view says (no live view to see the strip's end)"  # fmt: skip
        where = "; the stage is past its end: put the next strip's first negative under the lens for the next run"
        if self.ended and not self.negatives:
            return f"{head}; the strip ended: no negative after {self.after}{where}"
        if self.ended:
            return f"{head}; the strip ended after {counted(len(self.negatives), 'negative')}{where}"
        if self.enough:
            return f"{head}; one negative, as scan-tiles without --strip asks: the stage stays on the strip, and the " \
                   "next scan-tiles goes on to the next negative"  # fmt: skip
        if self.last:  # the tile run's sentence says why it stopped, and what the next run does
            return f"{head}; {self.last}"
        return f"{head}; stopped: {self.stopped}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    end = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{end}"
