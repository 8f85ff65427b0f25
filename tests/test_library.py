"""The library on disk: folder naming, manifests, retake, the recovery scan and retention (real files)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medianscan.errors import MedianscanError
from medianscan.library.contents import MANIFEST, SET_ASIDE, SPARES
from medianscan.library.film_base import FilmBase
from medianscan.library.manifest import State, read_manifest
from medianscan.library.recovery import recover
from medianscan.library.retention import move_file
from medianscan.library.roll_record import (
    ROLL_RECORD,
    read_film_base,
    read_roll_record,
    record_film_base,
    write_roll_record,
)
from medianscan.library.rolls import Library, raw_files
from medianscan.records import BlendRecord, BurstRecord, FilmRecord, LeftOut

DAY = dt.date(2026, 11, 23)


def make_library(root: Path, **kw: object) -> Library:
    return Library(root, today=lambda: DAY, **kw)  # type: ignore[arg-type]


def add_frames(stack: Path, count: int, size: int = 1000) -> list[Path]:
    paths = []
    for i in range(1, count + 1):
        p = stack / f"{stack.name}_{i:02d}.dng"
        p.write_bytes(bytes([i]) * size)
        paths.append(p)
    return paths


def test_rolls_and_frames_follow_the_templates_and_never_reuse_a_folder(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    assert lib.roll == tmp_path / "2026-11-23-roll001"
    s1 = lib.new_stack(9)
    s2 = lib.new_stack(9)
    assert [s1.name, s2.name] == ["frame-001", "frame-002"]
    # a folder the operator made by hand is skipped, never written into
    (lib.roll / "frame-003").mkdir()
    (lib.roll / "frame-003" / "mine.txt").write_text("keep")
    s4 = lib.new_stack(9)
    assert s4.name == "frame-004"
    assert (lib.roll / "frame-003" / "mine.txt").read_text() == "keep"
    # a new roll continues the counter, even past a roll made on another day
    (tmp_path / "2026-11-20-roll007").mkdir()
    assert lib.new_roll().name == "2026-11-23-roll008"
    assert lib.new_stack(3).name == "frame-001"


def test_a_roll_name_without_counter_gets_a_suffix_instead_of_reusing(tmp_path: Path) -> None:
    lib = make_library(tmp_path, roll_template="{date:%Y%m%d}")
    first = lib.roll
    second = lib.new_roll()
    assert (first.name, second.name) == ("20261123", "20261123-2")


def test_a_restart_resumes_the_latest_roll(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    lib.new_roll()
    roll = lib.new_roll()
    lib.new_stack(9)
    again = make_library(tmp_path)
    assert again.roll == roll
    assert again.new_stack(9).name == "frame-002"


def test_bad_templates_are_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(MedianscanError, match=r"roll_template .*\{film\}"):
        make_library(tmp_path, roll_template="{film}-{roll}")
    with pytest.raises(MedianscanError, match=r"must contain \{negative\}"):
        make_library(tmp_path, negative_template="neg")
    with pytest.raises(MedianscanError, match="usable folder name"):
        make_library(tmp_path, negative_template="a/{negative}")
    with pytest.raises(MedianscanError, match="archive folder"):
        make_library(tmp_path, retention="archive")


def test_manifest_records_states_errors_and_history(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    stack = lib.new_stack(9)
    m = read_manifest(stack)
    assert (m.state, m.roll, m.frame, m.frames_expected) == (State.CAPTURING, lib.roll.name, "frame-001", 9)
    lib.mark(stack, State.CAPTURED, burst=BurstRecord(stack, frames=[stack / "a.dng"]), capture_seconds=1.5)
    lib.mark(stack, State.BLENDING)
    lib.mark(stack, State.FAILED, error="frame 3 is 2 px shifted")
    data = json.loads((stack / MANIFEST).read_text())
    assert data["state"] == "failed"
    assert data["error"] == "frame 3 is 2 px shifted"
    assert data["burst"]["frames"] == ["a.dng"]  # names within the stack folder, as BurstRecord writes them
    assert read_manifest(stack).burst == BurstRecord(stack, frames=[stack / "a.dng"])  # and reads them back
    assert data["capture_seconds"] == 1.5
    assert [h["state"] for h in data["history"]] == ["capturing", "captured", "blending", "failed"]
    assert not [p for p in stack.iterdir() if p.name != MANIFEST]  # no temp left behind
    with pytest.raises(TypeError):
        lib.mark(stack, State.BLENDED, nonsense=1)


def test_a_damaged_manifest_names_its_file(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    stack.mkdir()
    (stack / MANIFEST).write_text("{not json")
    with pytest.raises(MedianscanError, match=r"stack\.json"):
        read_manifest(stack)
    (stack / MANIFEST).write_text('{"state": "sleeping"}')
    with pytest.raises(MedianscanError, match="not a valid stack manifest"):
        read_manifest(stack)


def test_retake_moves_the_last_stack_aside_and_its_number_is_reused(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    lib.new_stack(3)
    s2 = lib.new_stack(3)
    frames = add_frames(s2, 3)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    (s2 / f".frame-002_median.dng.{int(dead.stdout)}.part").write_bytes(b"cancelled blend")
    moved = lib.retake().moved
    assert not [p for p in moved.iterdir() if p.name.endswith(".part")]
    assert moved == lib.roll / "discarded" / "frame-002"
    assert not s2.exists()
    assert sorted(p.name for p in raw_files(moved)) == sorted(p.name for p in frames)
    assert "discarded" in read_manifest(moved).history[-1]["state"]
    again = lib.new_stack(3)
    assert again.name == "frame-002"
    assert lib.retake().moved == lib.roll / "discarded" / "frame-002-2"  # the first discard is not overwritten
    with pytest.raises(MedianscanError, match="nothing to retake"):
        make_library(tmp_path / "empty").retake()


def test_a_retake_pressed_three_times_sets_aside_only_the_last_negative(tmp_path: Path) -> None:
    """Three presses before a capture are one retake: frame-003 is set aside once, frame-002 and frame-001 stay;
    the next capture shoots frame-003 again, and a retake after it sets that one aside, never an earlier one."""
    lib = make_library(tmp_path)
    for _ in range(3):
        add_frames(lib.new_stack(3), 3)
    presses = [lib.retake() for _ in range(3)]
    assert [(p.name, p.moved.name, p.again) for p in presses] == [
        ("frame-003", "frame-003", False),
        ("frame-003", "frame-003", True),
        ("frame-003", "frame-003", True),
    ]
    assert [s.name for s in lib.stacks()] == ["frame-001", "frame-002"]
    assert sorted(p.name for p in (lib.roll / "discarded").iterdir()) == ["frame-003"]
    assert make_library(tmp_path).retake().again  # a restart in between is still before the capture
    shot = lib.new_stack(3)
    assert shot.name == "frame-003"
    again = lib.retake()
    assert (again.name, again.moved.name, again.again) == ("frame-003", "frame-003-2", False)
    assert [s.name for s in lib.stacks()] == ["frame-001", "frame-002"]


def test_a_blend_record_is_read_right_wherever_the_reader_runs_and_the_stack_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stack.json` keeps the blend's files relative to the stack (others absolute), so a reader started in another
    working folder, or after the library moved, finds them; a record written relative to a working folder by an
    older version (the stack's path as given) is read in the stack's folder too."""
    lib = make_library(tmp_path / "lib")
    stack = lib.new_stack(3)
    frames = add_frames(stack, 3)
    monkeypatch.chdir(tmp_path)
    given = stack.relative_to(tmp_path)  # `medianscan blend lib/.../frame-001` from tmp_path
    output = given / "frame-001_median.dng"
    outside = tmp_path / "work" / "frame-001_median.dng"
    record = BlendRecord(
        given,
        output,
        output.with_suffix(".json"),
        (outside,),
        tuple(f.relative_to(tmp_path) for f in frames),
        (),
        1.0,
        0.5,
    )
    lib.mark(stack, State.BLENDED, blend=record)
    stored = json.loads((stack / MANIFEST).read_text())["blend"]
    assert stored["output"] == "frame-001_median.dng" and stored["stack"] == "."
    assert stored["extra_outputs"] == [str(outside)] and stored["frames"][0] == "frame-001_01.dng"
    monkeypatch.chdir(tmp_path / "lib")
    m = read_manifest(stack)
    assert m.blend is not None and m.blend.output == stack / "frame-001_median.dng"
    assert m.blend.frames == tuple(frames) and m.blend.extra_outputs == (outside,)
    moved = tmp_path / "elsewhere"
    (tmp_path / "lib").rename(moved)
    m = read_manifest(moved / stack.relative_to(tmp_path / "lib"))
    assert m.blend is not None and m.blend.output.is_absolute() and m.blend.sidecar.parent.name == "frame-001"
    legacy = moved / stack.relative_to(tmp_path / "lib")
    data = json.loads((legacy / MANIFEST).read_text())
    data["blend"] |= {"stack": str(given), "output": str(output), "sidecar": str(output.with_suffix(".json"))}
    (legacy / MANIFEST).write_text(json.dumps(data))
    m = read_manifest(legacy)
    assert m.blend is not None and m.blend.output == legacy / "frame-001_median.dng"


def test_recovery_requeues_marks_cut_off_bursts_and_removes_stale_temps(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    captured = lib.new_stack(3)
    add_frames(captured, 3)
    lib.mark(captured, State.CAPTURED)
    blending = lib.new_stack(3)
    add_frames(blending, 3)
    lib.mark(blending, State.CAPTURED)
    lib.mark(blending, State.BLENDING)
    cut = lib.new_stack(3)
    kept = add_frames(cut, 2)
    done = lib.new_stack(3)
    lib.mark(done, State.BLENDED)
    # temps of interrupted writes: one from a dead process, one from a live writer (another `blend`)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = cut / f".{cut.name}_03.dng.{int(dead.stdout)}.part"
    stale.write_bytes(b"half")
    stale_out = blending / f".{blending.name}_median.dng.{int(dead.stdout)}.part"
    stale_out.write_bytes(b"half")
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = blending / f".other.dng.{live_writer.pid}.part"
        live.write_bytes(b"being written")
        # a folder whose manifest never got written, with frames in it
        bare = lib.roll / "frame-009"
        bare.mkdir()
        add_frames(bare, 1)
        # a stack set aside by a retake while its blend was being written
        aside = lib.roll / "discarded" / "frame-005"
        aside.mkdir(parents=True)
        stale_aside = aside / f".frame-005_median.dng.{int(dead.stdout)}.part"
        stale_aside.write_bytes(b"half")

        rec = recover(make_library(tmp_path))
    finally:
        live_writer.kill()
        live_writer.wait()
    assert rec.queued == [captured, blending]
    assert rec.incomplete == [cut, bare]
    assert sorted(rec.removed_temps) == sorted([stale, stale_out, stale_aside])
    assert not stale.exists() and live.exists()
    m = read_manifest(cut)
    assert m.state == State.INCOMPLETE
    assert "2 of 3 frames" in (m.note or "")
    assert all(p.exists() for p in kept)
    assert read_manifest(done).state == State.BLENDED
    assert read_manifest(bare).state == State.INCOMPLETE


def blended(lib: Library, stack: Path, frames: list[Path]) -> None:
    lib.mark(stack, State.CAPTURED)
    output = stack / f"{stack.name}_median.dng"
    record = BlendRecord(
        stack, output, output.with_suffix(".json"), (), tuple(frames[:-1]), (LeftOut(frames[-1], "shifted"),), 1.0, None
    )
    lib.mark(stack, State.BLENDED, blend=record)


@pytest.mark.parametrize("policy", ["keep", "delete", "archive"])
def test_retention_after_a_verified_blend(tmp_path: Path, policy: str) -> None:
    archive = tmp_path / "archive"
    lib = make_library(tmp_path / "lib", retention=policy, archive=archive)
    stack = lib.new_stack(3)
    frames = add_frames(stack, 3)
    output = stack / f"{stack.name}_median.dng"
    output.write_bytes(b"blend")
    with pytest.raises(MedianscanError, match="verified blend"):
        lib.retain(stack)
    blended(lib, stack, frames)
    done = lib.retain(stack)
    assert read_manifest(stack).retention == done
    assert output.read_bytes() == b"blend"
    if policy == "keep":
        assert all(p.exists() for p in frames)
    elif policy == "delete":
        assert not any(p.exists() for p in frames)
        assert done == "deleted 3 raws"
    else:
        dest = archive / lib.roll.name / stack.name
        assert sorted(p.name for p in dest.iterdir()) == [p.name for p in frames]
        assert (dest / frames[0].name).read_bytes() == bytes([1]) * 1000
        assert not any(p.exists() for p in frames)


@pytest.mark.parametrize(
    ("policy", "companion"), [("keep", True), ("delete", False), ("delete", True), ("archive", True)]
)
def test_retention_releases_a_stacks_spares_with_its_raws_and_keeps_what_was_set_aside(
    tmp_path: Path, policy: str, companion: bool
) -> None:
    """Spares are more shots of the same negative: they go where its raws go (an archive keeps them in a spares/
    of its own, an emptied spares/ is removed), their companion JPEGs stay as the frames' do, and set-aside/
    (camera files that are not this negative's) is kept whatever the policy."""
    archive = tmp_path / "archive"
    lib = make_library(tmp_path / "lib", retention=policy, archive=archive)
    stack = lib.new_stack(3)
    frames = add_frames(stack, 3)
    (stack / SPARES).mkdir()
    spares = [stack / SPARES / f"{stack.name}_{i:02d}.dng" for i in (4, 5)]
    for spare in spares:
        spare.write_bytes(b"spare")
    if companion:
        (stack / SPARES / f"{stack.name}_05.jpg").write_bytes(b"jpeg")
    (stack / SET_ASIDE).mkdir()
    stray = stack / SET_ASIDE / "IMG_0098.dng"
    stray.write_bytes(b"not this negative's")
    blended(lib, stack, frames)

    done = lib.retain(stack)
    assert stray.read_bytes() == b"not this negative's"
    jpeg = [f"{stack.name}_05.jpg"] if companion else []
    left = sorted(p.name for p in (stack / SPARES).iterdir()) if (stack / SPARES).is_dir() else None
    if policy == "keep":
        assert done == "kept" and all(p.is_file() for p in frames)
        assert left == sorted([*(p.name for p in spares), *jpeg])
        return
    assert not any(p.exists() for p in frames)
    assert left == (jpeg or None)  # the JPEG stays; an emptied spares/ goes
    if policy == "delete":
        assert done == "deleted 3 raws and 2 spares"
        return
    dest = archive / lib.roll.name / stack.name
    assert done == f"moved 3 raws and 2 spares to {dest}"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == sorted(
        [*(p.name for p in frames), SPARES, *(f"{SPARES}/{p.name}" for p in spares)]
    )
    assert (dest / SPARES / spares[0].name).read_bytes() == b"spare"


def test_a_rolls_record_and_its_film_base_are_read_and_recorded_through_one_reading_of_roll_json(
    tmp_path: Path,
) -> None:
    """A roll without roll.json has no record and no film base, and recording one makes a record of an unknown
    film; recording keeps what the record holds; a damaged roll.json is one sentence naming it, from each."""
    roll = tmp_path / "roll"
    roll.mkdir()
    base = FilmBase((900.0, 1800.0, 2700.0), 15000.0, "measured", ("frame-001",))
    assert read_roll_record(roll) is None and read_film_base(roll) is None
    record_film_base(roll, base)
    assert read_film_base(roll) == base
    made = read_roll_record(roll)
    assert made is not None and made.film == FilmRecord()

    write_roll_record(roll, FilmRecord(film="Kodak Portra 400", iso=400))
    assert read_film_base(roll) is None  # a record of its own, no base yet
    record_film_base(roll, base)
    kept = read_roll_record(roll)
    assert kept is not None and kept.film == FilmRecord(film="Kodak Portra 400", iso=400)
    assert read_film_base(roll) == base

    path = roll / ROLL_RECORD
    for text, said in (('{"film": ', "cannot read the roll's record"), ("[1, 2]", "not a valid roll record")):
        path.write_text(text)  # cut short; not a JSON object
        for reading in (read_roll_record, read_film_base, lambda r: record_film_base(r, base)):
            with pytest.raises(MedianscanError, match=rf"^{re.escape(str(path))}: {said} \("):
                reading(roll)
    path.write_text(json.dumps({"film": {}, "film_base": {"white": 1}}))
    with pytest.raises(MedianscanError, match=rf"^{re.escape(str(path))}: the film base it records is not valid"):
        read_film_base(roll)


def test_recovery_finishes_a_retention_cut_off_by_a_crash(tmp_path: Path) -> None:
    lib = make_library(tmp_path, retention="delete")
    stack = lib.new_stack(3)
    frames = add_frames(stack, 3)
    blended(lib, stack, frames)  # crash here: blended, raws not yet released
    rec = recover(make_library(tmp_path, retention="delete"))
    assert rec.retained == [stack]
    assert not any(p.exists() for p in frames)


def test_move_file_across_filesystems_copies_then_removes(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    assert shm.is_dir(), "this test needs a second filesystem (tmpfs at /dev/shm)"
    src = shm / f"medianscan-test-{tmp_path.name}.dng"
    src.write_bytes(b"x" * 5000)
    dst = tmp_path / "moved.dng"
    move_file(src, dst)
    assert dst.read_bytes() == b"x" * 5000
    assert not src.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["moved.dng"]


def test_bytes_per_frame_comes_from_the_last_stack_with_raws(tmp_path: Path) -> None:
    lib = make_library(tmp_path)
    assert lib.bytes_per_frame() is None
    add_frames(lib.new_stack(3), 3, size=4000)
    lib.new_stack(3)  # still empty
    assert lib.bytes_per_frame() == 4000


def test_position_reports_without_creating_anything(tmp_path: Path) -> None:
    lib = make_library(tmp_path / "lib")
    assert lib.position() == (None, None)
    assert not (tmp_path / "lib").exists()
    lib.new_stack(3)
    assert lib.position() == ("2026-11-23-roll001", "frame-001")


def test_a_temp_of_a_zombie_writer_is_removed_at_recovery(tmp_path: Path) -> None:
    """A writer killed with the daemon whose parent never reaped it is a zombie: its pid still answers
    kill(pid, 0), yet it will never finish the file. A real zombie: a child that exited, not waited for."""

    lib = Library(tmp_path / "lib")
    stack = lib.new_stack(3)
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # the kernel still answers for it
        temp = stack / f".{stack.name}_median.dng.{child.pid}.part"
        temp.write_bytes(b"half a DNG")
        alive = stack / f".{stack.name}_median.json.{os.getppid()}.part"  # pytest's parent: alive
        alive.write_bytes(b"{")
        rec = recover(lib)
        assert temp in rec.removed_temps and not temp.exists()
        assert alive.exists()
    finally:
        child.wait()
