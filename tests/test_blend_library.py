"""`medianscan blend` on the library's stacks and with its flats, as a user runs it: from another working folder
while the daemon serves the console, with `--output` elsewhere or over a file, with `--flat` from outside the
roll, and the lines it prints for a stack that fails."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import imagecodecs
import pytest

from medianscan.cli import main
from medianscan.library.contents import MANIFEST
from medianscan.library.manifest import Manifest, State, read_manifest, write_manifest
from tests.daemon_thread import RunningDaemon, capture_config
from tests.flats import flat_light, truth, write_stack
from tests.stacks import Scene, load_scene, make_burst, tree_digest

pytestmark = pytest.mark.slow  # real editors, browsers or whole processes: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def small(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(800, 1400, 384, 576)


@pytest.fixture(scope="module")
def flat_scene(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(300, 400, 640, 960)  # big enough for the flat's smoothing (test_flat's)


def blend_from(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`medianscan blend ARGS` run by a user in the working folder `cwd`."""
    command = [sys.executable, "-m", "medianscan", "blend", *(str(a) for a in args)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def picture(url: str, path: str) -> tuple[int, bytes]:
    """The console's answer to GET `path`: status and body."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def negative_of(running: RunningDaemon, name: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while True:
        status, body = picture(running.url, "/api/state")
        assert status == 200, body
        found = [n for n in json.loads(body)["negatives"] if n["name"] == name]
        if found and found[0]["state"] == "blended":
            return dict(found[0])
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_library_stack_blended_from_another_folder_keeps_the_consoles_picture(tmp_path: Path) -> None:
    """The daemon (its working folder the test's) shoots frame-001; a user in another folder blends that stack
    again by a relative path, then once more with --output elsewhere/: the console still serves its picture, the
    stack's record names the stack's own blend, and the outside copy is listed as one."""
    library = tmp_path / "lib"
    user = tmp_path / "user"
    user.mkdir()
    with RunningDaemon(capture_config(library)) as running:
        assert running.ask("capture").ok
        stack = running.wait_for_state("frame-001", State.BLENDED)
        own = stack / "frame-001_median.dng"
        relative = os.path.relpath(stack, user)  # ../lib/<roll>/frame-001
        assert not Path(relative).is_absolute() and Path.cwd() != user

        again = blend_from(user, relative, "--method", "mean")
        assert again.returncode == 0, again.stderr
        m = read_manifest(stack)
        assert m.blend is not None and m.blend.output == stack / "frame-001_mean.dng"
        assert json.loads((stack / MANIFEST).read_text())["blend"]["output"] == "frame-001_mean.dng"
        status, body = picture(running.url, str(negative_of(running, "frame-001")["positive"]))
        assert status == 200, body  # it was HTTP 500: the record's path was relative to the user's folder
        assert imagecodecs.jpeg8_decode(body).std() > 10

        copy = blend_from(user, relative, "--output", "out3/")
        assert copy.returncode == 0, copy.stderr
        outside = user / "out3" / "frame-001_median.dng"
        assert outside.is_file() and own.is_file()
        m = read_manifest(stack)
        assert m.state == State.BLENDED and m.blend is not None and m.blend.output == stack / "frame-001_mean.dng"
        assert m.copies == [outside]  # listed as a copy, the stack's own record kept
        assert picture(running.url, str(negative_of(running, "frame-001")["positive"]))[0] == 200


def test_a_failing_stack_is_named_once_by_its_folder(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    """One frame of stackA, two of noisy7: each failure is one line, naming the stack by its folder once."""
    frames = make_burst(tmp_path / "stackA", small, 3, stem="IMG")
    code = main(["blend", str(frames[0])])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines() == [
        "medianscan: [1/1] stackA: cannot blend: 1 frame; a blend needs at least 3 frames of the same scene"
    ]
    two = make_burst(tmp_path / "noisy7", small, 2, seed=3)
    code = main(["blend", *(str(p) for p in two)])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("medianscan: [1/1] noisy7: cannot blend: 2")
    assert "files" not in err and err.count("noisy7") == 1


def test_output_over_an_existing_file_needs_force_and_says_it_replaced_it(
    tmp_path: Path, small: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "s"
    make_burst(stack, small, 3, seed=2)
    existing = tmp_path / "existing.dng"
    existing.write_bytes(b"the user's own file")
    code = main(["blend", str(stack), "--output", str(existing)])
    err = capsys.readouterr().err
    assert code == 2 and existing.read_bytes() == b"the user's own file"
    assert err.strip() == (
        f"medianscan: {existing}: already there; nothing was blended: --force replaces it, or give another --output"
    )
    assert not existing.with_suffix(".json").exists() and not list(stack.glob("*_median*"))
    code = main(["blend", str(stack), "--output", str(existing), "--force"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"-> {existing} (replaced the file that was there)" in err
    assert existing.read_bytes()[:2] in (b"II", b"MM")  # a DNG now
    code = main(["blend", str(stack), "--output", str(tmp_path / "new.dng")])
    assert code == 0 and "replaced" not in capsys.readouterr().err


def test_a_bad_flat_leaves_its_own_folder_and_the_roll_untouched(
    tmp_path: Path, flat_scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--flat FOLDER` of a picture (not the bare light): refused as no flat, and nothing written anywhere: not
    in the flat's folder, not in the roll's flats, not in the stack."""
    roll = tmp_path / "2026-12-06-roll001"
    stack = roll / "frame-003"
    write_stack(stack, flat_scene, truth(flat_scene), 3, seed=2)
    write_manifest(stack, Manifest(State.CAPTURED, roll.name, stack.name, 3))
    picture_flat = tmp_path / "not-a-flat"
    light = flat_light(flat_scene)
    write_stack(picture_flat, flat_scene, truth(flat_scene) * float(light.max() / truth(flat_scene).max()), 3, seed=4)
    before_flat, before_roll = tree_digest(picture_flat), tree_digest(roll)
    code = main(["blend", str(stack), "--flat", str(picture_flat)])
    err = capsys.readouterr().err
    assert code != 0 and "this is not a flat" in err and f"{picture_flat}: " in err, err
    assert tree_digest(picture_flat) == before_flat
    assert tree_digest(roll) == before_roll and not (roll / "flat").exists()


def test_a_flat_from_outside_the_roll_is_blended_into_the_rolls_flats(
    tmp_path: Path, flat_scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    roll = tmp_path / "2026-12-06-roll001"
    stack = roll / "frame-003"
    write_stack(stack, flat_scene, truth(flat_scene), 3, seed=2)
    outside = tmp_path / "card" / "flats"
    write_stack(outside, flat_scene, flat_light(flat_scene), 3, seed=1)
    before = tree_digest(outside)
    code = main(["blend", str(stack), "--flat", str(outside), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    master = roll / "flat" / "flat-001" / "flat-001_median.dng"
    assert json.loads(out.splitlines()[-1])["flat"]["source"] == str(master) and master.is_file()
    assert sorted(p.name for p in master.parent.iterdir() if p.suffix == ".dng") == [
        "flat-001_median.dng", "flats_01.dng", "flats_02.dng", "flats_03.dng"
    ]  # fmt: skip
    assert tree_digest(outside) == before  # the flat's own folder never written
    stamp = master.stat().st_mtime_ns
    assert main(["blend", str(stack), "--flat", str(outside)]) == 0  # the same flat: taken as it is
    assert sorted(p.name for p in (roll / "flat").iterdir()) == ["flat-001"] and master.stat().st_mtime_ns == stamp
