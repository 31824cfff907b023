"""The official REST examples the tests compare with, vendored in tests/fixtures/azure-rest-examples/
(SOURCES.md there says where each file comes from; LICENSE, its licence).

They are part of the repository, so a missing file is an error: the test that needs it fails with the
file's name and how to restore it, never skips.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests" / "fixtures" / "azure-rest-examples"

# Kept for the tests that mark themselves as using the examples; the `rest_examples` fixture
# (tests/conftest.py) fails them when the folder is missing.
needs_examples = pytest.mark.usefixtures("rest_examples")


def missing(path: Path) -> NoReturn:
    """Fail the test: `path` of the vendored examples is not in the checkout."""
    relative = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    pytest.fail(
        f"the official REST example {relative} is missing from the checkout; restore it with "
        f"`git checkout -- {relative}` (the examples are vendored in {EXAMPLES.relative_to(REPO)}, "
        "see SOURCES.md there)",
        pytrace=False,
    )


def example_path(*parts: str) -> Path:
    """The file (or, with no parts, the folder) `parts` under the vendored examples; fails the test
    when it is missing."""
    path = EXAMPLES.joinpath(*parts)
    if not path.exists():
        missing(path)
    return path


def optional_example(*parts: str) -> Path | None:
    """The same as example_path (the examples are always in the checkout, so never None now); kept for
    the tests that call it."""
    return example_path(*parts)
