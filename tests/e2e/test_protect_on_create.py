"""Protect on creation, end to end on the local stack: a VM created through the SDK ends up
protected in its region's vault under the policy its tags select, or is reported with the reason."""

from __future__ import annotations

import time
from typing import Any

from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from tests.e2e.conftest import E2E, app_settings, wait_for

WEU, EUS = "rsv-autopilot-weu", "rsv-autopilot-eus"


def policy_of(item: object) -> str:
    return str(AzureIaaSComputeVMProtectedItem(item.properties).policy_id).rsplit("/", 1)[-1]  # type: ignore[attr-defined]


def test_gold_in_westeurope_is_protected_in_the_westeurope_vault(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-weu", "weu-gold-1", "westeurope", {"backup-policy": "gold"})
    item = wait_for(lambda: e2e.item(WEU, "rg-e2e-weu", "weu-gold-1"))
    assert item is not None, "the VM was not protected within 20 s"
    assert policy_of(item) == "gold"
    events = wait_for(lambda: e2e.outcome_events("weu-gold-1"))
    assert [e["type"] for e in events] == ["BackupAutopilot.VM.Protected"]
    assert events[0]["data"]["vault"].endswith(f"/vaults/{WEU}")


def test_gold_in_eastus_is_protected_in_the_eastus_vault(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-eus", "eus-gold-1", "eastus", {"Backup-Policy": "GOLD"})
    item = wait_for(lambda: e2e.item(EUS, "rg-e2e-eus", "eus-gold-1"))
    assert item is not None
    assert policy_of(item) == "gold"
    assert e2e.item(WEU, "rg-e2e-eus", "eus-gold-1") is None


def test_untagged_and_opted_out_vms_are_left_alone(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-weu", "weu-untagged", "westeurope", {"owner": "team-a"})
    e2e.create_vm("rg-e2e-weu", "weu-optout", "westeurope", {"backup-policy": "none"})
    assert wait_for(lambda: e2e.delivered("weu-untagged") and e2e.delivered("weu-optout"))
    assert e2e.item(WEU, "rg-e2e-weu", "weu-untagged") is None
    assert e2e.item(WEU, "rg-e2e-weu", "weu-optout") is None
    assert e2e.outcome_events("weu-untagged") == []
    assert e2e.outcome_events("weu-optout") == []


def test_a_region_without_a_vault_gives_a_needs_attention_event_naming_it(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-neu", "neu-gold-1", "northeurope", {"backup-policy": "gold"})
    events = wait_for(lambda: e2e.outcome_events("neu-gold-1"))
    assert [e["type"] for e in events] == ["BackupAutopilot.VM.NeedsAttention"]
    assert "northeurope" in events[0]["data"]["reason"]
    assert "northeurope" in events[0]["data"]["remedy"]


def test_a_vm_without_agent_is_protected_and_flagged_with_guidance(e2e: E2E) -> None:
    e2e.create_vm(
        "rg-e2e-weu",
        "weu-noagent",
        "westeurope",
        {"backup-policy": "silver"},
        osProfile={
            "computerName": "noagent",
            "adminUsername": "azureuser",
            "linuxConfiguration": {"provisionVMAgent": False},
        },
    )
    events = wait_for(lambda: e2e.outcome_events("weu-noagent"))
    assert [e["type"] for e in events] == ["BackupAutopilot.VM.NeedsAttention"]
    data = events[0]["data"]
    assert "no VM agent" in data["reason"]
    assert "waagent" in data["remedy"]
    item = e2e.item(WEU, "rg-e2e-weu", "weu-noagent")
    assert item is not None and policy_of(item) == "silver"
    # No first backup for a VM whose backups would fail.
    assert "first-backup" not in data["actions"]


def test_the_same_event_three_times_gives_one_enable_and_one_first_backup(e2e: E2E) -> None:
    before = e2e.control("GET", "/stats")["byOperation"]
    e2e.control("POST", "/faults", {"eventDuplicates": 3})
    try:
        e2e.create_vm("rg-e2e-weu", "weu-dup-1", "westeurope", {"backup-policy": "gold"})
        item = wait_for(lambda: e2e.item(WEU, "rg-e2e-weu", "weu-dup-1"))
        assert item is not None
        # All three deliveries are answered (Event Grid retries included) before counting.
        assert wait_for(lambda: e2e.delivered("weu-dup-1", copies=3), timeout=60)
    finally:
        e2e.control("POST", "/faults", {"eventDuplicates": 1})
    after = e2e.control("GET", "/stats")["byOperation"]
    assert after.get("ProtectedItems_CreateOrUpdate", 0) - before.get("ProtectedItems_CreateOrUpdate", 0) == 1
    assert after.get("Backups_Trigger", 0) - before.get("Backups_Trigger", 0) == 1
    protected = [e for e in e2e.outcome_events("weu-dup-1") if e["type"] == "BackupAutopilot.VM.Protected"]
    assert len(protected) == 1


def test_changing_the_tag_from_gold_to_silver_changes_the_policy(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-weu", "weu-retag", "westeurope", {"backup-policy": "gold"})
    assert wait_for(lambda: e2e.item(WEU, "rg-e2e-weu", "weu-retag")) is not None
    e2e.compute.virtual_machines.begin_update(
        "rg-e2e-weu", "weu-retag", {"tags": {"backup-policy": "silver"}}
    ).result()
    item = wait_for(
        lambda: (i := e2e.item(WEU, "rg-e2e-weu", "weu-retag")) is not None and policy_of(i) == "silver" and i
    )
    assert item, "the policy did not change to silver"
    events = wait_for(lambda: len(e2e.outcome_events("weu-retag")) >= 2 and e2e.outcome_events("weu-retag"))
    types = [e["type"] for e in events]
    assert types == ["BackupAutopilot.VM.Protected", "BackupAutopilot.VM.PolicyUpdated"]


def _leave_an_intent(e2e: E2E, name: str, action: str) -> str:
    """What an attempt killed after writing its intent (and maybe its change) leaves: a pending
    marker. The next event for the VM must finish or close it, never leave it."""
    from autopilot.app import get_autopilot

    vm_id = str(e2e.compute.virtual_machines.get("rg-e2e-weu", name).id)
    reason = f"an interrupted attempt to {action}"
    get_autopilot().state.put(
        "pending", vm_id, {"Action": action, "Reason": reason, "FirstBackup": False, "Kind": "Protected"}
    )
    return vm_id


def _rows_about(vm_id: str, reason: str) -> list[dict[str, object]]:
    from autopilot.app import get_autopilot

    return [r for r in get_autopilot().audit.entries() if r["VmId"] == vm_id and r["Reason"] == reason]


def test_an_interrupted_enable_of_a_vm_without_agent_is_finished_by_the_next_event(e2e: E2E) -> None:
    from autopilot.app import get_autopilot

    assert e2e.item(WEU, "rg-e2e-weu", "weu-noagent") is not None  # protected by the test above
    vm_id = _leave_an_intent(e2e, "weu-noagent", "enable-protection")
    e2e.compute.virtual_machines.begin_update(
        "rg-e2e-weu", "weu-noagent", {"tags": {"backup-policy": "silver", "owner": "team-a"}}
    ).result()
    assert wait_for(lambda: get_autopilot().state.get("pending", vm_id) is None), "the intent was left"
    rows = _rows_about(vm_id, "an interrupted attempt to enable-protection")
    assert [r["Outcome"] for r in rows] == [
        "done (found done after an interrupted attempt): vault rsv-autopilot-weu"
    ]


def test_an_interrupted_change_no_longer_needed_is_closed_by_the_next_event(e2e: E2E) -> None:
    from autopilot.app import get_autopilot

    assert e2e.item(WEU, "rg-e2e-weu", "weu-untagged") is None  # created (and left alone) above
    vm_id = _leave_an_intent(e2e, "weu-untagged", "enable-protection")
    e2e.compute.virtual_machines.begin_update(
        "rg-e2e-weu", "weu-untagged", {"tags": {"owner": "team-b"}}
    ).result()
    assert wait_for(lambda: get_autopilot().state.get("pending", vm_id) is None), "the intent was left"
    rows = _rows_about(vm_id, "an interrupted attempt to enable-protection")
    assert len(rows) == 1 and str(rows[0]["Outcome"]).startswith("closed (")
    assert e2e.item(WEU, "rg-e2e-weu", "weu-untagged") is None


def _agent_ready_after(e2e: E2E, seconds: float, wait_minutes: int = 1) -> Any:
    """As in Azure, a new VM's agent reports Not Ready for `seconds` after its creation (armsim)."""
    e2e.control("POST", "/config", {"agentReadySeconds": seconds})
    return app_settings(AUTOPILOT_AGENT_RECHECK_SECONDS="1", AUTOPILOT_AGENT_WAIT_MINUTES=str(wait_minutes))


def test_a_new_vm_is_protected_at_once_and_backed_up_once_its_agent_reports_ready(e2e: E2E) -> None:
    """Recorded: a VM read right after creation reports its agent Not Ready. It is protected at once
    (no needs-attention), and its first backup waits for the agent: started before, it would fail."""
    try:
        with _agent_ready_after(e2e, 4):
            before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
            created = time.time()
            e2e.create_vm("rg-e2e-weu", "weu-slow-agent", "westeurope", {"backup-policy": "gold"})
            events = wait_for(lambda: e2e.outcome_events("weu-slow-agent"))
            assert [e["type"] for e in events] == ["BackupAutopilot.VM.Protected"], events
            assert events[0]["data"]["actions"][-1] == "first-backup-after-agent"
            assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) == before
            started = wait_for(
                lambda: e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) > before,
                timeout=30,
            )
            assert started and time.time() - created >= 4
    finally:
        e2e.control("POST", "/config", {"agentReadySeconds": 0})
    jobs = [
        j
        for j in e2e.backup.backup_jobs.list(WEU, "rg-autopilot-backup")
        if j.properties.entity_friendly_name == "weu-slow-agent" and j.properties.operation == "Backup"
    ]
    assert len(jobs) == 1 and jobs[0].properties.status != "Failed", jobs


def test_a_new_vm_whose_agent_never_reports_needs_attention_and_gets_no_backup(e2e: E2E) -> None:
    try:
        # AUTOPILOT_AGENT_WAIT_MINUTES 0: the first look after the recheck delay (1 s) is the last.
        with _agent_ready_after(e2e, 3600, wait_minutes=0):
            before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
            e2e.create_vm("rg-e2e-weu", "weu-dead-agent", "westeurope", {"backup-policy": "gold"})
            assert wait_for(lambda: e2e.item(WEU, "rg-e2e-weu", "weu-dead-agent")) is not None
            events = wait_for(
                lambda: (
                    len(e2e.outcome_events("weu-dead-agent")) >= 2 and e2e.outcome_events("weu-dead-agent")
                ),
                timeout=30,
            )
    finally:
        e2e.control("POST", "/config", {"agentReadySeconds": 0})
    assert events, "no needs-attention outcome"
    assert [e["type"] for e in events] == [
        "BackupAutopilot.VM.Protected",
        "BackupAutopilot.VM.NeedsAttention",
    ]
    assert (
        "has not reported Ready" in events[1]["data"]["reason"] and "waagent" in events[1]["data"]["remedy"]
    )
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) == before
