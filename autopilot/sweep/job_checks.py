"""A vault's backup jobs since the last sweep: failed and completed-with-warnings jobs triaged by their
error codes' class, one automatic retry where the class says a retry helps, and alerts kept until a
newer backup succeeds."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from azure.core.exceptions import AzureError

from autopilot.azure.errorcodes import COMPLETED_WITH_WARNINGS, ErrorClass, classify
from autopilot.azure.facts import JobFacts
from autopilot.azure.failures import error_code, is_transient
from autopilot.azure.vms import VmFacts
from autopilot.kernel.findings import Finding
from autopilot.protect import on_demand
from autopilot.rules import VaultSpec
from autopilot.sweep.inventory import (
    Inventory,
)
from autopilot.sweep.results import UnitResult

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.sweep.job_checks")

RETRY = "retry"  # the sweep's automatic retries in the on-demand ledger, keyed by the failed job's id


FIRST_LOOK_BACK = dt.timedelta(days=1)


def check_jobs(
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
