"""One unit of a sweep: a subscription read (by ARM pages or Resource Graph), each VM, vault and
vault's jobs checked, what the rules allow fixed, and the unit's findings and counts returned."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

from autopilot.azure.pacing import low_priority
from autopilot.kernel.findings import Finding
from autopilot.kernel.telemetry import tracer
from autopilot.posture.vaults import check_vault as check_posture
from autopilot.protect.placement import VaultRoom
from autopilot.rules import VaultSpec
from autopilot.sweep.inventory import (
    ARM,
    GRAPH,
    Inventory,
    inventory_from_estate,
    read_estate,
    read_inventory,
)
from autopilot.sweep.job_checks import check_jobs
from autopilot.sweep.results import UnitResult
from autopilot.sweep.vault_checks import check_vault
from autopilot.sweep.vm_checks import check_vm

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.sweep.unit")


# -- one unit ---------------------------------------------------------------------------------------
def sweep_subscription(
    autopilot: Autopilot,
    subscription: str,
    run_id: str,
    dry_run: bool,
    source: str = ARM,
    inventory: Inventory | None = None,
) -> UnitResult:
    """Sweep one subscription: read it (ARM pages, or Resource Graph: `source`, unless `inventory` is
    given), find, fix (unless dry_run), and return the findings."""
    with (
        tracer.start_as_current_span(
            "sweep_subscription",
            attributes={"autopilot.subscription": subscription, "autopilot.run_id": run_id},
        ) as span,
        low_priority(),
    ):  # the protection of new VMs goes first when ARM's tokens are short
        if inventory is None:
            if source == GRAPH:
                inventory = inventory_from_estate(
                    autopilot, read_estate(autopilot, [subscription]), subscription
                )
            else:
                inventory = read_inventory(autopilot.azure, autopilot.rules, [subscription])
        result = _sweep_subscription(autopilot, subscription, run_id, dry_run, inventory)
        span.set_attribute("autopilot.findings", len(result.findings))
        return result


def _sweep_subscription(
    autopilot: Autopilot, subscription: str, run_id: str, dry_run: bool, inventory: Inventory
) -> UnitResult:
    now = dt.datetime.now(dt.UTC)
    result = UnitResult(run_id, subscription, dry_run, now.isoformat(), inventory=inventory.source)
    rules = autopilot.rules
    for scope, error in inventory.errors.items():
        result.findings.append(_no_access(scope, error))
    for vault in inventory.missing_vaults:
        result.findings.append(_missing_vault(vault))
    # Changes an interrupted attempt (of the sweep or of an event) left half done: one table read.
    pending = (
        set() if dry_run else {str(row.get("Key", "")).lower() for row in autopilot.state.rows("pending")}
    )
    room = _vault_room(autopilot, inventory, subscription)
    for vm in inventory.vms:
        check_vm(autopilot, rules, inventory, vm, result, dry_run, vm.id.lower() in pending, room)
    for item in inventory.orphans:
        result.findings.append(
            Finding(
                "orphaned-item",
                item.id,
                f"the protected item of {item.vm_id.rsplit('/', 1)[-1]} remains in vault {item.vault_id.rsplit('/', 1)[-1]} "
                f"({item.protection_state}) but its VM no longer exists",
                "Stop protection of the item (keep or delete its backup data, as your retention rules say).",
                "reported",
                vault=item.vault_id,
                policy=item.policy_name,
            )
        )
    missing = {v.resource_id.lower() for v in inventory.missing_vaults}
    vaults = [
        v
        for v in rules.vaults_for([subscription])
        if v.resource_id not in inventory.errors and v.resource_id.lower() not in missing
    ]
    for vault in vaults:
        check_vault(autopilot, rules, vault, result, dry_run, inventory)
        check_jobs(autopilot, vault, inventory, result, dry_run, now)
        if rules.posture is not None:
            findings, row = check_posture(autopilot, rules.posture, vault, dry_run)
            result.findings.extend(findings)
            result.posture.append(row)
    # Fixes an earlier, interrupted attempt of this unit made (the VMs look fine now).
    if not dry_run:
        seen = {(f.kind, f.target.lower()) for f in result.findings}
        for row in autopilot.state.rows(
            "sweep-fix", "RunId eq @run and Unit eq @unit", {"run": run_id, "unit": subscription}
        ):
            earlier = Finding(**json.loads(row["Finding"]))
            if (earlier.kind, earlier.target.lower()) not in seen and not any(
                f.target.lower() == earlier.target.lower() for f in result.findings
            ):
                result.findings.append(earlier)
    # A failed or warning job already explains a stale recovery point: one finding per problem.
    explained = {f.target.lower() for f in result.findings if f.kind.startswith("job-")}
    result.findings = [
        f for f in result.findings if not (f.kind == "rpo-breach" and f.target.lower() in explained)
    ]
    kinds: dict[str, list[str]] = {}
    for f in result.findings:
        kinds.setdefault(f.target.lower(), []).append(f"{f.kind} ({f.action})")
    for vm_row in result.vm_rows:
        vm_row[-1] = "; ".join(kinds.get(vm_row[0].lower(), []))
    result.finished = dt.datetime.now(dt.UTC).isoformat()
    return result


def _missing_vault(vault: VaultSpec) -> Finding:
    return Finding(
        "missing-vault",
        vault.resource_id,
        f"the rules expect vault {vault.name} (resource group {vault.resource_group}, region {vault.region}, "
        f"{vault.storage_redundancy}) in subscription {vault.subscription_id}, and it does not exist",
        f"Deploy it: regenerate the Bicep parameters from the rules (python scripts/rules_to_bicep_params.py "
        f"--subscriptions {vault.subscription_id}) and run azd provision, or create vault {vault.name} in "
        f"{vault.resource_group} ({vault.region}) by hand. Until then VMs of region {vault.region} in this "
        "subscription cannot be protected there.",
        "reported",
        region=vault.region,
        vault=vault.resource_id,
    )


def _no_access(scope: str, error: str) -> Finding:
    role = (
        "Backup Contributor"
        if "/vaults/" in scope.lower()
        else "the custom role 'Backup Autopilot VM protection' (infra/rbac-subscription.bicep: read VMs"
        " and disks, write VMs to enable protection, backupStatus; docs/DEPLOY.md)"
    )
    return Finding(
        "no-access",
        scope,
        f"the sweep could not read {scope}: {error}",
        f"Grant the app's managed identity {role} on {scope}.",
        "reported",
    )


def _vault_room(autopilot: Autopilot, inventory: Inventory, subscription: str) -> VaultRoom:
    """The items of each vault of the unit, counted from the inventory (no further read): given to
    the protect core (whose fixes place VMs) and, as a copy that counts this sweep's planned
    enables too (dry runs included), to the sweep's own decisions."""
    held: dict[str, list[str]] = {}
    for item in [*inventory.items.values(), *inventory.orphans]:
        held.setdefault(item.vault_id.lower(), []).append(item.vm_id)
    room = VaultRoom(autopilot.azure.item_vms, autopilot.rules.vault_capacity)
    missing = {v.resource_id.lower() for v in inventory.missing_vaults}
    for vault in autopilot.rules.vaults_for([subscription]):
        if vault.resource_id not in inventory.errors and vault.resource_id.lower() not in missing:
            autopilot.vault_room.observe(vault, held.get(vault.resource_id.lower(), []))
            room.observe(vault, held.get(vault.resource_id.lower(), []))
    return room
