"""Independent readers for tests: exiftool's validator and the renders of darktable, RawTherapee and dcraw.

Each tool runs as its own process with a private, temporary configuration (never the user's presets, never
their caches), at reduced size where it can, and several files per call where it can: a darktable or
RawTherapee start-up costs more than the render of one 8.5 MP raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import imagecodecs
import numpy as np
import numpy.typing as npt
import rawpy

Image = npt.NDArray[np.uint8]

RENDER_TIMEOUT = 300  # seconds; a render that hangs fails the test instead of the suite
DARKTABLE_CAMERAS = Path("/usr/share/darktable/rawspeed/cameras.xml")
# The editors' OpenMP threads sleep when they wait instead of spinning: darktable and RawTherapee run side by side
# with the tests on two cores, where spinning threads held the cores the other editor needed (RawTherapee, three
# CR2s on the shared host: 16-19 s of CPU, 33-46 s wall; passive: 7 s, 14 s). Only how idle threads wait changes,
# not what they compute.
OPENMP = {"OMP_WAIT_POLICY": "passive"}

# RawTherapee partial profile over its built-in neutral processing: only the output size changes. Not over the
# user's default raw profile (-d): that one ("Auto-Matched Curve") copies the tone of each file's embedded
# preview, so a camera raw is developed to look like the camera's JPEG and our DNG like our preview.
_RT_RESIZE = """[Resize]
Enabled=true
Scale=1
AppliesTo=Cropped area
Method=Nearest
DataSpecified=3
Width={size}
Height={size}
AllowUpscaling=false
"""


def exiftool_validate(path: Path) -> list[str]:
    """exiftool's `-validate -warning -a` verdict: [] when it says OK, else its warning lines."""
    result = subprocess.run(
        ["exiftool", "-validate", "-warning", "-a", "-s", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    verdict = [line for line in lines if line.startswith("Validate")]
    if verdict == ["Validate                        : OK"]:
        return []
    return lines or ["exiftool printed nothing"]


def exiftool_tags(path: Path) -> dict[str, object]:
    """All tags exiftool reads, keyed "Group:Name" (e.g. "ExifIFD:ISO"), numbers as numbers."""
    result = subprocess.run(
        ["exiftool", "-j", "-n", "-G1", "-a", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    tags: dict[str, object] = json.loads(result.stdout)[0]
    return tags


def _check_unique_stems(inputs: Sequence[Path]) -> None:
    stems = [p.stem for p in inputs]
    if len(set(stems)) != len(stems):
        raise ValueError(f"inputs need distinct file names (renders are named after them): {stems}")


def _load_renders(inputs: Sequence[Path], out_dir: Path, suffix: str, tool: str, log: str) -> dict[Path, Image]:
    renders: dict[Path, Image] = {}
    for path in inputs:
        out = out_dir / f"{path.stem}{suffix}"
        if not out.is_file():
            raise AssertionError(f"{tool} did not render {path.name}; its output:\n{log[-3000:]}")
        renders[path] = np.asarray(imagecodecs.imread(out))[..., :3]
    return renders


class Render:
    """A render process started in the background (darktable and RawTherapee run side by side)."""

    def __init__(
        self,
        *,
        tool: str,
        args: list[str],
        env: dict[str, str],
        inputs: Sequence[Path],
        out_dir: Path,
        suffix: str,
        scratch: tempfile.TemporaryDirectory[str],
    ) -> None:
        self.tool = tool
        self.inputs = list(inputs)
        self.out_dir = out_dir
        self.suffix = suffix
        self._scratch = scratch
        self._process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self) -> dict[Path, Image]:
        """The renders, keyed by input path, as 8-bit RGB arrays; AssertionError naming what went wrong."""
        try:
            log, _ = self._process.communicate(timeout=RENDER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            log, _ = self._process.communicate()
            raise AssertionError(f"{self.tool} took over {RENDER_TIMEOUT} s; its output:\n{log[-3000:]}") from None
        finally:
            self._scratch.cleanup()
        return _load_renders(self.inputs, self.out_dir, self.suffix, self.tool, log)


def start_darktable(inputs: Sequence[Path], out_dir: Path, size: int = 600) -> Render:
    """darktable-cli renders of `inputs` (default pipeline, camera white balance) as PNGs of at most `size`."""
    _check_unique_stems(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="darktable-")
    args = ["darktable-cli"]
    for path in inputs:
        args += ["--import", str(path)]
    args += [
        str(out_dir / "$(FILE_NAME)"),
        "--width", str(size), "--height", str(size),
        "--hq", "false",  # develop at output size: much faster, same mean colour
        "--apply-custom-presets", "false",
        "--out-ext", "png",
        "--core",
        "--configdir", str(Path(scratch.name) / "config"),
        "--cachedir", str(Path(scratch.name) / "cache"),
        "--library", ":memory:",
    ]  # fmt: skip
    return Render(
        tool="darktable-cli",
        args=args,
        env={**os.environ, **OPENMP},
        inputs=inputs,
        out_dir=out_dir,
        suffix=".png",
        scratch=scratch,
    )


def start_rawtherapee(
    inputs: Sequence[Path], out_dir: Path, size: int = 600, *, default_profile: bool = False
) -> Render:
    """rawtherapee-cli renders of `inputs` (camera white balance), PNGs of at most `size`: RawTherapee's built-in
    neutral processing, or with `default_profile` the default raw profile a new user gets ("Auto-Matched Curve -
    ISO Low", whose tone curve is fitted to each file's embedded preview)."""
    _check_unique_stems(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="rawtherapee-")
    profile = Path(scratch.name) / "resize.pp3"
    profile.write_text(_RT_RESIZE.format(size=size))
    env = dict(
        os.environ,
        **OPENMP,
        XDG_CONFIG_HOME=str(Path(scratch.name) / "config"),
        XDG_CACHE_HOME=str(Path(scratch.name) / "cache"),
    )
    base = ["-d"] if default_profile else []
    args = [
        "rawtherapee-cli",
        "-o",
        f"{out_dir}/",
        *base,
        "-p",
        str(profile),
        "-n",
        "-Y",
        "-q",
        "-c",
        *map(str, inputs),
    ]
    return Render(
        tool="rawtherapee-cli", args=args, env=env, inputs=inputs, out_dir=out_dir, suffix=".png", scratch=scratch
    )


def render_dcraw(path: Path) -> Image:
    """dcraw's half-size 8-bit render with the camera's white balance (-w), rotated by the file's flip."""
    result = subprocess.run(["dcraw", "-w", "-h", "-c", "-T", str(path)], capture_output=True, check=True, timeout=120)
    return np.asarray(imagecodecs.imread(result.stdout))[..., :3]


def render_libraw(path: Path, *, linear: bool, half_size: bool = True) -> npt.NDArray[np.float64]:
    """LibRaw's half-size development as linear RGB in [0, 1]: `linear` with the camera's white balance and no
    auto-brightening (what a script calling rawpy gets for a measurement), else LibRaw's defaults (dcraw_emu's:
    auto-brightened, daylight balance) with the output curve undone."""
    with rawpy.imread(str(path)) as raw:
        if linear:
            rgb = raw.postprocess(
                use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16, half_size=half_size
            )
        else:
            rgb = raw.postprocess(gamma=(1, 1), output_bps=16, half_size=half_size)
    return np.asarray(rgb, dtype=np.float64) / 65535


def linear_light(image: Image) -> npt.NDArray[np.float64]:
    """An 8-bit sRGB render back in linear light (the sRGB curve undone), [0, 1]."""
    x = np.asarray(image, dtype=np.float64) / 255
    out: npt.NDArray[np.float64] = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return out


def exposure_gap(render: npt.NDArray[np.float64], source: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per channel, log2 of the mean linear light of the central two thirds of `render` over `source`'s (EV)."""

    def centre(image: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        h, w = image.shape[:2]
        return mean_colour(image[h // 6 : h - h // 6, w // 6 : w - w // 6])

    gap: npt.NDArray[np.float64] = np.log2(centre(render) / centre(source))
    return gap


def mean_colour(image: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """Mean R, G, B of an image (H, W, 3), in its own units."""
    mean: npt.NDArray[np.float64] = np.asarray(image, dtype=np.float64).reshape(-1, image.shape[-1])[:, :3].mean(axis=0)
    return mean


def darktable_white_level(make: str, model: str) -> int | None:
    """The white point darktable's rawspeed uses for a native raw of this camera (None if it has none).

    darktable develops native raws with its own camera data but a DNG with the DNG's WhiteLevel; comparing
    the two renders like for like needs the DNG to carry darktable's value.
    """
    for camera in ET.parse(DARKTABLE_CAMERAS).getroot().iter("Camera"):
        if camera.get("make") == make and camera.get("model") == model and camera.get("mode") in (None, ""):
            sensor = camera.find("Sensor")
            if sensor is not None and sensor.get("white"):
                return int(sensor.get("white", "0"))
    return None
