"""Raw layouts we have no real file of, made from the real CR2's mosaic by writers other than ours (tifffile for the
structure, Exiv2 for the EXIF): the DNGs other tools write. Each is a plausible file a user could bring."""

from __future__ import annotations

from pathlib import Path

import exiv2
import numpy as np
import numpy.typing as npt
import rawpy
import tifffile

from medianscan.blend.reading.raw_layout import layout_from_rawpy

BLACK_14 = 512
WHITE_14 = 15360  # below the 14-bit container's 16383 and the 16-bit sample's 65535: a body's real saturation


def _srational(values: npt.ArrayLike, denominator: int = 10000) -> tuple[int, ...]:
    pairs = [(round(float(v) * denominator), denominator) for v in np.asarray(values).ravel()]
    return tuple(x for pair in pairs for x in pair)


def _exif(path: Path, **tags: str) -> None:
    """Add EXIF tags (`Exif.Photo.*` keys with dots as underscores) the way another tool would: Exiv2 writes them."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    exif = image.exifData()
    for key, value in tags.items():
        exif[key.replace("_", ".")] = value
    image.writeMetadata()


def another_tools_dng(cr2: Path, target: Path, *, exposure_bias: str = "-1/1") -> Path:
    """The CR2's picture as a DNG another tool writes: the raw in IFD0 (as CinemaDNG and many converters do, no
    SubIFD, no preview), 14-bit values in 16-bit samples, WhiteLevel 15360 (neither 16383 nor 65535), per-colour
    BlackLevel, two colour matrices, BaselineExposure +0.25, and an exposure compensation of `exposure_bias` EV in
    its EXIF (darktable's default exposure undoes it)."""
    with rawpy.imread(str(cr2)) as raw:
        mosaic = raw.raw_image.astype(np.int32)
        layout = layout_from_rawpy(raw)
    top, left, bottom, right = layout.active_area
    black = np.asarray(layout.black_levels)[layout.pattern]
    tile = np.tile(black, (mosaic.shape[0] // 2 + 1, mosaic.shape[1] // 2 + 1))[: mosaic.shape[0], : mosaic.shape[1]]
    data = np.clip((mosaic - tile) * 4 + BLACK_14, 0, 65535).astype(np.uint16)
    local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
    cfa = bytes({"R": 0, "G": 1, "B": 2}[layout.colors[i]] for i in local.ravel())
    matrix = np.asarray(layout.color_matrix)
    cx, cy, cw, ch = layout.default_crop
    extratags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, cfa, True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Canon EOS 30D", True),  # UniqueCameraModel
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "H", 4, (BLACK_14,) * 4, True),  # BlackLevel
        (50717, "I", 1, WHITE_14, True),  # WhiteLevel
        (50721, "2i", 9, _srational(matrix), True),  # ColorMatrix1
        (50722, "2i", 9, _srational(matrix * 1.02), True),  # ColorMatrix2
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),  # AsShotNeutral
        (50730, "2i", 1, (1, 4), True),  # BaselineExposure +0.25
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50779, "H", 1, 17, True),  # CalibrationIlluminant2: A
        (50719, "I", 2, (cx, cy), True),  # DefaultCropOrigin
        (50720, "I", 2, (cw, ch), True),  # DefaultCropSize
        (50829, "I", 4, (top, left, bottom, right), True),  # ActiveArea
        (271, "s", 0, "Canon", True),  # Make
        (272, "s", 0, "Canon EOS 30D", True),  # Model
    ]
    tifffile.imwrite(target, data, photometric=32803, software="another tool 1.0", extratags=extratags)
    _exif(
        target,
        Exif_Photo_ExposureBiasValue=exposure_bias,
        Exif_Photo_ISOSpeedRatings="640",
        Exif_Photo_ExposureTime="1/400",
        Exif_Photo_FNumber="22/1",
        Exif_Photo_DateTimeOriginal="2009:07:21 13:03:20",
        Exif_Photo_LensModel="EF-S18-55mm f/3.5-5.6",
    )
    return target


LINEAR_TOP = 65535  # the linearization table's range
LINEAR_BLACK = 256


def linearized_dng(cr2: Path, target: Path) -> Path:
    """The CR2's picture as a CinemaDNG-style frame (a Blackmagic camera's): the raw in IFD0, 12-bit codes whose
    LinearizationTable maps them (square-root encoded) onto 16-bit linear values, BlackLevel and WhiteLevel in
    those linear units, and BaselineExposure +0.5 stored as a rational, as such cameras write it."""
    with rawpy.imread(str(cr2)) as raw:
        mosaic = raw.raw_image.astype(np.float64)
        layout = layout_from_rawpy(raw)
    top, left, bottom, right = layout.active_area
    linear = np.clip((mosaic - 128) * 14 + LINEAR_BLACK, 0, LINEAR_TOP)
    codes = np.round(4095 * np.sqrt(linear / LINEAR_TOP)).astype(np.uint16)
    table = np.round(LINEAR_TOP * (np.arange(4096) / 4095) ** 2).astype(np.uint16)
    white = int(table[int(np.round(4095 * np.sqrt(((4095 - 128) * 14 + LINEAR_BLACK) / LINEAR_TOP)))])
    local = np.roll(layout.pattern, (-top, -left), axis=(0, 1))
    cfa = bytes({"R": 0, "G": 1, "B": 2}[layout.colors[i]] for i in local.ravel())
    cx, cy, cw, ch = layout.default_crop
    extratags = [
        (33421, "H", 2, (2, 2), True),
        (33422, "B", 4, cfa, True),
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 3, 0, 0), True),
        (50708, "s", 0, "Blackmagic Design Test Camera", True),
        (50712, "H", 4096, tuple(int(v) for v in table), True),  # LinearizationTable
        (50714, "I", 1, LINEAR_BLACK, True),  # BlackLevel (linear units)
        (50717, "I", 1, white, True),  # WhiteLevel (linear units)
        (50721, "2i", 9, _srational(layout.color_matrix), True),
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),
        (50730, "2i", 1, (1, 2), True),  # BaselineExposure +0.5
        (50778, "H", 1, 21, True),
        (50719, "I", 2, (cx, cy), True),
        (50720, "I", 2, (cw, ch), True),
        (50829, "I", 4, (top, left, bottom, right), True),
        (271, "s", 0, "Blackmagic Design", True),
        (272, "s", 0, "Test Camera", True),
    ]
    tifffile.imwrite(target, codes, photometric=32803, software="Blackmagic test 1.0", extratags=extratags)
    _exif(target, Exif_Photo_ISOSpeedRatings="800", Exif_Photo_ExposureTime="1/50", Exif_Photo_FNumber="4/1")
    return target


def linear_rgb_dng(cr2: Path, target: Path) -> Path:
    """The CR2's picture as a raw without a mosaic, as a film scanner or a converter writes it: linear RGB in the
    camera's own colours (LibRaw's half-size development, no white balance), PhotometricInterpretation LinearRaw,
    a black level and a white level per sample, the camera's matrix and neutral."""
    with rawpy.imread(str(cr2)) as raw:
        rgb = raw.postprocess(
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            user_wb=[1, 1, 1, 1],
            output_color=rawpy.ColorSpace.raw,
            half_size=True,
        )
        layout = layout_from_rawpy(raw)
    extratags = [
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, "Nikon LS-5000", True),
        (50714, "I", 3, (0, 0, 0), True),  # BlackLevel, per sample
        (50717, "I", 3, (65535, 65535, 65535), True),  # WhiteLevel, per sample
        (50721, "2i", 9, _srational(layout.color_matrix), True),
        (50728, "2I", 3, _srational(layout.as_shot_neutral, 1000000), True),
        (50778, "H", 1, 21, True),
        (271, "s", 0, "Nikon", True),
        (272, "s", 0, "LS-5000", True),
    ]
    tifffile.imwrite(target, rgb, photometric=34892, software="a scanner's software", extratags=extratags)
    return target


# --- small scenes with previews: how the editors' auto-matched curves treat a blend of bodies we have no raw of ---

SCENE_SIZE = (1056, 1600)  # rows, columns of the active area: RawTherapee matches ~180x260 px of it, as of a camera
SCENE_MARGINS = (6, 12)  # a masked border above and left of the active area
SCENE_CROP = (4, 2, 1584, 1048)  # DefaultCrop inside the active area: x, y, width, height
SCENE_BLACK, SCENE_WHITE = 256, 16000
SCENE_MATRIX = np.array([[0.6461, -0.0907, -0.0882], [-0.4300, 1.2184, 0.2378], [-0.0819, 0.1944, 0.5931]])
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
SCENES = ("stage", "dark", "bright")


FALLOFF = (0.30, 0.36, 0.42)  # a lens and light panel's falloff to the corners, per R, G, B: 0.58 of the centre's blue


def falloff() -> npt.NDArray[np.float64]:
    """(rows, columns, 3): the light each photosite of the active area gets, 1 at the centre, less towards the
    corners per colour (FALLOFF): what a flat field takes out."""
    h, w = SCENE_SIZE
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    r2 = ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2  # 1 in the corners
    out: npt.NDArray[np.float64] = 1 - r2[..., None] * np.asarray(FALLOFF)
    return out


def scene_linear(kind: str, light: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.float64]:
    """A linear sRGB scene (rows, columns, 3) in [0, 1]: 'stage' strongly coloured lights (saturated red, blue and
    magenta on near black, a stage lit by gels), 'dark' a low-key scene (most of it below 2 % of white), 'bright' a
    high-key one (most of it above 40 %, nothing clipped); 'light' the bare light of a flat field. Lit by `light`
    (falloff()) when given."""
    h, w = SCENE_SIZE
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    if kind == "light":
        bare: npt.NDArray[np.float64] = np.full((h, w, 3), 0.5) * (1 if light is None else light)
        return bare
    rng = np.random.default_rng(SCENES.index(kind))
    texture = 1 + 0.08 * rng.standard_normal((h, w))
    if kind == "stage":
        red = np.exp(-((x - 0.3) ** 2 + (y - 0.5) ** 2) / 0.03)
        blue = np.exp(-((x - 0.72) ** 2 + (y - 0.4) ** 2) / 0.02)
        scene = 0.01 + red[..., None] * [0.9, 0.05, 0.12] + blue[..., None] * [0.1, 0.06, 0.85]
    elif kind == "dark":
        scene = (0.004 + 0.02 * x * y)[..., None] * [1.0, 0.9, 0.8] + (np.abs(x - 0.5) < 0.05)[..., None] * 0.3
    else:
        scene = (0.45 + 0.4 * x)[..., None] * [0.95, 1.0, 0.9] - (np.abs(y - 0.5) < 0.1)[..., None] * 0.3
    out: npt.NDArray[np.float64] = np.clip(scene * texture[..., None] * (1 if light is None else light), 0, 1)
    return out


def scene_preview(
    kind: str, light: npt.NDArray[np.float64] | None = None, exposure: float = 1.0
) -> npt.NDArray[np.uint8]:
    """What a camera's JPEG engine would make of the scene: its own curve (an S-curve, and for 'stage' more
    saturation; 'dark' lifted a stop and a half, as a camera's auto-brightening does; 'bright' held down),
    downscaled to 800x528, half its size per side (above RawTherapee's 19200-pixel floor for a preview it matches)."""
    linear = scene_linear(kind, light)[::2, ::2] * exposure
    gain = {"stage": 1.0, "dark": 2.8, "bright": 0.8}.get(kind, 1.0)
    linear = np.clip(linear * gain, 0, 1)
    if kind == "stage":
        grey = linear.mean(axis=-1, keepdims=True)
        linear = np.clip(grey + 1.6 * (linear - grey), 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    toned = encoded + 0.15 * np.sin(2 * np.pi * encoded) / (2 * np.pi)  # a gentle S around the middle
    return np.clip(np.round(255 * toned), 0, 255).astype(np.uint8)


def scene_dng(
    target: Path,
    kind: str,
    *,
    preview: bool,
    light: npt.NDArray[np.float64] | None = None,
    exposure: float = 1.0,
    seconds: str = "1/60",
    seed: int = 7,
) -> Path:
    """The scene `kind` as a DNG a camera writing DNG would give (a Pentax's, a Leica's, a phone's): an RGGB mosaic
    with a masked border, a DefaultCrop inside the ActiveArea, one colour matrix, the camera's own 8-bit preview in
    IFD0 and the raw in a SubIFD (or, without `preview`, the raw in IFD0 alone). Written by tifffile. `light`: lit
    unevenly (falloff()); `exposure`: this much of the light, shot at `seconds` (a bracket's frames); the raw clips
    at its white level, the preview at 255."""
    h, w = SCENE_SIZE
    top, left = SCENE_MARGINS
    camera = SCENE_MATRIX @ _SRGB_TO_XYZ  # linear sRGB -> camera RGB
    white_cam = camera @ np.ones(3)
    neutral = white_cam / white_cam[1]
    cam = scene_linear(kind, light) * exposure @ camera.T / white_cam.max()
    mosaic = np.full((h + top, w + left), SCENE_BLACK, dtype=np.float64)
    rng = np.random.default_rng(seed)  # the read noise: frames of a burst differ by their seeds
    active = mosaic[top:, left:]
    for (dy, dx), channel in (((0, 0), 0), ((0, 1), 1), ((1, 0), 1), ((1, 1), 2)):
        active[dy::2, dx::2] += cam[dy::2, dx::2, channel] * (SCENE_WHITE - SCENE_BLACK)
    mosaic += rng.normal(0, 2, mosaic.shape)
    data = np.clip(np.round(mosaic), 0, SCENE_WHITE).astype(np.uint16)
    cfa = bytes((0, 1, 1, 2)) if (top % 2, left % 2) == (0, 0) else None
    assert cfa is not None
    cx, cy, cw, ch = SCENE_CROP
    raw_tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, cfa, True),  # CFAPattern
        (50713, "H", 2, (1, 1), True),  # BlackLevelRepeatDim
        (50714, "I", 1, SCENE_BLACK, True),  # BlackLevel
        (50717, "I", 1, SCENE_WHITE, True),  # WhiteLevel
        (50719, "I", 2, (cx, cy), True),  # DefaultCropOrigin
        (50720, "I", 2, (cw, ch), True),  # DefaultCropSize
        (50829, "I", 4, (top, left, top + h, left + w), True),  # ActiveArea
    ]
    file_tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Testbody S1", True),  # UniqueCameraModel
        (50721, "2i", 9, _srational(SCENE_MATRIX), True),  # ColorMatrix1
        (50728, "2I", 3, _srational(neutral, 1000000), True),  # AsShotNeutral
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (271, "s", 0, "Testbody", True),  # Make
        (272, "s", 0, "S1", True),  # Model
    ]
    with tifffile.TiffWriter(target) as tif:
        if preview:
            image = scene_preview(kind, light, exposure)
            tif.write(image, photometric="rgb", subfiletype=1, subifds=1, extratags=file_tags, software="Testbody")
            tif.write(data, photometric=32803, subfiletype=0, extratags=raw_tags)
        else:
            tif.write(data, photometric=32803, subfiletype=0, extratags=file_tags + raw_tags, software="Testbody")
    _exif(target, Exif_Photo_ISOSpeedRatings="200", Exif_Photo_ExposureTime=seconds, Exif_Photo_FNumber="8/1")
    return target
