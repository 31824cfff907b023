"""A backup policy as the rules file states it, and its Azure form.

`PolicySpec` is one Azure VM backup policy (backupManagementType "AzureIaasVM") as the rules file
declares it. `PolicySpec.to_arm_properties()` gives the exact `properties` body of the
ProtectionPolicyResource that ARM takes (shape of the official ProtectionPolicies_CreateOrUpdate
examples); `policy_differences()` compares a spec with a policy read back from a vault, so that a
second run writes nothing and the sweep can say how a vault's policy drifted from the rules.

The parser in `autopilot.rules` validates every value before it builds a `PolicySpec`; a spec built
by hand is taken as it is. Pure Python: no I/O, no Azure calls.

About 500 lines: the policy, its ARM body in both schedule forms (V1 and V2) and the comparison that
must mirror it, kept together so that a change to one is seen beside the others.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from autopilot.names import text

PolicyKind = Literal["standard", "enhanced"]
Frequency = Literal["daily", "weekly"]

WEEKDAYS: tuple[str, ...] = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
WEEKS_OF_MONTH: tuple[str, ...] = ("First", "Second", "Third", "Fourth", "Last")

# Ranges Azure Backup accepts for Azure VM policies (inclusive).
STANDARD_INSTANT_RESTORE_DAYS = (1, 5)
ENHANCED_INSTANT_RESTORE_DAYS = (1, 30)
WEEKLY_STANDARD_INSTANT_RESTORE_DAYS = 5  # Azure fixes it for weekly standard policies
DAILY_RETENTION_DAYS = (7, 9999)
WEEKLY_RETENTION_WEEKS = (1, 5163)  # 99 years
MONTHLY_RETENTION_MONTHS = (1, 1188)  # 99 years
MONTH_DAYS = (1, 28)  # plus "last"

# Defaults: the seed's default policy (one backup a day, daily points kept 30 days,
# instant-restore snapshots kept 2 days), for enhanced policies too (the portal offers 7 there).
DEFAULT_TIME = "22:00"
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_INSTANT_RESTORE_DAYS = 2
DEFAULT_DAILY_RETENTION_DAYS = 30

# Schedule and retention run times are ISO datetimes of which Azure uses only the time of day.
RUN_DATE = "2026-01-01"

# Windows time zone ids (as Azure Backup takes them in `timeZone`) -> IANA names, so that
# `zoneinfo` can tell whether a zone observes daylight saving time. The IANA name is the zone
# CLDR's windowsZones table gives for the id's main territory.
WINDOWS_TIME_ZONES: Mapping[str, str] = MappingProxyType(
    {
        "Dateline Standard Time": "Etc/GMT+12",
        "UTC-11": "Etc/GMT+11",
        "Aleutian Standard Time": "America/Adak",
        "Hawaiian Standard Time": "Pacific/Honolulu",
        "Marquesas Standard Time": "Pacific/Marquesas",
        "Alaskan Standard Time": "America/Anchorage",
        "UTC-09": "Etc/GMT+9",
        "Pacific Standard Time (Mexico)": "America/Tijuana",
        "UTC-08": "Etc/GMT+8",
        "Pacific Standard Time": "America/Los_Angeles",
        "US Mountain Standard Time": "America/Phoenix",
        "Mountain Standard Time (Mexico)": "America/Mazatlan",
        "Mountain Standard Time": "America/Denver",
        "Yukon Standard Time": "America/Whitehorse",
        "Central America Standard Time": "America/Guatemala",
        "Central Standard Time": "America/Chicago",
        "Easter Island Standard Time": "Pacific/Easter",
        "Central Standard Time (Mexico)": "America/Mexico_City",
        "Canada Central Standard Time": "America/Regina",
        "SA Pacific Standard Time": "America/Bogota",
        "Eastern Standard Time (Mexico)": "America/Cancun",
        "Eastern Standard Time": "America/New_York",
        "Haiti Standard Time": "America/Port-au-Prince",
        "Cuba Standard Time": "America/Havana",
        "US Eastern Standard Time": "America/Indiana/Indianapolis",
        "Turks And Caicos Standard Time": "America/Grand_Turk",
        "Paraguay Standard Time": "America/Asuncion",
        "Atlantic Standard Time": "America/Halifax",
        "Venezuela Standard Time": "America/Caracas",
        "Central Brazilian Standard Time": "America/Cuiaba",
        "SA Western Standard Time": "America/La_Paz",
        "Pacific SA Standard Time": "America/Santiago",
        "Newfoundland Standard Time": "America/St_Johns",
        "Tocantins Standard Time": "America/Araguaina",
        "E. South America Standard Time": "America/Sao_Paulo",
        "SA Eastern Standard Time": "America/Cayenne",
        "Argentina Standard Time": "America/Argentina/Buenos_Aires",
        "Greenland Standard Time": "America/Nuuk",
        "Montevideo Standard Time": "America/Montevideo",
        "Magallanes Standard Time": "America/Punta_Arenas",
        "Saint Pierre Standard Time": "America/Miquelon",
        "Bahia Standard Time": "America/Bahia",
        "UTC-02": "Etc/GMT+2",
        "Azores Standard Time": "Atlantic/Azores",
        "Cape Verde Standard Time": "Atlantic/Cape_Verde",
        "UTC": "Etc/UTC",
        "GMT Standard Time": "Europe/London",
        "Greenwich Standard Time": "Atlantic/Reykjavik",
        "Sao Tome Standard Time": "Africa/Sao_Tome",
        "Morocco Standard Time": "Africa/Casablanca",
        "W. Europe Standard Time": "Europe/Berlin",
        "Central Europe Standard Time": "Europe/Budapest",
        "Romance Standard Time": "Europe/Paris",
        "Central European Standard Time": "Europe/Warsaw",
        "W. Central Africa Standard Time": "Africa/Lagos",
        "Jordan Standard Time": "Asia/Amman",
        "GTB Standard Time": "Europe/Bucharest",
        "Middle East Standard Time": "Asia/Beirut",
        "Egypt Standard Time": "Africa/Cairo",
        "E. Europe Standard Time": "Europe/Chisinau",
        "Syria Standard Time": "Asia/Damascus",
        "West Bank Standard Time": "Asia/Hebron",
        "South Africa Standard Time": "Africa/Johannesburg",
        "FLE Standard Time": "Europe/Kyiv",
        "Israel Standard Time": "Asia/Jerusalem",
        "South Sudan Standard Time": "Africa/Juba",
        "Kaliningrad Standard Time": "Europe/Kaliningrad",
        "Sudan Standard Time": "Africa/Khartoum",
        "Libya Standard Time": "Africa/Tripoli",
        "Namibia Standard Time": "Africa/Windhoek",
        "Arabic Standard Time": "Asia/Baghdad",
        "Turkey Standard Time": "Europe/Istanbul",
        "Arab Standard Time": "Asia/Riyadh",
        "Belarus Standard Time": "Europe/Minsk",
        "Russian Standard Time": "Europe/Moscow",
        "E. Africa Standard Time": "Africa/Nairobi",
        "Volgograd Standard Time": "Europe/Volgograd",
        "Iran Standard Time": "Asia/Tehran",
        "Arabian Standard Time": "Asia/Dubai",
        "Astrakhan Standard Time": "Europe/Astrakhan",
        "Azerbaijan Standard Time": "Asia/Baku",
        "Russia Time Zone 3": "Europe/Samara",
        "Mauritius Standard Time": "Indian/Mauritius",
        "Saratov Standard Time": "Europe/Saratov",
        "Georgian Standard Time": "Asia/Tbilisi",
        "Caucasus Standard Time": "Asia/Yerevan",
        "Afghanistan Standard Time": "Asia/Kabul",
        "West Asia Standard Time": "Asia/Tashkent",
        "Qyzylorda Standard Time": "Asia/Qyzylorda",
        "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
        "Pakistan Standard Time": "Asia/Karachi",
        "India Standard Time": "Asia/Kolkata",
        "Sri Lanka Standard Time": "Asia/Colombo",
        "Nepal Standard Time": "Asia/Kathmandu",
        "Central Asia Standard Time": "Asia/Bishkek",
        "Bangladesh Standard Time": "Asia/Dhaka",
        "Omsk Standard Time": "Asia/Omsk",
        "Myanmar Standard Time": "Asia/Yangon",
        "SE Asia Standard Time": "Asia/Bangkok",
        "Altai Standard Time": "Asia/Barnaul",
        "W. Mongolia Standard Time": "Asia/Hovd",
        "North Asia Standard Time": "Asia/Krasnoyarsk",
        "N. Central Asia Standard Time": "Asia/Novosibirsk",
        "Tomsk Standard Time": "Asia/Tomsk",
        "China Standard Time": "Asia/Shanghai",
        "North Asia East Standard Time": "Asia/Irkutsk",
        "Singapore Standard Time": "Asia/Singapore",
        "W. Australia Standard Time": "Australia/Perth",
        "Taipei Standard Time": "Asia/Taipei",
        "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
        "Aus Central W. Standard Time": "Australia/Eucla",
        "Transbaikal Standard Time": "Asia/Chita",
        "Tokyo Standard Time": "Asia/Tokyo",
        "North Korea Standard Time": "Asia/Pyongyang",
        "Korea Standard Time": "Asia/Seoul",
        "Yakutsk Standard Time": "Asia/Yakutsk",
        "Cen. Australia Standard Time": "Australia/Adelaide",
        "AUS Central Standard Time": "Australia/Darwin",
        "E. Australia Standard Time": "Australia/Brisbane",
        "AUS Eastern Standard Time": "Australia/Sydney",
        "West Pacific Standard Time": "Pacific/Port_Moresby",
        "Tasmania Standard Time": "Australia/Hobart",
        "Vladivostok Standard Time": "Asia/Vladivostok",
        "Lord Howe Standard Time": "Australia/Lord_Howe",
        "Bougainville Standard Time": "Pacific/Bougainville",
        "Russia Time Zone 10": "Asia/Srednekolymsk",
        "Magadan Standard Time": "Asia/Magadan",
        "Norfolk Standard Time": "Pacific/Norfolk",
        "Sakhalin Standard Time": "Asia/Sakhalin",
        "Central Pacific Standard Time": "Pacific/Guadalcanal",
        "Russia Time Zone 11": "Asia/Kamchatka",
        "New Zealand Standard Time": "Pacific/Auckland",
        "UTC+12": "Etc/GMT-12",
        "Fiji Standard Time": "Pacific/Fiji",
        "Chatham Islands Standard Time": "Pacific/Chatham",
        "UTC+13": "Etc/GMT-13",
        "Tonga Standard Time": "Pacific/Tongatapu",
        "Samoa Standard Time": "Pacific/Apia",
        "Line Islands Standard Time": "Pacific/Kiritimati",
    }
)

_TIME_ZONES_BY_LOWER = {name.lower(): name for name in WINDOWS_TIME_ZONES}
_WEEKDAY_BY_LOWER = {day.lower(): day for day in WEEKDAYS}
_WEEK_BY_LOWER = {week.lower(): week for week in WEEKS_OF_MONTH}


def canonical_time_zone(name: str) -> str | None:
    """The Windows time zone id as Azure spells it, or None when the table does not know it."""
    return _TIME_ZONES_BY_LOWER.get(name.strip().lower())


def zone_has_dst(iana_name: str, year: int | None = None) -> bool:
    """Whether the IANA zone changes its UTC offset during `year` (default: this year).

    Raises zoneinfo.ZoneInfoNotFoundError when the machine has no time zone data for it
    (install the `tzdata` package where the OS has none).
    """
    zone = zoneinfo.ZoneInfo(iana_name)
    year = year if year is not None else dt.datetime.now(dt.UTC).year
    offsets = {dt.datetime(year, month, 1, 12, tzinfo=zone).utcoffset() for month in range(1, 13)}
    return len(offsets) > 1


def week_order(days: Iterable[str]) -> tuple[str, ...]:
    """Day names in calendar order (Sunday first, as Azure's DayOfWeek), canonical spelling."""
    canonical = {_WEEKDAY_BY_LOWER.get(day.lower(), day) for day in days}
    return tuple(sorted(canonical, key=lambda d: WEEKDAYS.index(d) if d in WEEKDAYS else 99))


def _month_week_order(weeks: Iterable[str]) -> tuple[str, ...]:
    canonical = {_WEEK_BY_LOWER.get(week.lower(), week) for week in weeks}
    return tuple(sorted(canonical, key=lambda w: WEEKS_OF_MONTH.index(w) if w in WEEKS_OF_MONTH else 99))


@dataclass(frozen=True)
class WeeklyRetention:
    """Keep the points taken on `weekdays` for `weeks` weeks."""

    weekdays: tuple[str, ...]
    weeks: int


@dataclass(frozen=True)
class MonthlyRetention:
    """Keep one point a month for `months` months.

    Either week based (`weeks_of_month` x `weekdays`, e.g. First Sunday) or day based
    (`days_of_month` 1 to 28, and/or `last_day`).
    """

    months: int
    weeks_of_month: tuple[str, ...] = ()
    weekdays: tuple[str, ...] = ()
    days_of_month: tuple[int, ...] = ()
    last_day: bool = False

    @property
    def day_based(self) -> bool:
        return bool(self.days_of_month) or self.last_day


@dataclass(frozen=True)
class PolicySpec:
    """One Azure VM backup policy as the rules file declares it.

    `kind` "standard" is Azure's policyType V1 (SimpleSchedulePolicy); "enhanced" is V2
    (SimpleSchedulePolicyV2), which Trusted Launch VMs require. `time` is "HH:MM" on a whole or
    half hour in `time_zone` (a Windows time zone id, as Azure takes it). `trusted_launch` names
    the enhanced policy to use instead for Trusted Launch VMs (standard policies only).
    """

    name: str
    kind: PolicyKind = "standard"
    frequency: Frequency = "daily"
    time: str = DEFAULT_TIME
    weekdays: tuple[str, ...] = ()
    time_zone: str = DEFAULT_TIME_ZONE
    instant_restore_days: int = DEFAULT_INSTANT_RESTORE_DAYS
    daily_retention_days: int | None = DEFAULT_DAILY_RETENTION_DAYS
    weekly_retention: WeeklyRetention | None = None
    monthly_retention: MonthlyRetention | None = None
    trusted_launch: str | None = None

    @property
    def policy_type(self) -> str:
        """Azure's policyType: "V1" for standard, "V2" for enhanced."""
        return "V2" if self.kind == "enhanced" else "V1"

    @property
    def iana_time_zone(self) -> str:
        """The IANA name of `time_zone` (for `zoneinfo`)."""
        return WINDOWS_TIME_ZONES[canonical_time_zone(self.time_zone) or self.time_zone]

    @property
    def has_dst(self) -> bool:
        """Whether the time zone observes daylight saving time this year.

        Azure does not shift backup schedules for daylight saving time, so the local time of the
        backup moves by an hour twice a year in such a zone.
        """
        return zone_has_dst(self.iana_time_zone)

    def _run_time(self) -> str:
        return f"{RUN_DATE}T{self.time}:00Z"

    def to_arm_properties(self) -> dict[str, Any]:
        """The `properties` body of the ProtectionPolicyResource, as the ARM REST API takes it."""
        run_times = [self._run_time()]
        frequency = "Weekly" if self.frequency == "weekly" else "Daily"
        days = list(week_order(self.weekdays))
        schedule: dict[str, Any]
        if self.kind == "enhanced":
            schedule = {"schedulePolicyType": "SimpleSchedulePolicyV2", "scheduleRunFrequency": frequency}
            if self.frequency == "weekly":
                schedule["weeklySchedule"] = {"scheduleRunDays": days, "scheduleRunTimes": run_times}
            else:
                schedule["dailySchedule"] = {"scheduleRunTimes": run_times}
        else:
            schedule = {
                "schedulePolicyType": "SimpleSchedulePolicy",
                "scheduleRunFrequency": frequency,
                "scheduleRunTimes": run_times,
            }
            if self.frequency == "weekly":
                schedule["scheduleRunDays"] = days

        retention: dict[str, Any] = {"retentionPolicyType": "LongTermRetentionPolicy"}
        if self.daily_retention_days is not None:
            retention["dailySchedule"] = {
                "retentionDuration": {"count": self.daily_retention_days, "durationType": "Days"},
                "retentionTimes": list(run_times),
            }
        if self.weekly_retention is not None:
            retention["weeklySchedule"] = {
                "daysOfTheWeek": list(week_order(self.weekly_retention.weekdays)),
                "retentionDuration": {"count": self.weekly_retention.weeks, "durationType": "Weeks"},
                "retentionTimes": list(run_times),
            }
        monthly = self.monthly_retention
        if monthly is not None:
            block: dict[str, Any] = {
                "retentionDuration": {"count": monthly.months, "durationType": "Months"},
            }
            if monthly.day_based:
                days_of_month: list[dict[str, Any]] = [
                    {"date": day, "isLast": False} for day in sorted(monthly.days_of_month)
                ]
                if monthly.last_day:
                    days_of_month.append({"date": 0, "isLast": True})
                block["retentionScheduleFormatType"] = "Daily"
                block["retentionScheduleDaily"] = {"daysOfTheMonth": days_of_month}
            else:
                block["retentionScheduleFormatType"] = "Weekly"
                block["retentionScheduleWeekly"] = {
                    "daysOfTheWeek": list(week_order(monthly.weekdays)),
                    "weeksOfTheMonth": list(_month_week_order(monthly.weeks_of_month)),
                }
            block["retentionTimes"] = list(run_times)
            retention["monthlySchedule"] = block

        return {
            "backupManagementType": "AzureIaasVM",
            "policyType": self.policy_type,
            "instantRpRetentionRangeInDays": self.instant_restore_days,
            "schedulePolicy": schedule,
            "retentionPolicy": retention,
            "timeZone": canonical_time_zone(self.time_zone) or self.time_zone,
        }

    def describe(self) -> str:
        """One line a person can read, e.g. "standard, daily at 22:00 UTC, keeps daily 30 days"."""
        view = _arm_view(self.to_arm_properties())
        parts = [f"{self.kind}, {view['schedule']} {view['time zone']}"]
        parts.append(f"instant restore {view['instant restore']}")
        for label in ("daily retention", "weekly retention", "monthly retention"):
            if view[label] != "none":
                parts.append(f"{label} {view[label]}")
        return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Comparing a spec with a policy read back from Azure
# ---------------------------------------------------------------------------------------------

_TIME_OF_DAY = re.compile(r"T(\d{2}):(\d{2})")


def _as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _time_of_day(value: object) -> str:
    """ "HH:MM" of an ISO datetime string or a datetime; the date and offset are ignored."""
    if isinstance(value, dt.datetime):
        return f"{value.hour:02d}:{value.minute:02d}"
    plain = text(value)
    match = _TIME_OF_DAY.search(plain)
    return f"{match[1]}:{match[2]}" if match else plain


def _times(values: object) -> str:
    found = sorted({_time_of_day(v) for v in _as_list(values)})
    return ", ".join(found) if found else "no time"


def _duration(block: Mapping[str, Any]) -> str:
    duration = _as_mapping(block.get("retentionDuration"))
    count = duration.get("count")
    unit = text(duration.get("durationType")).lower() or "?"
    return f"{count} {unit[:-1] if count == 1 and unit.endswith('s') else unit}"


def _words(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def _days(values: object) -> str:
    return _words(week_order(text(v) for v in _as_list(values))) or "no day"


def _month_days(values: object) -> str:
    dates: list[int] = []
    last = False
    for item in _as_list(values):
        entry = _as_mapping(item)
        if entry.get("isLast"):
            last = True
        elif isinstance(entry.get("date"), int):
            dates.append(entry["date"])
    words = [str(d) for d in sorted(set(dates))] + (["last"] if last else [])
    return _words(words) or "no day"


def _arm_view(props: Mapping[str, Any]) -> dict[str, str]:
    """The settings of a policy's properties that the rules decide, as comparable text."""
    schedule = _as_mapping(props.get("schedulePolicy"))
    schedule_type = text(schedule.get("schedulePolicyType"))
    frequency = text(schedule.get("scheduleRunFrequency"))
    if schedule_type.lower() == "simpleschedulepolicyv2":
        inner = _as_mapping(
            schedule.get("weeklySchedule" if frequency.lower() == "weekly" else "dailySchedule")
        )
        run_times, run_days = inner.get("scheduleRunTimes"), inner.get("scheduleRunDays")
    else:
        run_times, run_days = schedule.get("scheduleRunTimes"), schedule.get("scheduleRunDays")
    when = f"{frequency or 'no frequency'}"
    if frequency.lower() == "weekly":
        when += f" on {_days(run_days)}"
    when += f" at {_times(run_times)}"

    retention = _as_mapping(props.get("retentionPolicy"))
    daily = _as_mapping(retention.get("dailySchedule"))
    weekly = _as_mapping(retention.get("weeklySchedule"))
    monthly = _as_mapping(retention.get("monthlySchedule"))
    yearly = _as_mapping(retention.get("yearlySchedule"))

    def kept(block: Mapping[str, Any], what: str) -> str:
        if not block:
            return "none"
        on = f" on {what}" if what else ""
        return f"{_duration(block)}{on} at {_times(block.get('retentionTimes'))}"

    monthly_what = ""
    if monthly:
        if text(monthly.get("retentionScheduleFormatType")).lower() == "daily":
            daily_format = _as_mapping(monthly.get("retentionScheduleDaily"))
            monthly_what = f"days {_month_days(daily_format.get('daysOfTheMonth'))}"
        else:
            weekly_format = _as_mapping(monthly.get("retentionScheduleWeekly"))
            weeks = _words(_month_week_order(text(w) for w in _as_list(weekly_format.get("weeksOfTheMonth"))))
            monthly_what = f"the {weeks or 'no week'} {_days(weekly_format.get('daysOfTheWeek'))}"

    instant = props.get("instantRpRetentionRangeInDays")
    consistency = text(props.get("snapshotConsistencyType"))
    return {
        "backup management type": text(props.get("backupManagementType")) or "not set",
        "policy type": text(props.get("policyType")) or "V1",
        "schedule type": schedule_type or "not set",
        "schedule": when,
        "time zone": text(props.get("timeZone")) or "not set",
        "instant restore": f"{instant} days" if instant is not None else "not set",
        "daily retention": kept(daily, ""),
        "weekly retention": kept(weekly, _days(weekly.get("daysOfTheWeek")) if weekly else ""),
        "monthly retention": kept(monthly, monthly_what),
        "yearly retention": kept(yearly, "") if yearly else "none",
        "snapshot consistency": consistency or "default",
    }


def policy_differences(spec: PolicySpec, arm_properties: Mapping[str, Any]) -> list[str]:
    """How the policy read back from a vault differs from the rules; empty when it is the same.

    `arm_properties` is the `properties` of the ProtectionPolicyResource (JSON as ARM returns it,
    or an SDK model's `as_dict()`). Fields Azure adds (protectedItemsCount,
    scheduleWeeklyFrequency, ...) and the date part of run times are ignored; names Azure may
    spell in another case (time zone, day names, enum values) are compared case-insensitively.
    """
    wanted = _arm_view(spec.to_arm_properties())
    found = _arm_view(arm_properties)
    return [
        f"{label}: the rules say {wanted[label]}; the vault has {found[label]}"
        for label in wanted
        if wanted[label].casefold() != found[label].casefold()
    ]
