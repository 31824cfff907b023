"""The reliability suite's pytest hooks and fixtures: the one table every run prints at its end (the
rows the scenarios record in tests/reliability/soak.py), the time the suite took, and `workdir`.
The suite's machinery (the stack, the checks) is tests/reliability/support.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.soak import FULL, ROWS, SIZE, render_table

if SIZE not in ("small", "full"):
    raise pytest.UsageError(f"RELIABILITY_SIZE={SIZE!r}: use small or full")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not ROWS:
        return
    terminalreporter.section(f"reliability suite, {SIZE} size")
    for line in render_table(sorted(ROWS, key=lambda r: r.scenario)):
        terminalreporter.write_line(line)
    bad = [r for r in ROWS if r.lost or r.five_xx]
    terminalreporter.write_line(
        f"{len(ROWS)} rows, {len(bad)} with lost or 5xx > 0; the reliability tests took {_DURATION[0]:.0f} s"
        + ("" if FULL else " (small size; `make soak` runs the full size)")
    )


_DURATION = [0.0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid.startswith("tests/reliability/"):
        _DURATION[0] += report.duration


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(re.sub(r"\W+", "-", request.node.name)[:40])
