"""RawTherapee's sidecar, `<blend>.dng.pp3`: the Film Negative tool enabled with the roll's base and exponents.

RawTherapee 5.9 reads `<file>.pp3` beside the raw by default (Preferences > Image Processing: the processing
profile is saved and loaded next to the input file), and so does `rawtherapee-cli -s` / `-S`. A partial profile is
completed from neutral values, so the file sets only what the inversion needs:

- [Film Negative], the current (5.9) form: out = RefOutput * (in / RefInput) ^ -exponent per colour, on the
  picture after demosaicing and white balance, in the camera's own colour space (ColorSpace=0). RefInput is the
  roll's base as RawTherapee sees it there: the raw over black as a share of its range, times 65535, times the
  camera white balance (the DNG's AsShotNeutral, green 1) and 2^BaselineExposure. RefOutput is the same for
  all three colours, so the base and every grey come out neutral; it puts the roll's densest film near 60 % and
  the base near black. The exponents: green's puts the roll's density range over about three decades of light,
  red's and blue's ratios match their density ranges to green's (RedRatio = D_green / D_red).
- [White Balance] Camera, so that RefInput holds; a neutral, linear starting curve ([Exposure]), no auto levels.
"""

from __future__ import annotations

from medianscan import __version__
from medianscan.library.film_base import FilmBase

SPAN = 3.0  # decades of output light the roll's density range is spread over (the base near black)
DENSEST_OUT = 0.6  # the roll's densest film, as a share of the output range (linear)
EXPONENT_LIMITS = (1.0, 4.0)  # RawTherapee's green exponent slider goes to 4
RATIO_LIMITS = (0.3, 3.0)
MAX_VALUE = 65535.0


def film_negative(base: FilmBase, camera_wb: tuple[float, float, float], baseline_ev: float) -> dict[str, str]:
    """The [Film Negative] keys for one blend of the roll."""
    ranges = base.density_range or (1.0, 1.0, 1.0)
    green_range = max(ranges[1], 0.1)
    exponent = min(max(SPAN / green_range, EXPONENT_LIMITS[0]), EXPONENT_LIMITS[1])
    ratios = [min(max(green_range / max(r, 0.05), RATIO_LIMITS[0]), RATIO_LIMITS[1]) for r in ranges]
    gain = MAX_VALUE * 2.0**baseline_ev
    ref_in = [s * gain * (wb / camera_wb[1]) for s, wb in zip(base.share, camera_wb, strict=True)]
    ref_out = DENSEST_OUT * MAX_VALUE / 10 ** (exponent * green_range)
    return {
        "Enabled": "true",
        "RedRatio": f"{ratios[0]:.4f}",
        "GreenExponent": f"{exponent:.4f}",
        "BlueRatio": f"{ratios[2]:.4f}",
        "ColorSpace": "0",
        "RefInput": "".join(f"{v:.3f};" for v in ref_in),
        "RefOutput": f"{ref_out:.4f};" * 3,
        "BackCompat": "0",
    }


def profile(base: FilmBase, camera_wb: tuple[float, float, float], baseline_ev: float) -> str:
    """The whole .pp3 text (without our marker line)."""
    sections: dict[str, dict[str, str]] = {
        "Version": {"AppVersion": "5.9"},
        "Exposure": {
            "Auto": "false",
            "Compensation": "0",
            "Brightness": "0",
            "Contrast": "0",
            "Saturation": "0",
            "Black": "0",
            "HighlightCompr": "0",
            "HistogramMatching": "false",
            "CurveFromHistogramMatching": "false",
            "ClampOOG": "false",
            "CurveMode": "Standard",
            "CurveMode2": "Standard",
            "Curve": "0;",  # linear: the film's own curve comes out of the exponents
            "Curve2": "0;",
        },
        "White Balance": {"Enabled": "true", "Setting": "Camera"},
        "Color Management": {
            "InputProfile": "(camera)",
            "ToneCurve": "false",
            "ApplyLookTable": "false",
            "ApplyHueSatMap": "false",
            "WorkingProfile": "Rec2020",
            "WorkingTRC": "none",
        },
        "Film Negative": film_negative(base, camera_wb, baseline_ev),
    }
    lines = [f"# the roll's film base ({base.source}), set by medianscan {__version__}"]
    for name, keys in sections.items():
        lines += ["", f"[{name}]", *(f"{key}={value}" for key, value in keys.items())]
    return "\n".join(lines) + "\n"
