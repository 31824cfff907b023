"""The sweep end to end on the local stack: the timer fans the estate out over Azurite's queue, the
queue trigger sweeps each unit, and the report lands in Blob storage and at GET /api/report.

The estate is seeded with one of each known problem; the sweep must find each exactly once, fix the
fixable ones, write nothing else, and a second sweep must find nothing new and write nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from armsim import SANDBOX_SUBSCRIPTION as SUB
from devhost.stack import REPO, Stack
from tests.armsim_support import sandbox_vault_policies
from tests.e2e.conftest import E2E, app_settings, wait_for

GROUP = "rg-sweep"
WEU = f"/subscriptions/{SUB}/resourceGroups/rg-autopilot-backup/providers/Microsoft.RecoveryServices/vaults/rsv-autopilot-weu"
EUS = WEU.replace("rsv-autopilot-weu", "rsv-autopilot-eus")
WRITES = ("CreateOrUpdate", "Trigger", "Refresh", "Update", "Patch", "Delete")
HEALTHY = 990  # with the 10 problem VMs: an estate of 1,000


def vm(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"


@pytest.fixture(scope="module")
def sweep_e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """The stack on an app directory whose host.json retries queue messages quickly (1 s visibility
    timeout, 3 dequeues before the poison queue), so that a poisoned unit shows within seconds."""
    app = tmp_path_factory.mktemp("sweep-app")
    shutil.copy(REPO / "function_app.py", app / "function_app.py")
    shutil.copytree(REPO / "rules", app / "rules")
    host = json.loads((REPO / "host.json").read_text())
    host["extensions"]["queues"].update(
        {"visibilityTimeout": "00:00:01", "maxPollingInterval": "00:00:01", "maxDequeueCount": 3}
    )
    (app / "host.json").write_text(json.dumps(host))
    settings = app / "local.settings.json"
    settings.write_text(
        json.dumps(
            {
                "Values": {
                    "AUTOPILOT_RETRY_TOTAL": "1",
                    "AUTOPILOT_RETRY_BACKOFF_MAX": "1",
                    "SWEEP_SCHEDULE": "0 0 0 1 1 *",
                }
            }
        )
    )
    stack = Stack.ephemeral(app / ".run", app_dir=app, settings_file=settings, scheduledBackups=False)
    stack.start()
    try:
        yield E2E(stack)
    finally:
        stack.stop()


def seed(e2e: E2E) -> None:
    policies = sandbox_vault_policies()
    gold, silver = {"backup-policy": "gold"}, {"backup-policy": "silver"}
    names = {
        "unprotected": gold,
        "wrong-policy": silver,
        "stopped": gold,
        "transient": gold,
        "needs-person": gold,
        "warnings": gold,
        "stale": gold,
        "orphan": gold,
        "untagged": {},
        "opted-out": {"backup-policy": "none"},
        **{f"healthy-{i:04d}": (gold if i % 3 else silver) for i in range(HEALTHY)},
    }
    vms = [
        {"subscriptionId": SUB, "resourceGroup": GROUP, "name": n, "location": "westeurope", "tags": t}
        for n, t in names.items()
    ]
    protected = [n for n in names if n not in ("unprotected", "untagged", "opted-out")]
    protections = [
        {
            "vmId": vm(n),
            "vaultId": WEU,
            "policy": "silver" if n.startswith("healthy") and names[n] == silver else "gold",
            "state": "ProtectionStopped" if n == "stopped" else "Protected",
        }
        for n in protected
    ]
    jobs = [
        {"vmId": vm(n), "outcome": "Completed", "hoursAgo": 3}
        for n in protected
        if n not in ("stale", "transient", "needs-person", "warnings", "stopped")
    ]
    jobs += [
        {"vmId": vm("stale"), "outcome": "Completed", "hoursAgo": 72},
        {"vmId": vm("transient"), "outcome": "Failed", "errorCode": "BackUpOperationFailedV2", "hoursAgo": 2},
        {
            "vmId": vm("needs-person"),
            "outcome": "Failed",
            "errorCode": "UserErrorGuestAgentStatusUnavailable",
            "hoursAgo": 2,
        },
        {"vmId": vm("warnings"), "outcome": "CompletedWithWarnings", "hoursAgo": 2},
        {"vmId": vm("stopped"), "outcome": "Completed", "hoursAgo": 3},
    ]
    e2e.control("POST", "/seed", {"policies": policies, "vms": vms, "protections": protections, "jobs": jobs})
    e2e.compute.virtual_machines.begin_delete(GROUP, "orphan").result()


def run_sweep(e2e: E2E) -> dict[str, Any]:
    """Run the timer function as the host's admin API does, and wait for the run's report."""
    from autopilot.app import get_autopilot

    reports = get_autopilot().reports
    before = {b.name for b in reports.list_blobs(name_starts_with="runs/") if b.name.endswith("/report.json")}
    master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
    assert (
        e2e.app("POST", "/admin/functions/sweep_timer", json={"input": ""}, headers=master).status_code == 202
    )
    new = wait_for(
        lambda: [
            b.name
            for b in reports.list_blobs(name_starts_with="runs/")
            if b.name.endswith("/report.json") and b.name not in before
        ],
        timeout=60,
    )
    assert new, "the sweep did not finish within 60 s"
    report: dict[str, Any] = json.loads(reports.download_blob(new[0]).readall())
    return report


def writes(e2e: E2E) -> dict[str, int]:
    return {k: v for k, v in e2e.control("GET", "/stats")["byOperation"].items() if k.endswith(WRITES)}


def test_the_sweep_finds_each_seeded_problem_once_and_fixes_the_fixable(sweep_e2e: E2E) -> None:
    e2e = sweep_e2e
    seed(e2e)
    before = writes(e2e)
    report = run_sweep(e2e)
    found = {(f["kind"], f["target"].rsplit("/", 1)[-1]) for f in report["findings"]}
    assert len(found) == len(report["findings"]), "a problem was reported twice"
    expected = {
        ("unprotected", "unprotected"),
        ("wrong-policy", "wrong-policy"),
        ("protection-stopped", "stopped"),
        ("job-failed", "transient"),
        ("job-failed", "needs-person"),
        ("job-completed-with-warnings", "warnings"),
        ("rpo-breach", "stale"),
        ("orphaned-item", "VM;iaasvmcontainerv2;rg-sweep;orphan"),
        ("dst-change-ahead", "policy:silver"),
        ("dst-change-ahead", "policy:silver-enhanced"),
    }
    found_without_dst = {f for f in found if f[0] != "dst-change-ahead"}
    assert found_without_dst == {f for f in expected if f[0] != "dst-change-ahead"}
    actions = {f["target"].rsplit("/", 1)[-1]: f["action"] for f in report["findings"]}
    assert actions["unprotected"] == actions["wrong-policy"] == actions["stopped"] == "fixed"
    assert actions["transient"] == "retried"
    assert actions["needs-person"] == actions["warnings"] == actions["stale"] == "reported"
    assert report["summary"]["vms"] == HEALTHY + 9  # the orphan's VM is gone
    assert report["summary"]["selected"] == HEALTHY + 7
    assert report["summary"]["compliant"] == HEALTHY + 4

    # The fixes are real: each fixed VM is protected as the rules say.
    container = "IaasVMContainer;iaasvmcontainerv2;rg-sweep;"
    for name, policy in (("unprotected", "gold"), ("wrong-policy", "silver"), ("stopped", "gold")):
        item = e2e.backup.protected_items.get(
            "rsv-autopilot-weu",
            "rg-autopilot-backup",
            "Azure",
            container + name,
            f"VM;iaasvmcontainerv2;rg-sweep;{name}",
        )
        props = AzureIaaSComputeVMProtectedItem(item.properties)
        assert props.protection_state != "ProtectionStopped" and str(props.policy_id).endswith(f"/{policy}")
    # Nothing else was written: three protection writes and one retry (plus protect's first backup
    # of the newly protected VM and the container refresh it needed).
    after = writes(e2e)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    assert delta == {
        "ProtectedItems_CreateOrUpdate": 3,
        "Backups_Trigger": 2,
        "ProtectionContainers_Refresh": 1,
    }, delta


def test_a_second_sweep_finds_nothing_new_and_writes_nothing(sweep_e2e: E2E) -> None:
    e2e = sweep_e2e
    before = writes(e2e)
    report = run_sweep(e2e)
    assert report["summary"]["newFindings"] == 0
    assert all(f["action"] == "reported" for f in report["findings"]), [
        f for f in report["findings"] if f["action"] != "reported"
    ]
    assert writes(e2e) == before


def test_the_report_page_is_served(sweep_e2e: E2E) -> None:
    e2e = sweep_e2e
    response = e2e.app("GET", "/api/report")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'id="compliance-chart"' in response.text and 'class="findings"' in response.text
    assert requests.get(f"{e2e.stack.host.url}/api/report", timeout=10).status_code == 401  # type: ignore[union-attr]
    as_json = e2e.app("GET", "/api/report?format=json").json()
    assert as_json["summary"]["runId"]
    wrong = e2e.app("GET", "/api/report?format=xml")
    assert wrong.status_code == 400 and wrong.headers["Content-Type"].startswith("application/problem+json")
    assert wrong.json()["field"] == "format" and "html, json, csv, posture-csv" in wrong.json()["detail"]


def test_a_unit_that_keeps_failing_lands_in_the_poison_queue_and_the_run_still_reports(
    sweep_e2e: E2E,
) -> None:
    e2e = sweep_e2e
    events_before = len(e2e.control("GET", "/eventgrid/topics/autopilot-events")["events"])
    e2e.control(
        "POST", "/faults", {"rate": 1.0, "kinds": {"500": 1}, "operations": ["VirtualMachines_ListAll"]}
    )
    try:
        report = run_sweep(e2e)
    finally:
        e2e.control("POST", "/faults", {"rate": 0.0})
    assert report["summary"]["failedUnits"] == [SUB]
    events = e2e.control("GET", "/eventgrid/topics/autopilot-events")["events"][events_before:]
    assert [e["type"] for e in events if e["type"].startswith("BackupAutopilot.Sweep")] == [
        "BackupAutopilot.Sweep.UnitFailed",
        "BackupAutopilot.Sweep.Completed",
    ]


def test_a_subscription_it_may_not_list_is_reported_and_its_protected_vms_are_not_called_orphans(
    sweep_e2e: E2E,
) -> None:
    e2e = sweep_e2e
    items = e2e.backup.backup_protected_items.list("rsv-autopilot-weu", "rg-autopilot-backup")
    assert next(iter(items), None) is not None, "the vault has protected items (seeded by the first test)"
    e2e.control(
        "POST", "/faults", {"rate": 1.0, "kinds": {"403": 1}, "operations": ["VirtualMachines_ListAll"]}
    )
    try:
        report = run_sweep(e2e)
    finally:
        e2e.control("POST", "/faults", {"rate": 0.0})
    kinds = [f["kind"] for f in report["findings"]]
    # Without the VM list nobody can tell a deleted VM from an unlisted one, so no item is an orphan.
    assert "orphaned-item" not in kinds, kinds.count("orphaned-item")
    no_access = [f for f in report["findings"] if f["kind"] == "no-access"]
    assert [f["target"] for f in no_access] == [f"/subscriptions/{SUB}"]
    assert (
        "AuthorizationFailed" in no_access[0]["reason"]
        and "Backup Autopilot VM protection" in no_access[0]["remedy"]
    )
    assert report["summary"]["failedUnits"] == []


def test_a_corrupt_message_is_set_aside(sweep_e2e: E2E) -> None:
    from autopilot.app import get_autopilot

    queue = get_autopilot().clients.queue(e2e_queue(sweep_e2e))
    from azure.storage.queue import TextBase64EncodePolicy

    encoded = TextBase64EncodePolicy().encode("{not a unit of work")
    queue.send_message(encoded)
    assert wait_for(lambda: not list(queue.peek_messages()), timeout=20), (
        "the corrupt message was not taken off the queue"
    )
    poison = get_autopilot().clients.queue(e2e_queue(sweep_e2e) + "-poison")
    assert not [m for m in poison.peek_messages() if "not a unit" in str(m.content)]


def e2e_queue(e2e: E2E) -> str:
    return str(e2e.stack.values.get("SWEEP_QUEUE") or "autopilot-sweep")


def test_the_report_has_the_job_history_from_azure_monitor_logs(sweep_e2e: E2E) -> None:
    report = json.loads(sweep_e2e.app("GET", "/api/report?format=json").text)
    history = report["jobHistory"]
    assert history is not None, "the stack configures the sandbox's Log Analytics workspace"
    assert "Error" not in history["summary"], history["summary"]
    assert int(history["summary"]["Backup items"]) >= HEALTHY
    worst = history["rows"][0]
    assert worst["VM"] in ("needs-person", "transient", "warnings") and worst["Success rate"] == "0.0 %"
    assert "Backup history" in sweep_e2e.app("GET", "/api/report").text


def test_policy_drift_beyond_the_edit_budget_is_reported_with_when_it_can_be_fixed(sweep_e2e: E2E) -> None:
    """Azure allows 50 policy creates or updates per vault in 24 hours; the autopilot spends at most
    its budget (here 2) and reports the rest with the time the budget allows them."""
    from autopilot.app import get_autopilot
    from autopilot.protect.policies import EDIT_KIND

    e2e = sweep_e2e
    drifted = [
        {**p, "properties": {**p["properties"], "instantRpRetentionRangeInDays": 1}}
        for p in sandbox_vault_policies()
        if p["vaultId"] == EUS
    ]
    e2e.control("POST", "/seed", {"policies": drifted})
    with app_settings(AUTOPILOT_POLICY_EDITS_PER_DAY="2"):
        state = get_autopilot().state
        earlier = len(state.rows(EDIT_KIND, "Vault eq @v", {"v": EUS.lower()}))
        assert earlier <= 2
        before = writes(e2e).get("ProtectionPolicies_CreateOrUpdate", 0)
        report = run_sweep(e2e)
        made = writes(e2e).get("ProtectionPolicies_CreateOrUpdate", 0) - before
    drift = [f for f in report["findings"] if f["kind"] == "policy-drift" and f["vault"] == EUS]
    assert len(drift) == len(drifted) == 4
    fixed = [f for f in drift if f["action"] == "fixed"]
    deferred = [f for f in drift if f["action"] == "reported"]
    assert len(fixed) == made == 2 - earlier
    assert len(deferred) == len(drifted) - made
    assert all(
        "policy edits of the last 24 hours are used up, so it can be fixed after" in f["reason"]
        for f in deferred
    )
