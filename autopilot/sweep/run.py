"""The sweep: the whole estate checked, fixed where the rules allow, and reported.

A run is split into units of work, one per subscription, so that Azure Functions can spread them
over instances through a Storage queue. A unit reads its subscription in pages (VMs with their
instance views, shared disks, each vault's protected items, policies, storage configuration and
backup jobs since the last sweep: no per-VM status calls), finds what is wrong, fixes what it may,
and stores its findings. The unit that finishes last assembles the run's report.

Findings are keyed, so that a problem is announced (one CloudEvent) when it is first seen, not on
every sweep, and forgotten when it is gone. A dry run changes nothing on Azure and announces nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from azure.core.exceptions import AzureError, ResourceNotFoundError

from autopilot.azure.errorcodes import COMPLETED_WITH_WARNINGS, ErrorClass, classify
from autopilot.azure.facts import ItemFacts, JobFacts
from autopilot.azure.failures import TransientError, error_code, is_transient
from autopilot.azure.pacing import low_priority
from autopilot.azure.resourcegraph import forget
from autopilot.azure.vms import VmFacts
from autopilot.kernel.findings import Finding, kind_of
from autopilot.kernel.outcomes import Kind
from autopilot.kernel.telemetry import tracer
from autopilot.names import split_id
from autopilot.posture.vaults import check_vault as check_posture
from autopilot.protect import on_demand
from autopilot.protect.carry_out import protect_vm
from autopilot.protect.decide import Decision, decide
from autopilot.protect.placement import VaultRoom
from autopilot.protect.policies import ensure_policy
from autopilot.rules import Rules, SubscriptionFacts, VaultSpec
from autopilot.rules.policyspec import policy_differences
from autopilot.sweep.inventory import (
    ARM,
    GRAPH,
    Inventory,
    Source,
    choose_source,
    dump_inventory,
    inventory_from_estate,
    load_inventory,
    read_estate,
    read_inventory,
)

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.azure.resourcegraph import Estate

log = logging.getLogger("autopilot.sweep.run")
RETRY = "retry"  # the sweep's automatic retries in the on-demand ledger, keyed by the failed job's id

FIRST_LOOK_BACK = dt.timedelta(days=1)
# A VM another run is protecting (or whose claim a dead run still holds: a 30 s lease) and a busy
# Azure get 2, 4, 8 and 16 s before the fix is given up for this sweep.
FIX_ATTEMPTS = 5
FIX_BACKOFF_SECONDS = 2.0

SWEEP_COMPLETED = "BackupAutopilot.Sweep.Completed"
UNIT_FAILED = "BackupAutopilot.Sweep.UnitFailed"


@dataclass
class UnitResult:
    run_id: str
    unit: str
    dry_run: bool
    started: str
    finished: str = ""
    vms: int = 0
    selected: int = 0
    compliant: int = 0  # selected VMs protected as the rules say
    by_region: dict[str, dict[str, int]] = field(default_factory=dict)
    by_policy: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    error: str = ""
    inventory: str = "arm"  # where the unit's estate was read: arm or resourcegraph
    vm_rows: list[list[str]] = field(default_factory=list)  # every VM (report.VM_COLUMNS), for the CSV
    posture: list[dict[str, Any]] = field(default_factory=list)  # each vault's security posture

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitResult:
        result = cls(**{k: v for k, v in data.items() if k != "findings"})
        result.findings = [Finding(**f) for f in data.get("findings", [])]
        return result


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
        _check_vm(autopilot, rules, inventory, vm, result, dry_run, vm.id.lower() in pending, room)
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
        _check_vault(autopilot, rules, vault, result, dry_run, inventory)
        _check_jobs(autopilot, vault, inventory, result, dry_run, now)
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


def _count(table: dict[str, dict[str, int]], key: str, name: str) -> None:
    row = table.setdefault(key or "-", {})
    row[name] = row.get(name, 0) + 1


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


def _check_vm(
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
    _count(result.by_region, vm.location, "vms")
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
    _count(result.by_region, vm.location, "selected")
    _count(result.by_policy, policy_name, "selected")
    if decision.kind is Kind.ALREADY_PROTECTED:
        result.compliant += 1
        _count(result.by_region, vm.location, "compliant")
        _count(result.by_policy, policy_name, "compliant")
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


def _check_vault(
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


def _check_jobs(
    autopilot: Autopilot,
    vault: VaultSpec,
    inventory: Inventory,
    result: UnitResult,
    dry_run: bool,
    now: dt.datetime,
) -> None:
    """Failed and completed-with-warnings backups, triaged by error code.

    New jobs are read since the last sweep (one paged list per vault). A VM whose latest backup
    failed keeps an open alert (Table storage) until a later backup of it succeeds, so the problem is
    listed in every report until it is resolved but announced, and retried, only once."""
    state = autopilot.state
    cursor_key = f"jobs:{vault.resource_id}"
    cursor = (
        inventory.cursors.get(cursor_key)
        if inventory.cursors is not None
        else state.get("sweep-cursor", cursor_key)
    )
    since = cursor["Since"] if cursor else now - FIRST_LOOK_BACK
    owners = _containers_by_name(inventory, vault)
    ambiguous = any(len(containers) > 1 for containers in owners.values())
    if inventory.jobs is not None and not ambiguous:
        # Resource Graph's latest jobs per VM name (its summary cannot tell apart two VMs of one name in
        # a vault: such a vault's jobs are listed from ARM); a failure without its code is read from ARM.
        until = now + dt.timedelta(minutes=1)
        jobs = [
            autopilot.azure.get_job(vault, j.id)
            if j.status in ("Failed", "CompletedWithWarnings") and not j.error_code
            else j
            for j in inventory.jobs.get(vault.resource_id.lower(), [])
            if j.start is not None and since <= j.start <= until
        ]
    else:
        jobs = autopilot.azure.backup_jobs(vault, since, now + dt.timedelta(minutes=1))
    latest: dict[str, JobFacts] = {}
    for job in sorted(jobs, key=lambda j: j.start or now):
        if job.status not in ("InProgress", "Cancelling"):
            latest[_container_of(autopilot, vault, job, owners)] = job
    vms = {vm.container_name.lower().removeprefix("iaasvmcontainer;"): vm for vm in inventory.vms}
    alerts = {
        row["Key"]: row
        for row in (inventory.alerts if inventory.alerts is not None else state.rows("job-alert"))
        if str(row.get("Vault", "")).lower() == vault.resource_id.lower()
    }
    for container, job in latest.items():
        key = f"{vault.resource_id}|{container}"
        if job.status == "Completed":
            if key in alerts and not dry_run:
                state.delete("job-alert", key)  # resolved by a newer success
            alerts.pop(key, None)
            continue
        vm = vms.get(container)
        target = (
            vm.id
            if vm
            else f"{vault.resource_id}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}"
        )
        known = alerts.get(key)
        is_new = known is None or known.get("JobId") != job.id
        finding = _triage(autopilot, vault, vm, target, job, dry_run, retry=is_new)
        result.findings.append(finding)
        alerts.pop(key, None)
        if not dry_run:
            state.put(
                "job-alert",
                key,
                {
                    "Vault": vault.resource_id,
                    "JobId": job.id,
                    "Target": target,
                    "Finding": json.dumps(asdict(finding)),
                },
            )
    for row in alerts.values():  # older, unresolved problems: still reported
        finding = Finding(**json.loads(row["Finding"]))
        if finding.action in ("retried", "would-retry"):
            finding = Finding(**{**asdict(finding), "action": "reported"})
        result.findings.append(finding)
    if not dry_run:
        state.put("sweep-cursor", cursor_key, {"Since": now - dt.timedelta(minutes=5)})


def _containers_by_name(inventory: Inventory, vault: VaultSpec) -> dict[str, set[str]]:
    """The vault's item containers ('iaasvmcontainerv2;<rg>;<vm>', lower case) by VM name."""
    owners: dict[str, set[str]] = {}
    for item in [*inventory.items.values(), *inventory.orphans]:
        if item.vault_id.lower() != vault.resource_id.lower() or "/protectionContainers/" not in item.id:
            continue
        container = item.id.split("/protectionContainers/")[1].split("/")[0].lower()
        key = container.removeprefix("iaasvmcontainer;")
        owners.setdefault(key.rsplit(";", 1)[-1], set()).add(key)
    return owners


def _container_of(autopilot: Autopilot, vault: VaultSpec, job: JobFacts, owners: dict[str, set[str]]) -> str:
    """The container of the VM a job backs up. A job list names the VM only by its name (Azure sends
    no containerName there), which is enough when one item of the vault has that name; otherwise the
    job is read, since its GET names the container."""
    if job.container:
        return job.container_key
    candidates = owners.get(job.vm_name.lower(), set())
    if len(candidates) == 1:
        return next(iter(candidates))
    detailed = autopilot.azure.get_job(vault, job.id)
    return detailed.container_key


def _triage(
    autopilot: Autopilot,
    vault: VaultSpec,
    vm: VmFacts | None,
    target: str,
    job: JobFacts,
    dry_run: bool,
    retry: bool,
) -> Finding:
    name = vm.name if vm else job.vm_name
    if job.status == "CompletedWithWarnings":
        return Finding(
            "job-completed-with-warnings",
            target,
            f"backup job {job.id} of {name} completed with warnings ({job.error_code or 'no code'}): {COMPLETED_WITH_WARNINGS}",
            classify(job.error_code, job.recommendations).remedy,
            "reported",
            region=vault.region,
            vault=vault.resource_id,
            detail=job.error_code,
        )
    info = classify(job.error_code, job.recommendations)
    reason = f"backup job {job.id} of {name} {job.status.lower()} with {job.error_code or 'no error code'}: {job.error_message or 'no message'}"
    action = "reported"
    if info.error_class is ErrorClass.TRANSIENT and vm is not None and retry:
        action, reason = _retry(autopilot, vault, vm, job, reason, dry_run)
    return Finding(
        "job-failed",
        target,
        reason + f" [{info.error_class.value}]",
        info.remedy,
        action,
        region=vault.region,
        vault=vault.resource_id,
        detail=job.error_code,
    )


def _retry(
    autopilot: Autopilot, vault: VaultSpec, vm: VmFacts, job: JobFacts, reason: str, dry_run: bool
) -> tuple[str, str]:
    """One automatic on-demand retry of a transient failure, within the daily cap."""
    if dry_run:
        return "would-retry", reason + "; one automatic retry would be started"
    if on_demand.entry(autopilot, RETRY, job.id) is not None:
        return "reported", reason + "; it was already retried once"
    if on_demand.started_today(autopilot, vm.id) >= autopilot.settings.backup_daily_cap:
        return "reported", reason + "; no retry: the VM's on-demand backups for today are used up"
    retain = dt.datetime.now(dt.UTC) + dt.timedelta(days=autopilot.settings.backup_retain_days)
    try:
        operation = on_demand.trigger(autopilot, vault, vm, retain, RETRY, job.id, once=True)
    except AzureError as error:
        if is_transient(error):
            on_demand.forget(autopilot, RETRY, job.id)
            return (
                "reported",
                reason + f"; the retry could not start now ({error_code(error)}); the next sweep tries again",
            )
        return "reported", reason + f"; the retry was refused: {error_code(error)}"
    if operation is None:  # another sweep attempt started it in between
        return "reported", reason + "; it was already retried once"
    autopilot.audit.record(
        vm_id=vm.id,
        action="retry-backup",
        reason=reason[:400],
        outcome=f"started (operation {operation})",
        source="sweep",
    )
    return "retried", reason + "; one automatic retry was started"


# -- runs -------------------------------------------------------------------------------------------
def new_run(autopilot: Autopilot, dry_run: bool) -> tuple[str, list[dict[str, Any]]]:
    """A run id and its queue messages (see _new_run)."""
    run_id, messages, _ = _new_run(autopilot, dry_run)
    return run_id, messages


def _new_run(
    autopilot: Autopilot, dry_run: bool, finish: bool = True
) -> tuple[str, list[dict[str, Any]], dict[str, UnitResult]]:
    """A run id, its queue messages and the units already swept. By ARM pages: one unit of work per
    subscription in scope. By Resource Graph: the whole scope is read at once here, and a unit is queued only for a subscription
    with work to do (fixes, retries, changes left half done); the others are swept here, from what was
    read (they change nothing on Azure)."""
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    source = choose_source(autopilot)
    if source.facts:
        autopilot.rules = autopilot.rules.with_facts(source.facts)
    units = list(source.subscriptions)
    info: dict[str, Any] = {"source": source.name, "reason": source.reason}
    _save_scope(autopilot, run_id, units, source)
    if source.name == ARM:
        info["readAt"] = dt.datetime.now(dt.UTC).isoformat()
        _put_run(autopilot, run_id, dry_run, units, info)
        return run_id, [{"runId": run_id, "subscription": s, "dryRun": dry_run} for s in units], {}
    pending = (
        set()
        if dry_run
        else {split_id(str(row.get("Key", "")))[0].lower() for row in autopilot.state.rows("pending")}
    )
    # Each subscription is swept as soon as Resource Graph has given its VMs (a thread of its own, so
    # that the sweep of one runs while the next pages wait for Resource Graph's quota).
    lock = threading.Lock()
    queued: set[str] = set()
    done: dict[str, UnitResult] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-graph")
    futures: dict[str, Future[None]] = {}
    wanted = {u.lower(): u for u in units}

    def sweep_one(estate: Estate, subscription: str) -> None:
        inventory = inventory_from_estate(autopilot, estate, subscription)
        probe = sweep_subscription(autopilot, subscription, run_id, True, GRAPH, inventory)
        # A dry run changes nothing, so no unit has work; a real one queues the subscriptions with fixes
        # to make, each with what was read (a unit re-reads from ARM what it changes).
        if not dry_run and (subscription.lower() in pending or any(f.action in WORK for f in probe.findings)):
            autopilot.reports.upload_blob(
                f"runs/{run_id}/inventory/{_safe(subscription)}.json",
                json.dumps(dump_inventory(inventory)),
                overwrite=True,
            )
            with lock:
                queued.add(subscription.lower())
            forget(estate, subscription)
            return
        result = (
            probe if dry_run else sweep_subscription(autopilot, subscription, run_id, False, GRAPH, inventory)
        )
        store_unit(autopilot, result)
        with lock:
            done[subscription.lower()] = result

    def complete(estate: Estate, subscription: str) -> None:
        if subscription in wanted and subscription not in futures:
            futures[subscription] = pool.submit(sweep_one, estate, wanted[subscription])

    try:
        estate = read_estate(autopilot, complete=complete)
        for key, unit in wanted.items():  # subscriptions without VMs
            if key not in futures:
                futures[key] = pool.submit(sweep_one, estate, unit)
        for future in futures.values():
            future.result()
    finally:
        pool.shutdown(wait=True)
    info.update(
        readAt=estate.read_at.isoformat(), queries=estate.queries, pages=estate.pages, rows=estate.rows
    )
    _put_run(autopilot, run_id, dry_run, units, info)
    messages = [{"runId": run_id, "subscription": u, "dryRun": dry_run} for u in units if u.lower() in queued]
    log.info(
        "sweep %s: Resource Graph read %d VMs in %d pages; %d of %d subscriptions have work",
        run_id,
        estate.vm_count,
        estate.pages,
        len(messages),
        len(units),
    )
    del estate
    if not messages and finish:
        finish_if_complete(autopilot, run_id)
    return run_id, messages, done


WORK = ("would-fix", "would-retry")  # a dry run's actions that a unit of work must carry out


def _put_run(
    autopilot: Autopilot, run_id: str, dry_run: bool, units: list[str], info: dict[str, Any]
) -> None:
    text = json.dumps(units)
    autopilot.state.put(
        "sweep-run",
        run_id,
        {
            # Many subscriptions do not fit a table property (64 KiB): they are in the run's scope blob.
            "Units": text if len(text) < 30_000 else "",
            "DryRun": dry_run,
            "Started": dt.datetime.now(dt.UTC),
            "Inventory": json.dumps(info),
        },
    )


def _save_scope(autopilot: Autopilot, run_id: str, units: list[str], source: Source) -> None:
    """The run's subscriptions and what templates know of them, for units that run elsewhere."""
    body = {
        "units": units,
        "source": source.name,
        "facts": {k: [v.name, list(v.management_groups)] for k, v in source.facts.items()},
    }
    autopilot.reports.upload_blob(f"runs/{run_id}/scope.json", json.dumps(body), overwrite=True)


def _scope(autopilot: Autopilot, run_id: str, run: dict[str, Any]) -> dict[str, Any]:
    if run.get("Units"):
        units = json.loads(run["Units"])
        info = json.loads(run.get("Inventory") or "{}")
        if not (info.get("source") == GRAPH and autopilot.rules.vault_templates):
            return {"units": units, "source": info.get("source", ARM), "facts": {}}
    try:
        data: dict[str, Any] = json.loads(
            autopilot.reports.download_blob(f"runs/{run_id}/scope.json").readall()
        )
    except ResourceNotFoundError:
        return {"units": json.loads(run.get("Units") or "[]"), "source": ARM, "facts": {}}
    return data


def parse_message(text: str) -> dict[str, Any] | None:
    """A unit of work from a queue message, or None if the message is not one (it is set aside)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"runId", "subscription", "dryRun"}:
        return None
    if not all(isinstance(data[k], str) and 0 < len(data[k]) <= 100 for k in ("runId", "subscription")):
        return None
    if not isinstance(data["dryRun"], bool):
        return None
    return data


def run_unit(autopilot: Autopilot, message: dict[str, Any]) -> UnitResult:
    """The queue function's work: sweep one unit, store its result, finish the run if it was the last."""
    run_id, subscription = message["runId"], message["subscription"]
    run = autopilot.state.get("sweep-run", run_id)
    scope: dict[str, Any] = (
        _scope(autopilot, run_id, run) if run is not None else {"units": [], "source": ARM, "facts": {}}
    )
    if scope["facts"]:
        autopilot.rules = autopilot.rules.with_facts(
            {k: SubscriptionFacts(v[0], tuple(v[1])) for k, v in scope["facts"].items()}
        )
    if subscription.lower() not in {u.lower() for u in scope["units"]}:
        result = UnitResult(
            run_id,
            subscription,
            message["dryRun"],
            dt.datetime.now(dt.UTC).isoformat(),
            error="subscription not in scope",
        )
    else:
        result = sweep_subscription(
            autopilot,
            subscription,
            run_id,
            message["dryRun"],
            scope["source"],
            _unit_inventory(autopilot, run_id, subscription, scope["source"]),
        )
    store_unit(autopilot, result)
    finish_if_complete(autopilot, run_id)
    return result


def _unit_inventory(autopilot: Autopilot, run_id: str, subscription: str, source: str) -> Inventory | None:
    """What the run's Resource Graph read saw of the unit's subscription (None: read it now)."""
    if source != GRAPH:
        return None
    try:
        blob = autopilot.reports.download_blob(f"runs/{run_id}/inventory/{_safe(subscription)}.json")
    except ResourceNotFoundError:
        return None
    return load_inventory(json.loads(blob.readall()))


def store_unit(autopilot: Autopilot, result: UnitResult) -> None:
    container = autopilot.reports
    container.upload_blob(
        f"runs/{result.run_id}/units/{_safe(result.unit)}.json", json.dumps(result.as_dict()), overwrite=True
    )


def fail_unit(autopilot: Autopilot, message_text: str, reason: str) -> None:
    """A unit that kept failing (poison queue): record it so the run can finish without it."""
    message = parse_message(message_text)
    if message is None:
        log.warning("a poisoned sweep message is not a unit of work: %.200s", message_text)
        return
    result = UnitResult(
        message["runId"],
        message["subscription"],
        message["dryRun"],
        dt.datetime.now(dt.UTC).isoformat(),
        error=reason,
    )
    store_unit(autopilot, result)
    autopilot.events.publish(
        UNIT_FAILED,
        f"/subscriptions/{message['subscription']}",
        {
            "runId": message["runId"],
            "reason": reason,
            "remedy": "Look at the function's logs for the unit; the next sweep tries again.",
        },
    )
    finish_if_complete(autopilot, message["runId"])


def finish_if_complete(autopilot: Autopilot, run_id: str) -> dict[str, Any] | None:
    """When every unit of the run has a result, assemble the report (exactly once)."""
    run = autopilot.state.get("sweep-run", run_id)
    if run is None:
        return None
    units = _scope(autopilot, run_id, run)["units"]
    container = autopilot.reports
    stored = {blob.name for blob in container.list_blobs(name_starts_with=f"runs/{run_id}/units/")}
    if any(f"runs/{run_id}/units/{_safe(u)}.json" not in stored for u in units):
        return None
    if not autopilot.state.put_once("sweep-finished", run_id, {"At": dt.datetime.now(dt.UTC)}):
        return None
    results = [
        UnitResult.from_dict(
            json.loads(container.download_blob(f"runs/{run_id}/units/{_safe(u)}.json").readall())
        )
        for u in units
    ]
    inventory = json.loads(run.get("Inventory") or "null")
    return finish_run(autopilot, run_id, results, bool(run.get("DryRun")), inventory)


def finish_run(
    autopilot: Autopilot,
    run_id: str,
    results: list[UnitResult],
    dry_run: bool,
    inventory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from autopilot.sweep.report import build_report, csv_bytes, json_bytes, posture_csv_bytes, render_html

    now = dt.datetime.now(dt.UTC)
    from autopilot.drills.findings import drill_findings, drills_summary

    findings = [f for r in results for f in r.findings] + dst_findings(
        autopilot.rules, now, autopilot.settings.dst_warn_days
    )
    findings += drill_findings(autopilot, results, now)
    new_keys = set() if dry_run else announce(autopilot, findings, complete=not any(r.error for r in results))
    history = [] if dry_run else _history(autopilot, run_id, results)
    report = build_report(run_id, results, findings, new_keys, history, dry_run, inventory)
    report["jobHistory"] = _job_history(autopilot)
    report["drills"] = drills_summary(autopilot, now)
    container = autopilot.reports
    html = render_html(report)
    # Encoded once and uploaded twice: at 100,000 VMs the JSON and the CSV are tens of MB each.
    text = json_bytes(report)
    table = csv_bytes(report)
    if report["posture"]:  # the vaults' security posture, before the run's page (written last)
        from azure.storage.blob import ContentSettings

        posture = posture_csv_bytes(report)
        for name in (f"runs/{run_id}/posture.csv", "latest-posture.csv"):
            container.upload_blob(
                name, posture, overwrite=True, content_settings=ContentSettings(content_type="text/csv")
            )
    for name, body, content_type in (
        (f"runs/{run_id}/report.json", text, "application/json"),
        (f"runs/{run_id}/vms.csv", table, "text/csv; charset=utf-8"),
        ("latest.json", text, "application/json"),
        ("latest.csv", table, "text/csv; charset=utf-8"),
        ("latest.html", html, "text/html; charset=utf-8"),
        # The run's page last: whoever waits for it finds everything else written.
        (f"runs/{run_id}/report.html", html, "text/html; charset=utf-8"),
    ):
        from azure.storage.blob import ContentSettings

        container.upload_blob(
            name, body, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )
    if not dry_run:
        autopilot.events.publish(SWEEP_COMPLETED, f"/sweeps/{run_id}", report["summary"])
        for row in autopilot.state.rows("sweep-fix", "RunId eq @run", {"run": run_id}):
            autopilot.state.delete("sweep-fix", str(row["Key"]))
    return report


def _job_history(autopilot: Autopilot) -> dict[str, Any] | None:
    """Backup history and success rate over 30 days from Azure Monitor Logs (AddonAzureBackupJobs),
    when a workspace is configured. A Logs error is shown in the report, never fails the sweep."""
    logs = autopilot.clients.logs()
    workspace = autopilot.settings.logs_workspace_id
    if logs is None or not workspace:
        return None
    from autopilot.azure.joblogs import history_rows, history_summary, job_history

    history = job_history(logs, workspace, days=30)
    return {"summary": history_summary(history), "rows": history_rows(history)[:50]}


def _history(autopilot: Autopilot, run_id: str, results: list[UnitResult]) -> list[dict[str, Any]]:
    selected = sum(r.selected for r in results)
    compliant = sum(r.compliant for r in results)
    autopilot.state.put(
        "sweep-history",
        run_id,
        {"RunId": run_id, "Selected": selected, "Compliant": compliant, "At": dt.datetime.now(dt.UTC)},
    )
    rows = sorted(autopilot.state.rows("sweep-history"), key=lambda r: r["At"])[-30:]
    return [
        {
            "runId": r["RunId"],
            "at": r["At"].isoformat(),
            "selected": r["Selected"],
            "compliant": r["Compliant"],
        }
        for r in rows
    ]


def announce(autopilot: Autopilot, findings: Iterable[Finding], complete: bool) -> set[str]:
    """Publish an event for each finding not seen before; forget findings that are gone (only when
    every unit ran, so that a failed unit does not make its problems look resolved)."""
    new: set[str] = set()
    current = {f.key: f for f in findings}
    for key, finding in current.items():
        if autopilot.state.put_once(
            "finding", key, {"Kind": finding.kind, "Target": finding.target, "Since": dt.datetime.now(dt.UTC)}
        ):
            new.add(key)
            autopilot.events.publish(
                kind_of(finding.kind).event,
                finding.target,
                {
                    "vmId": finding.target,
                    "kind": finding.kind,
                    "reason": finding.reason,
                    "remedy": finding.remedy,
                    "action": finding.action,
                },
            )
    if complete:
        for row in autopilot.state.rows("finding"):
            if row.get("Key") not in current:
                autopilot.state.delete("finding", str(row.get("Key")))
    return new


def dst_findings(rules: Rules, now: dt.datetime, warn_days: int) -> list[Finding]:
    """Policies scheduled in a time zone whose daylight saving time changes within `warn_days`: Azure
    keeps the schedule at the zone's standard offset, so the backup moves by an hour in local time."""
    findings = []
    for spec in rules.policies:
        if not spec.has_dst:
            continue
        change = _next_offset_change(spec.iana_time_zone, now, warn_days)
        if change is None:
            continue
        findings.append(
            Finding(
                "dst-change-ahead",
                f"policy:{spec.name}",
                f"policy {spec.name} runs at {spec.time} {spec.time_zone}; daylight saving time changes on "
                f"{change:%Y-%m-%d} and Azure does not adjust backup schedules, so from then the backup runs an hour "
                "earlier or later in local time",
                "If the backup window matters (e.g. before a batch job), move the policy's time after the change.",
                "reported",
                policy=spec.name,
                detail=change.strftime("%Y-%m-%d"),
            )
        )
    return findings


def _next_offset_change(zone_name: str, now: dt.datetime, days: int) -> dt.datetime | None:
    zone = ZoneInfo(zone_name)
    offset = now.astimezone(zone).utcoffset()
    for hour in range(1, days * 24 + 1):
        moment = now + dt.timedelta(hours=hour)
        if moment.astimezone(zone).utcoffset() != offset:
            return moment
    return None


def _safe(unit: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in unit.lower())


def sweep_all(
    autopilot: Autopilot, dry_run: bool, progress: Callable[[int, int, str], None] | None = None
) -> dict[str, Any]:
    """The whole sweep in this process (the command line): the run's units in turn (by Resource Graph
    only those with work; the rest were swept when the run began), then the report."""
    run_id, messages, results = _new_run(autopilot, dry_run, finish=False)
    run = autopilot.state.get("sweep-run", run_id) or {}
    scope = _scope(autopilot, run_id, run)
    for index, message in enumerate(messages, 1):
        if progress:
            progress(index - 1, len(messages), f"subscription {message['subscription']}")
        result = sweep_subscription(
            autopilot,
            message["subscription"],
            run_id,
            dry_run,
            scope["source"],
            _unit_inventory(autopilot, run_id, message["subscription"], scope["source"]),
        )
        store_unit(autopilot, result)
        results[message["subscription"].lower()] = result
        if progress:
            progress(
                index,
                len(messages),
                f"subscription {message['subscription']}: {result.vms} VMs, {len(result.findings)} findings",
            )
    container = autopilot.reports
    for unit in scope["units"]:
        if unit.lower() not in results:  # swept by new_run, from Resource Graph
            results[unit.lower()] = UnitResult.from_dict(
                json.loads(container.download_blob(f"runs/{run_id}/units/{_safe(unit)}.json").readall())
            )
    ordered = [results[u.lower()] for u in scope["units"]]
    autopilot.state.put_once("sweep-finished", run_id, {"At": dt.datetime.now(dt.UTC)})
    inventory = json.loads(run.get("Inventory") or "null")
    return finish_run(autopilot, run_id, ordered, dry_run, inventory)
