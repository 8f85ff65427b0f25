"""The systemd units pass `systemd-analyze verify` without a warning, their command lines parse, and the udev
rules are well-formed (this systemd, 252, has no `udevadm verify`, so a strict checker below does it)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from medianscan.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
SYSTEM_UNIT = SYSTEMD / "medianscan.service"
USER_UNIT = SYSTEMD / "user" / "medianscan.service"
RULES = sorted(SYSTEMD.glob("*.rules"))
MEDIANSCAN = Path(sys.executable).parent / "medianscan"  # the console script of the environment under test


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; repeated keys (DeviceAllow=) are all kept."""
    entries, section = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(path: Path, key: str) -> list[str]:
    return [v for _, k, v in unit_entries(path) if k == key]


def verify(unit: Path, tmp_path: Path, *, user: bool) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on a copy whose ExecStart is this environment's medianscan (so the check that
    the binary exists is real), everything else unchanged."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is needed (Debian package systemd)"
    copy = tmp_path / "units" / unit.name
    copy.parent.mkdir(exist_ok=True)
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={MEDIANSCAN}", unit.read_text(), flags=re.M)
    copy.write_text(text)
    env = dict(os.environ)
    command = ["systemd-analyze", "--no-pager"]
    if user:
        # short: the user units' sockets lie under it and AF_UNIX paths stop at 107 bytes (a tmp_path under
        # pytest -n is /tmp/pytest-of-root/pytest-N/popen-gwK/<test name>/..., too long for gpg-agent's)
        runtime = tempfile.mkdtemp(prefix="ms-")
        env["XDG_RUNTIME_DIR"] = runtime
        command.append("--user")
    try:
        return subprocess.run(
            [*command, "verify", str(copy)], capture_output=True, text=True, env=env, timeout=60, check=False
        )
    finally:
        if user:
            shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)


@pytest.mark.parametrize(("unit", "user"), [(SYSTEM_UNIT, False), (USER_UNIT, True)], ids=["system", "user"])
def test_units_verify_without_warnings(unit: Path, user: bool, tmp_path: Path) -> None:
    assert MEDIANSCAN.exists()
    result = verify(unit, tmp_path, user=user)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_verify_would_report_a_mistake(tmp_path: Path) -> None:
    """The check above is meaningful: this systemd does report a bad value (and exits 0 all the same)."""
    broken = tmp_path / "broken" / "medianscan.service"
    broken.parent.mkdir()
    broken.write_text(SYSTEM_UNIT.read_text().replace("KillMode=mixed", "KillMode=mixd"))
    result = verify(broken, tmp_path, user=False)
    assert "Failed to parse kill mode specification" in result.stderr


@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
def test_command_lines_parse(unit: Path) -> None:
    """ExecStart is a command this medianscan accepts (`run --config FILE`)."""
    (exec_start,) = values(unit, "ExecStart")
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "medianscan"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"
    assert argv[argv.index("--config") + 1].endswith("medianscan/medianscan.yaml")
    assert values(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
def test_service_contract(unit: Path) -> None:
    """What the daemon relies on: notify with a watchdog, SIGTERM to the main process only, time to finish."""
    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]
    assert int(values(unit, "WatchdogSec")[0]) >= 20
    assert values(unit, "KillMode") == ["mixed"]
    assert values(unit, "KillSignal") == ["SIGTERM"]
    assert int(values(unit, "TimeoutStopSec")[0]) >= 60
    assert values(unit, "Restart") == ["on-failure"]
    assert values(unit, "RuntimeDirectory") == ["medianscan"]


def test_system_service_can_reach_camera_and_pedal() -> None:
    assert values(SYSTEM_UNIT, "ExecStart")[0].startswith("/usr/local/bin/medianscan run --config /etc/medianscan/")
    assert values(SYSTEM_UNIT, "User") == ["medianscan"]
    assert set(values(SYSTEM_UNIT, "SupplementaryGroups")[0].split()) == {"plugdev", "input", "dialout"}
    assert values(SYSTEM_UNIT, "PrivateDevices") == ["no"]
    allowed = {v.split()[0] for v in values(SYSTEM_UNIT, "DeviceAllow")}
    assert {"char-usb_device", "char-input", "char-ttyUSB", "char-ttyACM"} <= allowed  # camera, pedal, rig
    # numba compiles the blend kernels into executable memory at run time
    assert values(SYSTEM_UNIT, "MemoryDenyWriteExecute") in ([], ["no"])
    assert values(SYSTEM_UNIT, "StateDirectory") == ["medianscan"]


# --------------------------------------------------------------------------------------------------------------
# udev rules: a strict checker of udev(7) syntax, tested on this machine's own rules and on known mistakes.

MATCH_KEYS = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTRS", "TAGS",
    "TEST", "RESULT", "CONST",
}  # fmt: skip
ASSIGN_KEYS = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "WAIT_FOR"}
BOTH_KEYS = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG", "PROGRAM"}  # PROGRAM="..." is an old spelling
NEEDS_ATTR = {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "IMPORT", "SECLABEL"}
ACTIONS = {"add", "remove", "change", "bind", "unbind", "move", "online", "offline"}
PAIR = re.compile(r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*e?"(?P<value>[^"]*)"\s*')


def check_pair(match: re.Match[str]) -> list[str]:
    """Problems of one KEY{attr}OP"value" pair."""
    key, attr, op, value = match["key"], match["attr"], match["op"], match["value"]
    is_match = op in ("==", "!=")
    problems = []
    if key not in MATCH_KEYS | ASSIGN_KEYS | BOTH_KEYS:
        problems.append(f"unknown key {key}")
    elif is_match and key in ASSIGN_KEYS:
        problems.append(f"{key} cannot be matched ({op})")
    elif not is_match and key in MATCH_KEYS:
        problems.append(f"{key} cannot be assigned ({op})")
    if key in NEEDS_ATTR and attr is None:
        problems.append(f"{key} needs {{name}}")
    if key == "MODE" and not re.fullmatch(r"0?[0-7]{3}", value):
        problems.append(f"MODE {value!r} is not octal")
    if key == "ACTION" and not set(value.split("|")) <= ACTIONS:
        problems.append(f"unknown ACTION {value!r}")
    return problems


def check_rules(text: str) -> list[str]:
    """Problems in a udev rules file, each as "line N: what"; empty when udev would take every line."""
    problems: list[str] = []
    gotos: list[tuple[int, str]] = []
    labels: set[str] = set()
    lines = text.replace("\\\n", " ").splitlines()  # continuation lines join
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pos = 0
        while pos < len(line):
            match = PAIR.match(line, pos)
            if match is None:
                problems.append(f"line {number}: cannot parse {line[pos:]!r}")
                break
            pos = match.end()
            if pos < len(line):
                if line[pos] != ",":
                    problems.append(f"line {number}: expected ',' before {line[pos:]!r}")
                    break
                pos += 1
            problems += [f"line {number}: {p}" for p in check_pair(match)]
            if match["key"] == "GOTO":
                gotos.append((number, match["value"]))
            if match["key"] == "LABEL":
                labels.add(match["value"])
    problems += [f"line {n}: GOTO {target!r} has no LABEL" for n, target in gotos if target not in labels]
    return problems


def udev_package_rules() -> list[Path]:
    """The rules files of Debian's udev package, which the project's set-up installs (scripts/
    system-packages.sh): a known corpus, whatever else the host has in /lib/udev/rules.d."""
    listed = subprocess.run(["dpkg-query", "-L", "udev"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, "Debian's udev package is needed: `make test` installs it"
    return [Path(p) for p in listed.stdout.splitlines() if re.search(r"/rules\.d/[^/]+\.rules$", p)]


def test_checker_accepts_the_rules_udev_ships() -> None:
    """Positive control: every rules file of udev itself passes (the checker is not too strict)."""
    shipped = udev_package_rules()
    assert len(shipped) > 10
    for path in shipped:
        assert check_rules(path.read_text()) == [], path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("GROUP=plugdev", "cannot parse"),
        ('GROUP=="plugdev"', "GROUP cannot be matched"),
        ('SUBSYSTEM="usb", GROUP="plugdev"', "SUBSYSTEM cannot be assigned"),
        ('ENV=="1"', "ENV needs {name}"),
        ('ATTRS{idVendor}=="0c45" GROUP="input"', "expected ','"),
        ('KERNEL=="event*", MODE="rw"', "MODE 'rw' is not octal"),
        ('ACTION=="ad", GOTO="x"\nLABEL="x"', "unknown ACTION 'ad'"),
        ('KERNEL=="event*", GOTO="nowhere"', "GOTO 'nowhere' has no LABEL"),
        ('DEVICE=="x"', "unknown key DEVICE"),
    ],
)
def test_checker_rejects_mistakes(line: str, problem: str) -> None:
    problems = check_rules(line + "\n")
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("path", RULES, ids=[p.name for p in RULES])
def test_our_rules_are_well_formed(path: Path) -> None:
    assert check_rules(path.read_text()) == []


def test_the_service_user_and_every_group_our_files_name_are_created_by_our_sysusers_file(tmp_path: Path) -> None:
    """systemd-sysusers applies systemd/medianscan.sysusers to an empty root: the unit's user and groups and
    the groups the udev rules hand devices to all exist afterwards, the user a member of each."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    done = subprocess.run(
        ["systemd-sysusers", f"--root={root}", str(SYSTEMD / "medianscan.sysusers")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in (root / "etc/group").read_text().split()}
    users = {line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()}
    assert values(SYSTEM_UNIT, "User") == ["medianscan"] and "medianscan" in users
    wanted = {*values(SYSTEM_UNIT, "Group"), *" ".join(values(SYSTEM_UNIT, "SupplementaryGroups")).split()}
    for path in RULES:
        wanted |= set(re.findall(r'GROUP="([^"]+)"', path.read_text()))
    assert wanted == {"medianscan", "plugdev", "input", "dialout"}
    assert wanted <= set(groups)
    assert all("medianscan" in groups[g] for g in ("plugdev", "input", "dialout"))


def test_camera_rule_starts_the_service() -> None:
    text = (SYSTEMD / "60-medianscan-camera.rules").read_text()
    active = [line for line in text.splitlines() if line and not line.startswith("#")]
    ptp = [line for line in active if '"*:060101:*"' in line]
    known = [line for line in active if 'ENV{ID_GPHOTO2}=="1"' in line]
    for rule in (ptp, known):
        assert len(rule) == 1
        assert 'TAG+="systemd"' in rule[0]
        assert 'ENV{SYSTEMD_WANTS}+="medianscan.service"' in rule[0]
        assert 'GROUP="plugdev"' in rule[0]
    assert SYSTEM_UNIT.name == "medianscan.service"


def test_footswitch_rule_names_common_pedals() -> None:
    text = (SYSTEMD / "61-medianscan-footswitch.rules").read_text()
    ids = set(re.findall(r'ATTRS\{idVendor\}=="(\w+)", ATTRS\{idProduct\}=="(\w+)"', text))
    assert {("0c45", "7403"), ("0c45", "7404"), ("413d", "2107")} <= ids
    assert 'SYMLINK+="footswitch"' in text
    assert 'GROUP="input"' in text
