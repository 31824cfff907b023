"""NCRONTAB schedules (the six fields of Azure Functions timers: second minute hour day month
day-of-week) for the drills' `schedule` in the rules: checked when the rules are read, and asked
when the next occurrence after a time is. Names of months and weekdays are accepted; Sunday is 0."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names whose index + offset is their value)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], int], ...] = (
    ("second", 0, 59, (), 0),
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day-of-week", 0, 6, _DAYS, 0),
)
_ITEM = re.compile(r"^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/([0-9]{1,2}))?$")
_SEARCH_DAYS = 366 * 8  # every reachable day (29 February included) recurs within this


class ScheduleError(ValueError):
    """An NCRONTAB expression that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    fields: tuple[frozenset[int], ...]  # seconds, minutes, hours, days, months, weekdays

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first occurrence strictly after `moment` (UTC), or None if there is none."""
        seconds, minutes, hours, days, months, weekdays = self.fields
        start = moment.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            weekday = (day.weekday() + 1) % 7  # Python: Monday 0; NCRONTAB: Sunday 0
            if day.month in months and day.day in days and weekday in weekdays:
                first = start if day == start.date() else None
                found = _first_time(day, first, hours, minutes, seconds)
                if found is not None:
                    return found
            day += dt.timedelta(days=1)
        return None


def _first_time(
    day: dt.date,
    after: dt.datetime | None,
    hours: frozenset[int],
    minutes: frozenset[int],
    seconds: frozenset[int],
) -> dt.datetime | None:
    for hour in sorted(hours):
        for minute in sorted(minutes):
            for second in sorted(seconds):
                when = dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=dt.UTC)
                if after is None or when >= after:
                    return when
    return None


def parse_schedule(expression: str) -> Schedule:
    """Parse six NCRONTAB fields (five are taken as second 0 and the five); raises ScheduleError."""
    parts = expression.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise ScheduleError(
            f"'{expression}' has {len(parts)} fields; NCRONTAB has six: second minute hour day month "
            "day-of-week, e.g. '0 0 2 * * *' (every day at 02:00 UTC)"
        )
    fields = tuple(_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))
    schedule = Schedule(expression, fields)
    if schedule.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
        raise ScheduleError(f"'{expression}' never occurs (no such day of the month in those months)")
    return schedule


def _parse_field(
    text: str, name: str, low: int, high: int, names: tuple[str, ...], offset: int
) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item.strip())
        if match is None:
            raise ScheduleError(
                f"the {name} field '{text}' is not *, a value, a range a-b or a list, with an optional /step"
            )
        base, step_text = match.group(1), match.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ScheduleError(f"the {name} field '{text}' has a step of 0")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _value(a, name, low, high, names, offset), _value(b, name, low, high, names, offset)
        else:
            first = _value(base, name, low, high, names, offset)
            last = high if step_text else first
        if first > last:
            raise ScheduleError(f"the {name} field '{text}' has a range that runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...], offset: int) -> int:
    if text.isdigit():
        value = int(text)
        if name == "day-of-week" and value == 7:
            value = 0  # Sunday, either way
    elif names and text[:3].lower() in names:
        value = names.index(text[:3].lower()) + offset
    else:
        raise ScheduleError(
            f"the {name} field has '{text}', which is not a number{' or a name' if names else ''}"
        )
    if not low <= value <= high:
        raise ScheduleError(f"the {name} field has {value}, out of range {low} to {high}")
    return value
