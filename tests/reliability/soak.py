"""The reliability suite's sizes and its one table; `python -m tests.reliability.soak` runs the full size.

    .venv/bin/python -m tests.reliability.soak            # RELIABILITY_SIZE=full, prints the table
    .venv/bin/python -m tests.reliability.soak -k crash   # extra arguments go to pytest

The small size runs inside `make test` (plain `pytest`). Each scenario test adds rows with
`record(...)`; tests/reliability/conftest.py prints them at the end of the run. The rows live here,
in a module imported under one name only, so that the tests and the conftest plugin share them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

SIZE = os.environ.get("RELIABILITY_SIZE", "small").strip().lower() or "small"
FULL = SIZE == "full"


def sized(small: T, full: T) -> T:
    """The value for the size this run has."""
    return full if FULL else small


@dataclass
class Row:
    scenario: str
    load: str
    faults: str
    outcome: str
    lost: int
    five_xx: int
    seconds: float = 0.0


ROWS: list[Row] = []


def record(
    scenario: str, load: str, faults: str, outcome: str, lost: int, five_xx: int, seconds: float = 0.0
) -> Row:
    """Add one row to the table printed at the end of the run (also when the test then fails)."""
    row = Row(scenario, load, faults, outcome, lost, five_xx, round(seconds, 1))
    ROWS.append(row)
    return row


def render_table(rows: Iterable[Row]) -> list[str]:
    """A Markdown table: scenario | load | faults injected | outcome | lost | 5xx | seconds."""
    header = ("scenario", "load", "faults injected", "outcome", "lost", "5xx", "s")
    body = [
        (r.scenario, r.load, r.faults, r.outcome, str(r.lost), str(r.five_xx), f"{r.seconds:.0f}")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(line) for line in body)]


def main(argv: list[str] | None = None) -> int:
    """The full size: every scenario at full load, the table at the end."""
    import pytest

    os.environ["RELIABILITY_SIZE"] = os.environ.get("RELIABILITY_SIZE", "full")
    arguments = ["tests/reliability", "-q", "-p", "no:cacheprovider", *(argv or [])]
    return int(pytest.main(arguments))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
