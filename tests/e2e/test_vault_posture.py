"""Vault security posture end to end on the local stack: the sweep's timer, queue and report as the
host runs them, the rules' posture section, armsim's vaults read and changed through the SDKs.

The sandbox's three vaults start as Azure makes them (soft delete on for 14 days, immutability off,
level Poor); the rules ask for soft delete, a 30-day retention, Locked immutability and level Good, and
allow the three reversible fixes. A dry run changes nothing; a real sweep turns soft delete on,
lengthens retention and makes immutability Unlocked (audited, announced), never Locked; Azure's
refusal of a fix is reported, audited and announced, and the sweep still finishes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E, app_settings
from tests.e2e.test_sweep import run_sweep, writes

RG = "rg-autopilot-backup"
VAULTS = ("rsv-autopilot-weu", "rsv-autopilot-weu-2", "rsv-autopilot-eus")
POSTURE = """
posture:
  minimumLevel: Good
  require: [softDelete, immutabilityLocked]
  softDeleteRetentionDays: 30
  fix: [softDelete, softDeleteRetention, immutability]
"""
POSTURE_WRITES = (
    "Vaults_Update",
    "Vaults_CreateOrUpdate",
    "BackupResourceVaultConfigs_Update",
    "BackupResourceVaultConfigs_Put",
)
POSTURE_KINDS = ("vault-soft-delete-off", "vault-security-control", "vault-security-level")


@pytest.fixture(scope="module")
def posture_rules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from devhost.stack import REPO

    path = tmp_path_factory.mktemp("posture-rules") / "rules.yaml"
    path.write_text((REPO / "rules" / "sandbox.yaml").read_text(encoding="utf-8") + POSTURE, encoding="utf-8")
    yield path


def posture_writes(e2e: E2E) -> dict[str, int]:
    return {k: v for k, v in writes(e2e).items() if k in POSTURE_WRITES}


def security(e2e: E2E, name: str) -> Any:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.recoveryservices import RecoveryServicesClient

    from armsim import SANDBOX_SUBSCRIPTION

    client = RecoveryServicesClient(DefaultAzureCredential(), SANDBOX_SUBSCRIPTION, base_url=e2e.url)
    return client.vaults.get(RG, name).properties.security_settings


def found(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Posture findings by (vault name, control)."""
    return {
        (f["target"].rsplit("/", 1)[-1], f["detail"]): f
        for f in report["findings"]
        if f["kind"] in POSTURE_KINDS
    }


def posture_events(e2e: E2E, since: int) -> list[dict[str, Any]]:
    events = e2e.control("GET", "/eventgrid/topics/autopilot-events")["events"][since:]
    return [e for e in events if e["type"].startswith("BackupAutopilot.Vault.Posture")]


def event_count(e2e: E2E) -> int:
    return len(e2e.control("GET", "/eventgrid/topics/autopilot-events")["events"])


def audit_rows(since: set[str] | None = None) -> list[dict[str, Any]]:
    """The posture rows of the audit table (those not in `since`, a set of RowKeys)."""
    from azure.core.exceptions import ResourceNotFoundError

    from autopilot.app import get_autopilot

    autopilot = get_autopilot()
    table = autopilot.clients.table(autopilot.settings.audit_table)
    try:
        rows = [dict(row) for row in table.list_entities()]
    except ResourceNotFoundError:  # no change audited yet: the table is made by the first
        return []
    return [
        row
        for row in rows
        if str(row.get("Action", "")).startswith("posture-") and row["RowKey"] not in (since or set())
    ]


def audit_keys() -> set[str]:
    return {row["RowKey"] for row in audit_rows()}


def test_a_dry_run_finds_the_gaps_and_changes_nothing(e2e: E2E, posture_rules: Path) -> None:
    e2e.backup.backup_resource_vault_configs.update(
        VAULTS[0], RG, {"properties": {"softDeleteFeatureState": "Disabled"}}
    )
    before, events = posture_writes(e2e), event_count(e2e)
    with app_settings(AUTOPILOT_RULES=str(posture_rules), AUTOPILOT_SWEEP_DRY_RUN="true"):
        report = run_sweep(e2e)
    assert report["summary"]["dryRun"] is True
    gaps = found(report)
    weu, weu2, eus = VAULTS
    expected = {
        (weu, "softDelete"): "would-fix",
        (weu, "immutability"): "would-fix",
        (weu, "immutabilityLocked"): "reported",
        (weu, "level"): "reported",
        **{(v, "softDeleteRetention"): "would-fix" for v in (weu2, eus)},
        **{(v, "immutability"): "would-fix" for v in (weu2, eus)},
        **{(v, "immutabilityLocked"): "reported" for v in (weu2, eus)},
        **{(v, "level"): "reported" for v in (weu2, eus)},
    }
    assert {key: f["action"] for key, f in gaps.items()} == expected
    assert gaps[(weu, "softDelete")]["kind"] == "vault-soft-delete-off"
    assert gaps[(weu, "softDelete")]["severity"] == "critical"
    assert "--immutability-state Locked" in gaps[(weu, "immutabilityLocked")]["remedy"]
    assert "at security level Poor" in gaps[(eus, "level")]["reason"]
    assert posture_writes(e2e) == before
    assert posture_events(e2e, events) == []
    assert security(e2e, weu).soft_delete_settings.soft_delete_state == "Disabled"
    rows = {row["vault"]: row for row in report["posture"]}
    assert set(rows) == set(VAULTS) and all(r["belowMinimum"] and r["level"] == "Poor" for r in rows.values())
    assert rows[weu]["softDelete"] == "Disabled" and rows[eus]["softDeleteRetentionDays"] == 14


def test_the_sweep_fixes_what_the_rules_allow_audits_announces_and_never_locks(
    e2e: E2E, posture_rules: Path
) -> None:
    before, events, audited = posture_writes(e2e), event_count(e2e), audit_keys()
    with app_settings(AUTOPILOT_RULES=str(posture_rules)):
        report = run_sweep(e2e)
    gaps = found(report)
    weu, weu2, eus = VAULTS
    assert gaps[(weu, "softDelete")]["action"] == "fixed"
    assert all(gaps[(v, "softDeleteRetention")]["action"] == "fixed" for v in (weu2, eus))
    assert all(gaps[(v, "immutability")]["action"] == "fixed" for v in VAULTS)
    assert all(gaps[(v, "immutabilityLocked")]["action"] == "reported" for v in VAULTS)
    assert all(gaps[(v, "level")]["action"] == "reported" for v in VAULTS)
    for name in VAULTS:
        settings = security(e2e, name)
        assert settings.immutability_settings.state == "Unlocked", name  # never Locked
        soft = settings.soft_delete_settings
        assert (soft.soft_delete_state, soft.soft_delete_retention_period_in_days) == ("Enabled", 30), name
    made = {k: v - before.get(k, 0) for k, v in posture_writes(e2e).items() if v != before.get(k, 0)}
    assert made == {"Vaults_Update": 3, "BackupResourceVaultConfigs_Update": 3}
    # Audited (vault, reason, outcome) and announced, one each per change.
    rows = audit_rows(audited)
    assert sorted(r["Action"] for r in rows) == sorted(
        ["posture-softDelete"] + ["posture-softDeleteRetention"] * 2 + ["posture-immutability"] * 3
    )
    assert all(r["Outcome"].startswith("done: ") and r["Reason"] and "/vaults/" in r["VmId"] for r in rows)
    announced = posture_events(e2e, events)
    assert len(announced) == 6 and {e["type"] for e in announced} == {"BackupAutopilot.Vault.PostureChanged"}
    assert {e["data"]["change"] for e in announced if e["data"]["control"] == "immutability"} == {
        "make immutability Unlocked"
    }
    # The report: a posture table in the page, the JSON and a CSV.
    page = e2e.app("GET", "/api/report").text
    assert "Vault security posture (3 of 3 below the rules' minimum)" in page
    csv = e2e.app("GET", "/api/report?format=posture-csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("vaultId,vault,") and len(lines) == 4

    # A second sweep has nothing left to change: the lock and the level stay a person's.
    before = posture_writes(e2e)
    with app_settings(AUTOPILOT_RULES=str(posture_rules)):
        again = found(run_sweep(e2e))
    assert posture_writes(e2e) == before
    assert {key: f["action"] for key, f in again.items()} == {
        **{(v, "immutabilityLocked"): "reported" for v in VAULTS},
        **{(v, "level"): "reported" for v in VAULTS},
    }


def test_azures_refusal_of_a_fix_is_reported_audited_and_announced(e2e: E2E, posture_rules: Path) -> None:
    eus = VAULTS[2]
    e2e.backup.backup_resource_vault_configs.update(
        eus, RG, {"properties": {"softDeleteFeatureState": "Disabled"}}
    )
    events, audited = event_count(e2e), audit_keys()
    e2e.control(
        "POST",
        "/faults",
        {"rate": 1.0, "kinds": {"403": 1}, "operations": ["BackupResourceVaultConfigs_Update"]},
    )
    try:
        with app_settings(AUTOPILOT_RULES=str(posture_rules)):
            report = run_sweep(e2e)
    finally:
        e2e.control("POST", "/faults", {"rate": 0.0})
    assert report["summary"]["failedUnits"] == []
    refused = found(report)[(eus, "softDelete")]
    assert refused["action"] == "fix-failed"
    assert "AuthorizationFailed" in refused["reason"] and "Backup Contributor" in refused["remedy"]
    assert security(e2e, eus).soft_delete_settings.soft_delete_state == "Disabled"
    (row,) = audit_rows(audited)
    assert row["Action"] == "posture-softDelete" and row["Outcome"].startswith("refused: AuthorizationFailed")
    (event,) = posture_events(e2e, events)
    assert event["type"] == "BackupAutopilot.Vault.PostureFixFailed" and event["subject"].endswith(eus)
