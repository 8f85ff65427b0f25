"""The editors' sidecars: a roll of simulated negatives (the 3rd and 7th carry a step wedge of known densities on the
orange mask), shot by the simulated camera and blended with `medianscan blend`, its film base measured once, and
each blend developed by the real darktable-cli and rawtherapee-cli with the sidecar we wrote beside it: a positive
whose clear base is black, whose wedge rises step by step in neutral greys, alike in every negative of the roll."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import tifffile

from medianscan.capture.camera import open_camera
from medianscan.capture.camera.files import PROBE_STEM
from medianscan.capture.camera.simulated.scene import WEDGE_DENSITIES, has_wedge, wedge_steps
from medianscan.cli import main
from medianscan.config.loader import parse_config
from medianscan.config.schema import CameraConfig, SimulatedConfig
from medianscan.errors import MedianscanError
from medianscan.exiv2_once import read_image
from medianscan.library import film_base, roll_record
from medianscan.library.roll_record import write_roll_record
from medianscan.outputs.editors import is_ours, roll_blends, sidecar_path, write_editor_sidecars
from medianscan.records import FilmRecord
from tests.conftest import ROOT

SIZE = {"width": 384, "height": 256}  # small: the editors are slow on two busy cores
NEGATIVES = 7  # the wedge is on negatives 3 and 7
FILM = FilmRecord(film="Kodak Portra 400", film_type="color negative", iso=400)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("darktable-cli") and shutil.which("rawtherapee-cli")),
        reason="darktable-cli and rawtherapee-cli develop the positives (make test installs them)",
    ),
]


@pytest.fixture(scope="module")
def roll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A roll of NEGATIVES simulated negatives, 3 frames each, blended by `medianscan blend`, with sidecars."""
    folder = tmp_path_factory.mktemp("library") / "2026-12-06-roll001"
    folder.mkdir()
    write_roll_record(folder, FILM)
    camera = open_camera(CameraConfig(backend="simulated", simulated=SimulatedConfig(**SIZE)))  # type: ignore[arg-type]
    camera.connect()
    try:
        stacks = []
        for number in range(1, NEGATIVES + 1):
            stack = folder / f"frame-{number:03d}"
            camera.burst(3, stack, stack.name)
            stacks.append(stack)
        camera.burst(3, folder / "clear-film", f"{PROBE_STEM}-01")  # the leader in the holder
    finally:
        camera.close()
    assert main(["blend", *map(str, stacks)]) == 0  # the pipeline writes the sidecars after each blend
    for stack in stacks:
        (output,) = [p for p in roll_blends(folder) if p.parent == stack]
        assert is_ours(sidecar_path(output, "darktable")) and is_ours(sidecar_path(output, "rawtherapee")), stack
    return folder


def develop(dng: Path, editor: str, out: Path) -> npt.NDArray[np.float64]:
    """The positive an editor develops from `dng` with its sidecar, as shares of the output range (sRGB)."""
    if editor == "darktable":
        config = out.parent / "darktable-config"
        command = [
            "darktable-cli", str(dng), str(sidecar_path(dng, "darktable")), str(out),
            "--core", "--configdir", str(config), "--library", ":memory:",
            "--conf", "plugins/imageio/format/tiff/bpp=16",
        ]  # fmt: skip
    else:
        command = ["rawtherapee-cli", "-Y", "-q", "-o", str(out), "-tz", "-b16", "-S", "-c", str(dng)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    return np.asarray(tifffile.imread(out), dtype=np.float64) / 65535


def wedge(picture: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each wedge step's mean R, G, B in a developed positive (the editors crop the raw evenly on each side)."""
    h, w = SIZE["height"], SIZE["width"]
    top, left = (h - picture.shape[0]) // 2, (w - picture.shape[1]) // 2
    steps = []
    for upper, start, lower, end in wedge_steps(h, w):
        inner = picture[upper - top + 6 : lower - top - 6, start - left + 6 : end - left - 6]
        steps.append(inner.reshape(-1, 3).mean(axis=0))
    return np.array(steps)


@pytest.mark.parametrize("editor", ["darktable", "rawtherapee"])
def test_each_editor_develops_the_roll_as_alike_positives(roll: Path, editor: str, tmp_path: Path) -> None:
    wedges = []
    for blend in roll_blends(roll):
        number = int(blend.parent.name.split("-")[1])
        if has_wedge(number):
            wedges.append(wedge(develop(blend, editor, tmp_path / f"{blend.stem}.tif")))
    assert len(wedges) == 2
    for steps in wedges:
        base, greys = steps[0], steps[1:]
        assert base.max() <= 0.03, f"{editor}: the clear base is {base} of the range, not black"
        green = steps[:, 1]
        assert np.all(np.diff(green) > 0), f"{editor}: the wedge is not monotonic: {green}"
        seen = greys[greys[:, 1] > 0.05]  # steps bright enough to judge a colour in
        assert len(seen) >= len(WEDGE_DENSITIES) - 3
        tint = np.abs(seen[:, [0, 2]] / seen[:, [1]] - 1)
        assert tint.max() <= 0.05, f"{editor}: grey steps not neutral (R/G, B/G - 1): {tint}"
    both = np.stack(wedges)[:, 1:]
    bright = both[0, :, 1] > 0.05
    spread = np.abs(both[1][bright] / both[0][bright] - 1)
    assert spread.max() <= 0.02, f"{editor}: the same step differs between negatives by {spread.max():.1%}"
    print(f"{editor}: base {wedges[0][0].round(4)}, wedge G {wedges[0][:, 1].round(3)}, ", end="")
    print(f"tint <= {tint.max():.1%}, between negatives <= {spread.max():.2%}")


def test_the_base_is_measured_once_and_recorded_with_its_source(roll: Path) -> None:
    recorded = roll_record.read_film_base(roll)
    assert recorded is not None and recorded.source == film_base.SOURCE_BLENDS
    assert recorded.density_range is not None and min(recorded.density_range) > max(WEDGE_DENSITIES)
    data = json.loads((roll / "roll.json").read_text())
    assert data["film"]["film"] == FILM.film  # the film record is kept beside it
    # a frame of clear film shot on purpose replaces it: `medianscan base`
    assert main(["base", str(roll / "clear-film"), "--roll", str(roll), "--config", "/dev/null"]) == 0
    clear = roll_record.read_film_base(roll)
    assert clear is not None and clear.source == film_base.SOURCE_CLEAR
    assert clear.density_range is not None
    ratio = np.array(clear.base) / np.array(recorded.base)
    assert np.all(np.abs(ratio - 1) < 0.08), ratio  # the same film, seen through the light's falloff
    assert np.ptp(ratio) < 0.01  # and the same colour
    # the sidecars followed it
    blend = roll_blends(roll)[0]
    keys = dict(
        line.split("=", 1) for line in sidecar_path(blend, "rawtherapee").read_text().splitlines() if "=" in line
    )
    green_in = float(keys["RefInput"].split(";")[1])
    assert green_in == pytest.approx(clear.base[1] / clear.white * 65535, rel=1e-5)


def test_a_sidecar_the_user_edited_is_kept(roll: Path) -> None:
    blend = roll_blends(roll)[1]
    base = roll_record.read_film_base(roll)
    pp3, xmp = sidecar_path(blend, "rawtherapee"), sidecar_path(blend, "darktable")
    assert is_ours(pp3) and is_ours(xmp)
    edited = pp3.read_text().replace("GreenExponent=", "GreenExponent=1").replace("# medianscan", "# them")
    pp3.write_text(edited)
    done = write_editor_sidecars(blend, base, ["darktable", "rawtherapee"])
    assert [(s.editor, s.written) for s in done] == [("darktable", True), ("rawtherapee", False)]
    assert pp3.read_text() == edited and not is_ours(pp3)
    pp3.write_text(pp3.read_text() + "\n")  # ours, but changed by a byte: also the user's
    assert not is_ours(pp3)


def test_the_darktable_sidecar_keeps_the_dngs_film_metadata(roll: Path) -> None:
    blend = roll_blends(roll)[0]
    found = {str(d.key()): str(d.toString()) for d in read_image(sidecar_path(blend, "darktable")).xmpData()}
    assert found["Xmp.AnalogExif.Film"] == FILM.film
    assert "film: Kodak Portra 400" in found["Xmp.dc.subject"]
    assert found["Xmp.darktable.auto_presets_applied"] == "1"
    operations = [v for k, v in found.items() if k.endswith("darktable:operation")]
    assert operations == ["temperature", "negadoctor"]


def test_the_setting_chooses_the_editors() -> None:
    assert parse_config("").outputs.editors == ["darktable", "rawtherapee"]
    assert parse_config("outputs: {editors: []}").outputs.editors == []
    with pytest.raises(MedianscanError, match=r"outputs\.editors\[0\]: expected one of"):
        parse_config("outputs: {editors: [lightroom]}")


def test_a_stack_outside_a_roll_gets_no_sidecars_and_no_roll_record(tmp_path: Path) -> None:
    """A stack blended by hand in a folder that is no roll of the library: there is no roll's base to hand over,
    and the blend writes nothing into the folder above it."""
    camera = open_camera(CameraConfig(backend="simulated", simulated=SimulatedConfig(**SIZE)))  # type: ignore[arg-type]
    camera.connect()
    try:
        camera.burst(3, tmp_path / "downloads" / "neg", "neg")
    finally:
        camera.close()
    assert main(["blend", str(tmp_path / "downloads" / "neg")]) == 0
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == ["neg"]
    assert not [p for p in (tmp_path / "downloads" / "neg").iterdir() if p.suffix in {".xmp", ".pp3"}]


def test_the_roll_record_is_changed_by_one_process_at_a_time(tmp_path: Path) -> None:
    """Two blend workers (processes) settling the roll's base at once would keep only the last one's change: the
    roll's lock makes a second writer wait for the first."""
    write_roll_record(tmp_path, FILM)
    writer = (
        "import sys; from pathlib import Path; from medianscan.library import roll_record; "
        "roll = Path(sys.argv[1]); "
        "ctx = roll_record.updating(roll); ctx.__enter__(); print('in', flush=True)"
    )
    with roll_record.updating(tmp_path):
        other = subprocess.Popen(
            [sys.executable, "-c", writer, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        try:
            other.wait(timeout=1.0)
            pytest.fail("a second writer entered the roll's record while the first held it")
        except subprocess.TimeoutExpired:
            pass  # it waits, as it should
    assert other.stdout is not None and other.stdout.readline() == "in\n"  # and goes in once the first is done
    assert other.wait(timeout=10) == 0
