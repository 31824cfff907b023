"""Backup now: an on-demand backup of one VM with a retain-until date, for ticketing tools.

Safe to call from anywhere: every input is validated, the VM must be inside the configured scopes,
the request id makes the call idempotent (the same id with the same body answers the same operation
and never starts a second backup, also under concurrency and across restarts; with another body it is
refused), a running backup of the VM is answered instead of starting another, and the per-VM daily
cap is kept. Errors are RFC 9457 problems that say what was wrong and how to fix it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from autopilot.azure.backup import (
    JobFacts,
    PointFacts,
    TransientError,
    error_code,
    is_transient,
)
from autopilot.azure.errorcodes import COMPLETED_WITH_WARNINGS, classify
from autopilot.azure.vms import VmFacts, vm_id_from_subject
from autopilot.backup_now.callback_target import check_callback_url
from autopilot.kernel.api import azure_problem, in_scope
from autopilot.kernel.outcomes import Kind
from autopilot.kernel.problems import Problem, printable
from autopilot.kernel.signing import check_signature
from autopilot.kernel.state import row_key
from autopilot.kernel.telemetry import tracer
from autopilot.protect import on_demand

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

log = logging.getLogger("autopilot.backup_now.start")

MAX_BODY_BYTES = 16 * 1024
SIGNATURE_WINDOW = dt.timedelta(minutes=5)
MAX_RETAIN = dt.timedelta(days=99 * 365)  # Azure's limit for an on-demand recovery point
KIND = "backup"
ABANDONED_AFTER = dt.timedelta(minutes=5)
CLOCK_SKEW = dt.timedelta(minutes=1)
POINT_SKEW = dt.timedelta(seconds=2)
# Azure spells a backup job's tasks in more than one way ("Transfer Data to Vault" in recorded 2019
# jobs, "Transfer data to vault" in the API's examples): the API answers one spelling.
PHASE_NAMES = {name.lower(): name for name in ("Take Snapshot", "Transfer data to vault")}
VM_CLAIM_WAIT_SECONDS = 20
PURPOSE = "backup-now"  # its rows in the on-demand ledger, keyed by request id
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@#/-]{0,127}$")  # fullmatch: "$" alone allows a final "\n"
_KNOWN_FIELDS = {
    "vm",
    "subscriptionId",
    "resourceGroup",
    "name",
    "retainUntil",
    "requestId",
    "reason",
    "callbackUrl",
    "protectIfNeeded",
}
FINAL_STATUSES = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")


def record_key(autopilot: Autopilot, request_id: str) -> str:
    """The state key of a request's record. It holds an HMAC of the request id under a secret kept
    in the state table (Autopilot.operation_key), so that the operation id the API answers with
    (the record's RowKey) cannot be derived from a ticket number: only the caller that sent the
    request learns it, and a status is read with it (docs/BACKUP_NOW.md)."""
    digest = hmac.new(autopilot.operation_key, request_id.lower().encode(), hashlib.sha256).hexdigest()
    return f"backup-request:{digest}"


def _bad(field: str, detail: str) -> Problem:
    return Problem(400, "invalid-field", "A field of the request is not valid", detail, field)


@dataclass(frozen=True)
class BackupRequest:
    vm_id: str
    retain_until: dt.datetime
    request_id: str
    reason: str
    callback_url: str | None
    protect_if_needed: bool
    body_hash: str


def parse_request(body: bytes, default_retain_days: int, now: dt.datetime) -> BackupRequest:
    """The request, validated; raises Problem naming the field and the fix."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413,
            "body-too-large",
            "The request body is too large",
            f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}.",
        )
    try:
        data = json.loads(body)
    except RecursionError:
        raise Problem(
            400, "malformed-json", "The body is not valid JSON", "The JSON is nested too deeply."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(
            400, "malformed-json", "The body is not valid JSON", f"Send a JSON object: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise Problem(
            400,
            "malformed-json",
            "The body is not a JSON object",
            'Send a JSON object such as {"vm": "/subscriptions/...", "requestId": "CHG0012345"}.',
        )
    unknown = sorted(set(data) - _KNOWN_FIELDS)
    if unknown:
        raise _bad(
            unknown[0], f"Unknown field '{unknown[0]}'; the fields are {', '.join(sorted(_KNOWN_FIELDS))}."
        )
    vm_id = _vm_id(data)
    request_id = data.get("requestId")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):  # no "\n" at the end
        raise _bad(
            "requestId",
            "requestId is required: 1 to 128 characters (letters, digits and . _ : @ # / -), e.g. the ticket number; it makes retries safe.",
        )
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise _bad("reason", "reason must be text of at most 500 characters.")
    retain_until = _retain_until(data.get("retainUntil"), default_retain_days, now)
    callback = data.get("callbackUrl")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 2048):
        raise _bad("callbackUrl", "callbackUrl must be an https URL of at most 2048 characters.")
    protect = data.get("protectIfNeeded", False)
    if not isinstance(protect, bool):
        raise _bad("protectIfNeeded", "protectIfNeeded must be true or false.")
    canonical = json.dumps(
        {
            "vm": vm_id.lower(),
            "retainUntil": retain_until.isoformat(),
            "reason": reason,
            "callbackUrl": callback,
            "protectIfNeeded": protect,
        },
        sort_keys=True,
    )
    return BackupRequest(
        vm_id,
        retain_until,
        request_id,
        reason,
        callback,
        protect,
        hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _vm_id(data: Mapping[str, Any]) -> str:
    if "vm" in data:
        if any(k in data for k in ("subscriptionId", "resourceGroup", "name")):
            raise _bad(
                "vm", "Give either vm (the ARM id) or subscriptionId + resourceGroup + name, not both."
            )
        vm_id = vm_id_from_subject(data["vm"])
        if vm_id is None:
            raise _bad(
                "vm",
                "vm must be a virtual machine's ARM id: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>.",
            )
        return vm_id
    parts = [data.get("subscriptionId"), data.get("resourceGroup"), data.get("name")]
    if not all(isinstance(p, str) and p for p in parts):
        missing = next(
            k
            for k, p in zip(("subscriptionId", "resourceGroup", "name"), parts, strict=True)
            if not (isinstance(p, str) and p)
        )
        raise _bad(
            missing if "vm" not in data else "vm",
            "Give vm (the VM's ARM id), or subscriptionId, resourceGroup and name.",
        )
    vm_id = vm_id_from_subject(
        f"/subscriptions/{parts[0]}/resourceGroups/{parts[1]}/providers/Microsoft.Compute/virtualMachines/{parts[2]}"
    )
    if vm_id is None:
        raise _bad("name", "subscriptionId must be a GUID and resourceGroup and name valid Azure names.")
    return vm_id


def _retain_until(value: object, default_days: int, now: dt.datetime) -> dt.datetime:
    if value is None:
        return (now + dt.timedelta(days=default_days)).replace(microsecond=0)
    if not isinstance(value, str) or len(value) > 40:
        raise _bad(
            "retainUntil",
            "retainUntil must be a date (2026-12-31) or a UTC date-time (2026-12-31T18:00:00Z).",
        )
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            when = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(23, 59, 59), dt.UTC)
        else:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None or when.utcoffset() != dt.timedelta(0):
                raise ValueError("not UTC")
    except ValueError:
        raise _bad(
            "retainUntil",
            f"retainUntil '{value[:40]}' is not a date (2026-12-31) or a UTC date-time ending in Z.",
        ) from None
    when = when.astimezone(dt.UTC)
    if when < now + dt.timedelta(days=1):
        raise _bad(
            "retainUntil",
            "retainUntil must be at least one day ahead: a recovery point that expires sooner is of no use.",
        )
    if when > now + MAX_RETAIN:
        raise _bad("retainUntil", "retainUntil can be at most 99 years ahead (Azure's limit).")
    return when


# -- the operation ----------------------------------------------------------------------------------


def tag_in_scope(autopilot: Autopilot, vm: VmFacts) -> bool:
    scope = autopilot.settings.backup_scope_tag
    if scope is None:
        return True
    key, value = scope
    return any(k.lower() == key.lower() and v.lower() == value.lower() for k, v in vm.tags.items())


def accept(
    autopilot: Autopilot, headers: Mapping[str, str], body: bytes, now: dt.datetime
) -> tuple[int, dict[str, Any]]:
    """POST /api/backups: the signature (when the operator requires one), the request, its callback
    address, then the backup. Refused signatures are audited. Raises Problem."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413, "body-too-large", "The request body is too large", f"The limit is {MAX_BODY_BYTES} bytes."
        )
    secret = autopilot.settings.hmac_secret
    if secret:
        try:
            check_signature(
                headers,
                body,
                secret,
                now,
                lambda seen: autopilot.state.put_once("signature", seen, {"Seen": now}),
            )
        except Problem as refused:
            autopilot.audit.refusal(
                kind=refused.slug,
                vm_id="-",
                action="backup-now",
                reason=refused.detail,
                outcome=f"refused {refused.status}",
                source="http",
            )
            raise
    request = parse_request(body, autopilot.settings.backup_retain_days, now)
    if request.callback_url:
        check_callback_url(
            request.callback_url,
            autopilot.settings.callback_allowed_hosts,
            autopilot.settings.callback_http_allowed,
        )
    return request_backup(autopilot, request, source=f"http:{request.request_id}")


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
        from autopilot.protect.core import protect_vm

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
            _audit_adopted(autopilot, vm.id, request.request_id, job.id, source)
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
        from autopilot.protect.core import agent_guidance

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


def _audit_adopted(autopilot: Autopilot, vm_id: str, request_id: str, job_id: str, source: str) -> None:
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


def view(
    record: Mapping[str, Any],
    operation_id: str,
    job: JobFacts | None = None,
    point: PointFacts | None = None,
) -> dict[str, Any]:
    """The operation as the API shows it: id, status, job, VM, retain-until, the phases once known,
    and the recovery point the backup made with the expiry Azure holds for it."""
    retain = record.get("RetainUntil")
    body: dict[str, Any] = {
        "id": operation_id,
        "requestId": record.get("RequestId"),
        "status": job.status if job else record.get("Status", "Accepted"),
        "jobId": record.get("JobId") or None,
        "vm": record.get("VmId"),
        "retainUntil": retain.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(retain, dt.datetime)
        else retain,
    }
    if job is not None:
        body["phases"] = [
            {"name": PHASE_NAMES.get(name.lower(), name), "status": status} for name, status in job.phases
        ]
        body["startTime"] = job.start.isoformat() if job.start else None
        body["endTime"] = job.end.isoformat() if job.end else None
        if job.status == "CompletedWithWarnings":
            body["meaning"] = COMPLETED_WITH_WARNINGS
        if point is not None:
            body["recoveryPoint"] = point.name
            body["recoveryPointTime"] = _iso(point.time)
        expiry = (point.expiry if point is not None else None) or job.retain_until
        if expiry is not None:
            body["recoveryPointExpiry"] = _iso(expiry)
        if job.error_code:
            info = classify(job.error_code, job.recommendations)
            body["error"] = {
                "code": job.error_code,
                "message": job.error_message,
                "class": info.error_class.value,
                "remedy": info.remedy,
            }
    if job is None and record.get("Status") == "Waiting":
        held = record.get("WaitingUntil")
        kept = (
            f"keeps its recovery point only until {_iso(held)}"
            if isinstance(held, dt.datetime)
            else "keeps its recovery point for a time Azure does not say in advance (a scheduled backup)"
        )
        body["waitingFor"] = record.get("WaitingFor")
        body["detail"] = (
            f"A backup of the VM is running (job {record.get('WaitingFor')}) that {kept}; this request's"
            f" own backup, kept until {body['retainUntil']}, starts when that one ends."
        )
    if job is None and record.get("Status") == "Refused":
        body["detail"] = f"The backup could not be started: {record.get('Detail', '')}"
    if record.get("CallbackUrl"):
        body["callback"] = {
            "status": record.get("CallbackStatus"),
            "attempts": record.get("CallbackAttempts", 0),
        }
    return body


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_status(autopilot: Autopilot, operation_id: str) -> dict[str, Any]:
    """The operation with its job's two phases and its recovery point, read fresh from Azure."""
    if not re.fullmatch(r"[0-9a-f]{64}", operation_id):
        raise Problem(
            404, "not-found", "No such backup", f"'{operation_id[:80]}' is not a backup operation id."
        )
    record = autopilot.state.get_row(KIND, operation_id)
    if record is None:
        raise Problem(404, "not-found", "No such backup", f"No backup operation {operation_id}.")
    try:
        record, job = current_job(autopilot, operation_id, record, source="http")
        point = recovery_point(autopilot, record, job)
    except (AzureError, TransientError) as error:
        raise azure_problem(error) from error
    if job is not None and job.status in FINAL_STATUSES and record.get("Status") != job.status:
        # Written down once it is final, so that nothing reads this job from Azure again for it
        # (the pruning keeps records whose job may still run: autopilot/retention.py).
        final = {**record, "Status": job.status, "Updated": dt.datetime.now(dt.UTC)}
        autopilot.state.replace_row(KIND, operation_id, final, str(record.get("_etag", "*")))
    return view(record, operation_id, job, point)


def current_job(
    autopilot: Autopilot, operation_id: str, record: dict[str, Any], source: str
) -> tuple[dict[str, Any], JobFacts | None]:
    """The record's job, read fresh from Azure. A record an interrupted attempt left "Triggering"
    (the backup may have started, its job not yet written down) gets the job that attempt started,
    found through the on-demand ledger and written down once. Returns the record as it now is (with
    its etag) and the job, if any."""
    vault = autopilot.rules.vault_by_id(str(record.get("Vault", "")))
    if vault is None:
        return record, None
    if record.get("Status") == "Waiting":
        record = resume_waiting(autopilot, operation_id, record, source)
    if record.get("JobId"):
        return record, autopilot.azure.get_job(vault, str(record["JobId"]))
    if record.get("Status") != "Triggering":
        return record, None
    request_id = str(record.get("RequestId", ""))
    try:
        job = on_demand.job_of(autopilot, vault, PURPOSE, request_id, wait_seconds=0)
    except TransientError:  # Azure has not named the job yet
        return record, None
    if job is None:
        return record, None
    adopted = {**record, "JobId": job.id, "Status": job.status, "Updated": dt.datetime.now(dt.UTC)}
    if autopilot.state.replace_row(KIND, operation_id, adopted, str(record.get("_etag", "*"))):
        _audit_adopted(autopilot, str(record["VmId"]), request_id, job.id, source)
    return autopilot.state.get_row(KIND, operation_id) or adopted, job


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


def recovery_point(
    autopilot: Autopilot, record: Mapping[str, Any], job: JobFacts | None
) -> PointFacts | None:
    """The recovery point a finished backup job made: the VM's first point taken within the job's
    time window. Azure stamps the point a few seconds after the job starts (recorded: job 14:07:22.99,
    point 14:07:26.83) and takes one snapshot of an item at a time, so the earlier backup's point lies
    before this job's start; the window opens only POINT_SKEW before the start for that reason."""
    if job is None or job.status not in ("Completed", "CompletedWithWarnings") or job.start is None:
        return None
    vault = autopilot.rules.vault_by_id(str(record.get("Vault", "")))
    if vault is None:
        return None
    start, end = job.start - POINT_SKEW, (job.end or dt.datetime.now(dt.UTC)) + CLOCK_SKEW
    points = autopilot.azure.recovery_points(vault, str(record["VmId"]), start, end)
    within = [p for p in points if start <= p.time <= end]
    return min(within, key=lambda p: p.time) if within else None
