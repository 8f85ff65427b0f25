"""How fast the simulated body is, and the real bodies it can stand for.

The presets are the figures users measured and reported (sources beside each): the time from a host's trigger to
the body naming its file, the interval of its own continuous burst, its buffer, a raw's size and what its link
carries, and how late its continuous burst stops once the host lets go of the release (a real body held in
continuous drive shoots for as long as the release is held: one to three shots more are normal).
`BodyTiming.bound_seconds` is the best a perfect host could do with such a body; the burst benchmark and the tests
hold the burst engine to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from medianscan.config.schema import SimulatedConfig, SimulatedTiming
from medianscan.errors import MedianscanError


@dataclass(frozen=True)
class BodyTiming:
    """One body's speeds. `link_megabytes_per_second` 0 is an instant link; `buffer_frames` 0 no limit;
    `late_shots`: its continuous burst names a random 0 to this many shots after the host lets go."""

    trigger_seconds: float
    shot_seconds: float
    buffer_frames: int
    file_megabytes: float
    link_megabytes_per_second: float
    native_burst: bool
    model: str = "medianscan simulated camera"
    late_shots: int = 3

    @property
    def transfer_seconds(self) -> float:
        """One raw's download over the link."""
        if self.link_megabytes_per_second <= 0:
            return 0.0
        return self.file_megabytes / self.link_megabytes_per_second

    def bound_seconds(self, frames: int, extra: int = 0, *, fetch_extra: bool = True) -> float:
        """The shortest burst of `frames` a host could get from this body: its own continuous burst, each frame
        fetched as it comes; else a trigger per frame, each download overlapping the next exposure. `extra`: shots
        its continuous burst made past them (its release was late), fetched too or only waited for."""
        trigger, transfer = self.trigger_seconds, self.transfer_seconds
        if self.native_burst:
            fetched = frames + (extra if fetch_extra else 0)
            return trigger + max((frames + extra) * self.shot_seconds, fetched * transfer)
        return frames * max(trigger, transfer) + min(trigger, transfer)

    def serial_seconds(self, frames: int) -> float:
        """A burst that fires, waits, downloads and writes each frame before the next: what peers do."""
        return frames * (self.trigger_seconds + self.transfer_seconds)


# One row a body, from what its users measured: the preset's name; the model it stands for; seconds from the host's
# trigger to the body naming its file; seconds a shot of its own continuous burst; raws its buffer holds (0: no
# limit); a raw's megabytes; megabytes a second its link carries; whether it bursts on its own; how many shots its
# continuous burst may run late; and where the figures come from.
# fmt: off
_MEASURED: tuple[tuple[str, str, float, float, int, float, float, bool, int, str], ...] = (
    ("sony-a7iv", "Sony ILCE-7M4", 0.75, 1 / 6, 0, 33.0, 70.0, False, 3,
     "python-gphoto2#182: about 1.2 s a frame by trigger + FILE_ADDED; 6 fps by hand"),
    ("sony-a7riii", "Sony ILCE-7RM3", 1.0, 1 / 10, 0, 82.0, 60.0, False, 3,
     "libgphoto2#966: 2.3-2.4 s a frame; 42 MP uncompressed raws"),
    ("sony-a6000", "Sony ILCE-6000", 1.2, 1 / 11, 0, 24.0, 20.0, False, 3,
     "NegPy PR#630: 2.4 s a frame; USB 2.0"),
    ("fuji-x-t5", "Fujifilm X-T5", 2.6, 1 / 15, 12, 85.0, 895.0, False, 3,
     "NegPy#658: 2.9 s a shot, an 85 MB download in 95 ms, 12 raws in its buffer; NegPy#674: a 0.3 s drain"),
    ("nikon-d750", "Nikon DSC D750", 1.0, 1 / 6.5, 15, 28.0, 35.0, True, 0,
     "libgphoto2#968: never more than 1 shot a second when fired by the host; 6.5 fps on its own (burstnumber, "
     "a count set before the burst: it stops on its own)"),
    ("canon-r8", "Canon EOS R8", 0.35, 1 / 6, 50, 30.0, 40.0, True, 3,
     "4 frames in under 2 s with its own continuous drive (eosremoterelease press and release)"),
    ("usb3-8fps", "USB 3 body, 8 frames/s", 1.0, 1 / 8, 0, 40.0, 150.0, True, 3,
     "issue 27: 2 of 6 back-to-back 9-frame native bursts failed on it, an extra shot left for the next burst"),
)
# fmt: on

# name -> (the body's figures, where they come from)
PRESETS: dict[str, tuple[BodyTiming, str]] = {
    name: (BodyTiming(trigger, shot, buffer, size, link, native, f"{model} (simulated)", late), source)
    for name, model, trigger, shot, buffer, size, link, native, late, source in _MEASURED
}


def timing_of(sim: SimulatedConfig) -> BodyTiming:
    """The simulated body's timing: the preset's figures, each field the config sets over them; without a preset,
    a shot takes `seconds_per_frame` over an instant link and there is no continuous burst."""
    given = sim.timing
    if given.preset is not None:
        if given.preset not in PRESETS:
            raise MedianscanError(
                f"camera.simulated.timing.preset {given.preset!r}: use one of {', '.join(sorted(PRESETS))}"
            )
        base = PRESETS[given.preset][0]
    else:
        base = BodyTiming(sim.seconds_per_frame, sim.seconds_per_frame, 0, 0.0, 0.0, False)
    changes = {
        f.name: getattr(given, f.name)
        for f in dataclasses.fields(SimulatedTiming)
        if f.name != "preset" and getattr(given, f.name) is not None
    }
    return dataclasses.replace(base, **changes)
