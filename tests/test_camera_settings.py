"""Vendor aliases, value normalisation and frame recognition by content (pure functions, real file bytes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medianscan.capture.camera.faults import CLAIM, explain
from medianscan.capture.camera.files import FileKind, choose, classify, frame_name
from medianscan.capture.camera.settings import (
    exposure_values,
    match_choice,
    nearest_choices,
    parse_seconds,
    same_value,
    widget_candidates,
)
from medianscan.capture.camera.simulated.scene import layout
from medianscan.metadata import CameraInfo, Exposure
from medianscan.outputs.dng import write_dng
from medianscan.outputs.jpeg import write_jpeg
from medianscan.vocabulary import canonical_key

VCAM_SHUTTER = ["1.0000s", "0.1000s", "0.0500s", "0.0200s", "0.0100s", "0.0050s", "0.0025s", "0.0012s", "0.0001s"]


def test_aliases_map_vendor_names_to_one_key() -> None:
    assert canonical_key("f-number") == canonical_key("aperture") == "aperture"
    assert canonical_key("imagequality") == "imageformat"
    assert "f-number" in widget_candidates("aperture") and "aperture" in widget_candidates("f-number")
    assert widget_candidates("imageformat")[:2] == ("imageformat", "imagequality")
    assert widget_candidates("d1a2") == ("d1a2",)  # any other widget by its raw name


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1/50", 0.02),
        ("1/50s", 0.02),
        ("0.0200s", 0.02),
        ('2"', 2.0),
        ("30", 30.0),
        ("1/8000", 0.000125),
        ("bulb", None),
        ("auto", None),
    ],
)
def test_shutter_speeds_parse(text: str, seconds: float | None) -> None:
    assert parse_seconds(text) == pytest.approx(seconds) if seconds else parse_seconds(text) is None


@pytest.mark.parametrize(
    ("key", "wanted", "actual", "same"),
    [
        ("shutterspeed", "1/50", "0.0200s", True),
        ("shutterspeed", "1/25", "0.0500s", False),  # what the virtual camera snaps 1/25 to
        ("shutterspeed", "1/8000", "0.0001s", True),  # 4-decimal printing
        ("aperture", "8", "f/8", True),
        ("f-number", "F5.6", "f/5.6", True),
        ("aperture", "f/8", "f/9", False),
        ("iso", "100", "ISO 100", True),
        ("iso", "100", "Auto", False),
        ("capturetarget", "sdram", "Internal RAM", True),
        ("capturetarget", "card", "Memory card", True),
        ("capturetarget", "card", "Internal RAM", False),
        ("imageformat", "RAW", "NEF (Raw)", True),
        ("imagequality", "raw", "RAW + Large Fine JPEG", False),
        ("focusmode", "manual", "MF", True),
        ("autofocus", "manual", "Off", True),
        ("whitebalance", "Daylight", "daylight", True),
        ("exposurecompensation", "0", "0.0", True),
    ],
)
def test_values_compare_across_spellings(key: str, wanted: str, actual: str, same: bool) -> None:
    assert same_value(key, wanted, actual) is same


def test_match_choice_prefers_exact_then_nearest() -> None:
    assert match_choice("shutterspeed", "1/50", VCAM_SHUTTER) == "0.0200s"
    assert match_choice("shutterspeed", "1/25", VCAM_SHUTTER) is None
    assert match_choice("aperture", "11", ["f/10", "f/11", "f/13"]) == "f/11"
    assert match_choice("capturetarget", "sdram", ["Internal RAM", "Memory card"]) == "Internal RAM"
    assert match_choice("imageformat", "RAW", ["JPEG Fine", "RAW + JPEG", "RAW"]) == "RAW"
    assert match_choice("imagequality", "raw", ["NEF+Fine", "NEF (Raw)"]) == "NEF (Raw)"


def test_exposure_values_from_settings() -> None:
    iso, seconds, f_number = exposure_values({"iso": "200", "shutterspeed": "1/125", "f-number": "f/8"})
    assert (iso, f_number) == (200.0, 8.0)
    assert seconds == pytest.approx(0.008)


def test_frames_are_recognised_by_content_not_name(tmp_path: Path, sample_raw: Path) -> None:
    mosaic = np.full((64, 96), 1000, dtype=np.uint16)
    dng = tmp_path / "a.dng"
    write_dng(dng, mosaic, layout(64, 96), CameraInfo(), Exposure())
    jpeg = tmp_path / "a.jpg"
    write_jpeg(jpeg, np.zeros((16, 16, 3), dtype=np.uint8))
    head = {p: p.read_bytes()[:65536] for p in (dng, jpeg, sample_raw)}
    assert classify("GPH_0001.JPG", head[dng]) == FileKind("raw", "dng")  # the virtual camera's naming
    assert classify("IMG_5952.CR2", head[sample_raw]) == FileKind("raw", "cr2")
    assert classify("whatever.bin", head[sample_raw]) == FileKind("raw", "cr2")
    assert classify("DSC_0001.JPG", head[jpeg]) == FileKind("jpeg", "jpg")
    assert classify("DSC_0001.NEF", b"MM\x00*" + bytes(60)) == FileKind("raw", "nef")
    assert classify("scan.tif", b"II*\x00" + bytes(60)) == FileKind("other", "tif")
    assert classify("x.cr3", bytes(4) + b"ftypcrx " + bytes(8)) == FileKind("raw", "cr3")


def test_raw_plus_jpeg_keeps_the_raw_whatever_the_order() -> None:
    jpeg, raw = FileKind("jpeg", "jpg"), FileKind("raw", "arw")
    assert choose([jpeg, raw], keep_jpeg=False) == (1, [])  # Sony sends the JPEG first
    assert choose([raw, jpeg], keep_jpeg=True) == (0, [1])
    assert choose([jpeg], keep_jpeg=False) == (0, [])  # a JPEG-only body: the JPEG is the frame


def test_frame_names_count_from_01() -> None:
    assert frame_name("frame-001", 1, 9, "nef") == "frame-001_01.nef"
    assert frame_name("f", 7, 120, "dng") == "f_007.dng"


def test_claim_error_names_gvfs_and_the_command() -> None:
    message = explain(CLAIM, "open the camera", "Nikon DSC D750 on usb:001,004")
    assert "gvfs" in message and "`gio mount -s gphoto2`" in message and "usb:001,004" in message


def test_a_refused_value_names_the_nearest_few_choices_not_all_of_them() -> None:
    """A body offers 37 shutter speeds: the sentence names the five nearest the value asked for (in stops), in
    the body's order, and where the whole list is; a value that is no speed gets the range; few choices are all
    named."""
    from medianscan.capture.camera import SettingError
    from medianscan.capture.camera.simulated.camera import CHOICES, SimulatedCamera
    from medianscan.config.schema import CameraConfig

    speeds = CHOICES["shutterspeed"]
    assert len(speeds) == 37
    said = nearest_choices("shutterspeed", "1/55", speeds)
    assert said == "1/100, 1/80, 1/60, 1/50 or 1/40 nearest (`medianscan camera show` lists all 37)"
    assert nearest_choices("shutterspeed", "fast", speeds) == (
        f"{speeds[0]} to {speeds[-1]} (`medianscan camera show` lists all 37)"
    )
    assert nearest_choices("capturetarget", "cardd", ["Internal RAM", "Memory card"]) == "Internal RAM or Memory card"
    formats = ["Large Fine JPEG", "Medium Fine JPEG", "Small Fine JPEG", "Small Normal JPEG", "RAW",
               "RAW + Large Fine JPEG", "sRAW"]  # fmt: skip
    assert nearest_choices("imageformat", "RAW+", formats).startswith("RAW, RAW + Large Fine JPEG or sRAW nearest")

    cfg = CameraConfig(settings={"shutterspeed": "1/55"})
    cfg.simulated.width, cfg.simulated.height = 768, 512
    camera = SimulatedCamera(cfg)
    camera.connect()
    with pytest.raises(SettingError) as refused:
        camera.lock()
    assert str(refused.value).endswith(f"it offers {said}")
    camera.close()


def test_the_reload_hint_fits_how_the_process_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGHUP reloads a daemon in a terminal as well as the service: no "Ctrl-C and run again"."""
    import os

    from medianscan.wording import reload_hint

    for name in ("INVOCATION_ID", "MANAGERPID"):
        monkeypatch.delenv(name, raising=False)
    assert reload_hint().startswith(f"`kill -HUP {os.getpid()}`")
    monkeypatch.setenv("INVOCATION_ID", "0123")
    assert reload_hint() == "`systemctl reload medianscan`"
    monkeypatch.setenv("MANAGERPID", "999")
    assert reload_hint() == "`systemctl --user reload medianscan`"
