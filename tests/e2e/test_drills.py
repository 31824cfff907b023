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


def test_unknown_and_bad_drill_requests_are_refused_clearly(e2e: E2E) -> None:
    response = e2e.app("POST", "/api/drills", data=b'{"vm": "not-a-vm"}')
    assert response.status_code == 400 and response.json()["field"] == "vm"
    response = e2e.app("GET", "/api/drills/0123456789abcdef0123")
    assert response.status_code == 404
    unauthenticated = requests.get(f"{e2e.stack.host.url}/api/drills/0123456789abcdef0123", timeout=10)  # type: ignore[union-attr]
    assert unauthenticated.status_code == 401
    time.sleep(0)
