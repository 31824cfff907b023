"""The on-demand backups the product starts, and how it knows them again.

Azure does not say who started a backup job, nor whether it was on demand: no recorded job body
(2019 to 2023) and none of the API's examples carries `isUserTriggered` or a caller. So the product
keeps its own ledger, one row per backup it triggers (backup now, first backups, the sweep's
retries), written in three steps as the trigger proceeds:

1. the intent, before the trigger is sent: the VM, the vault, the requested expiry and the time;
2. the operation id from the trigger's 202 (`Azure-AsyncOperation`);
3. the job id, once the operation status names it.

From the ledger come how many on-demand backups the product started for a VM today (one daily cap
for all three callers) and the job of an attempt that was cut off (`job_of`): by its job id, else by
its operation's status, else, when the trigger's answer was lost, by the backup job of the VM that
started since the intent and whose "Recovery Point Expiry Time in UTC" is the expiry asked for (a
job's propertyBag carries it, as the recorded real jobs show).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError

from autopilot.azure.facts import JobFacts
from autopilot.azure.vms import VmFacts

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

KIND = "on-demand"
CLOCK_SKEW = dt.timedelta(minutes=1)


def _key(purpose: str, ref: str) -> str:
    return f"{purpose}:{ref}"


def _midnight(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def started_today(autopilot: Autopilot, vm_id: str, now: dt.datetime | None = None) -> int:
    """How many on-demand backups the product started (or may have started) for the VM since
    midnight UTC."""
    since = _midnight(now or dt.datetime.now(dt.UTC))
    rows = autopilot.state.rows(
        KIND, "VmKey eq @vm and Started ge @since", {"vm": vm_id.lower(), "since": since}
    )
    return sum(1 for row in rows if not row.get("Covered"))


def trigger(
    autopilot: Autopilot,
    vault: VaultSpec,
    vm: VmFacts,
    retain_until: dt.datetime,
    purpose: str,
    ref: str,
    once: bool = False,
) -> str | None:
    """Trigger an on-demand backup of the VM with its intent in the ledger first; returns the
    operation id. With `once`, a backup already in the ledger for (purpose, ref) is not started again
    and None is returned. If Azure refuses the trigger the intent is removed; if the answer is lost
    (a dropped connection, a server error) it stays, since the backup may have started."""
    key = _key(purpose, ref)
    intent = {
        "VmKey": vm.id.lower(),
        "VmId": vm.id,
        "Vault": vault.resource_id,
        "Purpose": purpose,
        "RetainUntil": retain_until,
        "Started": dt.datetime.now(dt.UTC),
        "OperationId": "",
        "JobId": "",
    }
    if once:
        if not autopilot.state.put_once(KIND, key, intent):
            return None
    else:
        autopilot.state.put(KIND, key, intent)
    try:
        operation = autopilot.azure.backup_now(vault, vm, retain_until)
    except Exception as error:
        if isinstance(error, HttpResponseError) and error.status_code is not None and error.status_code < 500:
            autopilot.state.delete(KIND, key)  # refused: nothing started
        raise
    autopilot.state.put(KIND, key, {"OperationId": operation})
    return operation


def covered(autopilot: Autopilot, purpose: str, ref: str) -> None:
    """A ledger row whose trigger Azure refused because another backup of the VM runs: kept (so the
    purpose counts as served, e.g. a VM's first backup) but not counted as a backup started."""
    autopilot.state.put(KIND, _key(purpose, ref), {"Covered": True})


def forget(autopilot: Autopilot, purpose: str, ref: str) -> None:
    """Remove a ledger row whose backup certainly did not start."""
    autopilot.state.delete(KIND, _key(purpose, ref))


def entry(autopilot: Autopilot, purpose: str, ref: str) -> dict[str, Any] | None:
    return autopilot.state.get(KIND, _key(purpose, ref))


def job_of(
    autopilot: Autopilot, vault: VaultSpec, purpose: str, ref: str, wait_seconds: float = 60
) -> JobFacts | None:
    """The job of the backup the ledger holds for (purpose, ref), read fresh from Azure; None when
    there is no such row or no job of it can be found (the trigger never reached Azure)."""
    row = entry(autopilot, purpose, ref)
    if row is None:
        return None
    azure = autopilot.azure
    if row.get("JobId"):
        return azure.get_job(vault, str(row["JobId"]))
    vm_id = str(row["VmId"])
    if row.get("OperationId"):
        job_id = azure.job_of_operation(vault, vm_id, str(row["OperationId"]), wait_seconds)
        autopilot.state.put(KIND, _key(purpose, ref), {"JobId": job_id})
        return azure.get_job(vault, job_id)
    job = _job_by_expiry(autopilot, vault, row)
    if job is not None:
        autopilot.state.put(KIND, _key(purpose, ref), {"JobId": job.id})
    return job


def record_job(autopilot: Autopilot, purpose: str, ref: str, job_id: str) -> None:
    autopilot.state.put(KIND, _key(purpose, ref), {"JobId": job_id})


def _job_by_expiry(autopilot: Autopilot, vault: VaultSpec, row: dict[str, Any]) -> JobFacts | None:
    """The backup job a trigger whose answer was lost started: a backup of the VM that started since
    the intent, not known as another of the ledger's, whose recovery point expires when asked."""
    started: dt.datetime = row["Started"]
    wanted: dt.datetime = row["RetainUntil"]
    vm_id = str(row["VmId"])
    now = dt.datetime.now(dt.UTC)
    known = {
        str(r.get("JobId", "")).lower()
        for r in autopilot.state.rows(
            KIND, "VmKey eq @vm and Started ge @since", {"vm": vm_id.lower(), "since": started - CLOCK_SKEW}
        )
    }
    candidates = sorted(
        (
            job
            for job in autopilot.azure.backup_jobs(vault, started - CLOCK_SKEW, now + dt.timedelta(minutes=5))
            if job.is_for(vm_id) and job.id.lower() not in known
        ),
        key=lambda job: job.start or started,
    )
    for listed in candidates:
        job = autopilot.azure.get_job(vault, listed.id)  # a list entry has no propertyBag, no container
        if (
            job.is_for(vm_id)
            and job.retain_until is not None
            and abs(job.retain_until - wanted) < dt.timedelta(seconds=1)
        ):
            return job
    return None
