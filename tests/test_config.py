"""The config loader: every error names file, line and key; the example file documents every option."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from medianscan import config as config_module
from medianscan.config import rules
from medianscan.config.loader import config_to_yaml, load_config, parse_config
from medianscan.config.schema import Config, ConfigError
from medianscan.records import FilmRecord

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "medianscan.yaml"

# Where the example deliberately differs from the code's defaults (it is written for a real camera).
EXAMPLE_DIFFERS = {
    "camera.settings",
    "camera.optional",
    "triggers.footswitch.keys",
    "hooks.blend_done",
}


def field_paths(cls: type, prefix: str = "") -> dict[str, bool]:
    """Every option's dotted path -> whether it is a section (a nested dataclass)."""
    out: dict[str, bool] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        nested = dataclasses.is_dataclass(hints[f.name])
        out[prefix + f.name] = nested
        if nested:
            out.update(field_paths(hints[f.name], f"{prefix}{f.name}."))
    return out


def yaml_paths(node: yaml.Node, prefix: str = "") -> set[str]:
    """The dotted key paths present in a YAML mapping (descending into sections only)."""
    out: set[str] = set()
    sections = {p for p, nested in field_paths(Config).items() if nested}
    for key_node, value_node in node.value:
        path = prefix + key_node.value
        out.add(path)
        if path in sections and isinstance(value_node, yaml.MappingNode):
            out |= yaml_paths(value_node, path + ".")
    return out


def test_example_covers_every_option() -> None:
    node = yaml.compose(EXAMPLE.read_text(), Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)
    present = yaml_paths(node)
    missing = sorted(set(field_paths(Config)) - present)
    assert not missing, f"config/medianscan.yaml lacks these options: {missing}"


def test_example_loads_and_states_the_code_defaults() -> None:
    cfg = load_config(EXAMPLE)
    defaults = load_config(None)
    for path, nested in field_paths(Config).items():
        if nested:
            continue
        got, want = cfg, defaults
        for part in path.split("."):
            got, want = getattr(got, part), getattr(want, part)
        if path in EXAMPLE_DIFFERS:
            assert got != want, f"{path}: listed as differing but equals the default"
        else:
            assert got == want, f"{path}: example says {got!r}, code default is {want!r}"


def test_defaults_expand_home() -> None:
    cfg = load_config(None)
    assert cfg.library == Path("~/Scans").expanduser()
    assert "~" not in str(cfg.library)
    assert parse_config("") == cfg
    assert parse_config("# only a comment\n") == cfg


def test_empty_section_means_defaults() -> None:
    cfg = parse_config("camera:\nblend:\n  method: mean\n")
    assert cfg.camera == Config().camera
    assert cfg.blend.method == "mean"


def test_values_convert_by_type_hints(tmp_path: Path) -> None:
    text = """
library: scans
archive: ~/archive
frames: 5
camera:
  port: "usb:001,004"
  settings: {iso: 100, f-number: 5.6, shutterspeed: 1/125, autofocus: off}
  settle_seconds: 2
  simulated: {flicker_frame: 3, width: 256, height: 128}
blend: {kappa: 2, method: sigma-clip}
triggers:
  footswitch: {device: "0c45:7403", keys: {KEY_A: retake, BTN_LEFT: pause}}
  socket: /run/ms.sock
hooks: {burst_done: ["notify-send 'next negative'"], sound: wav}
"""
    path = tmp_path / "conf" / "m.yaml"
    path.parent.mkdir()
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.library == path.parent / "scans"  # relative to the config file's folder
    assert cfg.archive == Path.home() / "archive"
    assert cfg.frames == 5
    # camera values are strings exactly as written, even where YAML sees numbers or booleans
    assert cfg.camera.settings == {
        "iso": "100",
        "f-number": "5.6",
        "shutterspeed": "1/125",
        "autofocus": "off",
    }
    assert cfg.camera.settle_seconds == 2.0
    assert isinstance(cfg.camera.settle_seconds, float)
    assert cfg.camera.simulated.flicker_frame == 3
    assert cfg.blend.kappa == 2.0
    assert cfg.triggers.footswitch.keys == {"KEY_A": "retake", "BTN_LEFT": "pause"}
    assert cfg.triggers.socket == Path("/run/ms.sock")
    assert cfg.hooks.burst_done == ["notify-send 'next negative'"]
    assert cfg.hooks.sound == "wav"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frames: 2\n", "m.yaml:1: frames: must be at least 3 and at most 255"),
        ("workers: 0\n", "m.yaml:1: workers: must be at least 1"),
        ("queue_size: 0\n", "m.yaml:1: queue_size: must be at least 1"),
        ("blend:\n  kappa: 0\n", "m.yaml:2: blend.kappa: must be more than 0 and at most 100, got 0"),
        ("blend:\n  winsor_fraction: 0.5\n", "m.yaml:2: blend.winsor_fraction: must be at least 0 and below 0.5"),
        ("blend:\n  winsor_fraction: -0.1\n", "blend.winsor_fraction: must be at least 0 and below 0.5"),
        ("blend:\n  iterations: 0\n", "m.yaml:2: blend.iterations: must be at least 1"),
        (
            "camera:\n  simulated:\n    width: 130\n    height: 15\n",
            "m.yaml:4: camera.simulated.height: must be an even number of pixels from 32 to 16384",
        ),
        ("frames: many\n", "m.yaml:1: frames: expected an integer or 'auto', got a string ('many')"),
        ("frames: 3.5\n", "frames: expected an integer or 'auto', got a number"),
        ("frames: true\n", "frames: expected an integer or 'auto', got a boolean"),
        ("camera:\n  keep_jpeg: 1\n", "m.yaml:2: camera.keep_jpeg: expected true or false, got an integer"),
        ("library: null\n", "m.yaml:1: library: expected a path, got null"),
        ("camera: gphoto2\n", "m.yaml:1: camera: expected a mapping, got a string"),
        (
            "hooks:\n  error: notify-send x\n",
            "m.yaml:2: hooks.error: expected a list of strings, got a string",
        ),
        ("camera:\n  bakend: gphoto2\n", "m.yaml:2: camera.bakend: unknown key (did you mean 'backend'?)"),
        ("hooks:\n  burst-done: []\n", "hooks.burst-done: unknown key (did you mean 'burst_done'?)"),
        ("kappa: 2\n", "m.yaml:1: kappa: unknown key here (it belongs under 'blend')"),
        ("blend:\n  frames: 5\n", "blend.frames: unknown key here (it belongs at the top level)"),
        ("zzz: 1\n", "m.yaml:1: zzz: unknown key (known keys here: mode, library,"),
        (
            "camera:\n  backend: gphoto\n",
            "m.yaml:2: camera.backend: expected one of 'gphoto2', 'simulated', got 'gphoto' (did you mean 'gphoto2'?)",
        ),
        (
            "triggers:\n  footswitch:\n    keys:\n      KEY_A: new_roll\n",
            "m.yaml:4: triggers.footswitch.keys.KEY_A: expected one of 'capture', 'retake', 'new-roll', "
            "'pause', 'resume', 'flat', 'base', 'scan-roll', 'stop-roll', 'scan-tiles', 'stop-tiles', got 'new_roll' "
            "(did you mean 'new-roll'?)",
        ),
        (
            "triggers:\n  footswitch:\n    keys:\n      KEY_SPACEBAR: capture\n",
            "m.yaml:4: triggers.footswitch.keys.KEY_SPACEBAR: 'KEY_SPACEBAR' is not an evdev key name "
            "(did you mean 'KEY_SPACE'?)",
        ),
        ("triggers:\n  footswitch:\n    device: pedal\n", "m.yaml:3: triggers.footswitch.device: must be a"),
        ('hooks:\n  burst_done:\n    - ok\n    - "say \'x"\n', "m.yaml:4: hooks.burst_done[1]: cannot split"),
        ("hooks:\n  error: ['']\n", "hooks.error[0]: is an empty command"),
        ("roll_template: '{date}-{negative}'\n", "m.yaml:1: roll_template: uses {negative}: only {date} and {roll}"),
        ("negative_template: '{date}'\n", "m.yaml:1: negative_template: must contain {negative}"),
        ("negative_template: 'f{negative:03d}{x}'\n", "uses {x}: only {date} and {negative} are available"),
        ("negative_template: 'f{}'\n", "negative_template: uses {}"),
        ("negative_template: 'f{negative:03q}'\n", "negative_template: cannot be formatted"),
        ("negative_template: 'f{negative'\n", "negative_template: is not a valid template"),
        ("negative_template: 'a/{negative}'\n", "negative_template: does not give a usable folder name"),
        ("frame_template: '{date}'\n", "m.yaml:1: negative_template: must contain {negative}"),  # the old name
        ("watch:\n  group: count:0\n", "m.yaml:2: watch.group: must be folder, count:N or gap:SECONDS"),
        ("tiles:\n  gap_mm: -1\n", "m.yaml:2: tiles.gap_mm: must be at least 0 and at most 50"),
        ("tiles:\n  negatives_without_live_view: 0\n", "tiles.negatives_without_live_view: must be at least 1"),
        ("camera:\n  simulated:\n    sheet: {negatives: 0}\n", "camera.simulated.sheet.negatives: must be at least 1"),
        ("camera:\n  simulated:\n    sheet: {gap_mm: -2}\n", "camera.simulated.sheet.gap_mm: must be at least 0"),
        ("camera:\n  simulated:\n    sheet: {film_mm: 0}\n", "camera.simulated.sheet.film_mm: must be more than 0"),
        ("camera:\n  simulated:\n    sheet: {leader_mm: -1}\n", "camera.simulated.sheet.leader_mm: must be at"),
        (
            "camera:\n  simulated:\n    sheet: {gap_variation_mm: 30}\n",
            "camera.simulated.sheet.gap_variation_mm: must be at least 0 and at most 20",
        ),
        (
            "camera:\n  simulated:\n    sheet: {gap_mm: 1, gap_variation_mm: 2}\n",
            "camera.simulated.sheet.gap_variation_mm: is 2, more than gap_mm (1): a gap would be negative",
        ),
        (
            "camera:\n  simulated:\n    sheet: {width_mm: 70, height_mm: 56, negatives: 3, blank: [4]}\n",
            "camera.simulated.sheet.blank: names negatives beyond the strip's 3",
        ),
        ("camera:\n  port: usb001\n", "camera.port: must look like usb:001,004"),
        ("frames: 3\nmode: capture\nframes: 4\n", "m.yaml:3: frames: duplicate key (first given on line 1)"),
        ("retention: archive\n", "m.yaml:1: retention: is 'archive' but no 'archive:' folder is set"),
        ("mode: watch\n", "m.yaml:1: mode: is 'watch' but no 'watch.folder' is set"),
        (
            "frames: 4\ncamera:\n  simulated:\n    flicker_frame: 5\n",
            "m.yaml:4: camera.simulated.flicker_frame: is frame 5 but a burst has at most 4 frames",
        ),
        ("frames: [3\n", "m.yaml:2: not valid YAML"),
        ("- frames\n", "m.yaml:1: expected a mapping, got a list"),
        ("camera:\n  settings: [iso]\n", "m.yaml:2: camera.settings: expected a mapping, got a list"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":"), message
    assert expected in message, message
    assert "\n" not in message


def test_a_renamed_key_still_loads_with_a_warning_naming_its_line(caplog: pytest.LogCaptureFixture) -> None:
    cfg = parse_config("frames: 5\nframe_template: 'neg{frame:02d}'\n", "old.yaml")
    assert cfg.negative_template == "neg{negative:02d}"
    assert "old.yaml:2: frame_template: is now called 'negative_template'" in caplog.text


def test_unreadable_files_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"library: \xe9t\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_config_to_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE)
    again = parse_config(config_to_yaml(cfg), "dump", base=tmp_path)
    assert again == cfg


def test_check_tables_name_real_fields() -> None:
    """A renamed field must not silently lose its range check."""
    tables = (rules.CHECKS, rules.KEY_CHECKS, rules.ITEM_CHECKS)
    for table in tables:
        for owner, name in table:
            cls = FilmRecord if owner == "FilmRecord" else getattr(config_module, owner)
            assert name in {f.name for f in dataclasses.fields(cls)}, (owner, name)


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medianscan.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  bakend: gphoto2\n")
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert f"{EXAMPLE}: ok (capture mode, gphoto2 camera, 9 frames per burst" in capsys.readouterr().out
    assert main(["config", "check", str(bad), str(EXAMPLE)]) == 2
    out, err = capsys.readouterr()
    assert err == f"medianscan: {bad}:2: camera.bakend: unknown key (did you mean 'backend'?)\n"
    assert f"{EXAMPLE}: ok" in out  # every file is checked
    assert main(["config", "show", str(EXAMPLE)]) == 0
    assert parse_config(capsys.readouterr().out, "shown") == load_config(EXAMPLE)


def test_config_check_reports_every_problem_in_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medianscan.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("frames: zero\nworkers: 0\nblend:\n  methd: median\n  kappa: -1\ncamera:\n  backend: gphot\n")
    assert main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"medianscan: {path}:1: frames: expected an integer or 'auto', got a string ('zero')",
        f"medianscan: {path}:2: workers: must be at least 1 and at most 64, got 0",
        f"medianscan: {path}:4: blend.methd: unknown key (did you mean 'method'?)",
        f"medianscan: {path}:5: blend.kappa: must be more than 0 and at most 100, got -1",
        f"medianscan: {path}:7: camera.backend: expected one of 'gphoto2', 'simulated', got 'gphot' "
        "(did you mean 'gphoto2'?)",
    ]


def test_blend_options_are_checked_by_one_rule_in_the_config_and_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`level_tolerance: 0` (which would refuse every real stack) is refused alike by the config and by
    `medianscan blend`, with the same words; the CLI's defaults are the config's."""
    from medianscan.cli import build_parser, main
    from medianscan.config.schema import BlendConfig

    refused = r"blend\.level_tolerance: must be more than 0 and at most 0\.5 \(a fraction\), got 0"
    with pytest.raises(ConfigError, match=refused):
        parse_config("blend:\n  level_tolerance: 0\n")
    assert main(["blend", str(tmp_path), "--level-tolerance", "0", "--max-shift", "0"]) == 2
    err = capsys.readouterr().err
    assert "--level-tolerance: must be more than 0 and at most 0.5 (a fraction), got 0; " in err
    assert "--max-shift: must be more than 0 and at most 100, got 0" in err
    args = build_parser().parse_args(["blend", str(tmp_path)])
    defaults = BlendConfig()
    assert (args.kappa, args.iterations, args.winsor_fraction, args.level_tolerance, args.max_shift) == (
        defaults.kappa,
        defaults.iterations,
        defaults.winsor_fraction,
        defaults.level_tolerance,
        defaults.max_shift_px,
    )
