"""The docs tell the truth about the code: every setting the app reads is in the README's settings
table with the default the code uses, and the repository stands on its own (no references to design
documents outside it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (ROOT / "autopilot" / "settings.py").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _readme_rows() -> dict[str, str]:
    """Setting name -> the README table row that names it (in backticks in its first cell)."""
    rows: dict[str, str] = {}
    for line in README.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", first):
            rows[name] = line
    return rows


def _defaults() -> dict[str, str]:
    """Setting name -> its default as the README writes it, for the settings the code reads with one."""
    found: dict[str, str] = {}
    for kind, name, default in re.findall(
        r'_(int|bool|text)\(\s*env,\s*"([A-Z][A-Z0-9_]*)",\s*([^,)]+)', SETTINGS
    ):
        value = default.strip().strip('"')
        found[name] = value.lower() if kind == "bool" else value
    return found


def _read_without_default() -> set[str]:
    names = set(re.findall(r'env\.get\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS))
    names |= set(re.findall(r'_networks\(\s*env,\s*"([A-Z][A-Z0-9_]*)"', SETTINGS))
    return names - set(_defaults())


def _host_settings() -> set[str]:
    """App settings the Functions host reads from the bindings (%NAME%)."""
    names: set[str] = set()
    for path in (ROOT / "handlers").glob("*.py"):
        names |= set(re.findall(r"%([A-Z][A-Z0-9_]*)%", path.read_text(encoding="utf-8")))
    return names


def test_the_settings_code_is_read_as_the_tests_expect() -> None:
    assert len(_defaults()) >= 20 and len(_read_without_default()) >= 8 and len(_host_settings()) >= 4


@pytest.mark.parametrize("name", sorted(_defaults()))
def test_every_setting_with_a_default_is_in_the_readme_with_that_default(name: str) -> None:
    rows = _readme_rows()
    assert name in rows, f"{name} is read by autopilot/settings.py but not in README.md's settings table"
    default = _defaults()[name]
    last_cell = rows[name].rstrip().rstrip("|").split("|")[-1]
    assert f"`{default}`" in last_cell or default in last_cell, (
        f"README.md gives {name} the default {last_cell.strip()!r}; the code's is {default!r}"
    )


@pytest.mark.parametrize("name", sorted(_read_without_default() | _host_settings()))
def test_every_other_setting_the_app_reads_is_in_the_readme(name: str) -> None:
    assert name in _readme_rows(), f"{name} is read by the app but not in README.md's settings table"


def test_nothing_refers_to_a_design_document_outside_the_repository() -> None:
    # The repository's own files (tracked, or new and not ignored): not the venvs and caches, which
    # other tests write while this one reads.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    offenders = []
    for name in listed:
        path = ROOT / name
        if (
            path.suffix not in (".py", ".md", ".bicep", ".txt", ".yaml", ".json")
            or "fixtures" in path.parts
            or not path.is_file()
        ):
            continue
        if re.search(r"DESIGN \u00a7\d", path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(name)
    assert len(listed) > 200, "git ls-files listed too little: is this a checkout?"
    assert offenders == [], f"these cite a DESIGN section, a document outside the repository: {offenders}"


def test_the_error_code_table_in_the_docs_is_the_one_the_code_uses() -> None:
    from autopilot.azure.errorcodes import TABLE

    facts = (ROOT / "docs" / "AZURE_BACKUP_FACTS.md").read_text(encoding="utf-8")
    documented = {
        code: (cls.strip(), remedy.strip())
        for code, cls, remedy in re.findall(r"^\| `([^`]+)` \|([^|]+)\|(.+)\|$", facts, re.MULTILINE)
    }
    in_code = {info.code: (info.error_class.value, info.remedy) for info in TABLE.values()}
    assert documented == in_code, "docs/AZURE_BACKUP_FACTS.md §3 and autopilot/azure/errorcodes.py differ"
