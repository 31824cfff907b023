"""The sweep's two inventory sources on the local stack: the same seeded estate gives the same findings
(kinds, targets, actions, reasons, remedies) and the same per-VM rows read from Azure Resource Graph as
read in ARM pages; AUTOPILOT_SUBSCRIPTIONS=* finds every subscription armsim's identity can see; with
Resource Graph denied (armsim's 403), `auto` falls back to ARM pages and the report says so; and a real
sweep by Resource Graph through the timer queues units only where there is work, makes the same writes
as ARM pages, and makes none when its index is stale (every write is preceded by an ARM read)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from armsim import SANDBOX_SUBSCRIPTION as SUB
from devhost.stack import REPO, Stack
from tests.armsim_support import sandbox_vault_policies
from tests.e2e.conftest import E2E, app_settings, wait_for

OTHER = "22222222-0000-4000-8000-000000000002"  # a second subscription: no vault in the rules
GROUP = "rg-sources"
VAULTS = (
    f"/subscriptions/{SUB}/resourceGroups/rg-autopilot-backup/providers/Microsoft.RecoveryServices/vaults"
)
WEU, EUS = f"{VAULTS}/rsv-autopilot-weu", f"{VAULTS}/rsv-autopilot-eus"
WRITES = ("CreateOrUpdate", "Trigger", "Refresh", "Update", "Patch", "Delete")


def vm(name: str, sub: str = SUB, group: str = GROUP) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    app = tmp_path_factory.mktemp("sources-app")
    shutil.copy(REPO / "function_app.py", app / "function_app.py")
    shutil.copytree(REPO / "rules", app / "rules")
    host = json.loads((REPO / "host.json").read_text())
    host["extensions"]["queues"].update({"visibilityTimeout": "00:00:01", "maxPollingInterval": "00:00:01"})
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
        e2e = E2E(stack)
        seed(e2e)
        yield e2e
    finally:
        stack.stop()


def seed(e2e: E2E) -> None:
    """One of each problem the sweep finds from the estate (besides the VM agent, which Resource
    Graph does not show: test_the_vm_agent_is_known_only_to_arm_pages), in two resource groups with
    VMs of one name, two regions, and a second subscription without a vault."""
    gold, silver = {"backup-policy": "gold"}, {"backup-policy": "silver"}
    spec: list[tuple[str, str, dict[str, str], str | None, str, dict[str, Any] | None, dict[str, Any]]] = [
        # name, region, tags, vault, policy / state, last job, extra VM fields
        ("unprotected", "westeurope", gold, None, "", None, {}),
        ("wrong-policy", "westeurope", silver, WEU, "gold", {"outcome": "Completed", "hoursAgo": 3}, {}),
        ("stopped", "westeurope", gold, WEU, "gold:ProtectionStopped", {"outcome": "Completed", "hoursAgo": 3}, {}),
        ("transient", "westeurope", gold, WEU, "gold", {"outcome": "Failed", "errorCode": "BackUpOperationFailedV2", "hoursAgo": 2}, {}),
        ("person", "eastus", gold, EUS, "gold", {"outcome": "Failed", "errorCode": "UserErrorFsFreezeFailed", "hoursAgo": 2}, {}),
        ("warnings", "westeurope", gold, WEU, "gold", {"outcome": "CompletedWithWarnings", "hoursAgo": 2}, {}),
        ("stale", "eastus", gold, EUS, "gold", {"outcome": "Completed", "hoursAgo": 72}, {}),
        ("orphan", "westeurope", gold, WEU, "gold", {"outcome": "Completed", "hoursAgo": 3}, {}),
        ("excluded", "westeurope", {**gold, "backup-exclude-luns": "1"}, WEU, "gold:exclude1",
         {"outcome": "Completed", "hoursAgo": 3}, {"dataDisks": [{"lun": 0}, {"lun": 1}]}),
        ("exclusion-changed", "westeurope", gold, WEU, "gold:exclude1",
         {"outcome": "Completed", "hoursAgo": 3}, {"dataDisks": [{"lun": 0}, {"lun": 1}]}),
        ("shared", "eastus", gold, None, "", None, {"dataDisks": [{"lun": 0, "shared": True}]}),
        ("nowhere", "japaneast", gold, None, "", None, {}),
        ("untagged", "westeurope", {}, None, "", None, {}),
        ("opted-out", "eastus", {"backup-policy": "none"}, None, "", None, {}),
        *((f"healthy-{i:03d}", ("westeurope", "eastus")[i % 2], gold if i % 3 else silver,
           (WEU, EUS)[i % 2], "gold" if i % 3 else "silver", {"outcome": "Completed", "hoursAgo": 3}, {})
          for i in range(60)),
    ]  # fmt: skip
    vms, protections, jobs = [], [], []
    for name, region, tags, vault, state, job, extra in spec:
        for group in (GROUP, f"{GROUP}-2") if name == "unprotected" else (GROUP,):  # one name, two groups
            vms.append(
                {
                    "subscriptionId": SUB,
                    "resourceGroup": group,
                    "name": name,
                    "location": region,
                    "tags": tags,
                    **extra,
                }
            )
            if vault:
                policy, _, rest = state.partition(":")
                protection: dict[str, Any] = {
                    "vmId": vm(name, group=group),
                    "vaultId": vault,
                    "policy": policy,
                }
                if rest == "ProtectionStopped":
                    protection["state"] = rest
                if rest == "exclude1":
                    protection["excludedLuns"] = [1]
                protections.append(protection)
            if job:
                jobs.append({"vmId": vm(name, group=group), **job})
    vms.append({"subscriptionId": OTHER, "resourceGroup": "rg-other", "name": "elsewhere", "location": "westeurope", "tags": {"backup-policy": "gold"}})  # fmt: skip
    e2e.control("POST", "/seed", {"subscriptions": [{"subscriptionId": OTHER, "displayName": "other"}]})
    e2e.control("POST", "/seed", {"policies": sandbox_vault_policies(), "vms": vms, "protections": protections, "jobs": jobs})  # fmt: skip
    e2e.compute.virtual_machines.begin_delete(GROUP, "orphan").result()
    e2e.control("POST", "/resourcegraph/refresh")  # the deletion is history too


def dry_sweep(inventory: str, **settings: str) -> dict[str, Any]:
    from autopilot.app import get_autopilot
    from autopilot.sweep.run import sweep_all

    with app_settings(AUTOPILOT_INVENTORY=inventory, AUTOPILOT_SUBSCRIPTIONS="*", **settings):
        return sweep_all(get_autopilot(), dry_run=True)


def key(finding: dict[str, Any]) -> tuple[str, ...]:
    return (
        finding["kind"],
        finding["target"].lower(),
        finding["action"],
        finding["reason"],
        finding["remedy"],
    )


def test_the_same_estate_gives_the_same_findings_by_resource_graph_and_by_arm_pages(stack: E2E) -> None:
    stack.control("POST", "/stats/reset")
    arm = dry_sweep("arm")
    arm_requests = stack.control("GET", "/stats")["byOperation"]
    stack.control("POST", "/stats/reset")
    graph = dry_sweep("resourcegraph")
    graph_requests = stack.control("GET", "/stats")["byOperation"]
    assert arm["summary"]["inventory"]["source"] == "arm"
    assert graph["summary"]["inventory"]["source"] == "resourcegraph"
    kinds = {f["kind"] for f in arm["findings"]}
    assert {
        "unprotected", "wrong-policy", "protection-stopped", "job-failed", "job-completed-with-warnings",
        "rpo-breach", "orphaned-item", "needs-attention",
    } <= kinds, kinds  # fmt: skip
    assert sorted(map(key, graph["findings"])) == sorted(map(key, arm["findings"]))
    assert sorted(graph["vms"]) == sorted(arm["vms"])
    for field in ("vms", "selected", "compliant", "findings", "byKind", "byAction"):
        assert graph["summary"][field] == arm["summary"][field], field
    # VMs of one name in two resource groups are two VMs, each named with its group.
    unprotected = [f for f in graph["findings"] if f["kind"] == "unprotected" and f["name"] == "unprotected"]
    assert sorted(f["resourceGroup"] for f in unprotected) == [GROUP, f"{GROUP}-2"]
    # The exclusions Resource Graph does not show were read from ARM (the two VMs with data disks).
    assert graph_requests.get("ProtectedItems_Get") == 2, graph_requests
    assert "VirtualMachines_ListAll" not in graph_requests and graph_requests["Resources"] >= 7
    assert arm_requests["VirtualMachines_ListAll"] == 2 and "Resources" not in arm_requests


def test_star_finds_every_subscription_the_identity_can_see(stack: E2E) -> None:
    for inventory in ("arm", "resourcegraph"):
        report = dry_sweep(inventory)
        assert sorted(u["unit"] for u in report["units"]) == sorted([SUB, OTHER]), inventory
        nowhere = [
            f for f in report["findings"] if f["target"].lower() == vm("elsewhere", OTHER, "rg-other").lower()
        ]
        assert [f["kind"] for f in nowhere] == ["needs-attention"], nowhere


def test_auto_falls_back_to_arm_pages_when_resource_graph_is_denied_and_the_report_says_so(
    stack: E2E,
) -> None:
    from autopilot.sweep.report import render_html

    stack.control("POST", "/faults", {"rate": 1.0, "kinds": {"403": 1}, "operations": ["Resources"]})
    try:
        report = dry_sweep("auto")
    finally:
        stack.control("POST", "/faults", {"rate": 0.0})
    inventory = report["summary"]["inventory"]
    assert inventory["source"] == "arm"
    assert (
        "AuthorizationFailed" in inventory["reason"]
        and "Microsoft.ResourceGraph/resources/read" in inventory["reason"]
    )
    page = render_html(report)
    assert "Read from Azure Resource Manager in pages" in page and "AuthorizationFailed" in page
    assert dry_sweep("auto")["summary"]["inventory"]["source"] == "resourcegraph"


def test_the_vm_agent_is_known_only_to_arm_pages(stack: E2E) -> None:
    """Resource Graph shows no VM agent (armsim/SUPPORTED_OPERATIONS.md): a protected VM without its agent is
    an agent-problem by ARM pages; by Resource Graph its failing backups show it."""
    stack.control("POST", "/vms/state", {"id": vm("healthy-001"), "agent": "Missing"})
    stack.control("POST", "/resourcegraph/refresh")
    try:
        arm = {(f["kind"], f["name"]) for f in dry_sweep("arm")["findings"]}
        graph = {(f["kind"], f["name"]) for f in dry_sweep("resourcegraph")["findings"]}
    finally:
        stack.control("POST", "/vms/state", {"id": vm("healthy-001"), "agent": "Ready"})
    assert ("agent-problem", "healthy-001") in arm
    assert graph == arm - {("agent-problem", "healthy-001")}


def run_timer(e2e: E2E) -> dict[str, Any]:
    from autopilot.app import get_autopilot

    reports = get_autopilot().reports
    before = {b.name for b in reports.list_blobs(name_starts_with="runs/") if b.name.endswith("/report.json")}
    master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
    assert (
        e2e.app("POST", "/admin/functions/sweep_timer", json={"input": ""}, headers=master).status_code == 202
    )
    new = wait_for(
        lambda: [b.name for b in reports.list_blobs(name_starts_with="runs/")
                 if b.name.endswith("/report.json") and b.name not in before],
        timeout=90,
    )  # fmt: skip
    assert new, "the sweep did not finish within 90 s"
    return dict(json.loads(reports.download_blob(new[0]).readall()))


def writes(e2e: E2E) -> dict[str, int]:
    return {k: v for k, v in e2e.control("GET", "/stats")["byOperation"].items() if k.endswith(WRITES)}


def test_a_real_sweep_by_resource_graph_fixes_through_units_and_a_stale_index_writes_nothing(
    stack: E2E,
) -> None:
    with app_settings(AUTOPILOT_INVENTORY="resourcegraph", AUTOPILOT_SUBSCRIPTIONS="*"):
        before = writes(stack)
        report = run_timer(stack)
        after = writes(stack)
        units = {u["unit"]: u for u in report["units"]}
        assert set(units) == {SUB, OTHER} and all(u["inventory"] == "resourcegraph" for u in units.values())
        actions = {(f["kind"], f["name"], f["resourceGroup"]): f["action"] for f in report["findings"]}
        assert actions[("unprotected", "unprotected", GROUP)] == "fixed"
        assert actions[("unprotected", "unprotected", f"{GROUP}-2")] == "fixed"
        assert actions[("wrong-policy", "wrong-policy", GROUP)] == "fixed"
        assert actions[("protection-stopped", "stopped", GROUP)] == "fixed"
        assert actions[("job-failed", "transient", GROUP)] == "retried"
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        # Protected: the two 'unprotected' and 'shared'; moved to its policy: 'wrong-policy'; resumed:
        # 'stopped'; its exclusions corrected: 'exclusion-changed'.
        assert delta["ProtectedItems_CreateOrUpdate"] == 6, delta
        # The index is stale now (armsim's lag is 30 s): the next sweep sees the fixed VMs as they were,
        # and the ARM read before each write finds them fixed: nothing is written again.
        again = run_timer(stack)
        assert writes(stack) == after
        fixed_again = [f for f in again["findings"] if f["action"] in ("fixed", "fix-failed")]
        assert all("meanwhile" in f["reason"] for f in fixed_again if f["action"] == "fixed"), fixed_again
        stack.control("POST", "/resourcegraph/refresh")
        third = run_timer(stack)
        assert writes(stack) == after
        assert not [f for f in third["findings"] if f["action"] != "reported"]
