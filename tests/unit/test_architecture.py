"""docs/ARCHITECTURE.md matches the tree: every module of autopilot/ is on the map under its package,
nothing on the map is missing from the tree, and the layers it describes are the import contract that
`make lint` checks (pyproject.toml, [tool.importlinter])."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def mapped() -> dict[str, set[str]]:
    """Package directory (relative to autopilot/, '' for the top level) -> the module files its
    section of the map names in backticks."""
    sections: dict[str, set[str]] = {}
    for heading, body in re.findall(r"^### `autopilot/([\w/]*)`[^\n]*\n(.*?)(?=^#|\Z)", DOC, re.M | re.S):
        sections[heading.rstrip("/")] = set(re.findall(r"`(\w+\.py)`", body))
    return sections


def tree() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "autopilot").rglob("*.py"):
        package = path.parent.relative_to(ROOT / "autopilot").as_posix()
        found.setdefault("" if package == "." else package, set()).add(path.name)
    return found


def test_every_module_is_on_the_map_under_its_package() -> None:
    sections, modules = mapped(), tree()
    assert set(sections) == set(modules), (
        "a package is missing from the map, or the map names one that is gone"
    )
    for package, files in modules.items():
        missing = sorted(f for f in files - sections[package] if f != "__init__.py")
        assert not missing, f"autopilot/{package}: {missing} not described in docs/ARCHITECTURE.md"


def test_the_map_names_no_module_that_is_gone() -> None:
    modules = tree()
    for package, files in mapped().items():
        gone = sorted(files - modules.get(package, set()))
        assert not gone, f"docs/ARCHITECTURE.md names autopilot/{package}/{gone}, which do not exist"


def test_the_layers_are_the_import_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    in_contract = [sorted(part.strip() for part in layer.split("|")) for layer in contract["layers"]]
    table = DOC.split("## Layers", 1)[1].split("##", 1)[0]
    in_doc = [
        sorted(re.findall(r"`([\w.]+)`", row.split("|")[2]))
        for row in table.splitlines()
        if row.startswith("| ") and not row.startswith("| layer") and row.count("|") >= 4
    ]
    assert in_doc == in_contract
