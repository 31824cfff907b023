"""Protect one VM: the core shared by protect-on-creation, the sweep, the plan and backup-now.

`decide` is pure: from the facts (the VM, its protected item if any, where else it is protected) and
the rules it says what should happen and why. `protect_vm` re-reads the facts from Azure (never
trusting an event's payload), decides, and carries the decision out: enable protection, change the
policy, resume, stop, or report why not. It is idempotent: a VM already protected as the rules say
causes no write. Every change is audited, and every outcome worth telling is published.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError

from autopilot.azure.backup import (
    ItemFacts,
    ProtectionRefused,
    TransientError,
    classify_failure,
    error_code,
    is_transient,
)
from autopilot.azure.vms import VmFacts
from autopilot.kernel.outcomes import Kind, Outcome
from autopilot.kernel.telemetry import tracer
from autopilot.names import same_id, split_id
from autopilot.protect import first_backup
from autopilot.protect.placement import Placement
from autopilot.rules import Rules, Selection, VaultSpec
from autopilot.rules.policyspec import PolicySpec

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.protect.decide")

CLAIM_SECONDS = 30  # a lease, renewed while a protection runs
CLAIM_WAIT_SECONDS = 15  # how long another delivery of the same VM's events waits for it
MIN_WINDOWS_AGENT = (2, 6, 1198, 718)
WINDOWS_AGENT_GUIDANCE = (
    "Install or repair the Azure Windows VM Agent (version 2.6.1198.718 or newer): download the MSI from "
    "https://go.microsoft.com/fwlink/?LinkID=394789, install it, and check that the 'Windows Azure Guest Agent' "
    "service is running and the VM can reach 168.63.129.16."
)
LINUX_AGENT_GUIDANCE = (
    "Install or repair the Azure Linux Agent (waagent): install your distribution's package "
    "(apt install walinuxagent, or dnf/yum install WALinuxAgent), enable and start its service, and check "
    "that the VM can reach 168.63.129.16."
)


@dataclass(frozen=True)
class Problem:
    """Something that predicts a failed protection or failed backups, with what to do about it."""

    code: str
    reason: str
    remedy: str
    blocks_protection: bool  # True: do not enable protection; False: enable, but backups will fail


@dataclass(frozen=True)
class Decision:
    """What should happen to one VM, and why."""

    kind: Kind
    reason: str
    remedy: str = ""
    change: str = ""  # enable, change-policy, resume, undelete-resume, stop; "" when nothing is written
    vault: VaultSpec | None = None
    policy: PolicySpec | None = None
    selection: Selection | None = None
    problems: tuple[Problem, ...] = ()
    details: dict[str, object] = field(default_factory=dict)
    protected: bool = False  # nothing to change and a live item in the vault the rules name

    @property
    def first_backup(self) -> bool:
        return bool(
            self.change == "enable" and self.selection and self.selection.first_backup and not self.problems
        )


def agent_guidance(vm: VmFacts) -> str:
    return WINDOWS_AGENT_GUIDANCE if vm.os_type.lower() == "windows" else LINUX_AGENT_GUIDANCE


def preflight(vm: VmFacts, policy: PolicySpec) -> list[Problem]:
    """The checks that predict failure, from facts already read (no Azure calls)."""
    problems: list[Problem] = []
    if vm.provisioning_state.lower() == "failed":
        problems.append(
            Problem(
                "VmProvisioningFailed",
                "the VM is in a failed provisioning state, so enabling backup would fail",
                "Redeploy or restart the VM until its provisioning state is Succeeded; protection follows.",
                blocks_protection=True,
            )
        )
    if vm.trusted_launch and policy.policy_type != "V2":
        problems.append(
            Problem(
                "TrustedLaunchNeedsEnhancedPolicy",
                f"the VM uses Trusted Launch and policy '{policy.name}' is a standard policy; Azure protects "
                "Trusted Launch VMs only with an enhanced policy",
                f"Give policy '{policy.name}' an enhanced sibling in the rules file (trustedLaunch: <name>).",
                blocks_protection=True,
            )
        )
    if vm.agent_status == "Missing":
        problems.append(
            Problem(
                "VmAgentMissing",
                "the VM has no VM agent, so backups will fail (Azure Backup installs its extension through the agent)",
                agent_guidance(vm),
                blocks_protection=False,
            )
        )
    elif vm.agent_status == "NotReady" and not _new(vm):
        # A VM created moments ago has not heard from its agent yet (recorded: "VM status blob is
        # found but not yet populated."): it is protected at once, and its first backup waits for
        # the agent (first_backup.take).
        problems.append(
            Problem(
                "VmAgentNotReady",
                "the VM agent is not ready, so backups will fail until it reports Ready",
                agent_guidance(vm),
                blocks_protection=False,
            )
        )
    elif (
        vm.agent_status == "Ready"
        and vm.os_type.lower() == "windows"
        and _older(vm.agent_version, MIN_WINDOWS_AGENT)
    ):
        problems.append(
            Problem(
                "VmAgentTooOld",
                f"the Windows VM agent {vm.agent_version} is older than 2.6.1198.718, which Azure Backup needs",
                WINDOWS_AGENT_GUIDANCE,
                blocks_protection=False,
            )
        )
    return problems


def _vault_of(
    rules: Rules,
    vaults: tuple[VaultSpec, ...],
    item: ItemFacts | None,
    elsewhere: tuple[str, str] | None,
    placement: Placement | None,
) -> VaultSpec | None:
    """The vault of the set the decision is about: the one holding the VM's item (a VM stays where
    it is), else the placement's choice (None when the set is full), else the set's first."""
    if item is not None:
        holder = rules.vault_by_id(item.vault_id)
        if holder is not None:
            return holder
    if elsewhere is not None:
        holder = next((v for v in vaults if same_id(v.resource_id, elsewhere[0])), None)
        if holder is not None:
            return holder
    if placement is not None:
        return placement.vault
    return vaults[0] if vaults else None


def _older(version: str, minimum: tuple[int, ...]) -> bool:
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError:
        return False
    return parts < minimum


def decide(
    rules: Rules,
    vm: VmFacts,
    item: ItemFacts | None,
    shared_disk_luns: list[int] | tuple[int, ...] = (),
    elsewhere: tuple[str, str] | None = None,
    placement: Placement | None = None,
) -> Decision:
    """What the rules want for this VM. `item` is its protected item in a vault of the set the rules
    name for its region (None if none); `elsewhere` is (vault id, policy name) when a vault outside
    the set protects it; `placement` is the vault of the set with room for a VM to protect (None:
    the set's first vault). Read top to bottom: opted out, not selected, no vault, not protectable,
    not protected yet, protection stopped, protected (with drift or not)."""
    selection = rules.select(vm.tags, shared_disk_luns=shared_disk_luns)
    vaults = rules.vault_set(vm.subscription_id, vm.location)
    vault = _vault_of(rules, vaults, item, elsewhere, placement)
    live = item is not None and not item.soft_deleted and item.protection_state != "ProtectionStopped"
    if selection.opted_out:
        return _opted_out(rules, selection, vault, item if live else None)
    if selection.policy is None:
        return Decision(Kind.NOT_SELECTED, _why(selection), selection=selection)
    if vault is None:
        return _no_vault(rules, vm, selection, vaults)
    policy = rules.policy_for(selection.policy, vm.trusted_launch)
    problems = tuple(preflight(vm, policy))
    if selection.lun_error:
        problems += (
            Problem(
                "DiskExclusionTagInvalid",
                f"its disk exclusion tag is not a LUN list ({selection.lun_error}), so every disk is backed up",
                "Set the tag to LUNs separated by commas, e.g. 1,3.",
                blocks_protection=False,
            ),
        )
    blocking = tuple(p for p in problems if p.blocks_protection)
    if blocking:
        return _attention(vault, policy, selection, blocking, protected=live and item is not None)
    if item is None:
        return _unprotected(vault, policy, selection, problems, elsewhere)
    if not live:
        return _stopped(rules, vault, policy, selection, item)
    drift = _drift(rules, vault, policy, selection, item)
    if drift is not None:
        return drift
    if problems:
        return _attention(vault, policy, selection, problems, protected=True)
    return Decision(
        Kind.ALREADY_PROTECTED,
        f"{_why(selection)}; already protected in vault {vault.name} under policy {policy.name}",
        vault=vault,
        policy=policy,
        selection=selection,
        protected=True,
    )


def _opted_out(
    rules: Rules, selection: Selection, vault: VaultSpec | None, live: ItemFacts | None
) -> Decision:
    """The VM's tags opt it out; `live` is its protected item while protection runs."""
    if live is None or vault is None:
        return Decision(Kind.OPTED_OUT, _why(selection), selection=selection)
    if rules.actions.on_opt_out == "stopProtection":
        return Decision(
            Kind.PROTECTION_STOPPED,
            f"{_why(selection)}; protection stopped, backup data kept",
            change="stop",
            vault=vault,
            selection=selection,
        )
    return Decision(
        Kind.NEEDS_ATTENTION,
        f"{_why(selection)}, but it is still protected in vault {vault.name} under policy {live.policy_name}",
        "Stop protection if the VM should no longer be backed up, or remove the opt-out tag.",
        vault=vault,
        selection=selection,
    )


def _no_vault(rules: Rules, vm: VmFacts, selection: Selection, vaults: tuple[VaultSpec, ...]) -> Decision:
    """Selected, but no vault of the region's set can take it: the set is full, or there is none."""
    if vaults:
        names = ", ".join(v.name for v in vaults)
        return Decision(
            Kind.NEEDS_ATTENTION,
            f"{_why(selection)}, but every vault of its region's set is full ({names}: "
            f"{rules.vault_capacity.usable} VMs each; Azure holds at most {rules.vault_capacity.max_items})",
            f"Add a vault to the set for region '{vm.location}' (subscription {vm.subscription_id}) in the rules "
            "file, e.g. raise the count of its name pattern, and deploy it (the Bicep generated from the "
            "rules, infra/rules.generated.json, creates it).",
            selection=selection,
            details={
                "region": vm.location,
                "vaultSetFull": True,
                "vaultSet": [v.resource_id for v in vaults],
            },
        )
    return Decision(
        Kind.NEEDS_ATTENTION,
        f"{_why(selection)}, but the rules name no vault in region {vm.location} of subscription {vm.subscription_id}",
        f"Add a Recovery Services vault for region '{vm.location}' (subscription {vm.subscription_id}) to the rules "
        "file; Azure protects a VM only in a vault of its own region.",
        selection=selection,
        details={"region": vm.location, "missingVault": True},
    )


def _unprotected(
    vault: VaultSpec,
    policy: PolicySpec,
    selection: Selection,
    problems: tuple[Problem, ...],
    elsewhere: tuple[str, str] | None,
) -> Decision:
    """Selected and not protected in the set: protect it, unless a vault outside the set has it."""
    if elsewhere is not None and not same_id(elsewhere[0], vault.resource_id):
        other = split_id(elsewhere[0])[2]
        return Decision(
            Kind.NEEDS_ATTENTION,
            f"{_why(selection)}, but the VM is already protected by vault {other} (policy {elsewhere[1] or 'unknown'}); "
            "Azure allows one vault per VM",
            f"If vault {vault.name} should protect it, stop protection in {other} and delete its backup data first; "
            "otherwise add that vault to the rules file.",
            vault=vault,
            policy=policy,
            selection=selection,
            details={"otherVault": elsewhere[0]},
        )
    reason = f"{_why(selection)}; protect in vault {vault.name} under policy {policy.name}"
    if selection.excluded_luns:
        reason += f" (data disks at LUN {', '.join(map(str, selection.excluded_luns))} excluded)"
    if problems:
        return _attention(vault, policy, selection, problems, protected=True, change="enable")
    return Decision(Kind.PROTECTED, reason, change="enable", vault=vault, policy=policy, selection=selection)


def _stopped(
    rules: Rules, vault: VaultSpec, policy: PolicySpec, selection: Selection, item: ItemFacts
) -> Decision:
    """Its protection is stopped or soft-deleted: resume it if the rules say so."""
    state = "soft-deleted" if item.soft_deleted else "stopped"
    if rules.actions.on_stopped_protection != "resume":
        return Decision(
            Kind.NEEDS_ATTENTION,
            f"{_why(selection)}, but its protection in vault {vault.name} is {state}",
            "Resume protection, or set actions.onStoppedProtection: resume in the rules file.",
            vault=vault,
            policy=policy,
            selection=selection,
        )
    return Decision(
        Kind.RESUMED,
        f"{_why(selection)}; protection was {state} and is resumed under policy {policy.name}",
        change="undelete-resume" if item.soft_deleted else "resume",
        vault=vault,
        policy=policy,
        selection=selection,
    )


def _drift(
    rules: Rules, vault: VaultSpec, policy: PolicySpec, selection: Selection, item: ItemFacts
) -> Decision | None:
    """Protected under another policy or other excluded disks than the rules say (None: neither)."""
    wrong_policy = item.policy_name.lower() != policy.name.lower()
    exclusions_differ = tuple(sorted(item.excluded_luns)) != tuple(sorted(selection.excluded_luns))
    if not (wrong_policy or exclusions_differ):
        return None
    if wrong_policy and rules.actions.on_wrong_policy != "fix":
        return Decision(
            Kind.NEEDS_ATTENTION,
            f"{_why(selection)}, but it is protected under policy {item.policy_name or 'none'}",
            f"Change its policy to {policy.name}, or set actions.onWrongPolicy: fix in the rules file.",
            vault=vault,
            policy=policy,
            selection=selection,
        )
    changes = []
    if wrong_policy:
        changes.append(f"policy changes from {item.policy_name} to {policy.name}")
    if exclusions_differ:
        before = ", ".join(map(str, sorted(item.excluded_luns))) or "none"
        after = ", ".join(map(str, sorted(selection.excluded_luns))) or "none"
        changes.append(f"excluded data disk LUNs change from {before} to {after}")
    return Decision(
        Kind.POLICY_UPDATED,
        f"{_why(selection)}; " + " and ".join(changes),
        change="change-policy",
        vault=vault,
        policy=policy,
        selection=selection,
        details={"oldPolicy": item.policy_name},
    )


def _why(selection: Selection) -> str:
    return selection.reason.rstrip(".")


def _attention(
    vault: VaultSpec,
    policy: PolicySpec,
    selection: Selection,
    problems: tuple[Problem, ...],
    protected: bool,
    change: str = "",
) -> Decision:
    if change == "enable":
        prefix = f"protect in vault {vault.name} under policy {policy.name}, but "
    elif protected:
        prefix = f"protected in vault {vault.name} under policy {policy.name}, but "
    else:
        prefix = "not protected: "
    return Decision(
        Kind.NEEDS_ATTENTION,
        prefix + "; ".join(p.reason for p in problems),
        " ".join(p.remedy for p in problems),
        change=change,
        vault=vault,
        policy=policy,
        selection=selection,
        problems=problems,
        details={"problems": [p.code for p in problems]},
        protected=protected and not change,
    )


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
        and _new(vm)
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


NEW_VM_MINUTES = 10


def _new(vm: VmFacts) -> bool:
    """Created in the last NEW_VM_MINUTES (by the VM's own timeCreated)."""
    return vm.time_created is not None and dt.datetime.now(dt.UTC) - vm.time_created < dt.timedelta(
        minutes=NEW_VM_MINUTES
    )


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
