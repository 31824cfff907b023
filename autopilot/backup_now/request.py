"""A backup-now request: its body parsed and validated (every field, with the fix for a wrong one)
and the key of its record in the state table, which makes its requestId idempotent."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autopilot.azure.vms import vm_id_from_subject
from autopilot.kernel.problems import Problem

if TYPE_CHECKING:
    from autopilot.app import Autopilot

MAX_BODY_BYTES = 16 * 1024
MAX_RETAIN = dt.timedelta(days=99 * 365)  # Azure's limit for an on-demand recovery point
KIND = "backup"  # the records of requests in the state table, keyed by record_key
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
