"""The official REST examples the tests compare with: ../shared/azure-rest-examples, or the folder
$AZURE_REST_EXAMPLES names (docs/ARMSIM.md). They are read at test time, never copied into the project.

Tests that need them take the `needs_examples` marker (or call `example_path(...)`). On a machine
without the folder they are skipped; in CI (the `CI` environment variable set) they fail instead, so
that a missing folder never silently turns the comparison off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = Path(os.environ.get("AZURE_REST_EXAMPLES") or REPO.parent / "shared" / "azure-rest-examples")

# The marker: the `rest_examples` fixture (tests/conftest.py) skips, or fails in CI, when the folder is absent.
needs_examples = pytest.mark.usefixtures("rest_examples")


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def absent(path: Path) -> NoReturn:
    """Skip the test, or fail it in CI: `path` of the official examples is not on this machine."""
    message = (
        f"the official REST examples are not on this machine: {path} is absent "
        "(put azure-rest-examples next to the project as shared/azure-rest-examples, or set AZURE_REST_EXAMPLES)"
    )
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def example_path(*parts: str) -> Path:
    """The file (or folder) `parts` under the examples; skips the test (fails it in CI) when absent."""
    path = EXAMPLES.joinpath(*parts)
    if not path.exists():
        absent(path)
    return path


def optional_example(*parts: str) -> Path | None:
    """The file `parts` under the examples, or None when absent, for a test whose comparison with the
    example is one check among others; in CI an absent file fails the test."""
    path = EXAMPLES.joinpath(*parts)
    if path.exists():
        return path
    if in_ci():
        absent(path)
    return None
