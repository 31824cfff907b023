"""The status of a backup-now operation (GET /api/backups/{id}, the CLI, the callbacks): its record,
its job read fresh from Azure (a waiting request resumed, a job an interrupted attempt started
adopted) and the recovery point the job made."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError

from autopilot.azure.facts import JobFacts, PointFacts
from autopilot.azure.failures import TransientError
from autopilot.backup_now.request import KIND
from autopilot.backup_now.start import PURPOSE, audit_adopted, resume_waiting
from autopilot.backup_now.view import view
from autopilot.kernel.api import azure_problem
from autopilot.kernel.problems import Problem
from autopilot.protect import on_demand

if TYPE_CHECKING:
    from autopilot.app import Autopilot

CLOCK_SKEW = dt.timedelta(minutes=1)
POINT_SKEW = dt.timedelta(seconds=2)
FINAL_STATUSES = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")


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
        audit_adopted(autopilot, str(record["VmId"]), request_id, job.id, source)
    return autopilot.state.get_row(KIND, operation_id) or adopted, job


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
