"""The rules' drills section: what it reads, and each mistake as a line-numbered error that says how
to fix it; the NCRONTAB schedule it starts rounds on."""

from __future__ import annotations

import datetime as dt

import pytest

from autopilot.rules import RulesError, parse_rules
from autopilot.rules.schedule import ScheduleError, parse_schedule
from tests.unit.test_rules import BASE

DRILLS = """\
drills:
  schedule: "0 30 2 * * Sun"
  rotationDays: 28
  sample:
    - {policy: gold, count: 2}
    - {tag: {name: app, equals: erp}, share: 25%}
  staging:
    - {region: westeurope, resourceGroup: rg-drills-weu, storageAccount: stdrillsweu01}
  recoveryPointTier: both
  policies:
    gold: {restoreTimeObjective: 45m, verify: boot}
    silver: {restoreTimeObjective: 4h}
  inFlightPerVault: 3
  restoredDisks: keep
"""


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def _error(old: str, new: str) -> tuple[RulesError, str]:
    assert old in DRILLS, old
    text = BASE + DRILLS.replace(old, new, 1)
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules/x.yaml")
    return caught.value, text


def test_the_drills_section_is_read() -> None:
    drills = parse_rules(BASE + DRILLS, "rules/x.yaml").drills
    assert drills is not None
    assert drills.schedule.expression == "0 30 2 * * Sun" and drills.rotation_days == 28
    gold, erp = drills.samples
    assert (gold.policy, gold.count, gold.size(10), gold.size(1)) == ("gold", 2, 2, 1)
    assert (erp.tag, erp.share, erp.size(10), erp.size(0)) == (("app", "erp"), 0.25, 3, 0)
    assert erp.covers("silver", {"App": "ERP"}) and not erp.covers("gold", {"app": "crm"})
    staging = drills.staging_for("00000000-0000-0000-0000-000000000001", "West Europe")
    assert staging is not None and staging.account_id("sub").endswith(
        "/resourceGroups/rg-drills-weu/providers/Microsoft.Storage/storageAccounts/stdrillsweu01"
    )
    assert drills.staging_for("00000000-0000-0000-0000-000000000001", "eastus") is None
    assert drills.tier == "both" and drills.in_flight_per_vault == 3 and drills.keep_restored_disks
    assert drills.policy("GOLD").restore_objective_seconds == 2700 and drills.policy("gold").verify_boot
    assert (
        drills.policy("silver").restore_objective_seconds == 14400 and not drills.policy("silver").verify_boot
    )
    assert drills.policy("gold-enhanced").restore_objective_seconds is None


def test_rules_without_drills_have_none() -> None:
    assert parse_rules(BASE, "rules/x.yaml").drills is None


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "fragment"),
    [
        (
            '"0 30 2 * * Sun"',
            '"0 30 2 * *  * Sun"',
            '  schedule: "',
            "drills.schedule",
            "has 7 fields; NCRONTAB has six",
        ),
        (
            '"0 30 2 * * Sun"',
            '"0 30 25 * * *"',
            '  schedule: "',
            "drills.schedule",
            "hour field has 25, out of range 0 to 23",
        ),
        ('"0 30 2 * * Sun"', '"0 0 0 31 2 *"', '  schedule: "', "drills.schedule", "never occurs"),
        ("rotationDays: 28", "rotationDays: 0", "rotationDays", "drills.rotationDays", "write 1 to 366 days"),
        (
            "{policy: gold, count: 2}",
            "{policy: bronze, count: 2}",
            "policy: bronze",
            "drills.sample[0].policy",
            "policy 'bronze' is not defined",
        ),
        ("{policy: gold, count: 2}", "{policy: gold}", "policy: gold}", "drills.sample[0]", "either count"),
        ("{policy: gold, count: 2}", "{count: 2}", "{count: 2}", "drills.sample[0]", "either a policy"),
        (
            "share: 25%",
            "share: 250%",
            "share: 250%",
            "drills.sample[1].share",
            "write a percentage above 0 and up to 100",
        ),
        (
            "storageAccount: stdrillsweu01",
            "storageAccount: St-Drills",
            "St-Drills",
            "drills.staging[0].storageAccount",
            "3 to 24 lower-case letters and digits",
        ),
        (
            "region: westeurope, resourceGroup",
            "region: northeurope, resourceGroup",
            "northeurope",
            "drills.staging[0]",
            "has no vault in the rules",
        ),
        (
            "recoveryPointTier: both",
            "recoveryPointTier: archive",
            "recoveryPointTier",
            "drills.recoveryPointTier",
            "use one of snapshot, vault, both",
        ),
        (
            "restoreTimeObjective: 45m",
            "restoreTimeObjective: soon",
            "soon",
            "drills.policies.gold.restoreTimeObjective",
            "e.g. 45m or 4h",
        ),
        (
            "verify: boot",
            "verify: ping",
            "verify: ping",
            "drills.policies.gold.verify",
            "use one of disks, boot",
        ),
        (
            "    silver: {restoreTimeObjective: 4h}",
            "    bronze: {restoreTimeObjective: 4h}",
            "bronze:",
            "drills.policies.bronze",
            "policy 'bronze' is not defined",
        ),
        (
            "inFlightPerVault: 3",
            "inFlightPerVault: 50",
            "inFlightPerVault",
            "drills.inFlightPerVault",
            "write 1 to 20",
        ),
        (
            "restoredDisks: keep",
            "restoredDisks: archive",
            "restoredDisks",
            "drills.restoredDisks",
            "use one of delete, keep",
        ),
        (
            "restoredDisks: keep",
            "restoreDisks: keep",
            "restoreDisks",
            "drills.restoreDisks",
            "did you mean 'restoredDisks'",
        ),
    ],
)
def test_each_mistake_is_a_line_numbered_error(
    old: str, new: str, needle: str, field: str, fragment: str
) -> None:
    error, text = _error(old, new)
    assert (error.path, error.field, error.line) == ("rules/x.yaml", field, _line(text, needle))
    assert fragment in str(error), str(error)


def test_a_missing_required_key_is_named() -> None:
    error, _ = _error("  rotationDays: 28\n", "")
    assert error.field == "drills" and "missing key 'rotationDays'" in str(error)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 2 * * *", "2026-12-06T07:00:00", "2026-12-07T02:00:00"),
        ("0 0 2 * * *", "2026-12-06T01:59:59", "2026-12-06T02:00:00"),
        ("0 30 2 * * Sun", "2026-12-06T02:30:00", "2026-12-13T02:30:00"),  # 6 December 2026 is a Sunday
        ("*/20 * * * * *", "2026-12-06T07:00:05", "2026-12-06T07:00:20"),
        ("0 0 0 29 Feb *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 15 10 * * 1-5", "2026-12-04T10:15:00", "2026-12-07T10:15:00"),  # Friday to Monday
        ("0 0 * * *", "2026-12-06T07:10:00", "2026-12-07T00:00:00"),  # five fields: second 0, midnight
    ],
)
def test_the_schedule_gives_the_next_occurrence(expression: str, after: str, expected: str) -> None:
    moment = dt.datetime.fromisoformat(after).replace(tzinfo=dt.UTC)
    assert parse_schedule(expression).next_after(moment) == dt.datetime.fromisoformat(expected).replace(
        tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    "expression", ["", "0 0 2 * *  * *", "0 60 * * * *", "0 0 2 * * Funday", "0 0 5-2 * * *", "0 */0 * * * *"]
)
def test_bad_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_boot_timeout_is_read_per_policy_with_a_default() -> None:
    text = BASE + DRILLS.replace("verify: boot}", "verify: boot, bootTimeout: 15m}", 1)
    drills = parse_rules(text, "rules/x.yaml").drills
    assert drills is not None
    assert drills.policy("gold").boot_timeout_seconds == 900
    assert drills.policy("silver").boot_timeout_seconds == 20 * 60  # the default


@pytest.mark.parametrize("bad", ["soon", "0s", "2d"])
def test_a_bad_boot_timeout_is_a_line_numbered_error(bad: str) -> None:
    error, text = _error("verify: boot}", f"verify: boot, bootTimeout: {bad}}}")
    assert error.line == _line(text, "bootTimeout") and "bootTimeout" in str(error), str(error)
    assert "up to 24h" in str(error)
