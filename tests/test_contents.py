"""Every file of a stack folder is accounted for: frames, our own files, clutter, and frames that cannot be read.

Real files throughout: copies of the real Canon CR2 (whole, cut in half, emptied, or faked by a text file under
its name), real JPEG previews beside them, and small DNG bursts made from it for the hot folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medianscan.cli import main
from medianscan.library import contents
from medianscan.library.contents import Role
from medianscan.outputs import jpeg
from tests.stacks import Scene, load_scene, make_burst, tree_digest


@pytest.fixture(scope="module")
def small(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(800, 1400, 128, 192)


def cr2_stack(folder: Path, sample_raw: Path, n: int = 4) -> list[Path]:
    """`n` copies of the real CR2 as frame_01.CR2 ... (a stack that differs in nothing, which blends)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"frame_{i:02d}.CR2" for i in range(1, n + 1)]
    for path in paths:
        shutil.copy(sample_raw, path)
    return paths


def blend(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["blend", *map(str, args)])
    return code, capsys.readouterr().err


def test_roles_by_name() -> None:
    assert contents.role(Path("stack.json")) is Role.OURS
    assert contents.role(Path("frame-001_median.dng")) is Role.OURS
    assert contents.role(Path("frame-001_sigma-clip.json")) is Role.OURS
    assert contents.role(Path(".frame-001_median.dng.4242.part")) is Role.OURS
    for clutter in ("IMG_1.CR2.xmp", "IMG_1.pp3", "notes.txt", "info.json", ".DS_Store", "Thumbs.db", "._IMG_1.CR2"):
        assert contents.role(Path(clutter)) is Role.CLUTTER, clutter
    for temp in (".IMG_1.CR2.Xa3f9", "~IMG_1.CR2", "IMG_1.CR2.part", "IMG_1.CR2.crdownload"):
        assert contents.role(Path(temp)) is Role.TEMP, temp
    for candidate in ("IMG_1.CR2", "frame_05.dng", "scan.tif", "IMG_1.JPG", "IMG_1", "odd.bin"):
        assert contents.role(Path(candidate)) is Role.CANDIDATE, candidate


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("half", "unreadable or truncated"),
        ("empty", "empty file (0 bytes)"),
        ("text", "not a camera raw: its content is no image format medianscan reads"),
        ("jpeg", "named as a camera raw but holds a JPEG"),
        ("tiff", "unreadable raw (LibRaw:"),
    ],
)
@pytest.mark.slow
def test_a_frame_that_cannot_be_read_stops_the_blend_and_is_named(
    tmp_path: Path, sample_raw: Path, capsys: pytest.CaptureFixture[str], damage: str, needle: str
) -> None:
    folder = tmp_path / "neg"
    cr2_stack(folder, sample_raw)
    bad = folder / "frame_05.CR2"
    data = sample_raw.read_bytes()
    if damage == "half":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "text":
        bad.write_text("this is not a raw\n")
    elif damage == "jpeg":
        jpeg.write_jpeg(bad, np.full((16, 16, 3), 128, np.uint8))
    else:  # a plain TIFF (a scan) under a raw's name: LibRaw refuses it
        import tifffile

        tifffile.imwrite(bad, np.zeros((64, 64, 3), np.uint16), photometric="rgb")
    before = tree_digest(folder)
    code, err = blend(capsys, folder)
    assert code != 0
    line = [ln for ln in err.splitlines() if ln.startswith("medianscan:")]
    assert len(line) == 1, err  # one sentence, no traceback
    assert "frame_05.CR2" in line[0] and needle in line[0], err
    assert "--drop-bad-frames blends the rest" in line[0]
    assert "Traceback" not in err
    assert tree_digest(folder) == before  # nothing written, inputs untouched

    code, err = blend(capsys, folder, "--drop-bad-frames")
    assert code == 0, err
    record = json.loads((folder / "neg_median.json").read_text())
    assert [f["file"] for f in record["frames"]] == [f"frame_{i:02d}.CR2" for i in range(1, 5)]
    assert [r["file"] for r in record["rejected"]] == ["frame_05.CR2"]
    assert needle in record["rejected"][0]["reason"]
    assert "dropped frame_05.CR2" in err


@pytest.mark.slow
def test_jpeg_previews_beside_raws_are_left_out_by_name(
    tmp_path: Path, sample_raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "neg"
    raws = cr2_stack(folder, sample_raw, 3)
    for raw in raws:  # RAW+JPEG: the body's preview of each shot, a real JPEG with the CR2's EXIF
        preview = raw.with_suffix(".JPG")
        jpeg.write_jpeg(preview, np.full((120, 160, 3), 90, np.uint8), exif_from=raw)
    for clutter in ("frame_01.CR2.xmp", ".DS_Store", "._frame_01.CR2", "Thumbs.db", "frame_02.pp3"):
        (folder / clutter).write_bytes(b"x")
    code, err = blend(capsys, folder)
    assert code == 0, err
    record = json.loads((folder / "neg_median.json").read_text())
    assert [f["file"] for f in record["frames"]] == [r.name for r in raws]
    assert [i["file"] for i in record["ignored"]] == ["frame_01.JPG", "frame_02.JPG", "frame_03.JPG"]
    assert all("a JPEG beside the raws" in i["reason"] for i in record["ignored"])
    assert all(i["sha256"] for i in record["ignored"])
    notice = [ln for ln in err.splitlines() if "left out 3 files" in ln]
    assert len(notice) == 1 and "frame_02.JPG" in notice[0], err
    assert "xmp" not in notice[0] and "DS_Store" not in notice[0]  # clutter is not news


def test_a_temp_copy_beside_the_frames_is_named(
    tmp_path: Path, sample_raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "neg"
    cr2_stack(folder, sample_raw, 3)
    (folder / "frame_04.CR2.part").write_bytes(sample_raw.read_bytes()[:1000])  # a copy that did not finish
    code, err = blend(capsys, folder)
    assert code == 0, err
    record = json.loads((folder / "neg_median.json").read_text())
    assert [i["file"] for i in record["ignored"]] == ["frame_04.CR2.part"]
    assert "frame_04.CR2.part" in err


def test_the_library_counts_frames_by_the_same_rule(tmp_path: Path, sample_raw: Path) -> None:
    from medianscan.library.rolls import raw_files

    folder = tmp_path / "frame-001"
    paths = cr2_stack(folder, sample_raw, 3)
    for name in ("stack.json", "frame-001_median.dng", "frame-001_median.json", "x.xmp", ".f.CR2.12.part"):
        (folder / name).write_bytes(b"{}")
    (folder / "frame_04.CR2").write_bytes(b"")
    assert raw_files(folder) == [*paths, folder / "frame_04.CR2"]  # a broken frame still counts as one


@pytest.mark.slow
def test_the_hot_folder_names_a_broken_frame_and_points_to_the_config(
    tmp_path: Path, small: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "hot"
    paths = make_burst(root / "neg", small, 4)
    data = paths[-1].read_bytes()
    paths[-1].write_bytes(data[: len(data) // 2])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("watch:\n  quiet_seconds: 0.2\n  settle_seconds: 0.1\n")
    assert main(["watch", str(root), "--once", "--config", str(cfg)]) == 1
    err = caplog.text  # in a terminal these are the command's lines on stderr (tests/test_watch.py runs one)
    assert "neg_04.dng" in err and "unreadable or truncated" in err, err
    assert f"--drop-bad-frames (or blend.drop_bad_frames: true in {cfg}) blends the rest" in err, err
    assert not (root / "neg" / "neg_median.dng").exists()

    cfg.write_text("watch:\n  quiet_seconds: 0.2\n  settle_seconds: 0.1\nblend:\n  drop_bad_frames: true\n")
    assert main(["watch", str(root), "--once", "--config", str(cfg)]) == 0
    record = json.loads((root / "neg" / "neg_median.json").read_text())
    assert [r["file"] for r in record["rejected"]] == ["neg_04.dng"]
    # blended as it is: a second catch-up leaves it alone (the rejected frame is part of what was seen)
    before = (root / "neg" / "neg_median.json").stat().st_mtime_ns
    assert main(["watch", str(root), "--once", "--config", str(cfg)]) == 0
    assert (root / "neg" / "neg_median.json").stat().st_mtime_ns == before
