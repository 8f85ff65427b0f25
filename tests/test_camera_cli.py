"""`medianscan camera list|show|burst` through medianscan.cli.main, on the real virtual camera and the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medianscan.cli import main
from tests.vcam import MODEL, PORT, SERIAL, VUSB, VirtualCamera, virtual_camera


@pytest.fixture
def vcam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualCamera]:
    with virtual_camera(tmp_path, monkeypatch) as cam:
        yield cam


def test_camera_list(vcam: VirtualCamera, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["camera", "list"]) == 0
    assert capsys.readouterr().out == f"{MODEL}\t{PORT}\tserial {SERIAL}\n"


def test_camera_list_without_a_camera(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IOLIBS", str(VUSB.parent / "iolibs"))  # the real USB drivers: nothing plugged in here
    assert main(["camera", "list"]) == 1
    assert "no camera found" in capsys.readouterr().err


def test_camera_show(vcam: VirtualCamera, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["camera", "show", "--model", "D750"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{MODEL} on {PORT} (serial {SERIAL})\n")
    assert "[capturesettings]" in out
    assert "  f-number (config key: aperture) = 'f/2.8'  choices: f/2.8, f/3.5" in out
    assert "  imagesize = '640x480'  read-only" in out


def test_camera_show_json(vcam: VirtualCamera, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["camera", "show", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    shutter = next(r for r in rows if r["name"] == "shutterspeed")
    assert shutter["value"] == "0.0100s" and "0.0200s" in shutter["choices"] and not shutter["readonly"]


def test_camera_burst_on_the_virtual_camera(
    vcam: VirtualCamera, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frame-007"
    code = main(
        [
            "camera",
            "burst",
            "--frames",
            "3",
            "--out",
            str(out),
            "--set",
            "aperture=8",
            "--set",
            "shutterspeed=1/50",
            "--strategy",
            "trigger",
            "--json",
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["frames"] == ["frame-007_01.dng", "frame-007_02.dng", "frame-007_03.dng"]
    assert record["settings"] == {"aperture": "f/8", "shutterspeed": "0.0200s"}
    source = vcam.source.read_bytes()  # the CLI's camera sees an unchanging scene: every frame is the source
    assert all((out / name).read_bytes() == source for name in record["frames"])


def test_camera_burst_with_a_setting_the_camera_lacks(
    vcam: VirtualCamera, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["camera", "burst", "--frames", "2", "--out", str(tmp_path / "s"), "--set", "iso=100"])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (
        "medianscan: the camera (Nikon DSC D750 on usb:001,001) has no setting 'iso' (tried 'iso', 'isospeed', "
        "'exposureindex'); `medianscan camera show` lists the ones it has: fix or drop --set iso=...\n"
    )  # nothing was shot or lost: no "reconnected", no "0 frames kept"


def test_camera_burst_simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "medianscan.yaml"
    config.write_text("camera:\n  backend: simulated\n  simulated:\n    width: 128\n    height: 96\nframes: 4\n")
    assert main(["camera", "burst", "--config", str(config), "--out", str(tmp_path / "neg")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(tmp_path / "neg" / f"neg_0{i}.dng") for i in range(1, 5)]
    assert "4 frames in" in captured.err


def test_camera_burst_rejects_a_bad_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["camera", "burst", "--backend", "simulated", "--out", str(tmp_path), "--set", "aperture"]) == 2
    assert "write it as KEY=VALUE" in capsys.readouterr().err
