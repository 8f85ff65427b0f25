"""The typed records as JSON: one rule (medianscan.record_json) writes and reads them all, and what earlier revisions
wrote reads back the same. tests/records_before/ holds JSON written by the hand-written to_json of revision 2fab1ff
(before a burst kept spares) and c4e3c24 (the last with the hand-written pairs), from the same records."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from medianscan.library.manifest import read_manifest, write_manifest
from medianscan.record_json import JsonRecord
from medianscan.records import (
    BlendRecord,
    BracketRecord,
    BurstRecord,
    CameraIdentity,
    FilmRecord,
    FlatRecord,
    FramesRecord,
    LeftOut,
    SnrFigures,
)

BEFORE = Path(__file__).parent / "records_before"
STACK = Path("/library/2026-11-23-roll002/frame-007")
TYPED: dict[str, type[JsonRecord]] = {
    "blend": BlendRecord,
    "blend_bare": BlendRecord,
    "bracket": BracketRecord,
    "flat": FlatRecord,
    "frames": FramesRecord,
    "camera": CameraIdentity,
}


def written_by(revision: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BEFORE / f"records_{revision}.json").read_text())
    return data


def as_stored(data: object) -> Any:
    """What a file holds: tuples are arrays."""
    return json.loads(json.dumps(data))


@pytest.mark.parametrize("revision", ["2fab1ff", "c4e3c24"])
@pytest.mark.parametrize("kind", sorted(TYPED))
def test_a_record_an_earlier_revision_wrote_is_written_again_the_same(revision: str, kind: str) -> None:
    before = written_by(revision)[kind]
    record = TYPED[kind].from_json(before)
    assert as_stored(record.to_json()) == before
    assert TYPED[kind].from_json(record.to_json()) == record


@pytest.mark.parametrize("revision", ["2fab1ff", "c4e3c24"])
def test_a_burst_record_reads_its_files_in_the_folder_it_is_in_now(revision: str, tmp_path: Path) -> None:
    before = written_by(revision)["burst"]
    moved = tmp_path / "discarded" / "frame-007"  # a retake moved the stack since
    record = BurstRecord.from_json(before, moved)
    assert record.stack == moved
    assert record.frames == [moved / "s_01.cr2", moved / "s_02.cr2"]
    assert record.jpegs == [moved / "s_01.jpg"]
    assert record.set_aside == [LeftOut(moved / "set-aside" / "IMG_0000.CR2", "taken 3 s before the shot")]
    assert record.camera == CameraIdentity("Canon EOS 30D", "usb:001,004", "0123456789")
    assert record.auto is not None and record.auto.colour == "B" and record.auto.shot == 8
    assert record.sizes == {"s_01.cr2": 8123456}
    again = as_stored(record.to_json())
    assert again["stack"] == str(moved) and again["frames"] == ["s_01.cr2", "s_02.cr2"]
    if revision == "2fab1ff":  # before spares: none, and the fields are written from now on
        assert record.spares == [] and record.spares_deleted == []
        assert again == before | {"stack": str(moved), "spares": [], "spares_deleted": []}
    else:
        assert record.spares == [LeftOut(moved / "spares" / "s_03.cr2", "a shot past the 2 frames asked for")]
        assert again == before | {"stack": str(moved)}


def test_the_film_record_keeps_only_what_was_given() -> None:
    before = written_by("c4e3c24")["film"]
    assert before == {"film": "Ilford HP5 Plus 400", "iso": 400, "notes": "pushed\none stop"}
    film = FilmRecord.from_json(before)
    assert film == FilmRecord(film="Ilford HP5 Plus 400", iso=400, notes="pushed\none stop")
    assert film.to_json() == before


def test_each_field_keeps_the_digits_declared_for_it() -> None:
    record = BlendRecord.from_json(written_by("c4e3c24")["blend"])
    precise = dataclasses.replace(
        record, seconds=12.3456789, noise_ratio=1 / 3, snr=152.3456, timings={"read": 1.23456}
    )
    data = precise.to_json()
    assert (data["seconds"], data["noise_ratio"], data["snr"], data["timings"]) == (
        12.346,
        0.3333,
        152.3,
        {"read": 1.2346},
    )
    assert record.flat is not None
    flat = dataclasses.replace(record.flat, gain_range=(0.987654321, 1.0), baseline_exposure_ev=0.123456789)
    assert flat.to_json()["gain_range"] == [0.9877, 1.0]
    assert flat.to_json()["baseline_exposure_ev"] == 0.123456789  # no rule declared: kept whole
    assert record.bracket is not None
    assert record.bracket.ratios[0].measured["R"] == 3.987654321  # a bracket keeps every digit, as it did


def test_a_file_written_before_a_field_existed_reads_with_its_default() -> None:
    blend = BlendRecord.from_json(  # the first records: no extra outputs, nothing dropped, no noise measured
        {"stack": "s", "output": "s/o.dng", "sidecar": "s/o.json", "frames": ["s/a.cr2"], "seconds": 2}
    )
    assert blend.seconds == 2.0 and isinstance(blend.seconds, float)
    assert (blend.extra_outputs, blend.dropped, blend.noise_ratio, blend.flat, blend.snr) == ((), (), None, None, None)
    flat = dict(written_by("c4e3c24")["flat"])
    del flat["frames_sha256"]
    assert FlatRecord.from_json(flat).frames_sha256 == ()
    assert CameraIdentity.from_json({"model": "D750", "port": "usb:001,002"}).serial == ""
    frames = dict(written_by("c4e3c24")["frames"])
    del frames["measure_seconds"]
    assert FramesRecord.from_json(frames).measure_seconds == 0.0
    bracket = as_stored(written_by("c4e3c24")["bracket"])
    del bracket["ratios"][0]["pooled"], bracket["shadow_noise_vs_longest"]
    read = BracketRecord.from_json(bracket)
    assert read.ratios[0].pooled == () and read.shadow_noise_vs_longest is None
    assert BurstRecord.from_json({}, Path("/x")) == BurstRecord(Path("/x"))


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (["not", "a", "record"], "a blend record is a JSON object"),
        ({"output": "o.dng", "sidecar": "o.json", "frames": [], "seconds": 1}, "not a blend record ('stack')"),
        ({"stack": "s", "output": "o", "sidecar": "j", "frames": "a.cr2", "seconds": 1}, "not a blend record"),
        ({"stack": "s", "output": "o", "sidecar": "j", "frames": [], "seconds": "soon"}, "not a blend record"),
        ({"stack": "s", "output": "o", "sidecar": "j", "frames": [], "seconds": 1, "dropped": [{}]}, "'frame'"),
    ],
)
def test_a_damaged_record_is_one_value_error(data: object, said: str) -> None:
    with pytest.raises(ValueError, match=re.escape(said)):
        BlendRecord.from_json(data)


def test_a_damaged_burst_record_is_one_value_error() -> None:
    with pytest.raises(ValueError, match=r"^a burst record is a JSON object"):
        BurstRecord.from_json([1], Path("/x"))
    with pytest.raises(ValueError, match=r"^not a burst record"):
        BurstRecord.from_json({"set_aside": [{"reason": "no file"}]}, Path("/x"))


def test_a_stack_json_an_earlier_revision_wrote_reads_and_writes_back_the_same(tmp_path: Path) -> None:
    before = written_by("c4e3c24")
    stack = tmp_path / "roll" / "frame-007"  # the library moved: the blend's paths were stored under STACK
    stack.mkdir(parents=True)
    manifest = {"state": "blended", "roll": "roll", "frame": "frame-007", "frames_expected": 2}
    (stack / "stack.json").write_text(json.dumps(manifest | {"burst": before["burst"], "blend": before["blend"]}))
    read = read_manifest(stack)
    assert read.burst is not None and read.blend is not None
    assert read.burst.frames == [stack / "s_01.cr2", stack / "s_02.cr2"]
    assert read.blend.output == stack / "frame-007.dng"
    assert read.blend.dropped == (LeftOut(stack / "s_03.cr2", "moved 4.2 px against the others"),)
    assert read.blend.flat == FlatRecord.from_json(before["flat"])
    write_manifest(stack, read)
    again = read_manifest(stack)
    assert (again.burst, again.blend) == (read.burst, read.blend)
    stored = json.loads((stack / "stack.json").read_text())
    assert stored["blend"]["output"] == "frame-007.dng"  # inside the stack: relative
    assert stored["burst"] == before["burst"] | {"stack": str(stack)}


def test_a_count_short_of_its_target_says_why() -> None:
    count = FramesRecord.from_json(written_by("c4e3c24")["frames"])
    assert count.reached and count.said() == "dense negative: SNR 151 reached"  # one frame: 41 of 150
    assert dataclasses.replace(count, single_snr=60.0).said() == "thin negative: SNR 151 reached"
    short = dataclasses.replace(count, expected_snr=120.0)
    assert short.said() == "dense negative: SNR 120 of 150 at the most frames, 12"
    burst = BurstRecord(STACK, auto=short)
    assert SnrFigures.of(burst, None) == SnrFigures(120.0, 150.0, short.said())
