"""The NCRONTAB parser and next-occurrence function behind timer triggers."""

from datetime import UTC, datetime

import pytest

from devhost.ncrontab import CronError, parse

FRIDAY_10AM = datetime(2025, 1, 3, 10, 0, 0, tzinfo=UTC)  # 2025-01-03 is a Friday


def occurrences(expression: str, start: datetime, count: int = 3) -> list[str]:
    schedule = parse(expression)
    found = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment.strftime("%Y-%m-%d %a %H:%M:%S"))
    return found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */5 * * * *", ["2025-01-03 Fri 10:05:00", "2025-01-03 Fri 10:10:00", "2025-01-03 Fri 10:15:00"]),
        ("*/20 * * * * *", ["2025-01-03 Fri 10:00:20", "2025-01-03 Fri 10:00:40", "2025-01-03 Fri 10:01:00"]),
        ("0 0 * * * *", ["2025-01-03 Fri 11:00:00", "2025-01-03 Fri 12:00:00", "2025-01-03 Fri 13:00:00"]),
        (
            "0 0 9-17/4 * * *",
            ["2025-01-03 Fri 13:00:00", "2025-01-03 Fri 17:00:00", "2025-01-04 Sat 09:00:00"],
        ),
        ("0 30 9 * * 1-5", ["2025-01-06 Mon 09:30:00", "2025-01-07 Tue 09:30:00", "2025-01-08 Wed 09:30:00"]),
        (
            "0 30 9 * Jan Mon",
            ["2025-01-06 Mon 09:30:00", "2025-01-13 Mon 09:30:00", "2025-01-20 Mon 09:30:00"],
        ),
        (
            "0 0 12 * * SUN,saturday",
            ["2025-01-04 Sat 12:00:00", "2025-01-05 Sun 12:00:00", "2025-01-11 Sat 12:00:00"],
        ),
        ("0 0 0 1,15 * *", ["2025-01-15 Wed 00:00:00", "2025-02-01 Sat 00:00:00", "2025-02-15 Sat 00:00:00"]),
        ("0 0 0 31 * *", ["2025-01-31 Fri 00:00:00", "2025-03-31 Mon 00:00:00", "2025-05-31 Sat 00:00:00"]),
        ("0 0 0 29 2 *", ["2028-02-29 Tue 00:00:00", "2032-02-29 Sun 00:00:00", "2036-02-29 Fri 00:00:00"]),
        (
            "5/20 10 10 * * *",
            ["2025-01-03 Fri 10:10:05", "2025-01-03 Fri 10:10:25", "2025-01-03 Fri 10:10:45"],
        ),
        # day of month AND day of week, as NCrontab (not cron's OR): Friday the 13th
        ("0 0 0 13 * 5", ["2025-06-13 Fri 00:00:00", "2026-02-13 Fri 00:00:00", "2026-03-13 Fri 00:00:00"]),
        # five fields: second 0, as the Functions host reads them
        ("*/30 * * * *", ["2025-01-03 Fri 10:30:00", "2025-01-03 Fri 11:00:00", "2025-01-03 Fri 11:30:00"]),
    ],
)
def test_next_occurrences(expression: str, expected: list[str]) -> None:
    assert occurrences(expression, FRIDAY_10AM) == expected


def test_next_occurrence_is_strictly_after_and_drops_microseconds() -> None:
    schedule = parse("* * * * * *")
    assert schedule.next_after(datetime(2025, 1, 3, 10, 0, 0, 999_999, tzinfo=UTC)) == datetime(
        2025, 1, 3, 10, 0, 1, tzinfo=UTC
    )


def test_year_end_rolls_over() -> None:
    assert occurrences("0 0 0 1 1 *", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), 1) == [
        "2026-01-01 Thu 00:00:00"
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "expected 6 fields"),
        ("* * * *", "expected 6 fields"),
        ("0 * * * * * *", "expected 6 fields"),
        ("60 * * * * *", "second field '60': 60 is outside 0-59"),
        ("0 0 24 * * *", "hour field '24': 24 is outside 0-23"),
        ("0 0 0 0 * *", "day field '0': 0 is outside 1-31"),
        ("0 0 0 * 13 *", "month field '13': 13 is outside 1-12"),
        ("0 0 0 * * 7", "day-of-week field '7': 7 is outside 0-6"),
        ("0 0 0 * * Funday", "day-of-week field 'Funday': unknown value 'Funday'"),
        ("0 0 0 * Ja *", "month field 'Ja': unknown value 'Ja'"),
        ("*/0 * * * * *", "the step must be 1 or more"),
        ("0 30-10 * * * *", "range '30-10' runs backwards"),
        ("1,,2 * * * * *", "cannot read ''"),
        ("0 0 0 30 2 *", "the day and month never occur together"),
        ("0 0 0 ? * *", "cannot read '?'"),
        ("00:05:00", "expected 6 fields"),
    ],
)
def test_bad_expressions_are_refused_naming_the_field(expression: str, message: str) -> None:
    with pytest.raises(CronError) as error:
        parse(expression)
    assert message in str(error.value)
    assert repr(expression) in str(error.value)
