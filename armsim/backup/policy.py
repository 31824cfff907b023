"""AzureIaasVM backup policies: the validation Azure applies and the schedule they set.

Standard policies (policyType V1, SimpleSchedulePolicy) and enhanced ones (V2,
SimpleSchedulePolicyV2). Azure does not shift schedules for daylight saving time: a schedule runs at
its local time in the zone's standard offset all year.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from armsim.core.clock import parse_iso
from armsim.core.errors import ArmError, BadRequest, NotImplementedOnArmsim

# Standard-time UTC offsets (hours) of the Windows time zones armsim knows.
TIME_ZONES: dict[str, float] = {
    "UTC": 0, "Coordinated Universal Time": 0, "GMT Standard Time": 0, "Greenwich Standard Time": 0,
    "W. Europe Standard Time": 1, "Central Europe Standard Time": 1, "Central European Standard Time": 1,
    "Romance Standard Time": 1, "E. Europe Standard Time": 2, "FLE Standard Time": 2, "GTB Standard Time": 2,
    "South Africa Standard Time": 2, "Russian Standard Time": 3, "Arabian Standard Time": 4,
    "India Standard Time": 5.5, "SE Asia Standard Time": 7, "China Standard Time": 8,
    "Singapore Standard Time": 8, "Tokyo Standard Time": 9, "Korea Standard Time": 9,
    "AUS Eastern Standard Time": 10, "New Zealand Standard Time": 12, "Eastern Standard Time": -5,
    "Central Standard Time": -6, "Mountain Standard Time": -7, "Pacific Standard Time": -8,
    "Alaskan Standard Time": -9, "Hawaiian Standard Time": -10, "E. South America Standard Time": -3,
    "Atlantic Standard Time": -4, "Canada Central Standard Time": -6, "US Mountain Standard Time": -7,
}  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
V1_INSTANT_RESTORE = (1, 5)
V2_INSTANT_RESTORE = (1, 30)
RETENTION_LIMITS = {"Days": (1, 9999), "Weeks": (1, 5163), "Months": (1, 1188), "Years": (1, 99)}


POLICY_INPUT_MESSAGE = (
    "Input for create or update policy is not in proper format. Please check format of parameters like "
    "schedule time, schedule days, retention time and retention days "
)


def _invalid(reason: str) -> ArmError:
    """Azure's catch-all policy error; armsim names the exact reason in the error's details."""
    return BadRequest(
        "BMSUserErrorInvalidPolicyInput",
        POLICY_INPUT_MESSAGE,
        details=[{"code": "BMSUserErrorInvalidPolicyInput", "message": reason}],
    )


# One branch per refusal Azure gives for a policy body, read top to bottom as Azure's checks.
def validate(properties: dict[str, Any]) -> dict[str, Any]:  # noqa: C901
    """The policy as Azure stores it, or the 400 Azure gives for what is wrong."""
    if not isinstance(properties, dict):
        raise _invalid("The policy needs 'properties'.")
    management = properties.get("backupManagementType")
    if management != "AzureIaasVM":
        raise NotImplementedOnArmsim(
            f"armsim simulates backupManagementType 'AzureIaasVM' policies only, not {management!r}."
        )
    policy_type = properties.get("policyType") or "V1"
    if policy_type not in ("V1", "V2"):
        raise _invalid(f"policyType '{policy_type}' is not valid; use V1 (standard) or V2 (enhanced).")
    schedule = properties.get("schedulePolicy")
    if not isinstance(schedule, dict):
        raise _invalid("The policy needs a schedulePolicy.")
    expected = "SimpleSchedulePolicy" if policy_type == "V1" else "SimpleSchedulePolicyV2"
    if schedule.get("schedulePolicyType") != expected:
        raise _invalid(
            f"A {policy_type} policy takes schedulePolicyType '{expected}', not '{schedule.get('schedulePolicyType')}'."
        )
    time_zone = properties.get("timeZone") or "UTC"
    if time_zone not in TIME_ZONES:
        raise _invalid(f"The time zone '{time_zone}' is not a Windows time zone id Azure Backup knows.")
    frequency, times, days = schedule_of(properties)
    if frequency not in ("Daily", "Weekly"):
        raise NotImplementedOnArmsim(f"armsim simulates Daily and Weekly schedules, not '{frequency}'.")
    if not times:
        raise _invalid("The schedule needs a run time.")
    if policy_type == "V1" and len(times) != 1:
        raise _invalid("A standard policy runs once a day: give exactly one scheduleRunTimes entry.")
    for when in times:
        if when.minute not in (0, 30) or when.second or when.microsecond:
            raise _invalid(
                f"The schedule time {when:%H:%M} is not valid: backups can be scheduled on the whole or half "
                "hour only (for example 22:00 or 22:30).",
            )
    if frequency == "Weekly" and (not days or any(d not in WEEKDAYS for d in days)):
        raise _invalid(f"A weekly schedule needs scheduleRunDays from {', '.join(WEEKDAYS)}.")
    low, high = V1_INSTANT_RESTORE if policy_type == "V1" else V2_INSTANT_RESTORE
    instant = properties.get("instantRpRetentionRangeInDays", 2)
    if not isinstance(instant, int) or not low <= instant <= high:
        raise _invalid(
            f"Instant restore snapshot retention of {instant} days is not valid for a "
            f"{'standard' if policy_type == 'V1' else 'enhanced'} policy; choose {low} to {high} days.",
        )
    retention = properties.get("retentionPolicy")
    if not isinstance(retention, dict) or retention.get("retentionPolicyType") != "LongTermRetentionPolicy":
        raise _invalid("The policy needs a retentionPolicy of type 'LongTermRetentionPolicy'.")
    daily = retention.get("dailySchedule")
    weekly = retention.get("weeklySchedule")
    if frequency == "Daily" and not daily:
        raise _invalid("A daily schedule needs a daily retention (dailySchedule).")
    if frequency == "Weekly" and daily:
        raise _invalid("A weekly schedule cannot have a daily retention; use weeklySchedule.")
    if frequency == "Weekly" and not weekly:
        raise _invalid("A weekly schedule needs a weekly retention (weeklySchedule).")
    run_times = sorted(t.strftime("%H:%M") for t in times)
    for name, unit in (
        ("dailySchedule", "Days"),
        ("weeklySchedule", "Weeks"),
        ("monthlySchedule", "Months"),
        ("yearlySchedule", "Years"),
    ):
        rule = retention.get(name)
        if not rule:
            continue
        duration = rule.get("retentionDuration") or {}
        count = duration.get("count")
        lo, hi = RETENTION_LIMITS[unit]
        if duration.get("durationType") != unit or not isinstance(count, int) or not lo <= count <= hi:
            raise _invalid(
                f"{name}.retentionDuration must be {lo} to {hi} {unit}; got {count} {duration.get('durationType')}.",
            )
        retention_times = sorted(parse_iso(t).strftime("%H:%M") for t in rule.get("retentionTimes") or [])
        # Standard policies keep points at their run times; Azure's enhanced (V2) examples do not.
        if policy_type == "V1" and retention_times and retention_times != run_times:
            raise _invalid(
                f"{name}.retentionTimes must equal the schedule's run times ({', '.join(run_times)})."
            )
        if name == "weeklySchedule" and any(d not in WEEKDAYS for d in rule.get("daysOfTheWeek") or []):
            raise _invalid(f"weeklySchedule.daysOfTheWeek takes {', '.join(WEEKDAYS)}.")
    stored = dict(properties)
    _normalise_times(stored)
    stored["policyType"] = policy_type
    stored["timeZone"] = time_zone
    stored["instantRpRetentionRangeInDays"] = instant
    if policy_type == "V1":
        schedule.setdefault("scheduleWeeklyFrequency", 0)
    return stored


def _normalise_times(properties: dict[str, Any]) -> None:
    """Run and retention times as Azure writes them back: '2019-09-10T20:30:00Z' for '...:00.000Z'."""

    def fix(holder: Any, key: str) -> None:
        if isinstance(holder, dict) and isinstance(holder.get(key), list):
            holder[key] = [
                parse_iso(t).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(t, str) else t for t in holder[key]
            ]

    schedule = properties.get("schedulePolicy") or {}
    fix(schedule, "scheduleRunTimes")
    for part in ("dailySchedule", "weeklySchedule"):
        fix(schedule.get(part), "scheduleRunTimes")
    retention = properties.get("retentionPolicy") or {}
    for part in ("dailySchedule", "weeklySchedule", "monthlySchedule", "yearlySchedule"):
        fix(retention.get(part), "retentionTimes")


def schedule_of(properties: dict[str, Any]) -> tuple[str, list[dt.datetime], list[str]]:
    """(frequency, run times, weekdays) of a V1 or V2 policy."""
    schedule = properties.get("schedulePolicy") or {}
    frequency = schedule.get("scheduleRunFrequency", "")
    try:
        if schedule.get("schedulePolicyType") == "SimpleSchedulePolicyV2":
            part = schedule.get("dailySchedule" if frequency == "Daily" else "weeklySchedule") or {}
            times = [parse_iso(t) for t in part.get("scheduleRunTimes") or []]
            days = list(part.get("scheduleRunDays") or [])
        else:
            times = [parse_iso(t) for t in schedule.get("scheduleRunTimes") or []]
            days = list(schedule.get("scheduleRunDays") or [])
    except ValueError as exc:
        raise _invalid(f"A schedule run time is not an ISO 8601 date-time: {exc}") from None
    return frequency, times, days


def next_run(properties: dict[str, Any], after: float) -> float:
    """The first scheduled run strictly after `after` (a UTC timestamp)."""
    frequency, times, days = schedule_of(properties)
    offset = dt.timedelta(hours=TIME_ZONES.get(properties.get("timeZone") or "UTC", 0))
    start = dt.datetime.fromtimestamp(after, dt.UTC)
    best: dt.datetime | None = None
    for day in range(0, 9):
        local_date = (start + offset).date() + dt.timedelta(days=day - 1)
        if frequency == "Weekly" and WEEKDAYS[local_date.weekday()] not in days:
            continue
        for when in times:
            local = dt.datetime.combine(local_date, dt.time(when.hour, when.minute), dt.UTC)
            candidate = local - offset
            if candidate > start and (best is None or candidate < best):
                best = candidate
        if best is not None:
            break
    assert best is not None, "a valid schedule runs at least once a week"
    return best.timestamp()


def retention_days(properties: dict[str, Any], when: float) -> float:
    """How long a scheduled recovery point taken at `when` is kept in the vault, in days."""
    retention = properties.get("retentionPolicy") or {}
    moment = dt.datetime.fromtimestamp(when, dt.UTC)
    weekday = WEEKDAYS[moment.weekday()]
    days = 0.0
    if retention.get("dailySchedule"):
        days = retention["dailySchedule"]["retentionDuration"]["count"]
    weekly = retention.get("weeklySchedule")
    if weekly and (weekday in (weekly.get("daysOfTheWeek") or []) or not retention.get("dailySchedule")):
        days = max(days, weekly["retentionDuration"]["count"] * 7)
    monthly = retention.get("monthlySchedule")
    if monthly and moment.day <= 7:
        days = max(days, monthly["retentionDuration"]["count"] * 30)
    yearly = retention.get("yearlySchedule")
    if yearly and moment.month == 1 and moment.day <= 7:
        days = max(days, yearly["retentionDuration"]["count"] * 365)
    return float(days or 30)
