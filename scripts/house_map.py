"""Writes the module map of docs/how-it-is-built.md: each folder of the package, one line per module, the line
being the first sentence of that module's own docstring (so the map says what the code says of itself, and a
module without a docstring shows as a gap). tests/test_documents.py checks the map is current.
Run: .venv/bin/python -m scripts.house_map"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "how-it-is-built.md"
PACKAGE = ROOT / "medianscan"
FOLDERS = ("capture", "library", "blend", "stitch", "outputs", "service", "console", "config", "cli", "")
START, END = "<!-- module map: scripts/house_map.py -->", "<!-- end of the module map -->"


def first_sentence(doc: str | None) -> str:
    text = " ".join((doc or "").split())
    found = re.match(r"(.+?[.:;])(\s|$)", text)
    sentence = (found.group(1) if found else text).rstrip(".:;")
    return sentence if len(sentence) <= 150 else sentence[:147].rsplit(" ", 1)[0] + " ..."


def module_map() -> str:
    lines = [START]
    for folder in FOLDERS:
        base = PACKAGE / folder if folder else PACKAGE
        # the folder's own modules first (the story), then its sub-folders
        found = base.rglob("*.py") if folder else base.glob("*.py")
        files = sorted(found, key=lambda p: (len(p.relative_to(base).parts) > 1, p))
        lines += ["", f"### `{folder}/`" if folder else "### the ground floor", ""]
        for path in files:
            rel = path.relative_to(base)
            doc = ast.get_docstring(ast.parse(path.read_text()))
            if path.name == "__main__.py" or (path.name == "__init__.py" and (not doc or rel.parent == Path())):
                continue
            name = f"{rel.parent}/" if path.name == "__init__.py" else str(rel.with_suffix(""))
            lines.append(f"- `{name}`: {first_sentence(doc) or '(no docstring)'}")
    return "\n".join([*lines, "", END])


def written(text: str) -> str:
    """`text` (the document) with its module map made anew."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + module_map() + tail


def main() -> int:
    DOC.write_text(written(DOC.read_text()))
    print(f"{DOC.relative_to(ROOT)}: module map written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
