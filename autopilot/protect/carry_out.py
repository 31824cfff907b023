"""Protect one VM: carrying out what the rules want, the core shared by protect-on-creation, the
sweep, the plan and backup-now.

`protect_vm` re-reads the facts from Azure (never trusting an event's payload), decides (decide.py),
and carries the decision out: enable protection, change the policy, resume, stop, or report why not.
It is idempotent: a VM already protected as the rules say causes no write. Every change is audited,
its intent written first (a pending marker an interrupted attempt's successor finishes), and every
outcome worth telling is published (`announce`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError

from autopilot.azure.facts import ItemFacts
from autopilot.azure.failures import (
    ProtectionRefused,
    TransientError,
    classify_failure,
    error_code,
    is_transient,
)
from autopilot.azure.vms import VmFacts
from autopilot.kernel.outcomes import Kind, Outcome
from autopilot.kernel.telemetry import tracer
from autopilot.names import same_id
from autopilot.protect import first_backup
from autopilot.protect.decide import Decision, decide, is_new
from autopilot.protect.placement import Placement
from autopilot.rules import VaultSpec

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.protect.carry_out")

CLAIM_SECONDS = 30  # a lease, renewed while a protection runs
CLAIM_WAIT_SECONDS = 15  # how long another delivery of the same VM's events waits for it


def protect_vm(autopilot: Autopilot, vm_id: str, source: str) -> Outcome:
    """Bring one VM to what the rules say; raises TransientError when it should be retried later."""
    with tracer.start_as_current_span(
        "protect_vm", attributes={"autopilot.vm_id": vm_id, "autopilot.source": source}
    ) as span:
        outcome = _protect_vm(autopilot, vm_id, source)
        span.set_attribute("autopilot.outcome", outcome.kind.value)
        span.set_attribute("autopilot.actions", ",".join(outcome.actions))
        return outcome


def _protect_vm(autopilot: Autopilot, vm_id: str, source: str) -> Outcome:
    with autopilot.state.claimed_within(f"protect:{vm_id}", CLAIM_WAIT_SECONDS, CLAIM_SECONDS) as claim:
        if not claim.held:
            raise TransientError(f"another run is protecting {vm_id} right now; retry later")
        try:
            # After another delivery had the VM, what it did is read from Azure, not taken on trust.
            outcome = _read_decide_act(autopilot, vm_id, source, ask_azure=claim.waited)
        except AzureError as error:
            if is_transient(error):
                raise TransientError(f"Azure is busy or unreachable ({error_code(error)})") from error
            outcome = Outcome(
                vm_id,
                Kind.PROTECTION_FAILED,
                f"Azure refused the change: {error_code(error)}: {getattr(error, 'message', error)}",
                classify_failure(error).remedy,
            )
            autopilot.audit.record(
                vm_id=vm_id, action="protect", reason=outcome.reason, outcome="failed", source=source
            )
            autopilot.state.delete("pending", vm_id)  # nothing of it reached Azure
        announce(autopilot, outcome)
    log.info(
        "%s: %s (%s)",
        vm_id,
        outcome.kind.value,
        outcome.reason,
        extra={"vm_id": vm_id, "outcome": outcome.kind.value},
    )
    return outcome


def announce(autopilot: Autopilot, outcome: Outcome) -> None:
    """Publish the outcome's event, but a problem only once: a VM that keeps needing attention for
    the same reasons (every write of it sends an event) is announced again only when they change."""
    if outcome.kind in (Kind.NEEDS_ATTENTION, Kind.PROTECTION_FAILED):
        problems = outcome.details.get("problems")
        signature = f"{outcome.kind.value}|{sorted(problems) if problems else outcome.reason}"
        known = autopilot.state.get("announced", outcome.vm_id)
        if known is not None and known.get("Signature") == signature and not outcome.changed:
            return
        autopilot.state.put("announced", outcome.vm_id, {"Signature": signature})
    elif outcome.kind in (Kind.PROTECTED, Kind.ALREADY_PROTECTED, Kind.RESUMED, Kind.POLICY_UPDATED):
        autopilot.state.delete("announced", outcome.vm_id)
    autopilot.events.outcome(outcome)


def _read_decide_act(autopilot: Autopilot, vm_id: str, source: str, ask_azure: bool = False) -> Outcome:
    """Read what the decision needs, with as few ARM requests as possible: the VM (with its instance
    view); then, only if the rules care about it, where it is protected. A VM created in the last
    NEW_VM_MINUTES that none of the set's vaults holds (their item lists, read at most every few
    minutes for placement anyway) is taken to be unprotected without asking Azure; if another vault
    holds it after all, Azure refuses the enable and the VM is looked up then. Otherwise one
    backupStatus call covers every vault of its region, and the item is read from ours."""
    azure = autopilot.azure
    vm = azure.get_vm(vm_id)
    if vm is None:
        return Outcome(vm_id, Kind.VM_GONE, "the VM no longer exists")
    shared = azure.shared_disk_luns(vm) if vm.data_disks else []
    decision = decide(autopilot.rules, vm, None, shared)
    if decision.kind is Kind.NOT_SELECTED or decision.details.get("missingVault"):
        return carry_out(autopilot, vm, decision, source)  # whatever protects it, the rules do not care
    vaults = autopilot.rules.vault_set(vm.subscription_id, vm.location)
    if (
        decision.kind is not Kind.OPTED_OUT
        and not ask_azure
        and is_new(vm)
        and autopilot.vault_room.holder(vaults, vm.id) is None
    ):
        fresh = autopilot.vault_room.place(vaults, vm.id)
        decision = decide(autopilot.rules, vm, None, shared, placement=fresh)
        try:
            return _carry_out_placed(autopilot, vm, decision, source, fresh)
        except ProtectionRefused as error:
            if decision.change != "enable":
                raise
            log.info("enabling %s was refused (%s): looking where it is protected", vm.id, error_code(error))
    item, elsewhere = _where_protected(autopilot, vm, vaults)
    placement = None
    if item is None and elsewhere is None and decision.kind is not Kind.OPTED_OUT:
        placement = autopilot.vault_room.place(vaults, vm.id)
    decision = decide(autopilot.rules, vm, item, shared, elsewhere, placement)
    try:
        return _carry_out_placed(autopilot, vm, decision, source, placement)
    except ProtectionRefused:
        # backupStatus may not report a stopped or soft-deleted item in the set's vaults: look at
        # the items themselves once before giving up on a refused enable.
        if decision.change != "enable":
            raise
        item = next((found for v in vaults if (found := azure.get_item(v, vm)) is not None), None)
        if item is None:
            raise
        return carry_out(autopilot, vm, decide(autopilot.rules, vm, item, shared), source)


def _carry_out_placed(
    autopilot: Autopilot, vm: VmFacts, decision: Decision, source: str, placement: Placement | None
) -> Outcome:
    """carry_out, giving back the place the placement took for the VM when it was not enabled in that
    vault or Azure refused the enable."""
    placed = placement.vault if placement is not None else None
    try:
        outcome = carry_out(autopilot, vm, decision, source)
    except ProtectionRefused:
        if placed is not None:  # nothing was changed: the place is free again
            autopilot.vault_room.release(placed, vm.id)
        raise
    # (Any other failure keeps the place: the enable may have been made, and a retry must see the VM
    # where it may now be, not enable it again.)
    if placed is not None and not (decision.change == "enable" and decision.vault is placed):
        autopilot.vault_room.release(placed, vm.id)
    return outcome


def _where_protected(
    autopilot: Autopilot, vm: VmFacts, vaults: tuple[VaultSpec, ...]
) -> tuple[ItemFacts | None, tuple[str, str] | None]:
    """(its item in a vault of the set, or None; (vault id, policy) of another vault that protects
    it, or None), from one backupStatus call and, when a vault of the set holds it, its item."""
    status = autopilot.azure.backup_status(vm)
    protected_in = str(status.get("vaultId") or "")
    if not protected_in or status.get("protectionStatus") in (None, "", "NotProtected"):
        return None, None
    holder = next((v for v in vaults if same_id(protected_in, v.resource_id)), None)
    if holder is not None:
        return autopilot.azure.get_item(holder, vm), None
    return None, (protected_in, str(status.get("policyName") or ""))


def carry_out(autopilot: Autopilot, vm: VmFacts, decision: Decision, source: str) -> Outcome:
    """Make the change a decision calls for (if any), audit it, and return the outcome.

    The intent is written first (an audit row and a pending marker), then the change, then the
    result: a crash in between leaves the intent, and the next delivery of the event (or the sweep)
    finishes what the change started (its audit row, its first backup, its announcement)."""
    vault, policy, selection = decision.vault, decision.policy, decision.selection
    actions: list[str] = []
    if not decision.change:
        pending = autopilot.state.get("pending", vm.id)
        if pending is not None:
            finished = _finish_pending(autopilot, vm, decision, pending, source)
            if finished is not None:
                return finished
    if decision.change and vault is not None:
        excluded = selection.excluded_luns if selection else ()
        action = {
            "stop": "stop-protection",
            "enable": "enable-protection",
            "change-policy": "change-policy",
        }.get(decision.change, "resume-protection")
        details = {
            "vault": vault.name,
            "policy": policy.name if policy else "",
            "excludedLuns": ",".join(map(str, excluded)),
        }
        autopilot.audit.record(
            vm_id=vm.id,
            action=action,
            reason=decision.reason,
            outcome="starting",
            source=source,
            details=details,
        )
        autopilot.state.put(
            "pending",
            vm.id,
            {
                "Action": action,
                "Reason": decision.reason,
                "FirstBackup": decision.first_backup,
                "Kind": decision.kind.value,
            },
        )
        if decision.change == "stop":
            autopilot.azure.stop_protection(vault, vm)
        else:
            assert policy is not None
            autopilot.policies.ensure(autopilot, vault, policy, source)
            if decision.change == "enable" and autopilot.azure.refresh_containers(vault, vm):
                actions.append("refresh-containers")
            if decision.change == "undelete-resume":
                autopilot.azure.undelete(vault, vm)
                actions.append("undelete")
            autopilot.azure.protect(vault, vm, policy.name, excluded)
        actions.append(action)
        done = f"done: vault {vault.name}" + (
            f", policy {policy.name}" if policy and decision.change != "stop" else ""
        )
        autopilot.audit.record(
            vm_id=vm.id, action=action, reason=decision.reason, outcome=done, source=source, details=details
        )
        if decision.first_backup and selection is not None:
            first_backup.take(autopilot, vm, vault, selection.first_backup_retain_days, source, actions)
        autopilot.state.delete("pending", vm.id)
    return Outcome(
        vm.id,
        decision.kind,
        decision.reason,
        decision.remedy,
        vault=vault.resource_id if vault else "",
        policy=policy.name if policy else "",
        actions=tuple(actions),
        details=dict(decision.details),
    )


def _finish_pending(
    autopilot: Autopilot, vm: VmFacts, decision: Decision, pending: dict[str, object], source: str
) -> Outcome | None:
    """An earlier attempt wrote its intent and ended before its follow-up. Nothing is left to
    change now: either its change reached Azure (the VM is protected, or stopped for a stop), and
    its audit row and first backup are finished here; or it is not seen there, and the intent is
    closed. Returns the outcome of the finished change, or None."""
    action = str(pending.get("Action") or "enable-protection")
    reason = str(pending.get("Reason") or decision.reason)
    vault = decision.vault
    landed = decision.kind is Kind.OPTED_OUT if action == "stop-protection" else decision.protected
    if not landed or vault is None:
        autopilot.audit.record(
            vm_id=vm.id,
            action=action,
            reason=reason,
            outcome=f"closed (an interrupted attempt's change; nothing to change now): {decision.reason}",
            source=source,
        )
        autopilot.state.delete("pending", vm.id)
        return None
    actions = [action]
    autopilot.audit.record(
        vm_id=vm.id,
        action=action,
        reason=reason,
        outcome=f"done (found done after an interrupted attempt): vault {vault.name}",
        source=source,
    )
    if pending.get("FirstBackup") and decision.selection is not None:
        first_backup.take(autopilot, vm, vault, decision.selection.first_backup_retain_days, source, actions)
    autopilot.state.delete("pending", vm.id)
    kind = Kind(str(pending.get("Kind") or Kind.PROTECTED.value))
    return Outcome(
        vm.id,
        kind,
        reason,
        decision.remedy,
        vault=vault.resource_id,
        policy=decision.policy.name if decision.policy else "",
        actions=tuple(actions),
        details=dict(decision.details),
    )
