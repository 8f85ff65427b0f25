"""Shared fixtures: the real sample raw, found wherever this machine keeps it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_NAME = "IMG_5952.CR2"


def find_sample_raw() -> Path | None:
    """The Canon EOS 30D CR2: $MEDIANSCAN_SAMPLE_RAW, ../shared/samples/, or Debian's rawtran-doc."""
    candidates = [
        os.environ.get("MEDIANSCAN_SAMPLE_RAW"),
        ROOT.parent / "shared" / "samples" / SAMPLE_NAME,
        Path("/usr/share/doc/rawtran") / SAMPLE_NAME,
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def sample_raw() -> Path:
    """Path of the real CR2; a missing sample is a failure, not a skip (CI must have it)."""
    path = find_sample_raw()
    if path is None:
        pytest.fail(
            f"sample raw {SAMPLE_NAME} not found: set MEDIANSCAN_SAMPLE_RAW, put it in ../shared/samples/, "
            "or install Debian's rawtran-doc"
        )
    return path
