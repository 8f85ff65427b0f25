"""`frames: auto`: the burst shoots as many frames as its negative's densest tenth needs.

The prediction (one frame's SNR there, from the first two frames, carried to N frames by the method's efficiency)
is checked against the noise each blend really has, measured against the truth the frames were made from: the
real CR2's mosaic (any CFA layout made from it), the flat-field case, X-Trans, and the simulated body's
photon-transfer noise at several densities. Nothing here reads a figure back from the prediction itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import integrate, special

from medianscan.blend.measuring import dense
from medianscan.blend.measuring.efficiency import MEDIAN_VARIANCE, blend_snr, frames_for, variance_factor
from medianscan.blend.measuring.noise import robust_sigma
from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack, prepare_flat
from medianscan.blend.reading import frames
from medianscan.capture.camera.burst.enough import Auto, flat_gain
from medianscan.capture.camera.simulated.camera import SimulatedCamera, light_on_sensor
from medianscan.capture.camera.simulated.scene import Negative
from medianscan.config.loader import load_config
from medianscan.config.schema import AutoFrames, BlendConfig, CameraConfig
from medianscan.errors import MedianscanError
from medianscan.metadata import CameraInfo, Exposure, MosaicLayout
from tests import flats
from tests.stacks import X_TRANS, Scene, load_scene, rgb_layout, true_snr, write_frame

GAIN, READ = 0.4, 3.0  # DN per electron, DN: the photon-transfer noise the CR2-based stacks get


# --- the median's efficiency: the exact small-N figures -------------------------------------------------------


def _pdf(x: float) -> float:
    """The standard normal's density, as stats.norm.pdf gives it: the integrals call these some 10^5 times, and
    stats.norm's overhead per call made an even N's integral 10-16 s; the same values to the last bit or one."""
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    """The standard normal's distribution function: special.ndtr, which stats.norm.cdf computes with."""
    return float(special.ndtr(x))


def _median_variance_odd(n: int) -> float:
    """N x Var(median of N standard normals), N odd, from the middle order statistic's density."""
    k = n // 2
    coeff = math.factorial(n) / (math.factorial(k) ** 2)

    def density(x: float) -> float:
        f = _cdf(x)
        return float(coeff * f**k * (1 - f) ** k * _pdf(x))

    value, _ = integrate.quad(lambda x: x * x * density(x), -np.inf, np.inf)
    return float(n * value)


def _median_variance_even(n: int) -> float:
    """N x Var(mean of the middle two of N standard normals), from their joint density."""
    k = n // 2  # X(k) <= X(k+1)
    coeff = math.factorial(n) / (math.factorial(k - 1) * math.factorial(n - k - 1))

    def joint(y: float, x: float) -> float:  # x = X(k), y = X(k+1) >= x
        return float(
            coeff
            * _cdf(x) ** (k - 1)
            * _cdf(-y) ** (n - k - 1)  # the survival function, exactly as stats.norm.sf computes it
            * _pdf(x)
            * _pdf(y)
        )

    value, _ = integrate.dblquad(lambda y, x: ((x + y) / 2) ** 2 * joint(y, x), -8, 8, lambda x: x, 8)
    return float(n * value)


@pytest.mark.parametrize("n", [3, 5, 9, 15])
def test_the_median_table_is_the_integral_for_odd_n(n: int) -> None:
    assert MEDIAN_VARIANCE[n - 1] == pytest.approx(_median_variance_odd(n), abs=6e-4)


@pytest.mark.parametrize("n", [4, 6])
def test_the_median_table_is_the_integral_for_even_n(n: int) -> None:
    assert MEDIAN_VARIANCE[n - 1] == pytest.approx(_median_variance_even(n), abs=1e-3)


@pytest.mark.slow
def test_beyond_the_table_the_median_tends_to_pi_over_2() -> None:
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((101, 200_000))
    measured = 101 * float(np.var(np.median(samples, axis=0)))
    assert variance_factor("median", 101) == pytest.approx(measured, rel=0.015)
    assert 1.55 < variance_factor("median", 101) < math.pi / 2


def test_the_robust_methods_sit_between_the_mean_and_the_median() -> None:
    for n in (5, 9):
        median = variance_factor("median", n)
        for method in ("sigma-clip", "winsorized"):
            assert 1.0 <= variance_factor(method, n) < median, method


def test_frames_for_is_the_fewest_that_reach_the_target_within_bounds() -> None:
    # one frame at SNR 40, median: N frames give 40 sqrt(N / factor); 100 needs 6.25 x factor(N) frames
    n = frames_for(40.0, 100.0, "median", least=3, most=25)
    assert blend_snr(40.0, "median", n) >= 100 > blend_snr(40.0, "median", n - 1)
    assert frames_for(400.0, 100.0, "median", least=3, most=25) == 3  # a thin negative: the least
    assert frames_for(5.0, 100.0, "median", least=3, most=25) == 25  # too dense for the bound: the most


# --- the prediction against the truth, on stacks made from the real CR2 ---------------------------------------


def _shot(clean: npt.NDArray[np.float32], black: float, white: int, rng: np.random.Generator) -> npt.NDArray[np.uint16]:
    """`clean` (with its black) plus shot and read noise, rounded and clipped like a sensor."""
    sigma = np.sqrt(GAIN * np.maximum(clean - black, 0) + READ**2)
    values = clean + rng.standard_normal(clean.shape, dtype=np.float32) * sigma
    out: npt.NDArray[np.uint16] = np.clip(np.rint(values), 0, white).astype(np.uint16)
    return out


def _stack(folder: Path, scene: Scene, clean: npt.NDArray[np.float32], n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    black = float(np.mean(scene.layout.black_levels))
    return [
        write_frame(folder / f"{folder.name}_{i:02d}.dng", _shot(clean, black, scene.layout.white_level, rng), scene)
        for i in range(1, n + 1)
    ]


def _read(path: Path) -> npt.NDArray[np.generic]:
    return frames.read_frame(path).pixels


@pytest.fixture(scope="module")
def small(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(400, 600, 512, 768)


@pytest.mark.parametrize(("method", "n"), [("median", 3), ("median", 8), ("mean", 5), ("sigma-clip", 9),
                                           ("winsorized", 7)])  # fmt: skip
def test_the_prediction_matches_the_noise_the_blend_has(small: Scene, tmp_path: Path, method: str, n: int) -> None:
    clean = small.mosaic.astype(np.float32)
    paths = _stack(tmp_path / "neg", small, clean, n, seed=n)
    first_two = [_read(p) for p in paths[:2]]
    single = dense.measure_frames(first_two, small.layout)
    predicted = blend_snr(single.snr, method, n, BlendConfig(method=method))  # type: ignore[arg-type]

    record = blend_stack(tmp_path / "neg", BlendOptions(method=method))  # type: ignore[arg-type]
    truth = true_snr(_read(record.output), clean, small.layout)
    assert predicted == pytest.approx(truth, rel=0.08), (method, n, single)
    # the sidecar's own figure, measured from the blend's frames without the truth, agrees as well
    sidecar = json.loads(record.sidecar.read_text())
    assert sidecar["snr"]["blend"] == pytest.approx(truth, rel=0.10)
    assert sidecar["snr"]["frames_auto"] is None  # not shot by a frames: auto burst


def test_a_denser_negative_is_predicted_to_need_more_frames(small: Scene, tmp_path: Path) -> None:
    black = float(np.mean(small.layout.black_levels))
    needed = []
    for density in (1.0, 0.25):  # the same picture, a quarter of the light through it
        clean = (small.mosaic.astype(np.float32) - black) * np.float32(density) + black
        paths = _stack(tmp_path / f"d{density}", small, clean, 2, seed=7)
        single = dense.measure_frames([_read(p) for p in paths], small.layout)
        needed.append(frames_for(single.snr, 60.0, "median", least=3, most=64))
    assert needed[1] > needed[0] * 2.5  # shot noise: a quarter of the light costs about four times the frames


# --- the flat field and X-Trans --------------------------------------------------------------------------------


def test_with_a_flat_the_densest_tenth_is_the_negatives_not_the_lights_corners(small: Scene, tmp_path: Path) -> None:
    shape = small.mosaic.shape
    range_ = small.layout.white_level - float(np.mean(small.layout.black_levels))
    signal = np.full(shape, 0.26 * range_, dtype=np.float32)  # an even negative ...
    h, w = shape
    signal[h * 2 // 5 : h * 3 // 5, w * 2 // 5 : w * 3 // 5] = 0.22 * range_  # ... with a dense patch mid-frame
    flat_frames = flats.write_stack(tmp_path / "flat", small, flats.flat_light(small), 5, seed=1)
    gain = flat_gain(prepare_flat(flat_frames[0].parent))
    assert gain is not None
    negative = [_read(p) for p in flats.write_stack(tmp_path / "neg", small, signal, 2, seed=2)]

    seen_raw = dense.measure_frames(negative, small.layout)  # the corners fall to 0.62: darker than the patch
    seen_flat = dense.measure_frames(negative, small.layout, gain=gain)
    assert seen_raw.signal < 0.19 * range_  # without the flat: the dim corners (0.26 x 0.62 at the far corner)
    assert seen_flat.signal == pytest.approx(0.22 * range_, rel=0.05)  # with it: the negative's dense patch


def test_x_trans_stacks_are_measured_by_their_own_colours(tmp_path: Path) -> None:
    h, w = 600, 900
    layout = rgb_layout(X_TRANS, h, w, (0.5, 1.0, 0.7))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    level = 600 + 5000 * (xx / w) * (0.5 + 0.5 * yy / h)  # a dense corner, brighter across
    scene_rgb = np.array([0.6, 1.0, 0.35], dtype=np.float32)[
        layout.pattern[np.arange(h)[:, None] % 6, np.arange(w) % 6]
    ]
    clean = (level * scene_rgb + 256).astype(np.float32)
    scene = Scene(clean.astype(np.uint16), layout, CameraInfo("FUJIFILM", "X-T5", ""), Exposure(100, 1 / 125, 8.0))
    paths = _stack(tmp_path / "xt", scene, clean, 9, seed=4)
    single = dense.measure_frames([_read(p) for p in paths[:2]], layout)
    assert single.colour == "B"  # the weakest filter over the densest tenth limits
    record = blend_stack(tmp_path / "xt", BlendOptions())
    truth = true_snr(_read(record.output), clean, layout)
    assert blend_snr(single.snr, "median", 9) == pytest.approx(truth, rel=0.08)


# --- the simulated body: photon-transfer noise, and bursts that stop when the negative is clean enough ---------


def _sim(light: float, tmp_path: Path) -> CameraConfig:
    cfg = CameraConfig(backend="simulated")
    cfg.simulated.width, cfg.simulated.height = 768, 512
    cfg.simulated.light = light
    cfg.simulated.card = tmp_path / "card"
    return cfg


def _shoot(cfg: CameraConfig, auto: AutoFrames, stack: Path) -> tuple[SimulatedCamera, int, Negative]:
    cam = SimulatedCamera(cfg)
    cam.connect()
    try:
        record = cam.burst(Auto(auto, BlendConfig()), stack, stack.name)
    finally:
        cam.close()
    assert record.auto is not None and record.auto.shot == len(record.frames)
    scale = light_on_sensor(cam._values) * cfg.simulated.light
    sim = cfg.simulated
    return cam, len(record.frames), Negative(sim.seed, 1, sim.height, sim.width, scale)


def test_the_simulated_noise_follows_photon_transfer(tmp_path: Path) -> None:
    from medianscan.capture.camera.simulated.scene import BLACK, READ_NOISE
    from medianscan.capture.camera.simulated.scene import GAIN as SIM_GAIN

    negative = Negative(0, 1, 256, 384)
    frames_ = np.stack([negative.frame(i).astype(np.float32) for i in (1, 2, 3, 4)])
    diff = (frames_[0] - frames_[1]) / math.sqrt(2)
    for lo, hi in ((300, 1200), (2500, 4000)):
        where = (negative.signal > lo) & (negative.signal < hi)
        mean = float(np.mean(frames_[:, where]) - BLACK)
        assert robust_sigma(diff[where]) ** 2 == pytest.approx(SIM_GAIN * mean + READ_NOISE**2, rel=0.1)


def test_a_dense_negative_gets_more_frames_and_every_negative_reaches_the_target(tmp_path: Path) -> None:
    auto = AutoFrames(snr=60, min=3, max=25)
    shot = {}
    for light in (1.0, 0.3):  # a thin negative and one letting through less than a third of the light
        stack = tmp_path / f"light-{light}"
        _, n, negative = _shoot(_sim(light, tmp_path), auto, stack)
        record = blend_stack(stack, BlendOptions())
        clean = negative.signal + np.float32(512)  # the simulated sensor's black
        measured = true_snr(_read(record.output), clean, record_layout(record.output))
        assert measured >= 0.9 * auto.snr, (light, n, measured)
        shot[light] = n
    assert shot[0.3] > shot[1.0] >= auto.min


def record_layout(path: Path) -> MosaicLayout:
    layout = frames.read_frame(path).layout
    assert layout is not None
    return layout


def test_a_negative_too_dense_for_max_says_so(tmp_path: Path) -> None:
    cam = SimulatedCamera(_sim(0.05, tmp_path))
    cam.connect()
    try:
        record = cam.burst(Auto(AutoFrames(snr=150, min=3, max=5), BlendConfig()), tmp_path / "s", "s")
    finally:
        cam.close()
    assert len(record.frames) == 5 and record.auto is not None and not record.auto.reached
    assert "of 150 at the most frames, 5" in record.auto.said()


# --- the setting -------------------------------------------------------------------------------------------------


def test_frames_auto_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("frames: auto\nauto_frames: {snr: 150, min: 4, max: 30}\n")
    cfg = load_config(good)
    assert cfg.frames == "auto" and cfg.frames_range() == (4, 30)
    for text, words in (
        ("frames: many\n", "frames"),
        ("frames: auto\nauto_frames: {snr: 100, min: 9, max: 5}\n", "min"),
        ("frames: auto\nauto_frames: {snr: 0}\n", "snr"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(MedianscanError, match=words):
            load_config(bad)


# --- the daemon: the answer, the record, status, and the bracket ------------------------------------------------


@pytest.mark.slow
def test_the_daemon_counts_each_negative_and_says_and_records_why(tmp_path: Path) -> None:
    import re

    from medianscan.library.manifest import State, read_manifest
    from tests.daemon_thread import RunningDaemon, capture_config

    cfg = capture_config(tmp_path / "library", frames="auto", auto_frames=AutoFrames(snr=60, min=3, max=12))
    with RunningDaemon(cfg, triggers=False) as running:
        answer = running.ask("capture")
        said = re.fullmatch(r"frame-001: burst done, (\d+) frames \((thin|dense) negative: SNR (\d+) reached\) in "
                            r"[\d.]+ s: advance the negative", answer.text)  # fmt: skip
        assert answer.ok and said, answer.text
        stack = running.wait_for_state("frame-001", State.BLENDED)
        manifest = read_manifest(stack)
        assert manifest.burst is not None and manifest.burst.auto is not None
        count = manifest.burst.auto
        assert count.shot == int(said[1]) == manifest.frames_expected and count.target == 60
        assert count.single_snr > 0 and count.predicted >= 3 and count.colour in "RGB"
        sidecar = json.loads(manifest.blend.sidecar.read_text())  # type: ignore[union-attr]
        assert sidecar["snr"]["frames_auto"]["shot"] == count.shot
        assert sidecar["snr"]["blend"] >= 0.9 * 60  # measured from the blend's own frames
        status = running.daemon.status()  # as `medianscan status` gets it
        recent = [r for r in status["recent"] if r["stack"].endswith("frame-001")][-1]
        assert recent["snr"] == sidecar["snr"]["blend"] and recent["snr_target"] == 60 and recent["snr_short"] is None
        assert status["frames_per_burst"] == "3 to 12 raws per burst, as each negative needs for SNR 60"
        from medianscan.cli.control import render_status

        assert "(3 to 12 raws per burst, as each negative needs for SNR 60)" in render_status(status)

        running.daemon.cfg.camera.simulated.light = 0.03  # a negative too dense for 12 frames
        short = running.ask("capture")
        assert short.ok and "of 60 at the most frames, 12)" in short.text, short.text


@pytest.mark.slow
def test_in_a_bracket_the_longest_exposure_counts_and_the_shorter_shoot_the_least(tmp_path: Path) -> None:
    from medianscan.library.manifest import State, read_manifest
    from tests.daemon_thread import RunningDaemon, capture_config

    cfg = capture_config(tmp_path / "library", frames="auto", auto_frames=AutoFrames(snr=80, min=3, max=16))
    cfg.bracket = ["1/500", "1/125"]
    cfg.camera.simulated.light = 0.5
    with RunningDaemon(cfg, triggers=False) as running:
        assert running.ask("capture").ok
        stack = running.wait_for_state("frame-001", State.BLENDED)
        short = sorted(stack.glob("frame-001_1-500_*.dng"))
        long = sorted(stack.glob("frame-001_1-125_*.dng"))
        assert len(short) == 3 and len(long) > 3  # a dense negative at half the light: the long group counted
        manifest = read_manifest(stack)
        assert manifest.burst is not None and manifest.burst.auto is not None
        assert manifest.burst.auto.shot == len(long)
        assert manifest.blend is not None and manifest.blend.snr is not None and manifest.blend.snr >= 0.9 * 80


def test_frames_that_cannot_be_measured_shoot_the_most_and_say_nothing_false(tmp_path: Path) -> None:
    cfg = _sim(1.0, tmp_path)
    cfg.settings = {"imageformat": "JPEG Fine"}  # a body set to JPEG alone: LibRaw reads no mosaic from them
    cam = SimulatedCamera(cfg)
    cam.connect()
    try:
        record = cam.burst(Auto(AutoFrames(snr=60, min=3, max=6), BlendConfig()), tmp_path / "j", "j")
    finally:
        cam.close()
    assert len(record.frames) == 6 and record.auto is None  # the most, and no count claimed
