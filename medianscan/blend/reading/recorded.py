"""Which files a blend's sidecar says it looked at, read back to skip stacks already blended.

The reading half of `medianscan.blend.sidecar`, kept down here so that the flat field, the hot folder and the
stitch can ask without importing the writer (and everything it measures).
"""

from __future__ import annotations

import json
from pathlib import Path


def recorded_frames(sidecar: Path) -> dict[str, str] | None:
    """File name -> sha256 of every file a sidecar says the blend looked at (the frames, and those rejected or
    left out), to skip stacks already blended; None when there is no readable sidecar."""
    try:
        record = json.loads(sidecar.read_text())
        seen = [*record["frames"], *record.get("rejected", []), *record.get("ignored", [])]
        return {f["file"]: f["sha256"] for f in seen if f.get("sha256")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
