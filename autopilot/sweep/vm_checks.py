"""A VM's checks in a sweep: what the rules want for it (the protect core decides), the fix when
they allow it (tried again a few times within the run when Azure is busy), and its recovery point's
age against the policy (RPO breach)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError

from autopilot.azure.facts import ItemFacts
from autopilot.azure.failures import TransientError, error_code, is_transient
from autopilot.azure.vms import VmFacts
from autopilot.kernel.findings import Finding
from autopilot.kernel.outcomes import Kind
from autopilot.protect.carry_out import protect_vm
from autopilot.protect.decide import Decision, decide
from autopilot.protect.placement import VaultRoom
from autopilot.rules import Rules
from autopilot.sweep.inventory import (
    Inventory,
)
from autopilot.sweep.results import UnitResult, count

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.sweep.vm_checks")

# A VM another run is protecting (or whose claim a dead run still holds: a 30 s lease) and a busy
# Azure get 2, 4, 8 and 16 s before the fix is given up for this sweep.
FIX_ATTEMPTS = 5


FIX_BACKOFF_SECONDS = 2.0


def check_vm(
    autopilot: Autopilot,
    rules: Rules,
    inventory: Inventory,
    vm: VmFacts,
    result: UnitResult,
    dry_run: bool,
    pending: bool = False,
    room: VaultRoom | None = None,
) -> None:
    result.vms += 1
    item = inventory.item_of(vm)
    placement = None
    if item is None and room is not None:
        placement = room.place(rules.vault_set(vm.subscription_id, vm.location), vm.id)
    decision = decide(rules, vm, item, inventory.shared_luns(vm), placement=placement)
    if (
        room is not None
        and placement is not None
        and placement.vault is not None
        and decision.change != "enable"
    ):
        room.release(placement.vault, vm.id)
    count(result.by_region, vm.location, "vms")
    policy_name = (
        decision.policy.name
        if decision.policy
        else (decision.selection.policy if decision.selection else "") or ""
    )
    finished = False
    if pending and not decision.change and not dry_run:
        # An attempt (of the sweep or of an event) wrote its intent and ended early: the protect
        # core finishes the change's follow-up (audit row, first backup, announcement) or closes
        # the intent, and the report lists a finished protection as a fix.
        action, reason = _fix(autopilot, vm, decision, dry_run)
        finished = action == "fixed"
        if finished and decision.protected:
            _record_fix(
                autopilot,
                result,
                Finding(
                    "unprotected",
                    vm.id,
                    reason,
                    "",
                    action,
                    region=vm.location,
                    vault=decision.vault.resource_id if decision.vault else "",
                    policy=policy_name,
                ),
            )
    row = [
        vm.id,
        vm.name,
        sys.intern(vm.resource_group),
        sys.intern(vm.subscription_id),
        sys.intern(vm.location),
        "not selected" if decision.kind is Kind.NOT_SELECTED else "opted out",
        sys.intern(policy_name),
        sys.intern(item.vault_id.rsplit("/", 1)[-1]) if item else "",
        ("soft-deleted" if item.soft_deleted else item.protection_state) if item else "unprotected",
        item.last_recovery_point.isoformat() if item and item.last_recovery_point else "",
        "",
    ]
    result.vm_rows.append(row)
    if decision.kind in (Kind.NOT_SELECTED, Kind.OPTED_OUT):
        return
    row[5] = "protected as the rules say" if decision.kind is Kind.ALREADY_PROTECTED else "to act on"
    result.selected += 1
    count(result.by_region, vm.location, "selected")
    count(result.by_policy, policy_name, "selected")
    if decision.kind is Kind.ALREADY_PROTECTED:
        result.compliant += 1
        count(result.by_region, vm.location, "compliant")
        count(result.by_policy, policy_name, "compliant")
        if item is not None and not finished:
            breach = _rpo_breach(rules, vm, item, dt.timedelta(hours=autopilot.settings.rpo_grace_hours))
            if breach is not None:
                result.findings.append(breach)
        return
    kind = {
        "enable": "unprotected",
        "change-policy": "wrong-policy",
        "resume": "protection-stopped",
        "undelete-resume": "protection-stopped",
        "stop": "needs-attention",
    }.get(decision.change, "needs-attention")
    if kind == "needs-attention" and decision.problems and item is not None and not decision.change:
        kind = "agent-problem" if any(p.code.startswith("VmAgent") for p in decision.problems) else kind
    if decision.details.get("vaultSetFull"):
        kind = "vault-set-full"
    action = "reported"
    reason = decision.reason
    if decision.change:
        action, reason = _fix(autopilot, vm, decision, dry_run)
    finding = Finding(
        kind,
        vm.id,
        reason,
        decision.remedy or _remedy_of(kind),
        action,
        region=vm.location,
        vault=decision.vault.resource_id if decision.vault else "",
        policy=policy_name,
    )
    if action == "fixed":
        _record_fix(autopilot, result, finding)
    else:
        result.findings.append(finding)


def _record_fix(autopilot: Autopilot, result: UnitResult, finding: Finding) -> None:
    """A fix is kept at once: if this attempt dies, the unit's next attempt still reports it."""
    result.findings.append(finding)
    autopilot.state.put(
        "sweep-fix",
        f"{result.run_id}|{finding.target}",
        {"RunId": result.run_id, "Unit": result.unit, "Finding": json.dumps(asdict(finding))},
    )


def _remedy_of(kind: str) -> str:
    return {
        "unprotected": "The sweep protects it; if that fails, see the reason.",
        "wrong-policy": "The sweep moves it to the rules' policy (actions.onWrongPolicy).",
        "protection-stopped": "The sweep resumes protection (actions.onStoppedProtection).",
    }.get(kind, "")


def _fix(autopilot: Autopilot, vm: VmFacts, decision: Decision, dry_run: bool) -> tuple[str, str]:
    """Fix one VM with the protect core; a busy Azure (throttling, an item locked by another
    operation) is tried again a few times within the run rather than left to the next sweep."""
    if dry_run:
        return "would-fix", decision.reason
    for attempt in range(FIX_ATTEMPTS):
        try:
            outcome = protect_vm(autopilot, vm.id, source="sweep")
            break
        except (AzureError, TransientError) as error:
            if not is_transient(error) or attempt == FIX_ATTEMPTS - 1:
                return "fix-failed", f"{decision.reason}; the fix failed: {error_code(error)}"
            time.sleep(FIX_BACKOFF_SECONDS * 2**attempt)
    if outcome.changed:
        return "fixed", outcome.reason
    if outcome.kind is Kind.ALREADY_PROTECTED:
        return "fixed", f"{outcome.reason} (fixed meanwhile)"
    return "reported", outcome.reason


def _rpo_breach(rules: Rules, vm: VmFacts, item: ItemFacts, grace: dt.timedelta) -> Finding | None:
    """The last recovery point is older than the policy promises (a day, or a week) plus a grace."""
    try:
        spec = rules.policy(item.policy_name)
        period = dt.timedelta(days=7 if spec.frequency == "weekly" else 1)
    except KeyError:
        period = dt.timedelta(days=1)
    now = dt.datetime.now(dt.UTC)
    last = item.last_recovery_point
    if last is not None and now - last <= period + grace:
        return None
    if last is None and item.protection_state == "IRPending" and item.last_backup_time is None:
        return None  # just protected: the first backup has not run yet
    age = (
        "no recovery point at all"
        if last is None
        else f"the last recovery point is {_age(now - last)} old ({last:%Y-%m-%d %H:%M} UTC)"
    )
    return Finding(
        "rpo-breach",
        vm.id,
        f"{age}; policy {item.policy_name} promises one every {_age(period)}",
        "Look at the VM's failed backup jobs (the sweep lists them) and run a backup now once fixed.",
        "reported",
        region=vm.location,
        vault=item.vault_id,
        policy=item.policy_name,
    )


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.0f} hours"
