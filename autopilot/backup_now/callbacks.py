"""Callbacks: when a requested backup's job ends, POST its result to the request's callbackUrl,
signed like requests are, retried with backoff, and only to allowed hosts (checked again at send
time, as DNS may have changed)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING

import urllib3

from autopilot.backup_now.callback_target import check_callback_url, post
from autopilot.backup_now.request import KIND
from autopilot.backup_now.status import FINAL_STATUSES, current_job, recovery_point
from autopilot.backup_now.view import view
from autopilot.kernel.problems import Problem
from autopilot.kernel.signing import sign

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.backup_now.callbacks")

# The waits between attempts: 8 attempts in all, the last about 1 h 50 min after the first.
BACKOFF_SECONDS = (30, 60, 120, 300, 600, 1800, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
TIMEOUT_SECONDS = 10


def follow_up(autopilot: Autopilot) -> int:
    """Start the backups of requests that wait for a running backup of their VM, once it has ended;
    then look at every backup with a pending callback and call back those whose job ended (or that
    could not start). Returns how many callbacks were delivered."""
    for record in autopilot.state.rows(KIND, "Status eq 'Waiting'"):
        current_job(autopilot, str(record["RowKey"]), record, source="timer")
    now = dt.datetime.now(dt.UTC)
    delivered = 0
    for record in autopilot.state.rows(KIND, "CallbackStatus eq 'pending'"):
        due = record.get("NextCallbackAt")
        if isinstance(due, dt.datetime) and due > now:
            continue
        operation_id = record["RowKey"]
        with autopilot.state.claimed(f"callback:{operation_id}") as mine:
            if mine and _call_back(autopilot, record, operation_id, now):
                delivered += 1
    return delivered


def _call_back(autopilot: Autopilot, record: dict[str, object], operation_id: str, now: dt.datetime) -> bool:
    record, job = current_job(autopilot, operation_id, dict(record), source="timer")
    refused = job is None and record.get("Status") == "Refused"
    if not refused and (job is None or job.status not in FINAL_STATUSES):
        return False
    payload = json.dumps(view(record, operation_id, job, recovery_point(autopilot, record, job))).encode()
    url = str(record["CallbackUrl"])
    attempts = int(str(record.get("CallbackAttempts", 0))) + 1
    outcome = "sent"
    try:
        settings = autopilot.settings
        # Checked again at send time (DNS may have changed), and sent to the very addresses checked.
        target = check_callback_url(url, settings.callback_allowed_hosts, settings.callback_http_allowed)
        headers = {"Content-Type": "application/json", "User-Agent": "backup-autopilot/0.1"}
        if settings.hmac_secret:
            timestamp = str(int(time.time()))
            headers["X-Autopilot-Timestamp"] = timestamp
            headers["X-Autopilot-Signature"] = sign(settings.hmac_secret, timestamp, payload)
        status = post(target, payload, headers, TIMEOUT_SECONDS)
        if not 200 <= status < 300:
            outcome = f"answered {status}"
    except Problem as refused:
        outcome = f"refused: {refused.detail}"
        attempts = MAX_ATTEMPTS  # never retried
    except (OSError, urllib3.exceptions.HTTPError) as error:
        outcome = f"failed: {type(error).__name__}"
    done = outcome == "sent"
    record = dict(record)
    ended = f"job {job.id} ended {job.status}" if job is not None else "the backup could not start"
    record.update(
        {
            "Status": job.status if job is not None else record["Status"],
            "CallbackAttempts": attempts,
            "Updated": now,
        }
    )
    if done:
        record["CallbackStatus"] = "sent"
    elif attempts >= MAX_ATTEMPTS:
        record["CallbackStatus"] = "failed"
    else:
        record["NextCallbackAt"] = now + dt.timedelta(seconds=BACKOFF_SECONDS[attempts - 1])
    autopilot.state.replace_row(KIND, operation_id, record, str(record.get("_etag", "*")))
    autopilot.audit.record(
        vm_id=str(record.get("VmId", "")),
        action="backup-callback",
        reason=ended,
        outcome=f"{outcome} (attempt {attempts})",
        source="timer",
    )
    if record["CallbackStatus"] == "failed":
        autopilot.events.publish(
            "BackupAutopilot.Backup.CallbackFailed",
            str(record.get("VmId", "")),
            {
                "id": operation_id,
                "jobId": job.id if job is not None else None,
                "reason": outcome,
                "remedy": "Check the callback endpoint; GET /api/backups/{id} has the result.",
            },
        )
    return done
