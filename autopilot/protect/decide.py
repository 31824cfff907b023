"""What the rules want for one VM, and why. `decide` is pure: from the facts (the VM, its protected
item if any, where else it is protected, the vault with room) and the rules it says what should
happen (nothing, enable protection, change the policy, resume, stop, or attention with the reason
and the remedy), with the preflight problems that predict a failed protection or failed backups.
carry_out.py makes it so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from autopilot.azure.facts import ItemFacts
from autopilot.azure.vms import VmFacts
from autopilot.kernel.outcomes import Kind
from autopilot.names import same_id, split_id
from autopilot.protect.placement import Placement
from autopilot.rules import Rules, Selection, VaultSpec
from autopilot.rules.policyspec import PolicySpec

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
class PreflightIssue:
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
    problems: tuple[PreflightIssue, ...] = ()
    details: dict[str, object] = field(default_factory=dict)
    protected: bool = False  # nothing to change and a live item in the vault the rules name

    @property
    def first_backup(self) -> bool:
        return bool(
            self.change == "enable" and self.selection and self.selection.first_backup and not self.problems
        )


def agent_guidance(vm: VmFacts) -> str:
    return WINDOWS_AGENT_GUIDANCE if vm.os_type.lower() == "windows" else LINUX_AGENT_GUIDANCE


def preflight(vm: VmFacts, policy: PolicySpec) -> list[PreflightIssue]:
    """The checks that predict failure, from facts already read (no Azure calls)."""
    problems: list[PreflightIssue] = []
    if vm.provisioning_state.lower() == "failed":
        problems.append(
            PreflightIssue(
                "VmProvisioningFailed",
                "the VM is in a failed provisioning state, so enabling backup would fail",
                "Redeploy or restart the VM until its provisioning state is Succeeded; protection follows.",
                blocks_protection=True,
            )
        )
    if vm.trusted_launch and policy.policy_type != "V2":
        problems.append(
            PreflightIssue(
                "TrustedLaunchNeedsEnhancedPolicy",
                f"the VM uses Trusted Launch and policy '{policy.name}' is a standard policy; Azure protects "
                "Trusted Launch VMs only with an enhanced policy",
                f"Give policy '{policy.name}' an enhanced sibling in the rules file (trustedLaunch: <name>).",
                blocks_protection=True,
            )
        )
    if vm.agent_status == "Missing":
        problems.append(
            PreflightIssue(
                "VmAgentMissing",
                "the VM has no VM agent, so backups will fail (Azure Backup installs its extension through the agent)",
                agent_guidance(vm),
                blocks_protection=False,
            )
        )
    elif vm.agent_status == "NotReady" and not is_new(vm):
        # A VM created moments ago has not heard from its agent yet (recorded: "VM status blob is
        # found but not yet populated."): it is protected at once, and its first backup waits for
        # the agent (first_backup.take).
        problems.append(
            PreflightIssue(
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
            PreflightIssue(
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
            PreflightIssue(
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
    problems: tuple[PreflightIssue, ...],
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
    problems: tuple[PreflightIssue, ...],
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


NEW_VM_MINUTES = 10


def is_new(vm: VmFacts) -> bool:
    """Created in the last NEW_VM_MINUTES (by the VM's own timeCreated)."""
    return vm.time_created is not None and dt.datetime.now(dt.UTC) - vm.time_created < dt.timedelta(
        minutes=NEW_VM_MINUTES
    )
