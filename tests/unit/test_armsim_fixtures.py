"""The ground truth the armsim tests compare with is in the repository and complete: the official REST
examples (tests/fixtures/azure-rest-examples/) and the trimmed real Azure recordings
(tests/fixtures/azure-recordings/). A missing file fails, never skips."""

from __future__ import annotations

import json

import pytest

from tests.examples_support import EXAMPLES, REPO, example_path, optional_example


def test_every_vendored_example_parses_and_is_listed_in_sources() -> None:
    files = sorted(EXAMPLES.rglob("*.json"))
    assert len(files) == 42, [str(f.relative_to(EXAMPLES)) for f in files]
    sources = (EXAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))
        assert f"| {path.relative_to(EXAMPLES)} |" in sources, f"{path.name} is not in SOURCES.md"
    assert "MIT License" in (EXAMPLES / "LICENSE").read_text(encoding="utf-8")


def test_examples_live_in_the_repository() -> None:
    assert EXAMPLES.is_relative_to(REPO)
    assert example_path() == EXAMPLES
    assert (
        optional_example("compute", "VirtualMachine_Get.json")
        == EXAMPLES / "compute" / "VirtualMachine_Get.json"
    )


@pytest.mark.parametrize("lookup", [example_path, optional_example])
def test_a_missing_example_fails_the_test_and_says_how_to_restore_it(lookup: object) -> None:
    assert callable(lookup)
    with pytest.raises(pytest.fail.Exception) as failure:
        lookup("recoveryservicesbackup", "NoSuchExample.json")
    message = str(failure.value)
    assert "tests/fixtures/azure-rest-examples/recoveryservicesbackup/NoSuchExample.json" in message
    assert "git checkout" in message
