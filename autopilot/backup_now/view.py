"""The view of a backup-now operation, as the API and the callbacks show it: its status, job and
phases, the recovery point the backup made and the expiry Azure holds for it, what it waits for or
why it was refused, and its callback's state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from autopilot.azure.errorcodes import COMPLETED_WITH_WARNINGS, classify
from autopilot.azure.facts import JobFacts, PointFacts

# Azure spells a backup job's tasks in more than one way ("Transfer Data to Vault" in recorded 2019
# jobs, "Transfer data to vault" in the API's examples): the API answers one spelling.
PHASE_NAMES = {name.lower(): name for name in ("Take Snapshot", "Transfer data to vault")}


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
