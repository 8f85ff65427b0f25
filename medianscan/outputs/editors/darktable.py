"""darktable's sidecar, `<blend>.dng.xmp`: a history that enables negadoctor with the roll's base.

darktable 4.2 reads `<file>.xmp` beside the image on import, and `darktable-cli DNG SIDECAR OUT` develops with it.
The packet is written by Exiv2, as darktable writes its own: the DNG's own XMP (the film, its keywords in
dc:subject) copied, then darktable's keys. Each history entry's params are the module's C struct, little-endian,
as hex (darktable's encoding for a small blob; `gz..` base64 only for large ones), at the module's version:

- temperature (v3: red, green, blue, g2 coefficients): the white balance that makes the roll's base neutral, so
  that the base and every grey stay neutral through the input colour profile;
- negadoctor (v2: film_stock, Dmin[4], wb_high[4], wb_low[4], D_max, offset, black, gamma, soft_clip,
  exposure): colour film, D-min per colour the roll's base as it reaches the module (a share of the raw range,
  white-balanced), D-max the roll's density range, print exposure and paper as darktable's colour film preset,
  with no scan exposure bias so that the base prints at the paper's black.

`auto_presets_applied` is set: darktable then adds no automatic presets (no exposure boost, no filmic) over it,
the default modules (raw black/white point, demosaic, colour in/out) running as for any raw.
"""

from __future__ import annotations

import struct
from pathlib import Path

from medianscan.errors import MedianscanError
from medianscan.exiv2_once import Exiv2Error, encode_xmp, exiv2, read_image
from medianscan.library.film_base import FilmBase

XMP_VERSION = 5  # darktable 4.2's sidecar version
IOP_ORDER_V30 = 2  # darktable's default module order for raws
TEMPERATURE_VERSION = 3
NEGADOCTOR_VERSION = 2
COLOUR_FILM = 1
PAPER = {"black": 0.0755, "gamma": 4.0, "soft_clip": 0.75, "exposure": 0.9245}  # darktable's colour film preset
DEFAULT_D_MAX = 2.046  # negadoctor's own default, for a roll whose density range is not known yet


def white_balance(base: FilmBase) -> tuple[float, float, float, float]:
    """The temperature module's coefficients (R, G, B, G2) that make the base neutral, green 1."""
    r, g, b = base.base
    return g / r, 1.0, g / b, 1.0


def temperature_params(base: FilmBase) -> bytes:
    return struct.pack("<4f", *white_balance(base))


def negadoctor_params(base: FilmBase) -> bytes:
    """negadoctor's v2 params: D-min per colour is the base after the white balance, as a share of the raw range."""
    coefficients = white_balance(base)
    dmin = [share * k for share, k in zip(base.share, coefficients, strict=False)]
    d_max = max(base.density_range) if base.density_range else DEFAULT_D_MAX
    return struct.pack(
        "<i4f4f4f6f",
        COLOUR_FILM,
        *dmin,
        0.0,
        *(1.0, 1.0, 1.0, 0.0),  # wb_high: no correction of the highlights' colour
        *(1.0, 1.0, 1.0, 0.0),  # wb_low: nor the shadows'
        max(d_max, 0.1),
        0.0,  # offset: no scan exposure bias, the base is the paper's black
        PAPER["black"],
        PAPER["gamma"],
        PAPER["soft_clip"],
        PAPER["exposure"],
    )


def packet(dng: Path, base: FilmBase) -> str:
    """The sidecar's XMP packet for `dng`: its own XMP, then darktable's history."""
    data = exiv2.XmpData()
    try:
        for datum in read_image(dng).xmpData():
            if not str(datum.key()).startswith("Xmp.darktable."):
                data.add(datum)
    except Exiv2Error as exc:
        raise MedianscanError(f"{dng}: its metadata cannot be read for darktable's sidecar ({exc})") from exc
    data["Xmp.xmpMM.DerivedFrom"] = dng.name
    data["Xmp.darktable.xmp_version"] = str(XMP_VERSION)
    data["Xmp.darktable.raw_params"] = "0"
    data["Xmp.darktable.auto_presets_applied"] = "1"
    data["Xmp.darktable.iop_order_version"] = str(IOP_ORDER_V30)
    history = [
        ("temperature", TEMPERATURE_VERSION, temperature_params(base)),
        ("negadoctor", NEGADOCTOR_VERSION, negadoctor_params(base)),
    ]
    data["Xmp.darktable.history_end"] = str(len(history))
    seq = exiv2.XmpTextValue()
    seq.setXmpArrayType(exiv2.XmpValue.XmpArrayType.xaSeq)
    data.add(exiv2.XmpKey("Xmp.darktable.history"), seq)
    for number, (operation, version, params) in enumerate(history, 1):
        entry = f"Xmp.darktable.history[{number}]/darktable:"
        data[entry + "num"] = str(number - 1)
        data[entry + "operation"] = operation
        data[entry + "enabled"] = "1"
        data[entry + "modversion"] = str(version)
        data[entry + "params"] = params.hex()
        data[entry + "multi_name"] = ""
        data[entry + "multi_priority"] = "0"
    code, text = encode_xmp(data)
    if code != 0:
        raise MedianscanError(f"{dng}: darktable's sidecar could not be encoded (Exiv2 error {code})")
    return text
