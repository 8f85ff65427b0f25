"""Every damaged copy of a real raw is read or named in one sentence, never a traceback or a crash (see
tests/fuzz_frames.py for the cases: cut anywhere, bytes flipped in every entry of its TIFF structure)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medianscan.blend.pipeline import blend_stack
from medianscan.errors import StackError
from tests.conftest import ROOT
from tests.fuzz_frames import cases

SHARDS = 2  # processes side by side, one a core, each reading every second case


@pytest.mark.slow
def test_damaged_frames_are_read_or_named_never_a_traceback(tmp_path: Path, sample_raw: Path) -> None:
    folders = [tmp_path / f"cases-{k}" for k in range(SHARDS)]
    runs = []
    for k, folder in enumerate(folders):
        folder.mkdir()
        command = [sys.executable, "-X", "faulthandler", "-m", "tests.fuzz_frames", str(sample_raw), str(folder)]
        runs.append(
            subprocess.Popen(
                [*command, f"{k}/{SHARDS}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = []
    try:
        for process in runs:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in runs:  # one that failed or hung leaves none running
            process.kill()
    results = []
    for folder, process, (out, err) in zip(folders, runs, outputs, strict=True):
        assert process.returncode == 0, f"the reader crashed:\n{err[-3000:]}"  # faulthandler names where
        mine = [json.loads(line) for line in out.splitlines()]
        for result in mine:
            if result["outcome"] == "named":
                message = result["message"]
                assert message.startswith(str(folder / "IMG_0001.CR2") + ": ") and "\n" not in message, result
                assert "Traceback" not in message and "object has no attribute" not in message, result
        results += mine
    assert len(results) >= 100
    every = [name for name, _ in cases(sample_raw.read_bytes(), sample_raw)]
    assert sorted(r["case"] for r in results) == sorted(every)  # each case read, by one of the processes
    assert not [r for r in results if r["outcome"] == "exception"]
    named = [r for r in results if r["outcome"] == "named"]
    assert len(named) >= 20  # every cut is named: a raw cut short never reads as a whole one
    assert all(r["outcome"] == "named" for r in results if r["case"].startswith("cut at"))

    # A header damaged so that the raw still decodes, to other pixels: among good frames it is named.
    for result in results:
        if result["outcome"] == "read" and not result["same_pixels"]:
            stack = tmp_path / f"stack-{Path(result['file']).stem}"
            stack.mkdir()
            shutil.copy(sample_raw, stack / "IMG_0001.CR2")
            shutil.copy(sample_raw, stack / "IMG_0002.CR2")
            shutil.copy(result["file"], stack / "IMG_0003.CR2")
            with pytest.raises(StackError, match=r"IMG_0003\.CR2: "):
                blend_stack(stack)


def test_the_command_line_turns_faulthandler_on() -> None:
    """So a crash in a native library (LibRaw, libgphoto2, Exiv2) leaves a Python stack on stderr, not silence."""
    script = "import faulthandler\nfrom medianscan.cli import main\nmain(['config', 'check', '/nonexistent'])\n"
    script += "print(faulthandler.is_enabled())"
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "True"
