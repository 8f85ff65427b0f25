"""The film's metadata: a roll's record, written at new-roll (socket, CLI, console) over the config's defaults,
and carried by every DNG of the roll as AnalogExif XMP written by Exiv2; read back by exiftool and imported by
darktable as tags. Names with quotes, ampersands and non-ASCII letters round-trip."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from medianscan.blend.pipeline import blend_stack
from medianscan.capture.camera.simulated.camera import SimulatedCamera
from medianscan.capture.control_client import request
from medianscan.config.schema import CameraConfig
from medianscan.library.manifest import State, read_manifest
from medianscan.library.roll_record import read_roll_record
from medianscan.library.rolls import Library
from medianscan.records import FilmRecord
from tests.daemon_thread import RunningDaemon, capture_config

TRICKY = 'Fomapan 100 "Classic" & <Co> — Ærø Ł'


def shoot(stack: Path) -> None:
    cfg = CameraConfig()
    cfg.simulated.width, cfg.simulated.height = 384, 256
    camera = SimulatedCamera(cfg)
    camera.connect()
    camera.burst(3, stack, stack.name)


def xmp_of(path: Path) -> dict[str, object]:
    out = subprocess.run(["exiftool", "-j", "-XMP:all", "-G1", str(path)], capture_output=True, text=True, check=True)
    data: dict[str, object] = json.loads(out.stdout)[0]
    return data


@pytest.fixture
def negative(tmp_path: Path) -> Path:
    library = Library(tmp_path / "library", film=FilmRecord(developer="ID-11 1+1", lab="the bathroom"))
    library.new_roll(FilmRecord(film=TRICKY, film_maker="Foma", film_type="B&W negative", iso=100, camera="Nikon F3"))
    library.new_stack(3)
    stack = library.new_stack(3)  # the second negative of the roll
    shoot(stack)
    return stack


def test_the_roll_keeps_its_film_over_the_configured_defaults(negative: Path) -> None:
    record = read_roll_record(negative.parent)
    assert record is not None
    assert record.film == FilmRecord(
        film=TRICKY,
        film_maker="Foma",
        film_type="B&W negative",
        iso=100,
        camera="Nikon F3",
        developer="ID-11 1+1",  # from the defaults, which the new roll did not override
        lab="the bathroom",
    )


def test_every_dng_of_the_roll_carries_the_film_as_analogexif_xmp(negative: Path) -> None:
    result = blend_stack(negative)
    xmp = xmp_of(result.output)
    assert xmp["XMP-AnalogExif:Film"] == TRICKY  # quotes, ampersand, angle brackets and non-ASCII round-trip
    assert xmp["XMP-AnalogExif:FilmMaker"] == "Foma"
    assert xmp["XMP-AnalogExif:FilmType"] == "B&W negative"
    assert xmp["XMP-AnalogExif:Developer"] == "ID-11 1+1"
    assert xmp["XMP-AnalogExif:Lab"] == "the bathroom"
    assert xmp["XMP-AnalogExif:RollId"] == negative.parent.name
    assert xmp["XMP-AnalogExif:ExposureNumber"] == 2  # the negative's number in the roll
    assert f"film: {TRICKY}" in xmp["XMP-dc:Subject"]  # type: ignore[operator]
    assert "camera: Nikon F3" in xmp["XMP-dc:Subject"]  # type: ignore[operator]
    assert str(xmp["XMP-iptcExt:DigitalSourceType"]).endswith("/negativeFilm")
    validate = subprocess.run(
        ["exiftool", "-validate", "-warning", "-a", str(result.output)], capture_output=True, text=True, check=True
    ).stdout
    assert "Validate                        : OK" in validate, validate
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["film"]["film"] == TRICKY and sidecar["film"]["exposure_number"] == 2
    assert sidecar["film"]["roll_id"] == negative.parent.name


def test_darktable_imports_the_film_as_tags(negative: Path, tmp_path: Path) -> None:
    result = blend_stack(negative)
    scratch = Path(tempfile.mkdtemp(prefix="darktable-"))
    out = tmp_path / "exported.jpg"
    done = subprocess.run(
        ["darktable-cli", str(result.output), str(out), "--width", "200", "--height", "200", "--core",
         "--configdir", str(scratch / "config"), "--cachedir", str(scratch / "cache"), "--library", ":memory:"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert f"creating tag: film: {TRICKY}" in log  # darktable's own import of dc:subject
    exported = xmp_of(out)
    assert f"film: {TRICKY}" in exported["XMP-dc:Subject"]  # type: ignore[operator]
    assert exported["XMP-AnalogExif:Film"] == TRICKY  # and it passes the film on to what it exports


def test_a_stack_outside_a_roll_gets_no_film(tmp_path: Path) -> None:
    stack = tmp_path / "loose"
    shoot(stack)
    result = blend_stack(stack)
    assert not any(k.startswith("XMP-AnalogExif") for k in xmp_of(result.output))
    assert json.loads(result.sidecar.read_text())["film"] is None


def test_new_roll_over_the_control_socket_records_the_film_and_bad_fields_are_refused(tmp_path: Path) -> None:
    cfg = capture_config(tmp_path / "library")
    cfg.film = FilmRecord(film_maker="Kodak", process="C-41")
    cfg.console.listen = None
    with RunningDaemon(cfg) as running:
        socket = cfg.triggers.socket
        assert socket is not None
        reply = request(socket, "new-roll", film={"film": "Portra 400", "iso": 400})
        assert reply["ok"] and "on Portra 400" in reply["text"]
        roll = running.daemon.library.roll
        record = read_roll_record(roll)
        assert record is not None
        assert record.film == FilmRecord(film="Portra 400", film_maker="Kodak", iso=400, process="C-41")
        bad = request(socket, "new-roll", film={"iso": "four hundred"})
        assert not bad["ok"] and "iso must be a whole number from 1 to 999999" in bad["error"]
        unknown = request(socket, "new-roll", film={"stock": "HP5"})
        assert not unknown["ok"] and "unknown film field 'stock'" in unknown["error"]
        assert running.daemon.library.roll == roll  # refused: no roll was started

        cli = subprocess.run(
            [sys.executable, "-m", "medianscan", "new-roll", "--socket", str(socket), "--film", TRICKY, "--iso", "100"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert cli.returncode == 0 and "new roll" in cli.stdout, cli.stderr
        record = read_roll_record(running.daemon.library.roll)
        assert record is not None and record.film.film == TRICKY and record.film.iso == 100

        assert running.ask("capture").ok
        stack = running.wait_for_state("frame-001", State.BLENDED)
        blend = read_manifest(stack).blend
        assert blend is not None
        assert xmp_of(blend.output)["XMP-AnalogExif:Film"] == TRICKY  # the roll the CLI started
