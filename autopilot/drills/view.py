"""A drill as the API, the command line and its event show it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any


def _iso(value: object) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, dt.datetime) else None


def _boot(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The boot step (verify: boot): how far it got, the boot's seconds, the restore job's seconds and
    the time to a booted VM (their sum, the drill's restoreSeconds once it booted)."""
    if not record.get("VerifyBoot") or not record.get("BootPhase"):
        return None
    booted = record.get("Outcome") == "passed" and isinstance(record.get("BootSeconds"), int | float)
    return {
        "phase": record.get("BootPhase"),
        "vm": f"drill-{record.get('Id')}",
        "booted": booted,
        "bootSeconds": record.get("BootSeconds"),
        "jobSeconds": record.get("JobSeconds"),
        "timeToBootedVmSeconds": record.get("RestoreSeconds") if booted else None,
        "timeoutSeconds": record.get("BootTimeoutSeconds"),
        "cleanedUp": bool(record.get("BootCleaned")),
    }


def view(record: Mapping[str, Any]) -> dict[str, Any]:
    objective = int(record.get("ObjectiveSeconds") or 0) or None
    seconds = record.get("RestoreSeconds")
    body: dict[str, Any] = {
        "id": record.get("Id"),
        "vm": record.get("VmId"),
        "status": record.get("Status"),
        "outcome": record.get("Outcome") or None,
        "detail": record.get("Why") or None,
        "vault": record.get("Vault"),
        "policy": record.get("Policy"),
        "tier": record.get("Tier"),
        "recoveryPoint": record.get("Point") or None,
        "recoveryPointTime": _iso(record.get("PointTime")),
        "jobId": record.get("JobId") or None,
        "restoreSeconds": seconds if isinstance(seconds, int | float) else None,
        "objectiveSeconds": objective,
        "withinObjective": (seconds <= objective) if isinstance(seconds, int | float) and objective else None,
        "checks": json.loads(record.get("Checks") or "[]"),
        "verifyBoot": bool(record.get("VerifyBoot")),
        "boot": _boot(record),
        "restoredDisks": [d["name"] for d in json.loads(record.get("Disks") or "[]")],
        "cleanedUp": bool(record.get("Cleaned")),
        "created": _iso(record.get("Created")),
        "finished": _iso(record.get("Finished")),
    }
    if record.get("ErrorCode") or record.get("ErrorClass"):
        body["error"] = {
            "code": record.get("ErrorCode"),
            "class": record.get("ErrorClass"),
            "remedy": record.get("Remedy"),
        }
    return body
