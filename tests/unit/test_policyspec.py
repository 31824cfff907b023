"""Policies in their Azure form: the ARM body against the official examples, and drift detection."""

from __future__ import annotations

import copy
import json
import re
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autopilot.rules.policyspec import (
    WINDOWS_TIME_ZONES,
    MonthlyRetention,
    PolicySpec,
    WeeklyRetention,
    canonical_time_zone,
    policy_differences,
    zone_has_dst,
)
from tests.examples_support import example_path, needs_examples


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        example_path("recoveryservicesbackup", name).read_text(encoding="utf-8")
    )
    return data


def _request(name: str) -> dict[str, Any]:
    body: dict[str, Any] = _example(name)["parameters"]["parameters"]["properties"]
    return body


def _response(name: str) -> dict[str, Any]:
    body: dict[str, Any] = _example(name)["responses"]["200"]["body"]["properties"]
    return body


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T(\d{2}:\d{2}):\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _assert_same(ours: Any, theirs: Any, path: str = "properties") -> None:
    """Same keys, same values; run times compare by time of day (the date means nothing)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        theirs = {key: value for key, value in theirs.items() if value is not None}
        assert sorted(ours) == sorted(theirs), path
        for key in theirs:
            _assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), path
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            _assert_same(mine, other, f"{path}[{index}]")
    elif isinstance(theirs, str) and _ISO.match(theirs):
        match = _ISO.match(ours) if isinstance(ours, str) else None
        assert match is not None, f"{path}: {ours!r} is not an ISO datetime"
        assert match[1] == _ISO.match(theirs)[1], path  # type: ignore[index]
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"


def _without(data: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A copy of `data` without the dotted paths."""
    out = copy.deepcopy(data)
    for path in paths:
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        node.pop(last, None)
    return out


# Fields we always send that the V1 examples leave out: policyType and the instant restore days.
OUR_EXTRAS = ("policyType", "instantRpRetentionRangeInDays")


@needs_examples
def test_standard_daily_matches_the_simple_example() -> None:
    spec = PolicySpec(
        name="testPolicy1",
        time="02:00",
        time_zone="Pacific Standard Time",
        daily_retention_days=1,  # the example's value; the rules file itself insists on 7 or more
    )
    ours = spec.to_arm_properties()
    assert ours["policyType"] == "V1"
    assert ours["instantRpRetentionRangeInDays"] == 2
    _assert_same(_without(ours, *OUR_EXTRAS), _request("ProtectionPolicies_CreateOrUpdate_Simple.json"))


@needs_examples
def test_standard_weekly_with_monthly_matches_the_complex_example() -> None:
    spec = PolicySpec(
        name="testPolicy1",
        frequency="weekly",
        weekdays=("Thursday", "Monday", "Wednesday"),  # any order in, calendar order out
        time="10:00",
        time_zone="Pacific Standard Time",
        instant_restore_days=5,
        daily_retention_days=None,
        weekly_retention=WeeklyRetention(("Monday", "Wednesday", "Thursday"), 1),
        monthly_retention=MonthlyRetention(
            2, weeks_of_month=("Third", "First"), weekdays=("Wednesday", "Thursday")
        ),
    )
    ours = spec.to_arm_properties()
    # Yearly retention is not part of the rules format.
    theirs = _without(
        _request("ProtectionPolicies_CreateOrUpdate_Complex.json"), "retentionPolicy.yearlySchedule"
    )
    _assert_same(_without(ours, *OUR_EXTRAS), theirs)


@needs_examples
def test_enhanced_daily_matches_the_v2_example() -> None:
    spec = PolicySpec(
        name="v2-daily-sample",
        kind="enhanced",
        time="10:00",
        time_zone="India Standard Time",
        instant_restore_days=30,
        daily_retention_days=180,
        weekly_retention=WeeklyRetention(("Sunday",), 12),
        monthly_retention=MonthlyRetention(60, weeks_of_month=("First",), weekdays=("Sunday",)),
    )
    ours = spec.to_arm_properties()
    theirs = _without(
        _request("IaaS_v2_daily.json"),
        "retentionPolicy.yearlySchedule",  # not part of the rules format
        "snapshotConsistencyType",  # left to Azure's default (application-consistent when it can)
    )
    # The example's retention times (08:00) differ from its schedule time (10:00); ours keep the
    # schedule time, as the portal does. Compare them apart.
    for block in ("dailySchedule", "weeklySchedule", "monthlySchedule"):
        assert ours["retentionPolicy"][block]["retentionTimes"] == ["2026-01-01T10:00:00Z"]
        theirs["retentionPolicy"][block]["retentionTimes"] = ours["retentionPolicy"][block]["retentionTimes"]
    _assert_same(ours, theirs)


@needs_examples
def test_enhanced_weekly_follows_the_v2_schedule_shape() -> None:
    # No official V2 weekly example exists; the shape is the V2 daily one with weeklySchedule
    # (scheduleRunDays + scheduleRunTimes) as the SDK's SimpleSchedulePolicyV2 defines it.
    daily = _request("IaaS_v2_daily.json")["schedulePolicy"]
    spec = PolicySpec(
        name="w",
        kind="enhanced",
        frequency="weekly",
        weekdays=("Saturday",),
        daily_retention_days=None,
        weekly_retention=WeeklyRetention(("Saturday",), 8),
    )
    schedule = spec.to_arm_properties()["schedulePolicy"]
    assert schedule["schedulePolicyType"] == daily["schedulePolicyType"] == "SimpleSchedulePolicyV2"
    assert sorted(schedule) == sorted(["schedulePolicyType", "scheduleRunFrequency", "weeklySchedule"])
    assert schedule["scheduleRunFrequency"] == "Weekly"
    assert schedule["weeklySchedule"] == {
        "scheduleRunDays": ["Saturday"],
        "scheduleRunTimes": ["2026-01-01T22:00:00Z"],
    }


@needs_examples
def test_get_examples_differ_only_where_the_examples_leave_fields_out() -> None:
    v1 = PolicySpec(
        name="testPolicy1", time="02:00", time_zone="Pacific Standard Time", daily_retention_days=1
    )
    # The V1 Get example has no instantRpRetentionRangeInDays (real vaults return it).
    assert policy_differences(v1, _response("ProtectionPolicies_Get.json")) == [
        "instant restore: the rules say 2 days; the vault has not set"
    ]
    v2 = PolicySpec(
        name="v2-daily-sample",
        kind="enhanced",
        time="10:00",
        time_zone="Pacific Standard Time",
        instant_restore_days=30,
        daily_retention_days=1,
    )
    # The V2 Get example keeps its daily points at 02:00 though it runs at 10:00 (the rules keep
    # them at the run time), and is crash-consistent only (the rules leave Azure's default).
    assert policy_differences(v2, _response("v2-Get-Policy.json")) == [
        "daily retention: the rules say 1 day at 10:00; the vault has 1 day at 02:00",
        "snapshot consistency: the rules say default; the vault has OnlyCrashConsistent",
    ]


@needs_examples
def test_day_based_monthly_retention_shape() -> None:
    spec = PolicySpec(
        name="m",
        monthly_retention=MonthlyRetention(6, days_of_month=(15, 1), last_day=True),
        daily_retention_days=30,
    )
    monthly = spec.to_arm_properties()["retentionPolicy"]["monthlySchedule"]
    weekly_shape = _request("ProtectionPolicies_CreateOrUpdate_Complex.json")["retentionPolicy"][
        "monthlySchedule"
    ]
    assert set(monthly) == (set(weekly_shape) - {"retentionScheduleWeekly"}) | {"retentionScheduleDaily"}
    assert monthly["retentionScheduleFormatType"] == "Daily"
    assert monthly["retentionScheduleDaily"] == {
        "daysOfTheMonth": [
            {"date": 1, "isLast": False},
            {"date": 15, "isLast": False},
            {"date": 0, "isLast": True},
        ]
    }


# --- the SDK takes the body -------------------------------------------------------------------------


SPECS = {
    "standard-daily": PolicySpec(name="a"),
    "standard-weekly": PolicySpec(
        name="b",
        frequency="weekly",
        weekdays=("Sunday", "Wednesday"),
        instant_restore_days=5,
        daily_retention_days=None,
        weekly_retention=WeeklyRetention(("Sunday",), 4),
        monthly_retention=MonthlyRetention(12, weeks_of_month=("Last",), weekdays=("Wednesday",)),
    ),
    "enhanced-daily": PolicySpec(
        name="c",
        kind="enhanced",
        time="23:30",
        time_zone="W. Europe Standard Time",
        instant_restore_days=14,
        monthly_retention=MonthlyRetention(3, days_of_month=(1,), last_day=True),
    ),
    "enhanced-weekly": PolicySpec(
        name="d",
        kind="enhanced",
        frequency="weekly",
        weekdays=("Friday",),
        daily_retention_days=None,
        weekly_retention=WeeklyRetention(("Friday",), 52),
    ),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_sdk_model_reads_the_body(spec: PolicySpec) -> None:
    from azure.mgmt.recoveryservicesbackup import models

    resource = models.ProtectionPolicyResource({"properties": spec.to_arm_properties()})
    policy = resource.properties
    assert isinstance(policy, models.AzureIaaSVMProtectionPolicy)
    expected = models.SimpleSchedulePolicyV2 if spec.kind == "enhanced" else models.SimpleSchedulePolicy
    assert isinstance(policy.schedule_policy, expected)
    assert isinstance(policy.retention_policy, models.LongTermRetentionPolicy)
    assert policy.instant_rp_retention_range_in_days == spec.instant_restore_days
    # What the SDK gives back (datetimes for run times) compares equal to the rules.
    assert policy_differences(spec, policy.as_dict()) == []


# --- policy_differences ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_own_body_has_no_differences(spec: PolicySpec) -> None:
    assert policy_differences(spec, spec.to_arm_properties()) == []


def test_what_azure_adds_or_respells_is_no_difference() -> None:
    spec = SPECS["standard-weekly"]
    body = spec.to_arm_properties()
    body["protectedItemsCount"] = 7
    body["schedulePolicy"]["scheduleWeeklyFrequency"] = 0
    body["schedulePolicy"]["scheduleRunTimes"] = ["2018-01-24T22:00:00+00:00"]
    body["schedulePolicy"]["scheduleRunDays"] = ["wednesday", "SUNDAY"]
    body["retentionPolicy"]["weeklySchedule"]["retentionTimes"] = ["2021-12-17T22:00:00.0000000Z"]
    body["retentionPolicy"]["monthlySchedule"]["retentionScheduleDaily"] = None
    body["timeZone"] = "utc"
    body["schedulePolicy"]["scheduleRunFrequency"] = "weekly"
    body["instantRPDetails"] = {"azureBackupRGNamePrefix": None}
    body["resourceGuardOperationRequests"] = None
    assert policy_differences(spec, body) == []


Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Change:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = body
        for part in parents:
            node = node[part]
        del node[last]

    return change


FULL = PolicySpec(
    name="full",
    daily_retention_days=30,
    weekly_retention=WeeklyRetention(("Sunday",), 12),
    monthly_retention=MonthlyRetention(12, weeks_of_month=("First",), weekdays=("Sunday",)),
)

CHANGES: dict[str, tuple[Change, str]] = {
    "time": (_set("schedulePolicy.scheduleRunTimes", ["2026-01-01T23:00:00Z"]), "schedule:"),
    "frequency": (_set("schedulePolicy.scheduleRunFrequency", "Weekly"), "schedule:"),
    "time zone": (_set("timeZone", "W. Europe Standard Time"), "time zone:"),
    "instant restore": (_set("instantRpRetentionRangeInDays", 5), "instant restore:"),
    "policy type": (_set("policyType", "V2"), "policy type:"),
    "schedule type": (_set("schedulePolicy.schedulePolicyType", "SimpleSchedulePolicyV2"), "schedule"),
    "management type": (_set("backupManagementType", "AzureStorage"), "backup management type:"),
    "daily count": (_set("retentionPolicy.dailySchedule.retentionDuration.count", 31), "daily retention:"),
    "daily unit": (
        _set("retentionPolicy.dailySchedule.retentionDuration.durationType", "Weeks"),
        "daily retention:",
    ),
    "daily time": (
        _set("retentionPolicy.dailySchedule.retentionTimes", ["2026-01-01T01:00:00Z"]),
        "daily retention:",
    ),
    "daily gone": (_drop("retentionPolicy.dailySchedule"), "daily retention:"),
    "weekly count": (_set("retentionPolicy.weeklySchedule.retentionDuration.count", 13), "weekly retention:"),
    "weekly days": (_set("retentionPolicy.weeklySchedule.daysOfTheWeek", ["Saturday"]), "weekly retention:"),
    "weekly gone": (_drop("retentionPolicy.weeklySchedule"), "weekly retention:"),
    "monthly count": (
        _set("retentionPolicy.monthlySchedule.retentionDuration.count", 6),
        "monthly retention:",
    ),
    "monthly weeks": (
        _set("retentionPolicy.monthlySchedule.retentionScheduleWeekly.weeksOfTheMonth", ["Last"]),
        "monthly retention:",
    ),
    "monthly days": (
        _set("retentionPolicy.monthlySchedule.retentionScheduleWeekly.daysOfTheWeek", ["Monday"]),
        "monthly retention:",
    ),
    "monthly format": (
        _set("retentionPolicy.monthlySchedule.retentionScheduleFormatType", "Daily"),
        "monthly retention:",
    ),
    "monthly gone": (_drop("retentionPolicy.monthlySchedule"), "monthly retention:"),
    "yearly added": (
        _set(
            "retentionPolicy.yearlySchedule",
            {
                "retentionDuration": {"count": 10, "durationType": "Years"},
                "retentionTimes": ["2026-01-01T22:00:00Z"],
            },
        ),
        "yearly retention:",
    ),
    "crash consistent": (_set("snapshotConsistencyType", "OnlyCrashConsistent"), "snapshot consistency:"),
}


@pytest.mark.parametrize(("change", "label"), CHANGES.values(), ids=CHANGES.keys())
def test_each_changed_field_is_a_difference(change: Change, label: str) -> None:
    body = FULL.to_arm_properties()
    change(body)
    differences = policy_differences(FULL, body)
    assert len(differences) >= 1
    assert differences[0].startswith(label)
    assert "the rules say" in differences[0] and "the vault has" in differences[0]


def test_difference_is_readable() -> None:
    body = FULL.to_arm_properties()
    body["retentionPolicy"]["dailySchedule"]["retentionDuration"]["count"] = 14
    assert policy_differences(FULL, body) == [
        "daily retention: the rules say 30 days at 22:00; the vault has 14 days at 22:00"
    ]


def test_weekly_schedule_days_are_compared() -> None:
    spec = SPECS["standard-weekly"]
    body = spec.to_arm_properties()
    body["schedulePolicy"]["scheduleRunDays"] = ["Sunday"]
    assert policy_differences(spec, body) == [
        "schedule: the rules say Weekly on Sunday and Wednesday at 22:00;"
        " the vault has Weekly on Sunday at 22:00"
    ]


def test_enhanced_weekly_run_time_is_compared() -> None:
    spec = SPECS["enhanced-weekly"]
    body = spec.to_arm_properties()
    body["schedulePolicy"]["weeklySchedule"]["scheduleRunTimes"] = ["2026-01-01T21:30:00Z"]
    assert [d.split(":")[0] for d in policy_differences(spec, body)] == ["schedule"]


def test_garbage_from_azure_does_not_crash() -> None:
    differences = policy_differences(FULL, {"schedulePolicy": None, "retentionPolicy": "x"})
    assert any(d.startswith("schedule:") for d in differences)
    assert any(d.startswith("daily retention:") for d in differences)


# --- time zones -----------------------------------------------------------------------------------------


def test_canonical_time_zone() -> None:
    assert canonical_time_zone("w. europe standard time") == "W. Europe Standard Time"
    assert canonical_time_zone(" UTC ") == "UTC"
    assert canonical_time_zone("Europe/Amsterdam") is None


def _zone_data() -> bool:
    try:
        zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        return False
    return True


needs_zone_data = pytest.mark.skipif(not _zone_data(), reason="no IANA time zone data (install tzdata)")


@needs_zone_data
def test_every_windows_zone_maps_to_a_known_iana_zone() -> None:
    missing = []
    for windows, iana in WINDOWS_TIME_ZONES.items():
        try:
            zoneinfo.ZoneInfo(iana)
        except zoneinfo.ZoneInfoNotFoundError:
            missing.append(f"{windows} -> {iana}")
    assert missing == []


@needs_zone_data
@pytest.mark.parametrize(
    ("time_zone", "iana", "dst"),
    [
        ("UTC", "Etc/UTC", False),
        ("W. Europe Standard Time", "Europe/Berlin", True),
        ("Eastern Standard Time", "America/New_York", True),
        ("India Standard Time", "Asia/Kolkata", False),
        ("AUS Eastern Standard Time", "Australia/Sydney", True),
        ("UTC-11", "Etc/GMT+11", False),
    ],
)
def test_dst(time_zone: str, iana: str, dst: bool) -> None:
    spec = PolicySpec(name="p", time_zone=time_zone)
    assert spec.iana_time_zone == iana
    assert spec.has_dst is dst


@needs_zone_data
def test_zone_has_dst_in_a_given_year() -> None:
    assert zone_has_dst("Europe/Amsterdam", 2026) is True
    assert zone_has_dst("America/Phoenix", 2026) is False


def test_describe() -> None:
    assert FULL.describe() == (
        "standard, Daily at 22:00 UTC; instant restore 2 days; daily retention 30 days at 22:00;"
        " weekly retention 12 weeks on Sunday at 22:00;"
        " monthly retention 12 months on the First Sunday at 22:00"
    )


def test_docs_list_every_time_zone() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "RULES.md").read_text(encoding="utf-8")
    missing = [f"{w} -> {i}" for w, i in WINDOWS_TIME_ZONES.items() if f"| {w} | {i} |" not in docs]
    assert missing == []
