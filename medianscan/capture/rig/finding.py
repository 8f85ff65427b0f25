"""Finding the frame in live view: a strip seen through the light, the strip running across the view.

Clear film base is the brightest thing on the film: the gaps between pictures, a blank (unexposed) frame and the
rebate along the edges; the bare light beyond the strip's end is brighter still, and bluer than an orange mask.
Each column of the preview is taken by its median over the middle half of the rows (the picture's height): a
column is clear where that median comes within CLEAR of the rebate's level above it (the base's own level, with
the light's falloff), no film where it is brighter or bluer than any base. Between the clear runs either side of
the centre lies the picture; its centre against the view's gives the correction, its width the scale (mm per
preview pixel, from the picture's known width). A clear run across the centre with pictures both sides is a
blank frame; clear base running into no film, or no film at the centre, is the strip's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import imagecodecs
import numpy as np
import numpy.typing as npt

CLEAR = 0.95  # a column whose median reaches this share of the base's level is clear base
NO_FILM_BRIGHTER = 1.15  # the bare light: this much brighter than the base...
NO_FILM_BLUER = 1.3  # ... or this much bluer (blue over red) than an orange mask
REBATE_ROWS = 0.05  # the top and bottom share of the rows, where the rebate is
FILM_NEEDED = 0.5  # less film than this share of the view: the strip has ended
STILL = 0.01  # two previews whose mean difference is below this share of their level: nothing moves
WIDTH_TOLERANCE = 0.15  # a picture this much wider or narrower than the scale says is not one

Kind = Literal["picture", "blank", "end", "lost"]


@dataclass(frozen=True)
class Sight:
    """What one preview shows: a picture off centre by `offset_mm` (move the film by it to centre it), a blank
    frame, the end of the strip, or nothing to go on (`why` says what was seen)."""

    kind: Kind
    offset_mm: float = 0.0
    outline: tuple[float, float, float, float] | None = None  # the picture: left, top, right, bottom (fractions)
    mm_per_px: float | None = None
    why: str = ""
    fingerprint: npt.NDArray[np.float32] | None = None  # the picture, small and normalised (the same frame twice?)


@dataclass(frozen=True)
class Run:
    start: int
    end: int  # exclusive
    kind: str  # "clear", "picture", "none"

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


def decode(preview: bytes) -> npt.NDArray[np.float32]:
    return np.asarray(imagecodecs.jpeg8_decode(preview), dtype=np.float32)


def still(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> bool:
    """Two previews agree within noise: the film and the rig have stopped."""
    if a.shape != b.shape:
        return False
    small_a, small_b = a[::4, ::4].mean(axis=-1), b[::4, ::4].mean(axis=-1)
    level = max(float(small_a.mean()), 1.0)
    return float(np.abs(small_a - small_b).mean()) < STILL * level


class FrameFinder:
    """Finds the frame in each preview; keeps the scale (mm per preview pixel) once a whole picture was seen."""

    def __init__(self, picture_mm: float, flipped: bool = False) -> None:
        self.picture_mm = picture_mm
        self.sign = -1.0 if flipped else 1.0  # an advance moves the film rightwards in the view
        self.mm_per_px: float | None = None
        self.base: tuple[float, float] | None = None  # the clear base's level and blueness, once a frame was found

    def look(self, rgb: npt.NDArray[np.float32]) -> Sight:
        h, w, _ = rgb.shape
        runs, base = self._runs(rgb)
        film = sum(r.end - r.start for r in runs if r.kind != "none")
        centre = w / 2
        here = next(r for r in runs if r.start <= centre < r.end)
        if film < FILM_NEEDED * w or here.kind == "none":
            return Sight("end", why="the view shows the bare light: no film")
        at = runs.index(here)
        if here.kind == "clear" and self._narrow(here, w):  # a gap: the frame is off by half a pitch; the nearer
            sides = [r for r in (runs[at - 1] if at else None, runs[at + 1] if at + 1 < len(runs) else None)
                     if r is not None and r.kind == "picture"]  # fmt: skip
            if sides:
                here = max(sides, key=lambda r: r.end - r.start)  # the one more of which is in view
                at = runs.index(here)
        if here.kind == "clear":
            return self._clear(runs, at, w)
        left = next((r for r in reversed(runs[:at]) if r.kind != "picture"), None)
        right = next((r for r in runs[at + 1 :] if r.kind != "picture"), None)
        a: float = here.start if left is None else left.end
        b: float = here.end if right is None else right.start
        if left is not None and right is not None:
            width = b - a
            if self.mm_per_px is not None and abs(width * self.mm_per_px / self.picture_mm - 1) > WIDTH_TOLERANCE:
                seen = f"{width * self.mm_per_px:.1f} mm wide, not {self.picture_mm:g} mm"
                return Sight("lost", why=f"the picture between the gaps is {seen} (a gap inside a picture?)")
            self.mm_per_px = self.picture_mm / width
        elif self.mm_per_px is None:
            return Sight("lost", why="only one edge of the frame is in view, and the scale is not known yet: "
                                     "put a whole frame with both gaps in view")  # fmt: skip
        else:
            width_px = self.picture_mm / self.mm_per_px
            a, b = (a, a + width_px) if left is not None else (b - width_px, b)
        if left is None and right is None:
            return Sight("lost", why="no gap between frames in view: the base is not brighter than the picture")
        middle = (a + b) / 2
        top, bottom = _rows(rgb, int(max(a, 0)), int(min(b, w)))
        self.base = base or self.base
        return Sight(
            "picture",
            offset_mm=self.sign * (middle - centre) * self.mm_per_px,
            outline=(a / w, top / h, b / w, bottom / h),
            mm_per_px=self.mm_per_px,
            fingerprint=fingerprint(rgb[top:bottom, int(max(a, 0)) : int(min(b, w))]),
        )

    def _narrow(self, run: Run, w: int) -> bool:
        """A clear run too narrow for a blank frame: a gap (under half a picture's width)."""
        picture_px = w * 0.4 if self.mm_per_px is None else self.picture_mm / self.mm_per_px
        return run.end - run.start < picture_px / 2

    def _clear(self, runs: list[Run], at: int, w: int) -> Sight:
        """Clear base across the centre: a blank frame between two pictures, or the leader or trailer."""
        here = runs[at]
        before, after = runs[at - 1] if at > 0 else None, runs[at + 1] if at + 1 < len(runs) else None
        if (before is not None and before.kind == "none") or (after is not None and after.kind == "none"):
            return Sight("end", why="clear base running into the bare light: the strip's end")
        if before is None or after is None:
            return Sight("lost", why="clear base across the centre and to the edge of the view: the leader, or a "
                                     "frame far off centre")  # fmt: skip
        offset = (here.centre - w / 2) * (self.mm_per_px or 0.0) * self.sign
        return Sight("blank", offset_mm=offset, mm_per_px=self.mm_per_px, why="clear base between two pictures")

    def _runs(self, rgb: npt.NDArray[np.float32]) -> tuple[list[Run], tuple[float, float] | None]:
        """The view's columns as runs of clear base, picture and no film; and the clear base's level and
        blueness in this view (None: none of it in view)."""
        h, w, _ = rgb.shape
        profile, blue = column_profile(rgb)
        edge = max(1, int(h * REBATE_ROWS))
        rebate = np.maximum(np.median(rgb[:edge].mean(axis=-1), axis=0), np.median(rgb[-edge:].mean(axis=-1), axis=0))
        reference = np.percentile(profile, 90)
        if np.median(rebate) < CLEAR * np.median(profile):  # no rebate in view: the brightest columns are base
            rebate = np.full(w, reference, dtype=np.float32)
        level, base_blue = float(np.median(rebate)), float(np.percentile(blue, 10))
        if self.base is not None:  # a view with no film in it has no base of its own to compare with
            level, base_blue = min(level, self.base[0]), min(base_blue, self.base[1])
        runs, clear = column_runs(profile, blue, level, base_blue, rebate)
        base = (float(np.median(rebate)), float(np.median(blue[clear]))) if clear.any() else None
        return runs, base


def column_profile(rgb: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Each column of a preview (the film running across the view) by its median over the middle half of the
    rows: its brightness (lightly smoothed) and its blueness (blue over red)."""
    from scipy import ndimage  # here, not at the top: the console and the daemon import this module at start

    h = rgb.shape[0]
    band = rgb[h // 4 : 3 * h // 4]
    profile = ndimage.uniform_filter1d(np.median(band.mean(axis=-1), axis=0), 3)
    blue = np.median(band[..., 2] / (band[..., 0] + 1.0), axis=0)
    return profile.astype(np.float32), blue.astype(np.float32)


def column_runs(profile: npt.NDArray[np.float32], blue: npt.NDArray[np.float32], level: float, base_blue: float,
                clear_from: float | npt.NDArray[np.float32]) -> tuple[list[Run], npt.NDArray[np.bool_]]:  # fmt: skip
    """The rule, once for every finder: a column is no film where it is brighter than NO_FILM_BRIGHTER x the
    base's `level` or bluer than NO_FILM_BLUER x its blueness; clear base where it reaches CLEAR x `clear_from`
    (the base's level there: per column, with the light's falloff, or one value); picture otherwise. A column or
    two of noise is not a run. The runs from left to right, and the clear columns."""
    from scipy import ndimage

    none = (profile > NO_FILM_BRIGHTER * level) | (blue > NO_FILM_BLUER * base_blue)
    clear = ~none & (profile >= CLEAR * clear_from)
    kinds = np.where(none, 2, np.where(clear, 0, 1))
    kinds = ndimage.median_filter(kinds, 5, mode="nearest")
    names = ("clear", "picture", "none")
    runs, start, w = [], 0, len(profile)
    for x in range(1, w + 1):
        if x == w or kinds[x] != kinds[start]:
            runs.append(Run(start, x, names[int(kinds[start])]))
            start = x
    return runs, clear


def _rows(rgb: npt.NDArray[np.float32], a: int, b: int) -> tuple[int, int]:
    """The picture's top and bottom rows: where the rows across its columns are darker than the base."""
    h = rgb.shape[0]
    if b <= a:
        return 0, h
    rows = np.median(rgb[:, a:b].mean(axis=-1), axis=1)
    base = max(float(rows[: max(1, h // 20)].mean()), float(rows[-max(1, h // 20) :].mean()))
    inside = np.flatnonzero(rows < CLEAR * base)
    return (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, h)


def fingerprint(area: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    from scipy import ndimage

    if area.size == 0:
        return None
    lum = area.mean(axis=-1)
    small = ndimage.zoom(lum, (16 / lum.shape[0], 24 / lum.shape[1]), order=1)
    centred = small - small.mean()
    spread = float(centred.std())
    return (centred / spread).astype(np.float32) if spread > 0 else None


def same_picture(a: npt.NDArray[np.float32] | None, b: npt.NDArray[np.float32] | None) -> bool:
    """Two fingerprints of one picture (correlation above 0.95): the frame under the lens was shot already."""
    if a is None or b is None or a.shape != b.shape:
        return False
    return float((a * b).mean()) > 0.95
