"""Starting a backup-now request's backup: the VM in scope and protected (protected first when the
request asks), the backup an interrupted attempt of the request started adopted, a running backup
of the VM joined, or waited for when it keeps its point for less time than asked (`resume_waiting`
starts the request's own once it ends), else a new one within the daily cap, its intent written
and audited first."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from autopilot.azure.facts import JobFacts
from autopilot.azure.failures import TransientError, error_code, is_transient
from autopilot.azure.vms import VmFacts
from autopilot.backup_now.request import KIND, BackupRequest, record_key
from autopilot.backup_now.view import view
from autopilot.kernel.api import azure_problem, in_scope
from autopilot.kernel.outcomes import Kind
from autopilot.kernel.problems import Problem, printable
from autopilot.kernel.state import row_key
from autopilot.kernel.telemetry import tracer
from autopilot.protect import on_demand

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

log = logging.getLogger("autopilot.backup_now.start")

ABANDONED_AFTER = dt.timedelta(minutes=5)
VM_CLAIM_WAIT_SECONDS = 20
PURPOSE = "backup-now"  # its rows in the on-demand ledger, keyed by request id


def tag_in_scope(autopilot: Autopilot, vm: VmFacts) -> bool:
    scope = autopilot.settings.backup_scope_tag
    if scope is None:
        return True
    key, value = scope
    return any(k.lower() == key.lower() and v.lower() == value.lower() for k, v in vm.tags.items())


def request_backup(autopilot: Autopilot, request: BackupRequest, source: str) -> tuple[int, dict[str, Any]]:
    """Start (or find) the backup a request asks for: (HTTP status, the operation's view)."""
    attributes = {"autopilot.vm_id": request.vm_id, "autopilot.request_id": request.request_id}
    with tracer.start_as_current_span("backup_now", attributes=attributes) as span:
        status, answer = _request_backup(autopilot, request, source)
        span.set_attribute("autopilot.job_id", str(answer.get("jobId") or ""))
        return status, answer


def _request_backup(autopilot: Autopilot, request: BackupRequest, source: str) -> tuple[int, dict[str, Any]]:
    if not in_scope(autopilot, request.vm_id):
        autopilot.audit.refusal(
            kind="vm-out-of-scope",
            vm_id=request.vm_id,
            action="backup-now",
            reason=f"request {request.request_id}",
            outcome="refused: outside the configured scopes",
            source=source,
        )
        raise Problem(
            403,
            "vm-out-of-scope",
            "The VM is outside the scopes this API may touch",
            "Ask the operator to add its subscription or resource group to the backup-now scopes.",
            "vm",
        )
    state = autopilot.state
    now = dt.datetime.now(dt.UTC)
    record = {
        "RequestId": request.request_id,
        "BodyHash": request.body_hash,
        "VmId": request.vm_id,
        "RetainUntil": request.retain_until,
        "Reason": request.reason,
        "CallbackUrl": request.callback_url or "",
        "CallbackStatus": "pending" if request.callback_url else "none",
        "CallbackAttempts": 0,
        "Status": "Accepted",
        "Created": now,
        "Updated": now,
    }
    key = record_key(autopilot, request.request_id)
    if not state.put_once(KIND, key, record):
        existing = state.get(KIND, key)
        if existing is None:  # deleted in between (a rejected attempt): try once more
            return _request_backup(autopilot, request, source)
        if existing.get("BodyHash") != request.body_hash:
            raise Problem(
                409,
                "request-id-reused",
                "The requestId was used for another request",
                f"requestId '{request.request_id}' already names a backup with different fields; use a new requestId.",
                "requestId",
            )
        abandoned = (
            existing.get("Status") in ("Accepted", "Triggering")
            and now - existing["Updated"] > ABANDONED_AFTER
        )
        if not abandoned:
            return 202, view(existing, row_key(key))
        log.warning("taking over abandoned backup request %s", request.request_id)
    return _start(autopilot, request, source)


def _start(autopilot: Autopilot, request: BackupRequest, source: str) -> tuple[int, dict[str, Any]]:
    key = record_key(autopilot, request.request_id)
    record = autopilot.state.get(KIND, key) or {}
    try:
        vault, job, waiting = _find_or_trigger(autopilot, request, source)
    except Problem:
        autopilot.state.delete(KIND, key)  # nothing started: a corrected retry may use the same id
        raise
    except (AzureError, TransientError) as error:
        # Once the trigger was sent ("Triggering"), a transient failure keeps the record: the
        # backup may have started, and a GET or a retry after ABANDONED_AFTER finds or starts it.
        started = (autopilot.state.get(KIND, key) or {}).get("Status") == "Triggering"
        if not (started and is_transient(error)):
            autopilot.state.delete(KIND, key)
        raise azure_problem(error) from error
    update: dict[str, Any] = {"Vault": vault, "Updated": dt.datetime.now(dt.UTC)}
    if waiting:
        update.update({"Status": "Waiting", "WaitingFor": job.id, "WaitingUntil": job.retain_until or ""})
    else:
        update.update({"Status": job.status, "JobId": job.id})
    autopilot.state.put(KIND, key, update)
    return 202, view({**record, **update}, row_key(key))


def _find_or_trigger(autopilot: Autopilot, request: BackupRequest, source: str) -> tuple[str, JobFacts, bool]:
    """The job of this request's backup: the one an interrupted attempt of this request started, one
    already running for the VM whose recovery point Azure keeps at least as long as asked, or a new
    one. Returns (vault id, job, waiting): `waiting` when a backup of the VM is running that keeps
    its point for less time than asked (or for a time Azure does not say in advance, as for a
    scheduled backup); the request's own backup starts once it ends (`resume_waiting`)."""
    azure = autopilot.azure
    vm = azure.get_vm(request.vm_id)
    if vm is None:
        raise Problem(
            404, "vm-not-found", "The VM does not exist", f"No virtual machine {request.vm_id}.", "vm"
        )
    if not tag_in_scope(autopilot, vm):
        key, value = autopilot.settings.backup_scope_tag or ("", "")
        autopilot.audit.refusal(
            kind="vm-out-of-tag-scope",
            vm_id=vm.id,
            action="backup-now",
            reason=f"request {request.request_id}",
            outcome="refused: tag scope",
            source=source,
        )
        raise Problem(
            403,
            "vm-out-of-scope",
            "The VM is outside the scopes this API may touch",
            f"The VM needs tag {key}={value}.",
            "vm",
        )
    vaults = autopilot.rules.vault_set(vm.subscription_id, vm.location)
    if not vaults:
        raise Problem(
            409,
            "no-vault",
            "No vault for the VM's region",
            f"The rules name no vault in {vm.location}; add one to the rules file.",
            "vm",
        )
    # The vault of the set that holds the VM (one read for a set of one vault).
    vault, item = vaults[0], None
    for candidate in vaults:
        item = azure.get_item(candidate, vm)
        if item is not None:
            vault = candidate
            break
    live = item is not None and not item.soft_deleted and item.protection_state != "ProtectionStopped"
    if not live:
        if not request.protect_if_needed:
            raise Problem(
                409,
                "vm-not-protected",
                "The VM is not protected",
                f"{vm.name} is not protected in vault {vault.name}. Tag it so the rules select a policy (e.g. backup-policy=gold) "
                "and wait for protection, or send protectIfNeeded: true.",
                "vm",
            )
        from autopilot.protect.carry_out import protect_vm

        outcome = protect_vm(autopilot, vm.id, source=source)
        if outcome.kind not in (Kind.PROTECTED, Kind.ALREADY_PROTECTED, Kind.RESUMED, Kind.POLICY_UPDATED):
            raise Problem(
                409,
                "vm-not-protected",
                "The VM could not be protected",
                f"{outcome.reason}. {outcome.remedy}".strip(),
                "vm",
            )
        vault = autopilot.rules.vault_by_id(outcome.vault) or vault
    # A backup this request already started (an attempt that died after the trigger) is adopted,
    # never started twice.
    if on_demand.entry(autopilot, PURPOSE, request.request_id) is not None:
        job = on_demand.job_of(autopilot, vault, PURPOSE, request.request_id)
        if job is not None:
            audit_adopted(autopilot, vm.id, request.request_id, job.id, source)
            return vault.resource_id, job, False
        on_demand.forget(autopilot, PURPOSE, request.request_id)  # its trigger never reached Azure
    # One request at a time looks for a running backup of the VM and starts one: concurrent requests
    # with other ids then find the backup the first started, instead of Azure refusing theirs.
    with autopilot.state.claimed_within(f"backup-vm:{vm.id}", VM_CLAIM_WAIT_SECONDS) as claim:
        if not claim.held:
            raise TransientError(f"another backup-now request for {vm.id} is starting a backup; retry")
        running = _running_backup(autopilot, vault, vm)
        if running is not None:
            keeps = running.retain_until
            joins = keeps is not None and keeps >= request.retain_until - dt.timedelta(seconds=1)
            return vault.resource_id, running, not joins
        return vault.resource_id, _trigger(autopilot, vault, vm, request, source), False


def _running_backup(autopilot: Autopilot, vault: VaultSpec, vm: VmFacts) -> JobFacts | None:
    """The VM's backup job in progress, if any, read whole (a job list has no propertyBag, so no
    expiry)."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    for listed in _vm_jobs(autopilot, vault, vm, since):
        if listed.status != "InProgress":
            continue
        job = autopilot.azure.confirm_job(vault, listed, vm)
        if job is not None:
            return job if job.phases else autopilot.azure.get_job(vault, job.id)
    return None


def _trigger(
    autopilot: Autopilot, vault: VaultSpec, vm: VmFacts, request: BackupRequest, source: str
) -> JobFacts:
    """Start the request's backup, within the daily cap, with its intent written first; not when
    the VM's agent cannot take it (the backup would only fail: Azure Backup works through it)."""
    azure = autopilot.azure
    if vm.agent_status in ("NotReady", "Missing"):
        from autopilot.protect.decide import agent_guidance

        ready = vm.agent_status == "NotReady"
        raise Problem(
            409,
            "vm-agent-not-ready" if ready else "vm-agent-missing",
            "The VM's agent cannot take a backup now" if ready else "The VM has no VM agent",
            (
                f"{vm.name}'s VM agent has not reported Ready (a new VM's reports a minute or two after its "
                "creation), so a backup would fail; retry in a minute with the same requestId. "
                if ready
                else f"{vm.name} has no VM agent, so its backups fail. "
            )
            + agent_guidance(vm),
            "vm",
            headers={"Retry-After": "60"} if ready else None,
        )
    today = on_demand.started_today(autopilot, vm.id)
    cap = autopilot.settings.backup_daily_cap
    if today >= cap:
        midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = midnight + dt.timedelta(days=1)
        raise Problem(
            429,
            "daily-cap-reached",
            "The VM's on-demand backups for today are used up",
            f"{vm.name} had {today} on-demand backups started by the autopilot today; the limit is {cap} (Azure allows 9, recommends 4). Retry after {tomorrow:%Y-%m-%d %H:%M} UTC.",
            headers={"Retry-After": str(int((tomorrow - dt.datetime.now(dt.UTC)).total_seconds()) + 1)},
        )
    autopilot.state.put(
        KIND,
        record_key(autopilot, request.request_id),
        {"Status": "Triggering", "Vault": vault.resource_id, "Updated": dt.datetime.now(dt.UTC)},
    )
    autopilot.audit.record(
        vm_id=vm.id,
        action="backup-now",
        reason=printable(f"request {request.request_id}: {request.reason}")[:400],
        outcome="starting",
        source=source,
        details={"requestId": request.request_id},
    )
    operation = on_demand.trigger(autopilot, vault, vm, request.retain_until, PURPOSE, request.request_id)
    assert operation is not None, "without once=True the trigger always runs"
    job_id = azure.job_of_operation(vault, vm, operation)
    on_demand.record_job(autopilot, PURPOSE, request.request_id, job_id)
    autopilot.audit.record(
        vm_id=vm.id,
        action="backup-now",
        reason=printable(f"request {request.request_id}: {request.reason}")[:400],
        outcome=f"started job {job_id}, retain until {request.retain_until:%Y-%m-%d %H:%M} UTC",
        source=source,
        details={"jobId": job_id, "requestId": request.request_id},
    )
    return azure.get_job(vault, job_id)


def audit_adopted(autopilot: Autopilot, vm_id: str, request_id: str, job_id: str, source: str) -> None:
    """The audit row of a backup an interrupted attempt of the request started, adopted now."""
    autopilot.audit.record(
        vm_id=vm_id,
        action="backup-now",
        reason=f"request {request_id}",
        outcome=f"started job {job_id} (found started by an interrupted attempt)",
        source=source,
        details={"jobId": job_id, "requestId": request_id},
    )


def _vm_jobs(autopilot: Autopilot, vault: Any, vm: VmFacts | str, since: dt.datetime) -> list[JobFacts]:
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    return [job for job in autopilot.azure.backup_jobs(vault, since, until) if job.is_for(vm)]


def resume_waiting(
    autopilot: Autopilot, operation_id: str, record: dict[str, Any], source: str
) -> dict[str, Any]:
    """A request that waits for a running backup of its VM (whose point Azure keeps for less time
    than asked) starts its own once that backup has ended; called by a GET of its status and by the
    follow-up timer, one at a time. Returns the record as it now is. When the backup cannot start
    (the daily cap, the VM gone, Azure refusing), the record says so: status Refused."""
    vault = autopilot.rules.vault_by_id(str(record.get("Vault", "")))
    if vault is None or record.get("Status") != "Waiting":
        return record
    blocking = autopilot.azure.get_job(vault, str(record["WaitingFor"]))
    if blocking.status in ("InProgress", "Cancelling"):
        return record
    request_id = str(record.get("RequestId", ""))
    key = record_key(autopilot, request_id)
    with autopilot.state.claimed(f"backup-request:{request_id}", 60) as mine:
        fresh = autopilot.state.get_row(KIND, operation_id)
        if not mine or fresh is None or fresh.get("Status") != "Waiting":
            return fresh or record
        request = BackupRequest(
            vm_id=str(fresh["VmId"]),
            retain_until=fresh["RetainUntil"],
            request_id=request_id,
            reason=str(fresh.get("Reason", "")),
            callback_url=str(fresh.get("CallbackUrl") or "") or None,
            protect_if_needed=False,
            body_hash=str(fresh.get("BodyHash", "")),
        )
        now = dt.datetime.now(dt.UTC)
        try:
            vault_id, job, waiting = _find_or_trigger(autopilot, request, source)
        except Problem as problem:
            autopilot.state.put(KIND, key, {"Status": "Refused", "Detail": problem.detail, "Updated": now})
        except (AzureError, TransientError) as error:
            if not is_transient(error):
                autopilot.state.put(
                    KIND, key, {"Status": "Refused", "Detail": error_code(error), "Updated": now}
                )
            log.warning("waiting backup request %s could not start yet: %s", request_id, error_code(error))
        else:
            update: dict[str, Any] = {"Vault": vault_id, "Updated": now}
            if waiting:
                update.update({"WaitingFor": job.id, "WaitingUntil": job.retain_until or ""})
            else:
                update.update({"Status": job.status, "JobId": job.id})
            autopilot.state.put(KIND, key, update)
        return autopilot.state.get_row(KIND, operation_id) or fresh
