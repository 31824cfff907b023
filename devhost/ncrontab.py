"""NCRONTAB schedules as Azure Functions timer triggers use them.

Six fields, ``second minute hour day month day-of-week`` (a five-field expression gets second 0,
as the Functions host does). Each field is ``*``, a value, a range ``a-b``, a list ``a,b,c``,
and any of those with a step ``/n`` (``5/15`` means from 5 to the end of the range every 15).
Months and weekdays may be names (``Jan``, ``January``, ``Mon``, ``Monday``); Sunday is 0.
As in NCrontab, a time matches when every field matches: day of month AND day of week.
Times are computed in the time zone of the datetime given (devhost passes UTC).

Why not croniter: tried (7.0.0, with ``second_at_beginning=True`` and ``day_or=False``), it covers
the seconds-first layout, steps and the AND of day fields, but refuses the full month and weekday
names that NCrontab (the Functions host's parser, whose field names list ``January`` and ``Monday``)
accepts, and it would be one more dependency for about a hundred lines.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronError", "CronSchedule", "parse"]


class CronError(ValueError):
    """An NCRONTAB expression that cannot be used."""


_MONTHS = [name.lower() for name in calendar.month_name[1:]]
_WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    offset: int = 0  # value of the first name


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, tuple(_MONTHS), offset=1),
    _Field("day-of-week", 0, 6, tuple(_WEEKDAYS)),
)

_ITEM = re.compile(r"^(?P<base>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?$")
_HORIZON_YEARS = 50  # any reachable month/day/weekday combination recurs well within this


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression; ``next_after`` gives the next occurrence."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (whole seconds, same tzinfo)."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        last_year = moment.year + _HORIZON_YEARS
        while t.year <= last_year:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
            elif t.day not in self.days or (t.weekday() + 1) % 7 not in self.weekdays:
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise CronError(f"NCRONTAB expression {self.expression!r} has no occurrence after {moment}")


def parse(expression: str) -> CronSchedule:
    """Parse an NCRONTAB expression; raises CronError naming the field that is wrong."""
    parts = expression.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise CronError(
            f"invalid NCRONTAB expression {expression!r}: expected 6 fields "
            "(second minute hour day month day-of-week), got "
            f"{len(parts)}"
        )
    values = [_parse_field(expression, field, text) for field, text in zip(_FIELDS, parts, strict=True)]
    schedule = CronSchedule(expression, *values)
    if not any(day <= _days_in_month(month) for month in schedule.months for day in schedule.days):
        raise CronError(f"invalid NCRONTAB expression {expression!r}: the day and month never occur together")
    return schedule


def _days_in_month(month: int) -> int:
    return calendar.monthrange(2000, month)[1]  # 2000 is a leap year: February has 29


def _parse_field(expression: str, field: _Field, text: str) -> frozenset[int]:
    def fail(reason: str) -> CronError:
        return CronError(f"invalid NCRONTAB expression {expression!r}: {field.name} field {text!r}: {reason}")

    result: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise fail(f"cannot read {item!r}")
        base, step_text = match.group("base"), match.group("step")
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise fail("the step must be 1 or more")
        if base == "*":
            first, last = field.low, field.high
        elif "-" in base:
            low_text, high_text = base.split("-")
            first, last = _value(field, low_text, fail), _value(field, high_text, fail)
            if first > last:
                raise fail(f"range {base!r} runs backwards")
        else:
            first = _value(field, base, fail)
            last = field.high if step_text is not None else first
        result.update(range(first, last + 1, step))
    return frozenset(result)


def _value(field: _Field, text: str, fail: Callable[[str], CronError]) -> int:
    if text.isdigit():
        value = int(text)
    else:
        lowered = text.lower()
        matches = [i for i, name in enumerate(field.names) if len(lowered) >= 3 and name.startswith(lowered)]
        if len(matches) != 1:
            raise fail(f"unknown value {text!r}")
        value = matches[0] + field.offset
    if not field.low <= value <= field.high:
        raise fail(f"{value} is outside {field.low}-{field.high}")
    return value
