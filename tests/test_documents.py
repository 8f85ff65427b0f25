"""The documents agree with each other and with what the project installs: the guide's install routes create
the paths the units run, the sample config names the device the udev rule makes, every file and command they
name exists, and none points at a tool the project does not install."""

from __future__ import annotations

import re

import pytest

from medianscan.cli import SUBCOMMANDS
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
GUIDES = {f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
GUIDE = GUIDES["docs/operator-guide.md"]
MARKDOWN = {"README.md": README, **GUIDES}
EXAMPLE = (ROOT / "config" / "medianscan.yaml").read_text()
SYSTEM_UNIT = (ROOT / "systemd" / "medianscan.service").read_text()
USER_UNIT = (ROOT / "systemd" / "user" / "medianscan.service").read_text()
FOOTSWITCH_RULE = (ROOT / "systemd" / "61-medianscan-footswitch.rules").read_text()
DOCUMENTS = {
    **MARKDOWN,
    "config/medianscan.yaml": EXAMPLE,
    "systemd/medianscan.service": SYSTEM_UNIT,
    "systemd/user/medianscan.service": USER_UNIT,
    **{f"systemd/{p.name}": p.read_text() for p in (ROOT / "systemd").glob("*.rules")},
}


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)


def unit_setting(unit: str, key: str) -> str:
    return next(line.split("=", 1)[1].strip() for line in unit.splitlines() if line.startswith(f"{key}="))


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_no_document_points_at_what_the_project_does_not_install(name: str) -> None:
    for stale in ("pipx", "/dev/input/footswitch", "gphoto2 --list-config", "gphoto2 --auto-detect"):
        assert stale not in DOCUMENTS[name], f"{name} mentions {stale!r}"


def test_the_system_install_creates_what_the_unit_runs() -> None:
    install = "\n".join(block for block in code_blocks(GUIDE) if "sudo" in block)
    binary, _, rest = unit_setting(SYSTEM_UNIT, "ExecStart").partition(" ")
    assert re.search(rf"ln -s \S+ {re.escape(binary)}\b", install), binary
    config = rest.split("--config ", 1)[1].split()[0]
    assert f"install -Dm644 config/medianscan.yaml {config}" in install
    cache = unit_setting(SYSTEM_UNIT, "Environment").removeprefix("MEDIANSCAN_KERNEL_CACHE=")
    assert cache == "%C/medianscan/kernels" and "MEDIANSCAN_KERNEL_CACHE=/var/cache/medianscan/kernels" in install
    assert f"medianscan kernels --config {config}" in install
    for copied in re.findall(r"(?<![\w./~])systemd/[\w./-]+\.\w+", install):
        assert (ROOT / copied).is_file(), copied


def test_the_user_install_creates_what_the_user_unit_runs() -> None:
    install = next(block for block in code_blocks(GUIDE) if "systemctl --user" in block)
    binary, _, rest = unit_setting(USER_UNIT, "ExecStart").partition(" ")
    assert binary == "%h/.local/bin/medianscan" and "~/.local/bin/medianscan" in install
    assert rest.split("--config ", 1)[1].split()[0] == "%E/medianscan/medianscan.yaml"  # %E: ~/.config
    assert "install -Dm644 config/medianscan.yaml ~/.config/medianscan/medianscan.yaml" in install
    assert "install -Dm644 systemd/user/medianscan.service ~/.config/systemd/user/medianscan.service" in install


def test_the_footswitch_is_where_the_udev_rule_puts_it() -> None:
    link = re.search(r'SYMLINK\+="(\w+)"', FOOTSWITCH_RULE)
    assert link is not None
    device = f"/dev/{link.group(1)}"
    assert device in EXAMPLE and f"triggers.footswitch.device: {device}" in GUIDE


def heading_anchor(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule: lower case, spaces to '-', punctuation
    dropped)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("name", sorted(MARKDOWN))
def test_every_file_link_and_command_a_document_names_exists(name: str) -> None:
    text = MARKDOWN[name]
    folder = (ROOT / name).parent
    for path in re.findall(r"(?<![\w./~(])((?:systemd|config|scripts|bench|tests)/[\w./-]+\.\w+)", text):
        assert (ROOT / path).is_file(), f"{name} names {path}"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (folder / file).resolve() if file else ROOT / name
        assert linked.is_file(), f"{name} links {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
            assert anchor in {heading_anchor(h) for h in headings}, f"{name} links {target}: no such heading"
    for block in code_blocks(text):
        for command in re.findall(r"(?:^|[|(`$&]\s*)medianscan ([a-z][a-z-]*)\b", block, flags=re.MULTILINE):
            assert command in SUBCOMMANDS, f"{name}: medianscan {command}"


def test_the_readme_is_a_front_door() -> None:
    """A newcomer reads the first screen: what it is, the two commands, the daily jobs with an example each, and
    where to read on; the depth lives in docs/."""
    named = {
        command
        for block in code_blocks(README)
        for command in re.findall(r"(?:^|[|(`$&]\s*)medianscan ([a-z][a-z-]*)\b", block, flags=re.MULTILINE)
    }
    assert {"run", "capture", "blend", "watch"} <= named, named
    assert "make demo" in README and "make test" in README
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", README))
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked, linked
    assert len(README.splitlines()) <= 300


def test_the_module_map_is_current() -> None:
    """docs/how-it-is-built.md lists every module with the first sentence of its docstring: a module added, moved
    or re-described without `python -m scripts.house_map` leaves the map behind the code."""
    from scripts.house_map import DOC, written

    text = DOC.read_text()
    assert written(text) == text, "docs/how-it-is-built.md's module map is stale: run python -m scripts.house_map"
