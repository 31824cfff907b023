"""A restore drill of one VM, as steps kept in the state table so that any instance (or the command
line) can carry it on after a restart, and a drill cut off half way is finished and cleaned up by
whoever runs it next.

    Queued -> Triggering -> Restoring -> Verifying [-> Booting] -> Cleaning -> Passed | Failed

Queued: a place among the vault's drills in flight, the recovery point of the rules' tier, the
restore's intent written down, then Restores_Trigger (RestoreDisks) into the staging group.
Triggering: an interrupted trigger's job is found among the vault's Restore jobs, or the trigger
is sent again. Restoring: the Restore job is followed to its end; its time is the restore time; its
failure is classified (autopilot/azure/errorcodes.py). Verifying: one managed disk per backed-up disk,
excluded LUNs absent, sizes as the source's, the job's configuration blob in the staging account.
Booting (rules: verify: boot): a VM from the restored disks in an isolated network of the staging group
must report its VM agent Ready within the policy's bootTimeout; the time to a booted VM (the restore
job's time and the boot's) is then the drill's restore time (autopilot/drills/boot.py).
Cleaning: the boot step's VM, NIC and VNet, then the restored disks and the restore's blob container
are deleted (unless the rules keep the disks), and nothing of the restore is left in the staging group.
Every step is audited; the end is published as an event.

About 500 lines: a drill's steps are one state machine, kept in one place so that each step's
resumption after a crash can be read beside the others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from autopilot.azure.errorcodes import classify
from autopilot.azure.failures import FailureKind, TransientError, classify_failure
from autopilot.drills import azure as drill_azure
from autopilot.kernel.problems import printable
from autopilot.names import split_id

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

log = logging.getLogger("autopilot.drills")

KIND = "drill"  # a drill's record, keyed by its id
ACTIVE = "drill-active"  # per VM: the drill in flight (one at a time)
LAST = "drill-vm"  # per VM: its last drill and when it was last proven (rotation, report)
SLOT = "drill-slot"  # per vault and place: the drill holding one of the vault's places in flight
FINAL = ("Passed", "Failed")
RUNNING_JOB = ("InProgress", "Cancelling", "NotStarted")
MAX_ERRORS = 20  # failed steps before a drill gives up (transient failures are retried until then)
EVENTS = {"Passed": "BackupAutopilot.Drill.Passed", "Failed": "BackupAutopilot.Drill.Failed"}
ACTION = "restore-drill"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def get(autopilot: Autopilot, drill_id: str) -> dict[str, Any] | None:
    return autopilot.state.get(KIND, drill_id)


def _update(autopilot: Autopilot, record: dict[str, Any], **values: Any) -> dict[str, Any]:
    values["Updated"] = utc_now()
    autopilot.state.put(KIND, str(record["Id"]), values)
    record.update(values)
    return record


def _audit(autopilot: Autopilot, record: dict[str, Any], outcome: str, reason: str = "") -> None:
    autopilot.audit.record(
        vm_id=str(record["VmId"]),
        action=ACTION,
        reason=printable(reason or f"drill {record['Id']}: {record.get('Reason') or 'restore drill'}")[:400],
        outcome=outcome,
        source=str(record.get("Source", "")),
        details={"drillId": str(record["Id"]), "jobId": str(record.get("JobId") or "")},
    )


def create(
    autopilot: Autopilot,
    vm_id: str,
    vault: VaultSpec,
    policy: str,
    excluded_luns: tuple[int, ...],
    source: str,
    reason: str,
) -> tuple[dict[str, Any], bool]:
    """The VM's drill: a new one (Queued), or the one in flight for it. Returns (record, created)."""
    drills = autopilot.rules.drills
    assert drills is not None, "callers check that the rules have drills"
    drill_id = uuid.uuid4().hex[:20]
    now = utc_now()
    if not autopilot.state.put_once(ACTIVE, vm_id, {"Drill": drill_id}):
        current = autopilot.state.get(ACTIVE, vm_id) or {}
        existing = get(autopilot, str(current.get("Drill", "")))
        if existing is not None and existing.get("Status") not in FINAL:
            return existing, False
        autopilot.state.put(ACTIVE, vm_id, {"Drill": drill_id})  # the last one ended (or never began)
    last = autopilot.state.get(LAST, vm_id) or {}
    tier = drills.tier
    if tier == "both":  # the tier this VM was not drilled in last time
        tier = "vault" if last.get("LastTier") == "snapshot" else "snapshot"
    objective = drills.policy(policy).restore_objective_seconds
    record: dict[str, Any] = {
        "Id": drill_id,
        "VmId": vm_id,
        "Vault": vault.resource_id,
        "Policy": policy,
        "Tier": tier,
        "ExcludedLuns": json.dumps(list(excluded_luns)),
        "ObjectiveSeconds": objective or 0,
        "VerifyBoot": drills.policy(policy).verify_boot,
        "BootTimeoutSeconds": drills.policy(policy).boot_timeout_seconds,
        "Status": "Queued",
        "Source": source,
        "Reason": reason[:400],
        "Created": now,
        "Updated": now,
        "Errors": 0,
    }
    autopilot.state.put(KIND, drill_id, record)
    _audit(autopilot, record, "queued", f"drill {drill_id} of the {tier} tier: {reason or 'restore drill'}")
    return record, True


# -- advancing -------------------------------------------------------------------------------------
def advance(autopilot: Autopilot, drill_id: str) -> float | None:
    """Carry the drill on until it has to wait: seconds to wait before the next look, or None once it
    has ended (or does not exist). One runner at a time per drill."""
    with autopilot.state.claimed(f"drill:{drill_id}", 15) as mine:
        if not mine:
            return float(autopilot.settings.drill_poll_seconds)
        for _ in range(12):
            record = get(autopilot, drill_id)
            if record is None or record.get("Status") in FINAL:
                return None
            wait = _step(autopilot, record)
            if wait > 0:
                return wait
    return 0.1


def _step(autopilot: Autopilot, record: dict[str, Any]) -> float:
    steps = {
        "Queued": _start,
        "Triggering": _adopt,
        "Restoring": _follow,
        "Verifying": _verify,
        "Booting": _boot,
        "Cleaning": _clean,
    }
    step = steps.get(str(record.get("Status")))
    if step is None:
        _update(
            autopilot,
            record,
            Status="Cleaning",
            Outcome="error",
            Why=f"unknown status {record.get('Status')}",
        )
        return 0
    try:
        return step(autopilot, record)
    except (AzureError, TransientError) as error:
        return _failed_step(autopilot, record, error)


def _failed_step(autopilot: Autopilot, record: dict[str, Any], error: Exception) -> float:
    failure = classify_failure(error)
    errors = int(record.get("Errors") or 0) + 1
    log.warning(
        "drill %s: %s failed (%s, %s)", record["Id"], record.get("Status"), failure.code, failure.kind.value
    )
    if record.get("Status") == "Queued" and failure.kind is FailureKind.PERMANENT:
        info = classify(failure.code)
        _conclude(
            autopilot,
            record,
            "restore-refused",
            f"Azure refused the restore: {failure.code}",
            ErrorCode=failure.code,
            ErrorClass=info.error_class.value,
            Remedy=failure.remedy,
        )
        return 0
    if errors >= MAX_ERRORS and record.get("Status") != "Cleaning":
        _conclude(
            autopilot,
            record,
            "error",
            f"gave up after {errors} failed steps; last {failure.code}",
            Errors=errors,
        )
        return 0
    _update(autopilot, record, Errors=errors, LastError=failure.code)
    return float(autopilot.settings.drill_poll_seconds)


def _vault(autopilot: Autopilot, record: dict[str, Any]) -> VaultSpec:
    vault = autopilot.rules.vault_by_id(str(record["Vault"]))
    if vault is None:
        raise TransientError(f"the rules no longer name vault {record['Vault']}")
    return vault


def _start(autopilot: Autopilot, record: dict[str, Any]) -> float:
    vault = _vault(autopilot, record)
    drills = autopilot.rules.drills
    assert drills is not None
    if not _take_place(autopilot, record, vault, drills.in_flight_per_vault):
        return float(autopilot.settings.drill_poll_seconds)
    staging = drills.staging_for(vault.subscription_id, vault.region)
    if staging is None:
        return _conclude(autopilot, record, "no-staging", f"the rules name no staging for {vault.region}")
    points = drill_azure.recovery_points(autopilot, vault, str(record["VmId"]))
    point = drill_azure.choose_point(points, str(record["Tier"]))
    if point is None:
        return _conclude(
            autopilot,
            record,
            "no-recovery-point",
            f"no recovery point in the {record['Tier']} tier to drill ({len(points)} recovery point(s) in all)",
        )
    _update(
        autopilot, record, Status="Triggering", Point=point.name, PointTime=point.time, Triggered=utc_now()
    )
    _audit(
        autopilot,
        record,
        f"restoring point {point.name} ({point.time:%Y-%m-%d %H:%M} UTC) into {staging.resource_group}",
    )
    operation = drill_azure.trigger_restore(
        autopilot,
        vault,
        str(record["VmId"]),
        point.name,
        staging.group_id(vault.subscription_id),
        staging.account_id(vault.subscription_id),
    )
    job_id = autopilot.azure.job_of_operation(vault, str(record["VmId"]), operation)
    _update(autopilot, record, Status="Restoring", JobId=job_id)
    _audit(autopilot, record, f"restore job {job_id} started")
    return 0


def _adopt(autopilot: Autopilot, record: dict[str, Any]) -> float:
    """A trigger that was cut off: its job if Azure started one, else the trigger again."""
    vault = _vault(autopilot, record)
    since = record["Triggered"] - dt.timedelta(minutes=2)
    start, end = (
        t.astimezone(dt.UTC).strftime("%Y-%m-%d %I:%M:%S %p")
        for t in (since, utc_now() + dt.timedelta(minutes=5))
    )
    jobs = autopilot.azure.list_jobs(
        vault, f"operation eq 'Restore' and startTime eq '{start}' and endTime eq '{end}'"
    )
    mine = [j for j in jobs if autopilot.azure.confirm_job(vault, j, str(record["VmId"])) is not None]
    if not mine:
        _update(autopilot, record, Status="Queued")
        return 0
    job = max(mine, key=lambda j: j.start or since)
    _update(autopilot, record, Status="Restoring", JobId=job.id)
    _audit(autopilot, record, f"restore job {job.id} found (started by an interrupted attempt)")
    return 0


def _follow(autopilot: Autopilot, record: dict[str, Any]) -> float:
    vault = _vault(autopilot, record)
    job = autopilot.azure.get_job(vault, str(record["JobId"]))
    if job.status in RUNNING_JOB:
        _update(autopilot, record, JobStatus=job.status)
        return float(autopilot.settings.drill_poll_seconds)
    start, end = job.start, job.end or utc_now()
    seconds = round((end - start).total_seconds(), 1) if start else 0.0
    if job.status not in ("Completed", "CompletedWithWarnings"):
        info = classify(job.error_code, job.recommendations)
        return _conclude(
            autopilot,
            record,
            "restore-failed",
            f"the restore job ended {job.status}: {job.error_code or 'no error code'}",
            JobStatus=job.status,
            ErrorCode=job.error_code,
            ErrorClass=info.error_class.value,
            Remedy=info.remedy,
            RestoreSeconds=seconds,
        )
    bag = drill_azure.job_bag(autopilot, vault, str(record["JobId"]))
    config = bag.get("Config Blob Uri", "")
    staging = (
        autopilot.rules.drills.staging_for(vault.subscription_id, vault.region)
        if autopilot.rules.drills
        else None
    )
    _, _, vm_name = split_id(str(record["VmId"]))
    disks = (
        drill_azure.restored_disks(
            autopilot, vault.subscription_id, staging.resource_group, vm_name, start or end, end
        )
        if staging
        else []
    )
    _update(
        autopilot,
        record,
        Status="Verifying",
        JobStatus=job.status,
        JobStart=start or end,
        JobEnd=end,
        RestoreSeconds=seconds,
        ConfigBlobUri=config,
        Container=config.rsplit("/", 1)[0] if config else "",
        Disks=json.dumps([d.__dict__ for d in disks]),
    )
    _audit(autopilot, record, f"restore job {job.status} in {seconds:.0f} s; {len(disks)} disk(s) restored")
    return 0


def _verify(autopilot: Autopilot, record: dict[str, Any]) -> float:
    from autopilot.drills.verify import checks_of

    checks = checks_of(autopilot, record)
    passed = all(c["passed"] for c in checks)
    failed = [c["name"] for c in checks if not c["passed"]]
    reason = "restored disks verified" if passed else f"verification failed: {', '.join(failed)}"
    _audit(
        autopilot, record, "verified" if passed else "verification failed", f"drill {record['Id']}: {reason}"
    )
    if passed and record.get("VerifyBoot"):
        _update(autopilot, record, Status="Booting", BootPhase="network", Checks=json.dumps(checks))
        return 0
    return _conclude(
        autopilot, record, "passed" if passed else "verify-failed", reason, Checks=json.dumps(checks)
    )


def _boot(autopilot: Autopilot, record: dict[str, Any]) -> float:
    """The boot step, one phase at a time (autopilot/drills/boot.py); each phase is safe to repeat."""
    from autopilot.drills import boot

    phase = str(record.get("BootPhase") or "network")
    if phase == "network":
        nic_id = boot.make_network(autopilot, record)
        _update(autopilot, record, BootPhase="vm", BootNic=nic_id)
        _audit(autopilot, record, f"boot: isolated network {boot.names(record)['vnet']} and NIC made")
        return 0
    if phase == "vm":
        started = record.get("BootStarted") or utc_now()
        _update(autopilot, record, BootStarted=started)
        boot.create_vm(autopilot, record, str(record["BootNic"]))
        _update(autopilot, record, BootPhase="wait")
        _audit(autopilot, record, f"boot: VM {boot.names(record)['vm']} created from the restored disks")
        return 0
    return _wait_for_boot(autopilot, record)


def _wait_for_boot(autopilot: Autopilot, record: dict[str, Any]) -> float:
    from autopilot.drills import boot

    state, shown = boot.boot_state(autopilot, record)
    seconds = boot.elapsed(record.get("BootStarted"))
    if state == "ready":
        job_seconds = float(record.get("RestoreSeconds") or 0)
        total = round(job_seconds + seconds, 1)
        _audit(
            autopilot,
            record,
            f"boot: agent Ready {seconds:.0f} s after the VM's creation; {total:.0f} s to a booted VM",
        )
        return _conclude(
            autopilot,
            record,
            "passed",
            f"restored disks verified; a VM from them booted in {seconds:.0f} s",
            BootSeconds=seconds,
            JobSeconds=job_seconds,
            RestoreSeconds=total,
        )
    limit = int(record.get("BootTimeoutSeconds") or 0)
    if state == "failed" or (limit and seconds > limit):
        why = (
            f"the VM made from the restored disks did not boot: {shown}"
            if state == "failed"
            else f"the VM made from the restored disks did not report its VM agent Ready within {limit} s ({shown})"
        )
        _audit(autopilot, record, "boot failed", f"drill {record['Id']}: {why}")
        return _conclude(autopilot, record, "boot-failed", why, BootSeconds=seconds, Remedy=boot.REMEDY)
    _update(autopilot, record, BootState=shown[:200])
    return float(autopilot.settings.drill_poll_seconds)


def _conclude(autopilot: Autopilot, record: dict[str, Any], outcome: str, why: str, **values: Any) -> float:
    _update(autopilot, record, Status="Cleaning", Outcome=outcome, Why=why[:1000], **values)
    return 0


def _clean(autopilot: Autopilot, record: dict[str, Any]) -> float:
    """Delete what the boot step made (its VM, NIC and VNet), then what the restore made (unless the
    rules keep the disks): the disks it recorded and any
    other disk of its job found in the staging group (one that appeared while the drill was cut off),
    and the restore's blob container; then end the drill once nothing of it is left."""
    if record.get("BootPhase") and not record.get("BootCleaned"):
        from autopilot.drills import boot

        boot.clean_up(autopilot, record)
        _update(autopilot, record, BootCleaned=True)
        _audit(autopilot, record, f"boot: VM, NIC and network {boot.names(record)['vnet']} deleted")
    drills = autopilot.rules.drills
    keep = bool(drills and drills.keep_restored_disks and record.get("Outcome") == "passed")
    if keep:
        return _end(autopilot, record, kept=True)
    disks = {str(d["id"]).lower(): str(d["id"]) for d in json.loads(record.get("Disks") or "[]")}
    disks.update({d.id.lower(): d.id for d in _restored_now(autopilot, record)})
    for disk_id in disks.values():
        drill_azure.delete_disk(autopilot, disk_id)
    if record.get("Container"):
        drill_azure.delete_container(autopilot, str(record["Container"]))
    left = _restored_now(autopilot, record)
    if left:
        _update(autopilot, record, LastError=f"{len(left)} restored disk(s) still there")
        return float(autopilot.settings.drill_poll_seconds)
    _audit(autopilot, record, f"cleaned up: {len(disks)} disk(s) and the restore's blobs deleted")
    return _end(autopilot, record, kept=False)


def _restored_now(autopilot: Autopilot, record: dict[str, Any]) -> list[drill_azure.RestoredDisk]:
    """The disks of this drill's restore job in the staging group now."""
    start, end = record.get("JobStart"), record.get("JobEnd")
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return []
    vault = _vault(autopilot, record)
    drills = autopilot.rules.drills
    staging = drills.staging_for(vault.subscription_id, vault.region) if drills else None
    if staging is None:
        return []
    _, _, vm_name = split_id(str(record["VmId"]))
    return drill_azure.restored_disks(
        autopilot, vault.subscription_id, staging.resource_group, vm_name, start, end
    )


def _end(autopilot: Autopilot, record: dict[str, Any], kept: bool) -> float:
    """Audit and announce the outcome, then mark the drill final: a crash in between repeats the end
    (its audit row and event at least once, never lost)."""
    status = "Passed" if record.get("Outcome") == "passed" else "Failed"
    now = utc_now()
    vm_id = str(record["VmId"])
    last: dict[str, Any] = {
        "LastDrill": str(record["Id"]),
        "LastDrillAt": now,
        "LastOutcome": str(record.get("Outcome")),
        "LastTier": str(record.get("Tier")),
        "Policy": str(record.get("Policy", "")),
    }
    if status == "Passed":
        last["LastProven"] = now
    autopilot.state.put(LAST, vm_id, last)
    final = {**record, "Status": status, "Finished": now, "Cleaned": not kept, "Kept": kept}
    _audit(
        autopilot,
        final,
        f"drill {status.lower()}: {record.get('Outcome')}",
        f"drill {record['Id']}: {record.get('Why', '')}",
    )
    from autopilot.drills.view import view

    autopilot.events.publish(EVENTS[status], vm_id, view(final))
    _update(autopilot, record, Status=status, Finished=now, Cleaned=not kept, Kept=kept)
    _let_go(autopilot, record)
    return 0


def _let_go(autopilot: Autopilot, record: dict[str, Any]) -> None:
    """Free the vault's place and the VM's in-flight mark (if they are still this drill's)."""
    slot = str(record.get("Slot") or "")
    if slot and (autopilot.state.get(SLOT, slot) or {}).get("Drill") == record["Id"]:
        autopilot.state.delete(SLOT, slot)
    vm = str(record["VmId"])
    if (autopilot.state.get(ACTIVE, vm) or {}).get("Drill") == record["Id"]:
        autopilot.state.delete(ACTIVE, vm)


def _take_place(autopilot: Autopilot, record: dict[str, Any], vault: VaultSpec, places: int) -> bool:
    """One of the vault's places for drills in flight (rules: inFlightPerVault). A place whose drill
    has ended (or whose record is gone) is free."""
    drill_id = str(record["Id"])
    for n in range(places):
        key = f"{vault.resource_id.lower()}|{n}"
        if autopilot.state.put_once(SLOT, key, {"Drill": drill_id}):
            _update(autopilot, record, Slot=key)
            return True
        row = autopilot.state.get(SLOT, key) or {}
        if row.get("Drill") == drill_id:
            return True
        holder = get(autopilot, str(row.get("Drill", "")))
        if holder is None or holder.get("Status") in FINAL:
            autopilot.state.delete(SLOT, key)
            if autopilot.state.put_once(SLOT, key, {"Drill": drill_id}):
                _update(autopilot, record, Slot=key)
                return True
    return False
