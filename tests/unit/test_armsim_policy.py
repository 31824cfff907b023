"""armsim's AzureIaasVM policy rules (armsim/backup/policy.py): validation and the schedule they set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from armsim.backup import policy
from armsim.core.errors import ArmError
from tests.bodies import v1_policy, v2_policy


def refusal(properties: dict[str, Any]) -> ArmError:
    with pytest.raises(ArmError) as err:
        policy.validate(properties)
    return err.value


def test_default_instant_restore_is_two_days() -> None:
    assert policy.validate(v1_policy(instant=None))["instantRpRetentionRangeInDays"] == 2


@pytest.mark.parametrize("days", [1, 5])
def test_standard_policy_takes_one_to_five_instant_restore_days(days: int) -> None:
    assert policy.validate(v1_policy(instant=days))["instantRpRetentionRangeInDays"] == days


@pytest.mark.parametrize("days", [0, 6])
def test_standard_policy_refuses_instant_restore_outside_one_to_five(days: int) -> None:
    error = refusal(v1_policy(instant=days))
    assert (error.status, error.code) == (400, "BMSUserErrorInvalidPolicyInput")
    assert error.details and f"{days} days" in error.details[0]["message"]


def test_enhanced_policy_takes_up_to_thirty_instant_restore_days() -> None:
    assert policy.validate(v2_policy(instant=30))["instantRpRetentionRangeInDays"] == 30
    assert refusal(v2_policy(instant=31)).code == "BMSUserErrorInvalidPolicyInput"


@pytest.mark.parametrize("run", ["22:15", "07:45", "00:01"])
def test_schedule_off_the_whole_or_half_hour_is_refused(run: str) -> None:
    error = refusal(v1_policy(run=run))
    assert error.code == "BMSUserErrorInvalidPolicyInput"
    assert error.details and run in error.details[0]["message"]


def test_standard_policy_retention_times_must_match_the_run_time() -> None:
    properties = v1_policy()
    properties["retentionPolicy"]["dailySchedule"]["retentionTimes"] = ["2026-01-01T08:00:00Z"]
    assert refusal(properties).code == "BMSUserErrorInvalidPolicyInput"


def test_enhanced_policy_retention_times_may_differ_from_the_run_time() -> None:
    """As in Azure's own enhanced-policy examples (IaaS_v2_daily.json, v2-Get-Policy.json)."""
    assert policy.validate(v2_policy(retention_time="08:00"))["policyType"] == "V2"


def test_weekly_schedule_needs_weekdays() -> None:
    properties = v1_policy()
    properties["schedulePolicy"]["scheduleRunFrequency"] = "Weekly"
    properties["retentionPolicy"] = {
        "retentionPolicyType": "LongTermRetentionPolicy",
        "weeklySchedule": {
            "daysOfTheWeek": ["Sunday"],
            "retentionTimes": ["2026-01-01T22:00:00Z"],
            "retentionDuration": {"count": 12, "durationType": "Weeks"},
        },
    }
    assert refusal(properties).code == "BMSUserErrorInvalidPolicyInput"
    properties["schedulePolicy"]["scheduleRunDays"] = ["Sunday"]
    assert policy.validate(properties)["schedulePolicy"]["scheduleRunDays"] == ["Sunday"]


def test_unknown_time_zone_is_refused() -> None:
    assert refusal(v1_policy(time_zone="Europe/Amsterdam")).code == "BMSUserErrorInvalidPolicyInput"


def test_hourly_schedule_is_not_implemented() -> None:
    properties = v2_policy()
    properties["schedulePolicy"] = {
        "schedulePolicyType": "SimpleSchedulePolicyV2",
        "scheduleRunFrequency": "Hourly",
        "hourlySchedule": {
            "interval": 4,
            "scheduleWindowDuration": 16,
            "scheduleWindowStartTime": "2026-01-01T08:00:00Z",
        },
    }
    error = refusal(properties)
    assert (error.status, error.code) == (501, "NotImplemented")


@pytest.mark.parametrize("month", [1, 7], ids=["winter", "summer"])
def test_schedule_is_not_shifted_for_daylight_saving_time(month: int) -> None:
    """22:00 W. Europe Standard Time runs at 21:00 UTC in January and in July alike."""
    properties = policy.validate(v1_policy(time_zone="W. Europe Standard Time"))
    after = dt.datetime(2026, month, 10, 12, 0, tzinfo=dt.UTC).timestamp()
    run = dt.datetime.fromtimestamp(policy.next_run(properties, after), dt.UTC)
    assert run == dt.datetime(2026, month, 10, 21, 0, tzinfo=dt.UTC)


def test_next_run_is_strictly_after_the_given_time() -> None:
    properties = policy.validate(v1_policy(run="22:00"))
    at_run = dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC).timestamp()
    assert policy.next_run(properties, at_run) == at_run + 86400


def test_weekly_schedule_runs_on_its_days_only() -> None:
    properties = v1_policy()
    properties["schedulePolicy"].update(scheduleRunFrequency="Weekly", scheduleRunDays=["Wednesday"])
    monday = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
    run = dt.datetime.fromtimestamp(policy.next_run(properties, monday.timestamp()), dt.UTC)
    assert (run.strftime("%A"), run.hour) == ("Wednesday", 22)


def test_retention_days_take_the_longest_rule_that_applies() -> None:
    properties = v1_policy(
        weeklySchedule={
            "daysOfTheWeek": ["Sunday"],
            "retentionTimes": ["2026-01-01T22:00:00Z"],
            "retentionDuration": {"count": 12, "durationType": "Weeks"},
        }
    )
    sunday = dt.datetime(2026, 3, 8, 22, 0, tzinfo=dt.UTC).timestamp()
    monday = dt.datetime(2026, 3, 9, 22, 0, tzinfo=dt.UTC).timestamp()
    assert policy.retention_days(properties, sunday) == 84
    assert policy.retention_days(properties, monday) == 30
