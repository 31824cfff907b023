"""State with a lifetime (autopilot/retention.py): every kind of row has one, documented in
docs/STATE.md and long enough for the product's own windows; the settings; the guards that keep an
expired row still in use. The pruning itself runs against Azurite in tests/e2e/test_pruning.py and
over a simulated month in tests/reliability/test_retention_soak.py."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from autopilot import retention
from autopilot.kernel.audit import _key_part
from autopilot.kernel.state import WRITTEN
from autopilot.retention import (
    CLAIM_GRACE,
    LEDGER_KEEP,
    NOT_PRUNED,
    PENDING_KEEP,
    PRUNE_BUDGET_SECONDS,
    SIGNATURE_KEEP,
    STATE_LIFETIMES,
    audit_cutoff,
    cutoffs,
)
from autopilot.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
STATE_CALL = re.compile(
    r"state\.(?:put_once|put|get_row|get|rows|delete|replace_row)\(\s*((?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*|\"[^\"]+\")"
)


def _constant(name: str, text: str) -> str | None:
    match = re.search(rf"^{name}\s*=\s*\"([^\"]+)\"", text, re.MULTILINE)
    return match[1] if match else None


def kinds_in_code() -> dict[str, list[str]]:
    """Every kind (PartitionKey) the app reads or writes in the state table, with the files."""
    sources = {
        p: p.read_text(encoding="utf-8")
        for p in [*ROOT.glob("autopilot/**/*.py"), *ROOT.glob("handlers/*.py")]
    }
    kinds: dict[str, list[str]] = {}
    for path, text in sources.items():
        if path.name in ("state.py", "retention.py"):
            continue
        found = set()
        for argument in STATE_CALL.findall(text):
            if argument.startswith('"'):
                found.add(argument.strip('"'))
                continue
            name = argument.rsplit(".", 1)[-1]  # engine.KIND: the constant KIND of another module
            value = _constant(name, text) or next(
                (v for other in sources.values() if (v := _constant(name, other))), None
            )
            assert value is not None, f"{path.name}: cannot tell which kind {argument} is"
            found.add(value)
        if "state.claimed(" in text:
            found.add("claim")
        for kind in found:
            kinds.setdefault(kind, []).append(path.relative_to(ROOT).as_posix())
    return kinds


# -- every kind has a lifetime ---------------------------------------------------------------------
def test_the_scan_finds_the_kinds_it_should() -> None:
    kinds = kinds_in_code()
    assert {"claim", "signature", "on-demand", "backup", "policy-edit", "pending", "job-alert"} <= set(kinds)
    assert "handlers/backup_now.py" not in kinds["signature"]  # the core, not the handler
    assert "autopilot/kernel/api.py" in kinds["signature"]  # shared by backup now and drills


def test_every_kind_the_app_writes_has_a_lifetime() -> None:
    known = {lifetime.kind for lifetime in STATE_LIFETIMES} | set(NOT_PRUNED)
    missing = {kind: files for kind, files in kinds_in_code().items() if kind not in known}
    assert missing == {}, "give these kinds a Lifetime in autopilot/retention.py and a row in docs/STATE.md"


def test_no_lifetime_is_for_a_kind_the_app_no_longer_uses() -> None:
    used = set(kinds_in_code())
    assert sorted({lifetime.kind for lifetime in STATE_LIFETIMES} - used) == []


def test_each_kind_has_one_lifetime() -> None:
    kinds = [lifetime.kind for lifetime in STATE_LIFETIMES]
    assert len(kinds) == len(set(kinds))
    assert not set(kinds) & set(NOT_PRUNED)


def test_docs_state_has_a_row_for_every_kind_and_the_audit_table() -> None:
    text = (ROOT / "docs" / "STATE.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", text, re.MULTILINE))
    expected = {lifetime.kind for lifetime in STATE_LIFETIMES} | set(NOT_PRUNED)
    assert sorted(expected - documented) == []
    assert "AUTOPILOT_AUDIT_RETENTION_DAYS" in text
    assert "refusal" in text


# -- lifetimes long enough for the product's windows -----------------------------------------------
def test_signatures_live_longer_than_a_replay_could_be_accepted() -> None:
    from autopilot.kernel.signing import SIGNATURE_WINDOW

    # A signature is accepted within SIGNATURE_WINDOW of its timestamp, which was within
    # SIGNATURE_WINDOW of when it was first seen: a replay later than both windows is refused anyway.
    assert 2 * SIGNATURE_WINDOW + dt.timedelta(minutes=5) <= SIGNATURE_KEEP


def test_the_on_demand_ledger_outlives_the_windows_that_read_it() -> None:
    from autopilot.backup_now.start import ABANDONED_AFTER
    from autopilot.sweep.job_checks import FIRST_LOOK_BACK

    assert dt.timedelta(days=1) + ABANDONED_AFTER <= LEDGER_KEEP  # the daily cap reads today's rows
    assert dt.timedelta(hours=24) < LEDGER_KEEP  # Event Grid redelivers for 24 h: one first backup
    assert (
        LEDGER_KEEP > FIRST_LOOK_BACK
    )  # the sweep retries a failed job once, seen again after a lost cursor


def test_policy_edits_live_for_the_budgets_window() -> None:
    from autopilot.protect.policies import EDIT_WINDOW

    assert cutoffs(Settings.from_env({}), NOW)["policy-edit"] == NOW - EDIT_WINDOW


def test_claims_are_pruned_only_well_after_their_lease() -> None:
    from autopilot.protect.carry_out import CLAIM_SECONDS

    assert dt.timedelta(seconds=CLAIM_SECONDS) * 10 < CLAIM_GRACE


def test_a_pending_change_outlives_event_grid_retries_and_many_sweeps() -> None:
    assert dt.timedelta(days=2) < PENDING_KEEP


def test_the_pruning_stops_before_the_function_timeout() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    assert (hours * 3600 + minutes * 60 + seconds) * 0.9 > PRUNE_BUDGET_SECONDS


def test_cutoffs_follow_the_settings() -> None:
    settings = replace(
        Settings.from_env({}), sweep_retention_days=7, backup_record_retention_days=14, audit_retention_days=3
    )
    cut = cutoffs(settings, NOW)
    assert cut["sweep-run"] == cut["job-alert"] == cut["sweep-history"] == NOW - dt.timedelta(days=7)
    assert cut["backup"] == NOW - dt.timedelta(days=14)
    assert cut["claim"] == NOW - CLAIM_GRACE
    assert cut["signature"] == NOW - SIGNATURE_KEEP


def test_the_audit_table_keeps_whole_days_and_deletes_only_older_rows() -> None:
    settings = replace(Settings.from_env({}), audit_retention_days=3)
    first_kept = audit_cutoff(settings, NOW)
    assert first_kept == dt.date(2026, 3, 12)
    # The newest row of the last deleted day is older than the retention.
    newest_deleted = dt.datetime.combine(first_kept, dt.time(), dt.UTC) - dt.timedelta(microseconds=1)
    assert NOW - newest_deleted > dt.timedelta(days=3)


def test_kinds_without_a_time_of_their_own_are_aged_by_when_they_were_written() -> None:
    by_kind = {lifetime.kind: lifetime.age for lifetime in STATE_LIFETIMES}
    assert (
        by_kind["pending"] == by_kind["announced"] == by_kind["job-alert"] == by_kind["sweep-fix"] == WRITTEN
    )
    assert by_kind["on-demand"] == "Started" and by_kind["backup"] == "Created"


# -- settings ----------------------------------------------------------------------------------------
def test_retention_settings_have_their_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.audit_retention_days == 400
    assert settings.backup_record_retention_days == 90
    assert settings.sweep_retention_days == 30


def test_retention_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "AUTOPILOT_AUDIT_RETENTION_DAYS": "730",
            "AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS": "30",
            "AUTOPILOT_SWEEP_RETENTION_DAYS": "",
        }
    )
    assert (settings.audit_retention_days, settings.backup_record_retention_days) == (730, 30)
    assert settings.sweep_retention_days == 30


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AUTOPILOT_AUDIT_RETENTION_DAYS", "0", "is out of range; use a number from 1 to 3650"),
        ("AUTOPILOT_AUDIT_RETENTION_DAYS", "a year", "is not a whole number"),
        ("AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS", "4000", "is out of range"),
        ("AUTOPILOT_SWEEP_RETENTION_DAYS", "-1", "is out of range"),
        ("AUTOPILOT_SWEEP_RETENTION_DAYS", "7.5", "is not a whole number"),
    ],
)
def test_a_bad_retention_setting_is_named_with_the_fix(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value) and message in str(caught.value)


def test_the_new_settings_are_in_the_template_and_the_readme() -> None:
    template = json.loads((ROOT / "local.settings.template.json").read_text())["Values"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, default in {
        "PRUNE_SCHEDULE": "0 30 3 * * *",
        "AUTOPILOT_AUDIT_RETENTION_DAYS": "400",
        "AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS": "90",
        "AUTOPILOT_SWEEP_RETENTION_DAYS": "30",
    }.items():
        assert template[name] == default
        assert f"`{name}`" in readme
    assert "`0 30 3 * * *`" in readme


def test_the_prune_schedule_runs_once_a_day() -> None:
    from devhost.ncrontab import parse

    schedule = parse(
        json.loads((ROOT / "local.settings.template.json").read_text())["Values"]["PRUNE_SCHEDULE"]
    )
    start = dt.datetime(2026, 3, 15, 0, 0, tzinfo=dt.UTC)
    first = schedule.next_after(start)
    assert (first.hour, first.minute) == (3, 30)
    assert schedule.next_after(first) - first == dt.timedelta(days=1)


# -- what keeps an expired row ----------------------------------------------------------------------
VAULT = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"


class FakeAzure:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.read: list[str] = []

    def get_job(self, vault: Any, job_id: str) -> Any:
        self.read.append(job_id)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return SimpleNamespace(id=job_id, status=self.outcome)


class FakeState:
    def __init__(self, records: list[dict[str, Any]] | None = None, held: set[str] | None = None):
        self.records = records or []
        self.held = held or set()
        self.queries: list[tuple[str, str]] = []

    def rows(self, kind: str, odata_filter: str = "") -> list[dict[str, Any]]:
        self.queries.append((kind, odata_filter))
        return [r for r in self.records if r.get("Status") == "Triggering"]

    def claim_held(self, key: str) -> bool:
        return key in self.held


def fake_autopilot(outcome: Any = "Completed", **state: Any) -> Any:
    rules = SimpleNamespace(
        vault_by_id=lambda vault_id: SimpleNamespace(name="rsv") if vault_id == VAULT else None
    )
    return SimpleNamespace(azure=FakeAzure(outcome), rules=rules, state=FakeState(**state))


def run(autopilot: Any) -> retention.PruneRun:
    return retention.PruneRun(autopilot, NOW)


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("record", "outcome", "kept"),
    [
        ({"Status": "Completed", "JobId": "j1", "CallbackStatus": "sent"}, "InProgress", None),
        ({"Status": "Failed", "JobId": "j1", "CallbackStatus": "none"}, "InProgress", None),
        ({"Status": "InProgress", "JobId": "j1"}, "InProgress", "its job is InProgress"),
        ({"Status": "InProgress", "JobId": "j1"}, "Cancelling", "its job is Cancelling"),
        ({"Status": "InProgress", "JobId": "j1"}, "Completed", None),
        (
            {"Status": "Completed", "JobId": "j1", "CallbackStatus": "pending"},
            "InProgress",
            "its job is InProgress",
        ),
        ({"Status": "InProgress", "JobId": "j1"}, ResourceNotFoundError("gone"), None),
        ({"Status": "InProgress", "JobId": "j1"}, http_error(404), None),
        ({"Status": "InProgress", "JobId": "j1"}, http_error(503), "its job could not be read (unknown)"),
        (
            {"Status": "InProgress", "JobId": "j1"},
            ServiceRequestError("no network"),
            "its job could not be read",
        ),
        ({"Status": "Waiting", "WaitingFor": "j0"}, "InProgress", "its job is InProgress"),
        ({"Status": "Waiting", "WaitingFor": "j0"}, "Completed", None),
        ({"Status": "Triggering"}, "InProgress", None),
        ({"Status": "Accepted"}, "InProgress", None),
    ],
)
def test_an_expired_backup_record_is_kept_while_its_job_runs(
    record: dict[str, Any], outcome: Any, kept: str | None
) -> None:
    autopilot = fake_autopilot(outcome)
    reason = retention._backup_running(run(autopilot), {"Vault": VAULT, **record})
    if kept is not None and "unknown" in kept:
        assert reason is not None and reason.startswith("its job could not be read")
    else:
        assert reason == kept


def test_a_record_whose_vault_the_rules_no_longer_name_is_not_read() -> None:
    autopilot = fake_autopilot("InProgress")
    assert (
        retention._backup_running(run(autopilot), {"Vault": "/other", "Status": "InProgress", "JobId": "j"})
        is None
    )
    assert autopilot.azure.read == []


def test_a_final_record_is_judged_without_azure() -> None:
    autopilot = fake_autopilot("InProgress")
    retention._backup_running(run(autopilot), {"Vault": VAULT, "Status": "Completed", "JobId": "j"})
    assert autopilot.azure.read == []


def test_a_ledger_row_is_kept_while_its_request_looks_for_its_job() -> None:
    triggering = [{"RequestId": "CHG1", "Status": "Triggering", "JobId": ""}]
    row = {"Purpose": "backup-now", "Key": "backup-now:CHG1"}
    assert retention._request_without_its_job(run(fake_autopilot(records=triggering)), row)
    found = [{"RequestId": "CHG1", "Status": "Triggering", "JobId": "j"}]
    assert retention._request_without_its_job(run(fake_autopilot(records=found)), row) is None
    assert retention._request_without_its_job(run(fake_autopilot()), row) is None
    first = {"Purpose": "first-backup", "Key": "first-backup:/subscriptions/x"}
    assert retention._request_without_its_job(run(fake_autopilot(records=triggering)), first) is None


def test_the_requests_still_triggering_are_read_once_a_run() -> None:
    autopilot = fake_autopilot(records=[{"RequestId": "CHG1", "Status": "Triggering"}])
    pruning = run(autopilot)
    for n in range(5):
        retention._request_without_its_job(pruning, {"Purpose": "backup-now", "Key": f"backup-now:CHG{n}"})
    assert autopilot.state.queries == [("backup", "Status eq 'Triggering'")]


def test_a_pending_change_is_kept_while_its_vm_is_claimed() -> None:
    vm = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
    assert retention._change_in_flight(run(fake_autopilot(held={f"protect:{vm}"})), {"Key": vm})
    assert retention._change_in_flight(run(fake_autopilot()), {"Key": vm}) is None


def test_a_claim_is_kept_while_its_lease_runs() -> None:
    assert retention._claim_held(run(fake_autopilot()), {"Expires": NOW + dt.timedelta(seconds=5)}) == "held"
    assert retention._claim_held(run(fake_autopilot()), {"Expires": NOW - dt.timedelta(hours=2)}) is None


# -- refusal counters -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("signature-expired", "signature-expired"),
        ("a/b\\c#d?e|f", "a_b_c_d_e_f"),
        ("x" * 300, "x" * 100),
        ("", "-"),
        ("line\nbreak\x00", "line_break_"),
    ],
)
def test_refusal_counter_keys_are_safe_row_keys(text: str, key: str) -> None:
    assert _key_part(text) == key
