"""Multi-exposure: brackets made from the real Canon CR2 (its mosaic as the scene, 5 frames at 1/400 s and 5 at
1/100 s, the long one clipping most photosites), merged on the mosaic into one 16-bit DNG."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from medianscan.blend.options import BlendOptions
from medianscan.blend.pipeline import blend_stack
from medianscan.blend.reading import frames
from medianscan.errors import BadFramesError, StackError
from medianscan.library.roll_record import write_roll_record
from medianscan.outputs.editors import is_ours, sidecar_path
from medianscan.records import FilmRecord
from tests.stacks import Scene, load_scene, tree_digest, write_frame

SHORT, LONG = 1 / 400, 1 / 100
READ_NOISE = 4.0


@pytest.fixture(scope="module")
def scene(sample_raw: Path) -> Scene:
    return load_scene(sample_raw).crop(300, 400, 512, 768)


def signal(scene: Scene) -> npt.NDArray[np.float32]:
    """The scene at the long exposure, over black: the CR2's tones (by rank, so its picture is kept) spread over
    a dense negative's range. The brightest 60 % lie between 1 and 3.5 times the long exposure's white (it clips
    most photosites, the short one none), the rest from 0.3 % of white up, log-spaced (deep shadows too)."""
    black = float(np.mean(scene.layout.black_levels))
    span = scene.layout.white_level - black
    flat = scene.mosaic.astype(np.float64).ravel()
    rank = np.empty(flat.size)
    rank[np.argsort(flat, kind="stable")] = np.linspace(0.0, 1.0, flat.size)
    low = 0.003 * 10 ** (np.log10(1 / 0.003) * rank / 0.4)
    high = 1.0 + 2.5 * (rank - 0.4) / 0.6
    return (span * np.where(rank < 0.4, low, high)).reshape(scene.mosaic.shape).astype(np.float32)


def shoot(folder: Path, scene: Scene, groups: dict[float, int], seed: int = 0, ratio_error: float = 1.0) -> Path:
    """A bracket: `groups` maps shutter time -> frames; frame names in shooting order, group after group."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth = signal(scene)
    black = float(np.mean(scene.layout.black_levels))
    n = 0
    for seconds, count in groups.items():
        light = truth * np.float32(seconds / LONG * (ratio_error if seconds != LONG else 1.0))
        for _ in range(count):
            n += 1
            values = (
                black
                + light
                + rng.standard_normal(light.shape, dtype=np.float32) * np.sqrt(light * 0.3 + READ_NOISE**2)
            )
            mosaic = np.clip(np.rint(values), 0, scene.layout.white_level).astype(np.uint16)
            write_frame(folder / f"{folder.name}_{n:02d}.dng", mosaic, scene, exposure_time=seconds)
    return folder


def long_units(path: Path) -> tuple[npt.NDArray[np.float32], float]:
    """The merged DNG's signal in the long exposure's DN, and its white level in those units."""
    out = frames.read_frame(path)
    assert out.layout is not None
    black = float(np.mean(out.layout.black_levels))
    record = json.loads(path.with_suffix(".json").read_text())["bracket"]
    return (out.pixels.astype(np.float32) - np.float32(black)) / np.float32(record["scale"]), record["scale"]


@pytest.mark.slow
def test_a_bracket_is_merged_linearly_across_the_whole_range(scene: Scene, tmp_path: Path) -> None:
    stack = shoot(tmp_path / "frame-001", scene, {SHORT: 5, LONG: 5})
    result = blend_stack(stack, BlendOptions(bracket=True))
    merged, _ = long_units(result.output)
    truth = signal(scene)
    black = float(np.mean(scene.layout.black_levels))
    span = scene.layout.white_level - black
    clipped_long = truth > 0.995 * span
    assert clipped_long.mean() > 0.5  # the long exposure clips most photosites
    lit = truth > 0.02 * span
    error = np.abs(merged / np.maximum(truth, 1) - 1)
    assert float(np.median(error[clipped_long])) < 0.03  # linear where the long exposure clipped...
    assert float(np.median(error[lit & ~clipped_long])) < 0.03  # ...and where it did not
    highlights = truth > 0.995 * span
    white = result.bracket.white_level if result.bracket else 0
    out = frames.read_frame(result.output)
    assert float(np.mean(np.asarray(out.pixels)[highlights] >= white)) < 0.01  # under 1 % of the highlights clipped

    # the shadow noise against the short exposure's median alone
    short_only = blend_stack(shoot(tmp_path / "short", scene, {SHORT: 5}, seed=0))
    short = frames.read_frame(short_only.output).pixels.astype(np.float32) - np.float32(black)
    shadows = (truth > 0.002 * span) & (
        truth < 0.01 * span
    )  # deep shadows, where the short exposure is read-noise bound
    assert np.count_nonzero(shadows) > 2000
    noise_merged = float(np.std((merged - truth)[shadows]))
    noise_short = float(np.std((short * (LONG / SHORT) - truth)[shadows]))
    assert noise_merged <= 0.4 * noise_short, (noise_merged, noise_short)

    assert result.bracket is not None
    record = json.loads(result.sidecar.read_text())["bracket"]
    assert [g["shutter"] for g in record["groups"]] == ["1/400", "1/100"]
    assert [len(g["frames"]) for g in record["groups"]] == [5, 5]
    ratio = record["ratios"][0]
    assert ratio["nominal"] == pytest.approx(4.0) and all(abs(v / 4 - 1) < 0.03 for v in ratio["measured"].values())
    assert record["roll_off"] == [0.9, 0.995]
    assert record["shadow_noise_vs_shortest"] <= 0.4 and record["shadow_noise_vs_longest"] <= 1.0
    assert 1.0 < record["baseline_exposure_ev"] <= 2.0 + 0.05  # the headroom the merged data use, at most 2 EV


@pytest.mark.slow
def test_the_merged_dng_opens_in_every_reader(scene: Scene, tmp_path: Path) -> None:
    from tests.readers import start_darktable, start_rawtherapee

    result = blend_stack(
        shoot(tmp_path / "frame-001", scene, {SHORT: 3, LONG: 3}), BlendOptions(bracket=True, compress=True)
    )
    validate = subprocess.run(
        ["exiftool", "-validate", "-warning", "-a", str(result.output)], capture_output=True, text=True, check=True
    ).stdout
    assert "Validate                        : OK" in validate, validate
    dcraw = subprocess.run(["dcraw", "-c", "-w", "-h", str(result.output)], capture_output=True, check=False)
    assert dcraw.returncode == 0 and len(dcraw.stdout) > 100_000
    for start in (start_darktable, start_rawtherapee):
        renders = start([result.output], tmp_path / start.__name__).wait()
        picture = next(iter(renders.values()))
        assert float(np.std(picture)) > 5  # a picture, not a blank


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ({SHORT: 2, LONG: 5}, "the 1/400 group has 2 frames"),
        ({LONG: 6}, "needs two or more shutter times"),
    ],
)
def test_bad_brackets_are_named_and_nothing_is_written(
    scene: Scene, tmp_path: Path, groups: dict[float, int], words: str
) -> None:
    stack = shoot(tmp_path / "frame-001", scene, groups)
    before = tree_digest(stack)
    with pytest.raises(StackError, match=words.replace("(", r"\(").replace(")", r"\)")):
        blend_stack(stack, BlendOptions(bracket=True))
    assert tree_digest(stack) == before


def test_a_ratio_that_disagrees_with_the_exif_is_an_error(scene: Scene, tmp_path: Path) -> None:
    stack = shoot(tmp_path / "frame-001", scene, {SHORT: 3, LONG: 3}, ratio_error=1.25)  # the short group flickered
    with pytest.raises(
        StackError, match=r"the 1/400 group and the 1/100 group: the measured exposure ratio .* more than 10 % apart"
    ):
        blend_stack(stack, BlendOptions(bracket=True))


def test_groups_that_do_not_overlap_are_an_error(scene: Scene, tmp_path: Path) -> None:
    stack = shoot(tmp_path / "frame-001", scene, {1 / 64000: 3, LONG: 3})
    with pytest.raises(StackError, match=r"share too few well-exposed photosites \(B: \d+, G: \d+, R: \d+\)"):
        blend_stack(stack, BlendOptions(bracket=True))


def test_a_long_exposure_that_clips_nearly_a_whole_colour_still_merges(sample_raw: Path, tmp_path: Path) -> None:
    """A small crop: the sample of one colour holds fewer photosites both groups expose well than a ratio needs
    alone (the 399 of 500 a real bracket was refused for); the whole mosaic, or the ratio pooled over the colours
    (a shutter ratio is the same for every colour), measures it, and the bracket merges."""
    small = load_scene(sample_raw).crop(300, 400, 96, 144)
    stack = shoot(tmp_path / "frame-001", small, {SHORT: 3, LONG: 3})
    result = blend_stack(stack, BlendOptions(bracket=True))
    ratio = json.loads(result.sidecar.read_text())["bracket"]["ratios"][0]
    assert all(abs(v / 4 - 1) < 0.05 for v in ratio["measured"].values())


def test_mixed_iso_is_refused_and_the_plain_blend_names_mixed_shutters(scene: Scene, tmp_path: Path) -> None:
    stack = shoot(tmp_path / "frame-001", scene, {SHORT: 3, LONG: 3})
    with pytest.raises(BadFramesError, match=r"shutter 1/100 s differs .* merge it with --bracket"):
        blend_stack(stack)
    iso = tmp_path / "iso"
    shoot(iso, scene, {SHORT: 3, LONG: 3})
    odd = frames.read_frame(iso / "iso_06.dng")
    write_frame(iso / "iso_06.dng", np.asarray(odd.pixels, dtype=np.uint16), scene, exposure_time=LONG, iso=800.0)
    with pytest.raises(BadFramesError, match=r"iso_06\.dng: ISO 800 differs"):
        blend_stack(iso, BlendOptions(bracket=True))


def test_keep_groups_writes_each_groups_blend(scene: Scene, tmp_path: Path) -> None:
    stack = shoot(tmp_path / "frame-001", scene, {SHORT: 3, LONG: 3})
    result = blend_stack(stack, BlendOptions(bracket=True, keep_groups=True))
    assert sorted(p.name for p in result.extra_outputs) == [
        "frame-001_1-100s_median.dng",
        "frame-001_1-400s_median.dng",
    ]
    assert all(p.is_file() for p in result.extra_outputs)


def test_a_bracket_of_copies_merges_and_says_they_are_copies(scene: Scene, tmp_path: Path) -> None:
    """Copies of one frame per group (a copy, not a burst) have no noise between them: the merge still runs (it
    divided by that noise), the shadow-noise figures are left out, and the copies are named."""
    stack = shoot(tmp_path / "frame-001", scene, {SHORT: 1, LONG: 1})
    for first, copies in (("frame-001_01.dng", (3, 4)), ("frame-001_02.dng", (5, 6))):
        for n in copies:
            (stack / f"frame-001_{n:02d}.dng").write_bytes((stack / first).read_bytes())
    for old, new in (("02", "07"), ("03", "02"), ("04", "03"), ("07", "04")):  # group after group, by name
        (stack / f"frame-001_{old}.dng").rename(stack / f"frame-001_{new}.dng")
    result = blend_stack(stack, BlendOptions(bracket=True))
    assert result.output.is_file()
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["bracket"]["shadow_noise_vs_longest"] is None
    assert any("identical" in w or "cop" in w for w in result.warnings), result.warnings


def test_a_bracket_of_a_rolls_negative_gets_the_editors_sidecars(scene: Scene, tmp_path: Path) -> None:
    """The merge, like any blend of a roll's negative, is handed to the editors' own inversion."""
    roll = tmp_path / "2026-12-06-roll001"
    roll.mkdir()
    write_roll_record(roll, FilmRecord(film="Kodak Portra 400", film_type="color negative"))
    stack = shoot(roll / "frame-001", scene, {SHORT: 3, LONG: 3})
    result = blend_stack(stack, BlendOptions(bracket=True, editors=("darktable", "rawtherapee")))
    assert is_ours(sidecar_path(result.output, "darktable")) and is_ours(sidecar_path(result.output, "rawtherapee"))


# --- capture: the daemon shoots the bracket ---------------------------------------------------------------


@pytest.mark.slow
def test_the_daemon_shoots_a_bracket_per_press_and_merges_it(tmp_path: Path) -> None:
    from medianscan.library.manifest import State, read_manifest
    from tests.daemon_thread import RunningDaemon, capture_config

    cfg = capture_config(tmp_path / "library")
    cfg.bracket = ["1/400", "1/100"]
    cfg.camera.settings = {"shutterspeed": "1/250"}
    cfg.camera.simulated.seconds_per_frame = 0.15
    with RunningDaemon(cfg, triggers=False) as running:
        seen: list[str] = []
        import threading
        import time

        def watch() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(set(seen)) < 2:
                line = running.daemon.status_line()
                if "group" in line:
                    seen.append(line.split(": ", 1)[1].split(";")[0])
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        answer = running.ask("capture")
        watcher.join()
        assert answer.ok and "6 frames" in answer.text, answer.text  # the cue after the last group
        assert "capturing group 1 of 2 (1/400)" in seen and "capturing group 2 of 2 (1/100)" in seen
        stack = running.wait_for_state("frame-001", State.BLENDED)
        manifest = read_manifest(stack)
        assert manifest.bracket == ["1/400", "1/100"] and manifest.frames_expected == 6
        names = sorted(p.name for p in stack.glob("frame-001_1-*.dng") if "median" not in p.name)
        assert names == [f"frame-001_1-100_0{i}.dng" for i in (1, 2, 3)] + [
            f"frame-001_1-400_0{i}.dng" for i in (1, 2, 3)
        ]
        assert manifest.blend is not None and manifest.blend.bracket is not None
        assert [g.shutter for g in manifest.blend.bracket.groups] == ["1/400", "1/100"]
        camera = running.daemon.link.camera
        assert camera is not None and camera.cfg.settings == {"shutterspeed": "1/250"}  # the locked value is back

        cfg_bad = running.daemon.cfg
        cfg_bad.bracket = ["1/400", "1/8000"]
        refused = running.ask("capture")
        assert not refused.ok and "bracket value '1/8000' is not a shutter speed this camera offers" in refused.text
        assert [s.name for s in running.daemon.library.stacks()] == ["frame-001"]  # nothing was shot
