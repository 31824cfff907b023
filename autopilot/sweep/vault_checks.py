"""A vault's checks in a sweep: its policies against the rules (created or updated within the
vault's edit budget, through the one ensure_policy), its storage redundancy, and its security posture."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from autopilot.kernel.findings import Finding
from autopilot.protect.policies import ensure_policy
from autopilot.rules import Rules, VaultSpec
from autopilot.rules.policyspec import policy_differences
from autopilot.sweep.inventory import (
    Inventory,
)
from autopilot.sweep.results import UnitResult

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.sweep.vault_checks")

_DRIFT_ACTIONS = {
    "created": "fixed",
    "updated": "fixed",
    "would-create": "would-fix",
    "would-update": "would-fix",
}


def _drift(vault: VaultSpec, policy: str, differences: list[str], action: str) -> Finding:
    return Finding(
        "policy-drift",
        f"{vault.resource_id}/backupPolicies/{policy}",
        f"policy {policy} in vault {vault.name} differs from the rules: " + "; ".join(differences),
        "The sweep makes it match the rules (actions.onPolicyDrift: fix); a standard/enhanced mismatch needs a new policy name.",
        action,
        region=vault.region,
        vault=vault.resource_id,
        policy=policy,
    )


def check_vault(
    autopilot: Autopilot,
    rules: Rules,
    vault: VaultSpec,
    result: UnitResult,
    dry_run: bool,
    inventory: Inventory | None = None,
) -> None:
    azure = autopilot.azure
    fix_drift = rules.actions.on_policy_drift == "fix"
    graph = inventory is not None and inventory.policies is not None
    if inventory is not None and inventory.policies is not None:
        in_vault = inventory.policies.get(vault.resource_id.lower(), {})  # read by Resource Graph
    else:
        in_vault = azure.list_policies(vault)  # one paged list instead of a GET per policy
    for spec in rules.policies:
        current = in_vault.get(spec.name.lower())
        if graph and not dry_run:
            if current is not None and not policy_differences(spec, current):
                continue
            current = azure.get_policy(vault, spec.name)  # Resource Graph lags: ARM says what to change
        outcome = ensure_policy(autopilot, vault, spec, "sweep", fix_drift, current, dry_run=dry_run)
        if outcome.action == "unchanged":
            continue
        finding = _drift(
            vault, spec.name, list(outcome.differences), _DRIFT_ACTIONS.get(outcome.action, "reported")
        )
        if outcome.until is not None:
            finding = replace(
                finding,
                reason=finding.reason
                + f"; not fixed now: the vault's {autopilot.settings.policy_edits_per_day} policy edits of"
                f" the last 24 hours are used up, so it can be fixed after {outcome.until:%Y-%m-%d %H:%M} UTC",
            )
        result.findings.append(finding)
    if inventory is not None and inventory.storage is not None:
        storage_type, state = inventory.storage.get(vault.resource_id.lower(), ("", ""))
        if not dry_run and storage_type and storage_type.lower() != vault.storage_redundancy.lower():
            storage_type, state = azure.storage_redundancy(vault)  # ARM's word before a change
    else:
        storage_type, state = azure.storage_redundancy(vault)
    if storage_type and storage_type.lower() != vault.storage_redundancy.lower():
        locked = state.lower() == "locked"
        action = "reported"
        if not locked and not dry_run:
            azure.set_storage_redundancy(vault, vault.storage_redundancy)
            autopilot.audit.record(
                vm_id=vault.resource_id,
                action="set-redundancy",
                reason=f"rules say {vault.storage_redundancy}",
                outcome=f"was {storage_type}",
                source="sweep",
            )
            action = "fixed"
        elif not locked:
            action = "would-fix"
        result.findings.append(
            Finding(
                "redundancy-mismatch",
                vault.resource_id,
                f"vault {vault.name} stores backups {storage_type}; the rules say {vault.storage_redundancy}",
                "Azure locks the redundancy once a vault holds items: create a new vault with the right redundancy "
                "and move protection to it, or change the rules."
                if locked
                else "The sweep changes it while the vault is empty.",
                action,
                region=vault.region,
                vault=vault.resource_id,
            )
        )
