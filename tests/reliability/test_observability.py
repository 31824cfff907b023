"""Scenario 6, observability: every change the product makes on Azure is in the audit table.

A fault-free run that makes every kind of change the product knows: enable protection (sweep and
protect-on-create), change the policy, resume stopped protection, undelete and resume a soft-deleted
item, stop protection of an opted-out VM (rules: onOptOut: stopProtection), first backups, a retry
of a transiently failed backup, a backup now, policies created in a new vault and fixed where they
drifted, and a vault's storage redundancy set back to the rules'. Its successful ARM writes, read
from armsim's request log, are matched with the audit rows, per target and kind, both ways.

Then, deterministically, what the faulted run of scenario 1 shows by chance: a protection write
that reaches Azure while the app does not see its end (its status poll is refused) is never audited.
(OpenTelemetry traces are the lead's; this scenario does not look at them.)
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tests.armsim_support import sandbox_vault_policies
from tests.reliability.soak import record, sized
from tests.reliability.support import (
    AUDIT_FOR,
    NOT_CHANGES,
    REPO,
    SUB,
    WEU_VAULT,
    RelStack,
    all_delivered,
    arm_requests,
    audit_without_write,
    change_rows,
    deliveries,
    is_write,
    new_vms,
    ok,
    sweep_estate,
    unaudited_writes,
    vm_id,
    wait_for,
    writes_by_vm,
)

NEU_VAULT = WEU_VAULT.replace("rsv-autopilot-weu", "rsv-autopilot-neu")
RULES = (
    (REPO / "rules" / "sandbox.yaml")
    .read_text()
    .replace(
        "    storageRedundancy: GeoRedundant\n\npolicies:",
        "    storageRedundancy: GeoRedundant\n"
        f"  - subscription: {SUB}\n"
        "    resourceGroup: rg-autopilot-backup\n"
        "    name: rsv-autopilot-neu\n"
        "    region: northeurope\n"
        "    storageRedundancy: GeoRedundant\n\npolicies:",
    )
    .replace("onOptOut: report", "onOptOut: stopProtection")
)
VMS = sized(40, 400)
GROUP = "rg-kinds"


def kinds_estate(stack: RelStack) -> None:
    """The VMs and vault states that call for the changes the sweep alone does not get from
    sweep_estate: stop, undelete-resume, a retry, policy drift, redundancy."""
    vms = [
        {"subscriptionId": SUB, "resourceGroup": GROUP, "name": name, "location": "westeurope", "tags": tags}
        for name, tags in (
            ("opted-out-protected", {"backup-policy": "none"}),
            ("soft-deleted", {"backup-policy": "gold"}),
            ("transient-failure", {"backup-policy": "gold"}),
        )
    ]
    drifted = [
        {**p, "properties": {**p["properties"], "instantRpRetentionRangeInDays": 5}}
        if p["vaultId"] == WEU_VAULT and p["name"] == "gold"
        else p
        for p in sandbox_vault_policies()
    ]
    stack.seed(
        policies=drifted,
        vms=vms,
        protections=[
            {"vmId": vm_id(GROUP, "opted-out-protected"), "vaultId": WEU_VAULT, "policy": "gold"},
            {
                "vmId": vm_id(GROUP, "soft-deleted"),
                "vaultId": WEU_VAULT,
                "policy": "gold",
                "state": "SoftDeleted",
            },
            {"vmId": vm_id(GROUP, "transient-failure"), "vaultId": WEU_VAULT, "policy": "gold"},
        ],
        jobs=[
            {
                "vmId": vm_id(GROUP, "transient-failure"),
                "outcome": "Failed",
                "errorCode": "BackUpOperationFailedV2",
                "hoursAgo": 2,
            }
        ],
    )
    # The new vault holds nothing yet, so its redundancy can still change: make it differ from the rules.
    stack.arm(
        "PATCH",
        NEU_VAULT,
        {"properties": {"redundancySettings": {"standardTierStorageRedundancy": "LocallyRedundant"}}},
        api_version="2025-02-01",
    )


def test_every_change_of_every_kind_is_audited(workdir: Path) -> None:
    started = time.monotonic()
    with RelStack(workdir / "stack", rules_text=RULES) as stack:
        estate = sweep_estate(VMS)
        estate.seed(stack)
        kinds_estate(stack)
        report = stack.run_sweep(timeout=300)
        events = new_vms(sized(3, 20), "rg-new", selected_only=True)
        events.seed(stack, emit_events=True)
        assert wait_for(lambda: all_delivered(stack, len(events.vms)), timeout=120), deliveries(stack)
        healthy = sorted(set(estate.expected) - estate.needs_write)[0].split(";")
        accepted = stack.app("POST", "/api/backups", json={"vm": vm_id(*healthy), "requestId": "AUDIT-1"})
        assert accepted.status_code == 202, accepted.text
        log = stack.request_log()
        rows = stack.audit_rows()
    writes = Counter(e["operation"] for e in arm_requests(log) if is_write(e) and ok(e))
    actions = Counter(str(r["Action"]) for r in change_rows(rows))
    missing = unaudited_writes(log, rows)
    extra = audit_without_write(log, rows)
    record(
        "6 audit = writes",
        f"sweep of {VMS + 3} VMs + {len(events.vms)} events + backup now; every kind of change",
        "none",
        f"{sum(writes.values())} successful writes ("
        + ", ".join(f"{n} {op}" for op, n in sorted(writes.items()))
        + f"); {len(change_rows(rows))} audit rows of changes made ("
        + ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
        + f"); {len(missing)} writes without a row, {len(extra)} rows without a write",
        len(missing),
        0,
        time.monotonic() - started,
    )
    assert report["summary"]["failedUnits"] == []
    # Every kind of change happened, so the comparison covers them all.
    assert set(AUDIT_FOR) <= set(writes), writes
    wanted = {
        "enable-protection", "change-policy", "resume-protection", "stop-protection", "first-backup",
        "retry-backup", "backup-now", "update-policy", "set-redundancy",
    }  # fmt: skip
    assert wanted <= set(actions), actions
    assert missing == [], missing
    assert extra == [], extra
    assert set(writes) - set(AUDIT_FOR) <= NOT_CHANGES, writes


def test_a_protection_write_whose_status_poll_is_refused_is_audited(workdir: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    autopilot/protect/carry_out.py carry_out writes the audit row after azure.protect() returns: when the
    protection write is accepted but its status poll fails (409 BMSUserErrorObjectLocked, or throttling
    past azure-core's retries), protect_vm raises TransientError, Event Grid redelivers, the VM is then
    already protected, and the write is never audited (nor announced, nor followed by its first backup)
    """
    with RelStack(workdir / "stack") as stack:
        vms = new_vms(1, "rg-new", selected_only=True)
        stack.fail_first("ProtectedItemOperationStatuses_Get")
        vms.seed(stack, emit_events=True)
        assert wait_for(lambda: all_delivered(stack, 1), timeout=60), deliveries(stack)
        stack.no_faults()
        log = stack.request_log()
        assert writes_by_vm(log, "ProtectedItems_CreateOrUpdate") == Counter(vms.needs_write)
        assert unaudited_writes(log, stack.audit_rows()) == []
