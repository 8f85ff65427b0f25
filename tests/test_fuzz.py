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


@pytest.mark.slow
def test_damaged_frames_are_read_or_named_never_a_traceback(tmp_path: Path, sample_raw: Path) -> None:
    work = tmp_path / "cases"
    work.mkdir()
    run = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "tests.fuzz_frames", str(sample_raw), str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, f"the reader crashed:\n{run.stderr[-3000:]}"  # faulthandler names where
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) >= 100
    assert not [r for r in results if r["outcome"] == "exception"]
    named = [r for r in results if r["outcome"] == "named"]
    assert len(named) >= 20  # every cut is named: a raw cut short never reads as a whole one
    for result in named:
        message = result["message"]
        assert message.startswith(str(work / "IMG_0001.CR2") + ": ") and "\n" not in message, result
        assert "Traceback" not in message and "object has no attribute" not in message, result
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
