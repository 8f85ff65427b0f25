"""The `base` action on the real capture daemon and the simulated camera (the simulator shows the clear film base
for a base burst, as it does for exposure probes): a burst of clear film shot on purpose becomes the roll's film
base, recorded with its source, named in the answer, handed to the sidecars of the roll's blends, kept in
`<roll>/base/base-NNN/` and never blended nor listed as a negative."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medianscan.cli import main
from medianscan.config.loader import parse_config
from medianscan.library import base_shots, film_base, roll_record
from medianscan.library.manifest import State
from medianscan.outputs.editors import is_ours, roll_blends, sidecar_path
from tests.daemon_thread import RunningDaemon, capture_config

pytestmark = pytest.mark.slow  # real editors, browsers or whole processes: `make test-fast` leaves it out


def green_in(blend: Path) -> float:
    """The green of RawTherapee's reference input (the film base it inverts with) in `blend`'s sidecar."""
    text = sidecar_path(blend, "rawtherapee").read_text()
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return float(keys["RefInput"].split(";")[1])


def test_a_burst_of_clear_film_becomes_the_rolls_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = capture_config(tmp_path / "lib")
    with RunningDaemon(cfg) as running:
        for name in ("frame-001", "frame-002"):
            assert running.ask("capture").ok
            running.wait_for_state(name, State.BLENDED)
        roll = running.daemon.library.roll
        from_blends = roll_record.read_film_base(roll)
        assert from_blends is not None and from_blends.source == film_base.SOURCE_BLENDS
        before = {b: green_in(b) for b in roll_blends(roll)}

        answer = running.ask("base")
        assert answer.ok and answer.action == "base" and answer.stack == "base-001", answer
        recorded = roll_record.read_film_base(roll)
        assert recorded is not None and recorded.source == film_base.SOURCE_CLEAR
        kept = roll / base_shots.BASES / "base-001"
        assert [Path(p).parent for p in recorded.measured_from] == [kept] * cfg.flat_frames()
        r, g, b = recorded.base
        assert f"R {r:.0f} G {g:.0f} B {b:.0f}" in answer.text and "from clear film" in answer.text
        assert f"(from {film_base.SOURCE_BLENDS})" in answer.text  # compared with the base before it
        assert "4 sidecars (darktable, rawtherapee) written beside 2 blends" in answer.text, answer.text
        assert recorded.density_range is not None  # measured on the roll's blends
        # the clear film is brighter than the clearest film of two negatives' pictures, and the sidecars follow
        assert g > from_blends.base[1]
        for blend, old in before.items():
            assert is_ours(sidecar_path(blend, "darktable"))
            assert green_in(blend) == pytest.approx(g / recorded.white * 65535, rel=1e-5) != old

        # the base folder is never a negative: the next capture is frame-003, blended with the clear film's base
        assert running.ask("capture").ok
        third = running.wait_for_state("frame-003", State.BLENDED)
        assert [s.name for s in running.daemon.library.stacks(roll)] == ["frame-001", "frame-002", "frame-003"]
        assert all(base_shots.BASES not in b.parts[-3:-1] for b in roll_blends(roll))
        assert sorted(p.name for p in kept.iterdir()) == [f"base_{n:02d}.dng" for n in range(1, 4)]  # no blend
        still = roll_record.read_film_base(roll)
        assert still is not None and still.source == film_base.SOURCE_CLEAR and still.base == recorded.base
        assert green_in(third / "frame-003_median.dng") == pytest.approx(g / recorded.white * 65535, rel=1e-5)

        # `medianscan base` with no SOURCE asks the running daemon, as `medianscan flat` does
        capsys.readouterr()
        assert main(["base", "--socket", str(cfg.triggers.socket)]) == 0
        said = capsys.readouterr().out
        assert "from clear film" in said and f"(from {film_base.SOURCE_CLEAR})" in said, said
        assert (roll / base_shots.BASES / "base-002").is_dir()

        assert running.ask("pause").ok
        paused = running.ask("base")
        assert not paused.ok and paused.outcome == "ignored" and "paused" in paused.text
    assert json.loads((roll / "roll.json").read_text())["film_base"]["source"] == film_base.SOURCE_CLEAR


def test_a_pedal_key_can_shoot_the_base() -> None:
    keys = parse_config("triggers: {footswitch: {keys: {KEY_B: capture, KEY_F: base}}}").triggers.footswitch.keys
    assert keys == {"KEY_B": "capture", "KEY_F": "base"}
