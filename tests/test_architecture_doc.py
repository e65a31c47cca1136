"""docs/architecture.md stays true: every module of the package is described there, and every module it
names exists (a newcomer finds each file from the page, and the page names no file that is gone)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _doc() -> str:
    return (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_module_is_on_the_architecture_page():
    doc = _doc()
    missing = []
    for path in sorted((ROOT / "linebreak").rglob("*.py")):
        rel = path.relative_to(ROOT / "linebreak")
        if path.name == "__init__.py" or rel.parts[0] == "commands" or rel.name == "__main__.py":
            continue
        # named by its full path, or as `name.py` in the table of its sub-package ("### `linebreak/<pkg>/`", or
        # the row of a nested package inside it), or in the shared-modules row of its package ("| `linebreak/<pkg>/`")
        if f"linebreak/{rel.as_posix()}" in doc:
            continue
        places = []
        for i in range(1, len(rel.parts)):
            pkg = "/".join(rel.parts[:i])
            places += [m.group(1) for m in re.finditer(rf"### `linebreak/{re.escape(pkg)}/`(.*?)(?=\n### |\n## |\Z)",
                                                        doc, re.S)]
            places += re.findall(rf"^\| `linebreak/{re.escape(pkg)}/`.*$", doc, re.M)
        if not any(f"`{rel.name}`" in p for p in places):
            missing.append(rel.as_posix())
    assert not missing, f"modules not described in docs/architecture.md: {missing}"


def test_every_module_the_page_names_exists():
    doc = _doc()
    gone = []
    for pkg, body in re.findall(r"### `linebreak/([\w/]+)/`(.*?)(?=\n### |\n## |\Z)", _doc(), re.S):
        for name in re.findall(r"^\| `(\w+\.py)` \|", body, re.M):
            if not (ROOT / "linebreak" / pkg / name).is_file():
                gone.append(f"{pkg}/{name}")
    for rel in re.findall(r"`linebreak/([\w/]+\.py)`", doc):
        if not (ROOT / "linebreak" / rel).is_file():
            gone.append(rel)
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
