"""Restore drills end to end on the local stack: POST /api/drills and GET /api/drills/{id} as a
ticketing tool or an operator calls them, the drill queue carrying drills on, the timer's rounds, and
what is left in armsim's staging group and staging account afterwards (nothing)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.e2e.conftest import E2E, wait_for

GROUP = "rg-e2e-drills"
STAGING = "rg-autopilot-drills-weu"
ACCOUNT = "stautopilotdrillweu"
VAULT = "rsv-autopilot-weu"


def vm_id(e2e: E2E, name: str) -> str:
    subscription = e2e.stack.values["AUTOPILOT_SUBSCRIPTIONS"]
    return f"/subscriptions/{subscription}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"


def protected_and_backed_up(
    e2e: E2E, name: str, tags: dict[str, str] | None = None, **properties: Any
) -> str:
    """A gold VM that protect-on-create protected and whose first backup completed (a point to drill)."""
    e2e.create_vm(GROUP, name, "westeurope", {"backup-policy": "gold", **(tags or {})}, **properties)
    assert wait_for(lambda: e2e.item(VAULT, GROUP, name), timeout=30), "protect-on-create protects the VM"

    def backed_up() -> bool:
        item = e2e.item(VAULT, GROUP, name)
        if item is None:
            return False
        from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

        return AzureIaaSComputeVMProtectedItem(item.properties).last_backup_status == "Completed"

    assert wait_for(backed_up, timeout=30), "its first backup completes"
    return vm_id(e2e, name)


def start_drill(e2e: E2E, vm: str) -> dict[str, Any]:
    response = e2e.app("POST", "/api/drills", data=json.dumps({"vm": vm, "reason": "e2e"}).encode())
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"/api/drills/{body['id']}"
    return body


def finished(e2e: E2E, drill_id: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = e2e.app("GET", f"/api/drills/{drill_id}").json()
        return body if body["status"] in ("Passed", "Failed") else None

    result = wait_for(done, timeout=timeout, interval=0.5)
    assert result, f"drill {drill_id} ends: {e2e.app('GET', f'/api/drills/{drill_id}').text}"
    return result


def staging_disks(e2e: E2E) -> list[str]:
    return [d.name for d in e2e.compute.disks.list_by_resource_group(STAGING)]


def staging_containers(e2e: E2E) -> list[str]:
    url = f"{e2e.url}/{ACCOUNT}.blob/?comp=list"
    token = _storage_token(e2e)
    response = requests.get(
        url,
        headers={"Authorization": f"Bearer {token}", "x-ms-version": "2025-01-05"},
        verify=str(e2e.stack.armsim.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [part.split("</Name>")[0] for part in response.text.split("<Name>")[1:]]


def _storage_token(e2e: E2E) -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token("https://storage.azure.com/.default").token


def test_a_drill_restores_verifies_times_and_leaves_nothing_behind(e2e: E2E) -> None:
    vm = protected_and_backed_up(e2e, "drill-gold-1")
    accepted = start_drill(e2e, vm)
    assert accepted["status"] == "Queued" and accepted["vm"] == vm and accepted["tier"] == "snapshot"
    again = start_drill(e2e, vm)
    assert again["id"] == accepted["id"], "a drill in flight for the VM is answered, not started twice"
    drill = finished(e2e, accepted["id"])
    assert drill["status"] == "Passed", json.dumps(drill, indent=1)
    assert drill["outcome"] == "passed" and drill["jobId"] and drill["recoveryPoint"]
    assert [c["name"] for c in drill["checks"] if c["passed"]] == [
        "one disk per backed-up disk",
        "excluded LUNs absent",
        "sizes as the source",
        "configuration blob present",
    ], drill["checks"]
    assert len(drill["restoredDisks"]) == 1  # the OS disk: the VM has no data disks
    # The restore job's own duration: armsim's 6 s transfer and 2 s finish.
    assert drill["restoreSeconds"] == pytest.approx(8, abs=2)
    assert drill["objectiveSeconds"] == 1800 and drill["withinObjective"] is True
    assert drill["cleanedUp"] is True
    assert staging_disks(e2e) == [], "the restored disks are deleted"
    assert staging_containers(e2e) == [], "the restore's blobs are deleted"
    audit = [e for e in _audit(e2e) if e.get("DrillId") == drill["id"]]
    outcomes = [e["Outcome"] for e in audit]
    assert any(o.startswith("restore job ") and "started" in o for o in outcomes), outcomes
    assert any(o.startswith("drill passed") for o in outcomes), outcomes
    events = [e for e in e2e.outcome_events("drill-gold-1") if e["type"] == "BackupAutopilot.Drill.Passed"]
    assert events and events[-1]["data"]["id"] == drill["id"] and events[-1]["data"]["restoreSeconds"]


def _audit(e2e: E2E) -> list[dict[str, Any]]:
    from azure.data.tables import TableClient

    table = TableClient.from_connection_string(e2e.stack.values["AzureWebJobsStorage"], "autopilotaudit")
    return [dict(e) for e in table.list_entities()]


def test_a_vm_with_an_excluded_lun_restores_without_it(e2e: E2E) -> None:
    disks = {
        "dataDisks": [
            {"lun": 0, "diskSizeGB": 64, "createOption": "Empty"},
            {"lun": 1, "diskSizeGB": 32, "createOption": "Empty"},
        ]
    }
    vm = protected_and_backed_up(
        e2e, "drill-excl-1", {"backup-exclude-luns": "1"}, storageProfile=_storage(disks)
    )
    drill = finished(e2e, start_drill(e2e, vm)["id"])
    assert drill["status"] == "Passed", json.dumps(drill, indent=1)
    assert len(drill["restoredDisks"]) == 2, drill["restoredDisks"]  # the OS disk and LUN 0, not LUN 1
    checks = {c["name"]: c for c in drill["checks"]}
    assert checks["excluded LUNs absent"]["expected"] == "no disk of LUN(s) [1]"
    assert checks["excluded LUNs absent"]["found"] == "data disks at LUN(s) [0]"
    assert checks["sizes as the source"]["expected"] == "OS 30 GB, LUN 0 64 GB"
    assert staging_disks(e2e) == []


def _storage(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "imageReference": {
            "publisher": "Canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
        },
        "osDisk": {"createOption": "FromImage"},
        **extra,
    }


def test_a_forced_restore_failure_is_a_finding_with_class_and_remedy(e2e: E2E) -> None:
    from tests.e2e.test_sweep import run_sweep

    vm = protected_and_backed_up(e2e, "drill-fail-1")
    e2e.control(
        "POST",
        "/jobs/outcomes",
        {"vm": vm, "operation": "Restore", "outcome": "Failed", "errorCode": "UserErrorInstantRpNotFound"},
    )
    drill = finished(e2e, start_drill(e2e, vm)["id"])
    assert (drill["status"], drill["outcome"]) == ("Failed", "restore-failed"), json.dumps(drill, indent=1)
    assert drill["error"] == {
        "code": "UserErrorInstantRpNotFound",
        "class": "needs-a-person",
        "remedy": "The recovery point's snapshot is gone: restore from another point (one held in the vault tier).",
    }
    assert drill["restoredDisks"] == [] and staging_disks(e2e) == []
    report = run_sweep(e2e)
    [finding] = [f for f in report["findings"] if f["kind"] == "drill-restore-failed" and f["target"] == vm]
    assert "UserErrorInstantRpNotFound (needs-a-person)" in finding["reason"]
    assert finding["remedy"] == drill["error"]["remedy"] and finding["severity"] == "critical"
    gold = next(p for p in report["drills"]["byPolicy"] if p["policy"] == "gold")
    assert gold["drills"] >= 2 and gold["passed"] < gold["drills"]


def test_a_drill_killed_half_way_is_cleaned_up_by_the_next_run(e2e: E2E, tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    from autopilot.app import get_autopilot
    from tests.e2e.conftest import app_settings

    vm = protected_and_backed_up(e2e, "drill-kill-1")
    e2e.control("POST", "/config", {"restoreTransferSeconds": 12.0})
    try:
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autopilot",
                "drill",
                vm,
                "--wait",
                "--settings",
                str(e2e.stack.settings_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        state = get_autopilot().state

        def restoring() -> dict[str, Any] | None:
            active = state.get("drill-active", vm)
            record = state.get("drill", str(active["Drill"])) if active else None
            return record if record and record.get("Status") == "Restoring" else None

        record = wait_for(restoring, timeout=30, interval=0.2)
        assert record, (
            f"the CLI's drill reaches the restore: {cli.poll()} {cli.stderr.read1() if cli.poll() is not None else ''}"
        )  # type: ignore[union-attr]
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(timeout=10)
        # The restore goes on in Azure and makes its disks: left behind, were nothing to take over.
        assert wait_for(lambda: staging_disks(e2e), timeout=30), "the cut-off drill's restore makes its disks"
        with app_settings(AUTOPILOT_DRILL_STALE_SECONDS="1"):
            time.sleep(1.5)
            master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
            assert (
                e2e.app(
                    "POST", "/admin/functions/drill_timer", json={"input": ""}, headers=master
                ).status_code
                == 202
            )
            drill = finished(e2e, str(record["Id"]))
        assert drill["status"] == "Passed" and drill["cleanedUp"], json.dumps(drill, indent=1)
        assert staging_disks(e2e) == [] and staging_containers(e2e) == []
    finally:
        e2e.control("POST", "/config", {"restoreTransferSeconds": 6.0})


def _boot_rules(tmp_path: Any, timeout: str) -> str:
    """The sandbox rules with the gold policy's drills at `verify: boot` and the given bootTimeout."""
    from tests.armsim_support import REPO

    text = (REPO / "rules" / "sandbox.yaml").read_text()
    old = "gold: {restoreTimeObjective: 30m}"
    assert old in text
    path = tmp_path / "rules-boot.yaml"
    path.write_text(
        text.replace(old, f"gold: {{restoreTimeObjective: 30m, verify: boot, bootTimeout: {timeout}}}")
    )
    return str(path)


def _network(e2e: E2E) -> Any:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.network import NetworkManagementClient

    subscription = e2e.stack.values["AUTOPILOT_SUBSCRIPTIONS"]
    return NetworkManagementClient(
        DefaultAzureCredential(), subscription, base_url=e2e.url, polling_interval=0.1
    )


def leftovers(e2e: E2E, drill_id: str) -> list[str]:
    """What is left in the staging group of a drill: VMs, the drill's NIC and VNet, disks."""
    from azure.core.exceptions import ResourceNotFoundError

    left = [f"vm {v.name}" for v in e2e.compute.virtual_machines.list(STAGING)]
    left += [f"disk {d}" for d in staging_disks(e2e)]
    network = _network(e2e)
    for kind, get in (("nic", network.network_interfaces.get), ("vnet", network.virtual_networks.get)):
        try:
            get(STAGING, f"drill-{drill_id}-{kind}")
            left.append(f"{kind} drill-{drill_id}-{kind}")
        except ResourceNotFoundError:
            pass
    return left


def test_a_boot_drill_boots_the_restored_vm_times_it_and_leaves_nothing_behind(
    e2e: E2E, tmp_path: Any, record_property: Any
) -> None:
    from tests.e2e.conftest import app_settings

    vm = protected_and_backed_up(e2e, "drill-boot-1")
    e2e.control("POST", "/config", {"bootSeconds": 4.0})  # armsim's boot, short for the test
    before = e2e.control("GET", "/stats")["byOperation"]
    try:
        with app_settings(AUTOPILOT_RULES=_boot_rules(tmp_path, "2m")):
            drill = finished(e2e, start_drill(e2e, vm)["id"], timeout=120)
    finally:
        e2e.control("POST", "/config", {"bootSeconds": 120.0})
    after = e2e.control("GET", "/stats")["byOperation"]
    assert drill["status"] == "Passed", json.dumps(drill, indent=1)
    boot = drill["boot"]
    assert drill["verifyBoot"] and boot["booted"] and boot["cleanedUp"], boot
    assert boot["bootSeconds"] >= 3.5, "the agent reports Ready once the guest has booted (4 s)"
    # The time to a booted VM is the drill's restore time: the restore job's and the boot's.
    assert drill["restoreSeconds"] == boot["timeToBootedVmSeconds"]
    assert drill["restoreSeconds"] == pytest.approx(boot["jobSeconds"] + boot["bootSeconds"], abs=0.2)
    assert leftovers(e2e, drill["id"]) == [], "no VM, NIC, VNet or disk is left in the staging group"
    audit = [e["Outcome"] for e in _audit(e2e) if e.get("DrillId") == drill["id"]]
    assert any(o.startswith("boot: isolated network") for o in audit), audit
    assert any(o.startswith("boot: agent Ready") for o in audit), audit
    assert any(o.startswith("boot: VM, NIC and network") for o in audit), audit
    requests_made = {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }
    network_ops = {
        k: v
        for k, v in requests_made.items()
        if k.startswith(("VirtualNetworks_", "NetworkInterfaces_", "Network_"))
    }
    assert (
        network_ops.get("VirtualNetworks_CreateOrUpdate") == 1
        and network_ops.get("NetworkInterfaces_Delete") == 1
    )
    record_property("arm_requests_of_the_boot_drill", requests_made)


def test_a_restored_vm_that_never_boots_fails_the_drill_and_leaves_nothing_behind(
    e2e: E2E, tmp_path: Any
) -> None:
    from tests.e2e.conftest import app_settings
    from tests.e2e.test_sweep import run_sweep

    vm = protected_and_backed_up(e2e, "drill-noboot-1")
    e2e.control("POST", "/vms/boot", {"source": vm, "outcome": "NeverBoots"})
    with app_settings(AUTOPILOT_RULES=_boot_rules(tmp_path, "5s")):
        drill = finished(e2e, start_drill(e2e, vm)["id"], timeout=120)
        assert (drill["status"], drill["outcome"]) == ("Failed", "boot-failed"), json.dumps(drill, indent=1)
        assert "did not report its VM agent Ready within 5 s" in drill["detail"]
        assert drill["boot"]["booted"] is False and drill["boot"]["cleanedUp"] is True
        assert leftovers(e2e, drill["id"]) == []
        report = run_sweep(e2e)
    [finding] = [f for f in report["findings"] if f["kind"] == "drill-boot-failed" and f["target"] == vm]
    assert finding["severity"] == "critical" and "did not report its VM agent Ready" in finding["reason"]
    assert "boot diagnostics" in finding["remedy"]
    gold = next(p for p in report["drills"]["byPolicy"] if p["policy"] == "gold")
    assert gold["bootDrills"] >= 2 and gold["medianTimeToBootedVmSeconds"], gold


def test_unknown_and_bad_drill_requests_are_refused_clearly(e2e: E2E) -> None:
    response = e2e.app("POST", "/api/drills", data=b'{"vm": "not-a-vm"}')
    assert response.status_code == 400 and response.json()["field"] == "vm"
    response = e2e.app("GET", "/api/drills/0123456789abcdef0123")
    assert response.status_code == 404
    unauthenticated = requests.get(f"{e2e.stack.host.url}/api/drills/0123456789abcdef0123", timeout=10)  # type: ignore[union-attr]
    assert unauthenticated.status_code == 401
    time.sleep(0)


def test_the_report_shows_the_drills_section_in_headless_chromium(e2e: E2E, tmp_path: Any) -> None:
    """After the drills above (passed, excluded LUN, failed, taken over, booted, never booted), the sweep's page as GET
    /api/report serves it, loaded by headless Chromium: the drills per policy and per VM."""
    from tests.browser_support import dump_dom, require_chromium
    from tests.e2e.test_sweep import run_sweep

    chromium = require_chromium()
    run_sweep(e2e)
    assert e2e.stack.host is not None
    url = f"{e2e.stack.host.url}/api/report?code={e2e.stack.values['DEVHOST_FUNCTION_KEY']}"
    dom, run = dump_dom(chromium, url)
    assert dom.find("section", id="drills").find("h2").text() == "Restore drills (the last 30 days)"
    head, rows = (dom.find("table", class_="drills-by-policy").rows(part) for part in ("thead", "tbody"))
    assert head == [
        [
            "policy",
            "drills",
            "passed",
            "success rate",
            "median restore",
            "worst restore",
            "objective",
            "within objective",
            "time to a booted VM",
        ]
    ]
    [gold] = [r for r in rows if r[0] == "gold"]
    drills, passed = int(gold[1]), int(gold[2])
    assert drills >= 6 and passed == drills - 2, gold  # the forced restore failure, the VM that never boots
    assert gold[3] == f"{round(100 * passed / drills, 1)} %"
    assert gold[6] == "30 min 0 s" and gold[7] == "yes"
    assert gold[4].endswith(" s") and gold[5].endswith(" s") and gold[8].endswith(" s"), gold
    by_vm = {r[0]: r for r in dom.find("table", class_="drills-by-vm").rows("tbody")}
    assert by_vm["drill-gold-1"][1:5] == ["rg-e2e-drills", "gold", by_vm["drill-gold-1"][3], "passed"]
    assert by_vm["drill-gold-1"][5].startswith("20"), "a proven VM shows when"
    assert by_vm["drill-fail-1"][4] == "restore-failed" and by_vm["drill-fail-1"][5] == "never"
    assert not run.csp_violations(), run.csp_violations()
