"""A strip of negatives on the simulated copy stand (`camera.simulated.strip`), and where it is: the simulated
camera sees it through the light, the simulated rig moves it.

Along the strip (mm): a leader of clear base, then frame k's picture from (k-1) pitch + gap/2 to k pitch - gap/2,
clear base between the pictures and along both edges (the rebate), a trailer, then no film: the bare light. The
view spans 1.25 pitches, so a centred frame shows with part of both neighbouring gaps, as copy-stand framing
does. A blank frame is clear base. The strip's position is where the view's centre is along it; a move takes
real time at its feed, so the live view sees the film travel.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from medianscan.capture.camera.simulated.scene import BARE_LIGHT, BASE_TRANSMISSION, FILM_LIGHT, mask, picture
from medianscan.config.schema import SimulatedConfig, StripConfig

T = TypeVar("T")

VIEW_PITCHES = 1.25  # the view's width along the strip, in pitches
FILM_HEIGHT_MM = 35.0  # 35 mm film, across the strip
PICTURE_HEIGHT_MM = 24.0
LEADER_PITCHES = 0.6  # clear base before frame 1 and after the last
START_SECONDS = 0.05  # a move's start-up (the controller's planning, acceleration)


class Carriage:
    """The film's position along the strip, in mm, in real time: a move goes at `speed` from where it is."""

    def __init__(self, position: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._from = self._to = position
        self._t0 = self._t1 = clock()

    def position(self) -> float:
        with self._lock:
            now = self.clock()
            if now >= self._t1:
                return self._to
            if now <= self._t0:
                return self._from
            return self._from + (self._to - self._from) * (now - self._t0) / (self._t1 - self._t0)

    def go(self, distance: float, speed: float) -> float:
        """Start a move of `distance` mm at `speed` mm/s; the time it will have stopped."""
        here = self.position()
        with self._lock:
            now = self.clock()
            self._from, self._to = here, here + distance
            self._t0 = now + START_SECONDS
            self._t1 = self._t0 + abs(distance) / max(speed, 1e-6)
            return self._t1

    def halt(self) -> None:
        """Stop where it is now (an alarm)."""
        here = self.position()
        with self._lock:
            self._from = self._to = here
            self._t0 = self._t1 = self.clock()

    def stopped_at(self) -> float:
        with self._lock:
            return self._t1


class SimulatedStrip:
    """The strip of `cfg` seen by a `width` x `height` sensor; `carriage` moves it."""

    def __init__(self, cfg: StripConfig, width: int, height: int) -> None:
        self.cfg, self.width, self.height = cfg, width, height
        self.view_mm = cfg.pitch_mm * VIEW_PITCHES
        self.px_per_mm = width / self.view_mm
        self.carriage = Carriage(cfg.pitch_mm / 2 + cfg.start_mm)  # frame 1 under the lens, about
        self._pictures: dict[int, npt.NDArray[np.float32]] = {}
        self._mask = mask(height, width)
        self._lock = threading.Lock()
        mm_rows = (np.arange(height, dtype=np.float32) - height / 2 + 0.5) / self.px_per_mm
        self._on_film = np.abs(mm_rows) <= FILM_HEIGHT_MM / 2
        self._in_picture = np.abs(mm_rows) <= PICTURE_HEIGHT_MM / 2
        self._picture_rows = int(self._in_picture.sum())
        self._picture_cols = round((cfg.pitch_mm - cfg.gap_mm) * self.px_per_mm)

    @property
    def end_mm(self) -> float:
        return self.cfg.frames * self.cfg.pitch_mm

    def centre_of(self, frame: int) -> float:
        """Where frame `frame` (1-based) is centred along the strip."""
        return (frame - 0.5) * self.cfg.pitch_mm

    def frame_at(self, position: float) -> int | None:
        """The frame whose picture the view's centre is on, or None (a gap, or off the strip)."""
        k = int(position // self.cfg.pitch_mm) + 1
        inside = abs(position - self.centre_of(k)) <= (self.cfg.pitch_mm - self.cfg.gap_mm) / 2
        return k if 1 <= k <= self.cfg.frames and inside else None

    def _picture(self, frame: int) -> npt.NDArray[np.float32]:
        with self._lock:
            found = self._pictures.get(frame)
            if found is None:
                shape = (self._picture_rows, self._picture_cols)
                if frame in self.cfg.blank:  # unexposed: the base with a trace of fog
                    found = np.full(shape, BASE_TRANSMISSION * 0.98, dtype=np.float32)
                else:
                    found = picture(self.cfg.seed, frame, *shape)
                self._pictures[frame] = found
            return found

    def through(self, position: float) -> npt.NDArray[np.float32]:
        """What the film lets through per photosite with the view centred at `position` (orange mask included;
        no film: the bare light, in the film's units)."""
        cfg = self.cfg
        along = position + (np.arange(self.width, dtype=np.float64) + 0.5 - self.width / 2) / self.px_per_mm
        film = np.full((self.height, self.width), BARE_LIGHT / FILM_LIGHT, dtype=np.float32)
        lead = LEADER_PITCHES * cfg.pitch_mm
        on_strip = (along >= -lead) & (along <= self.end_mm + lead)
        film[np.ix_(self._on_film, on_strip)] = BASE_TRANSMISSION * self._mask[np.ix_(self._on_film, on_strip)]
        frame = np.floor(along / cfg.pitch_mm).astype(np.int64) + 1
        start = (frame - 1) * cfg.pitch_mm + cfg.gap_mm / 2
        column = np.floor((along - start) * self.px_per_mm).astype(np.int64)
        shown = (frame >= 1) & (frame <= cfg.frames) & (column >= 0) & (column < self._picture_cols)
        rows = np.flatnonzero(self._in_picture)
        for k in np.unique(frame[shown]):
            cols = np.flatnonzero(shown & (frame == k))
            seen = self._picture(int(k))[:, column[cols]]
            film[np.ix_(rows, cols)] = seen * self._mask[np.ix_(rows, cols)]
        return film


class OnTheStand(Generic[T]):
    """What lies on a simulated copy stand, one per configuration, so that the camera and the rig (each given the
    same SimulatedConfig) see the same film; forgotten with its configuration."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[weakref.ref[SimulatedConfig], T]] = {}
        self._lock = threading.Lock()

    def get(self, sim: SimulatedConfig, make: Callable[[], T]) -> T:
        with self._lock:
            for key in [k for k, (ref, _) in self._made.items() if ref() is None]:
                del self._made[key]
            found = self._made.get(id(sim))
            if found is None or found[0]() is not sim:
                found = (weakref.ref(sim), make())
                self._made[id(sim)] = found
            return found[1]


_STRIPS: OnTheStand[SimulatedStrip] = OnTheStand()


def strip_of(sim: SimulatedConfig) -> SimulatedStrip | None:
    """The strip on this simulated copy stand (one per configuration: the camera and the rig see the same film),
    or None without `strip.frames`."""
    if sim.strip.frames <= 0:
        return None
    return _STRIPS.get(sim, lambda: SimulatedStrip(sim.strip, sim.width, sim.height))
