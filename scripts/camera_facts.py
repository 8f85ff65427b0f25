"""Makes medianscan/data/rawspeed_cameras.json, the camera facts a blend's DNG takes from darktable's camera data
(white levels and crops, see medianscan.blend.corrections.levels), so that every host writes the same DNG whether
darktable is installed there or not.

Run: .venv/bin/python -m scripts.camera_facts [/usr/share/darktable/rawspeed/cameras.xml]
The source is rawspeed's data/cameras.xml (as darktable ships it; CC-BY-SA 3.0 per the file's own header). Only
native modes are kept (no sRAW, DNG, CHDK or bit-depth modes), and of each only what the choice needs: the crop and
each sensor entry's black, white and ISOs, keyed by the EXIF make and model (aliases included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SOURCE = Path("/usr/share/darktable/rawspeed/cameras.xml")
TARGET = Path(__file__).resolve().parent.parent / "medianscan" / "data" / "rawspeed_cameras.json"


def _sensors(camera: ET.Element) -> list[list[object]]:
    found: list[list[object]] = []
    for sensor in camera.iter("Sensor"):
        try:
            black, white = int(sensor.get("black", "0")), int(sensor.get("white", "0"))
            isos = sorted(int(v) for v in sensor.get("iso_list", "").split())
            low, high = (int(sensor.get(k, "0") or 0) for k in ("iso_min", "iso_max"))
        except ValueError:
            continue
        if white > 0:
            found.append([black, white, low, high, isos])
    return found


def _crop(camera: ET.Element) -> list[int] | None:
    crop = camera.find("Crop")
    if crop is None:
        return None
    return [int(crop.get(k, "0")) for k in ("x", "y", "width", "height")]


def extract(source: Path) -> dict[str, object]:
    cameras: dict[str, dict[str, object]] = {}
    for camera in ET.parse(source).getroot().iter("Camera"):
        if camera.get("mode") or camera.get("supported") == "no":
            continue
        make, model = camera.get("make", "").strip(), camera.get("model", "").strip()
        facts: dict[str, object] = {"sensors": _sensors(camera)}
        crop = _crop(camera)
        if crop is not None:
            facts["crop"] = crop
        if not facts["sensors"] and crop is None:
            continue
        names = [model] + [(a.text or "").strip() for a in camera.iter("Alias") if (a.text or "").strip()]
        for name in names:
            cameras.setdefault(f"{make}\t{name}", facts)
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "darktable"], capture_output=True, text=True, check=False
    )
    return {
        "source": f"rawspeed data/cameras.xml as shipped with darktable {version.stdout.strip() or '(unknown)'}",
        "licence": "CC-BY-SA 3.0 (the source file's header: Creative Commons Attribution-ShareAlike 3.0 Unported)",
        "made_by": "python -m scripts.camera_facts",
        "fields": "key 'MAKE<TAB>MODEL' as EXIF says them; crop [x, y, width, height] (width or height <= 0: that "
        "many from the right or bottom edge); sensors [[black, white, iso_min, iso_max, [iso, ...]], ...]",
        "cameras": dict(sorted(cameras.items())),
    }


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    facts = extract(source)
    TARGET.write_text(json.dumps(facts, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"{TARGET}: {len(facts['cameras'])} cameras")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
