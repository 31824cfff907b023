"""What the HTTP APIs (backup now, drills) share: a request's signature checked (refusals audited),
the VMs a caller may act on, and what an Azure failure means to the caller (a problem with the
error's code, class and remedy, never Azure's text)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from autopilot.azure.failures import FailureKind, classify_failure
from autopilot.kernel.problems import Problem, printable
from autopilot.kernel.signing import check_signature
from autopilot.names import split_id

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.kernel.api")


def in_scope(autopilot: Autopilot, vm_id: str) -> bool:
    subscription, group, _ = split_id(vm_id)
    if subscription.lower() not in autopilot.subscriptions():
        return False
    groups = autopilot.settings.backup_scope_resource_groups
    return not groups or group.lower() in groups


def azure_problem(error: Exception) -> Problem:
    """What an Azure failure that azure-core's retries did not overcome means to the API's caller.
    Azure's own text is not relayed (it can name the identity's object id and internal scopes): the
    caller gets the error's code, class and remedy and a correlation id; the whole error goes to the
    log under that id."""
    failure = classify_failure(error)
    correlation = _correlation(error)
    log.warning(
        "Azure failure %s (%s, correlation %s): %s",
        failure.code,
        failure.kind.value,
        correlation,
        printable(str(error))[:2000],
    )
    if failure.kind is not FailureKind.PERMANENT:
        return Problem(
            503,
            "azure-busy",
            "Azure is busy or could not be reached",
            f"Azure answered {failure.code}; retry in a minute with the same requestId (correlation id {correlation}).",
            headers={"Retry-After": "60"},
        )
    return Problem(
        502,
        "azure-refused",
        "Azure refused the backup",
        f"Azure refused it with {failure.code}: {failure.remedy} (correlation id {correlation})",
    )


def _correlation(error: Exception) -> str:
    """ARM's request id of the failed call, which Azure support can look up; else a new id."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("x-ms-request-id") or headers.get("x-ms-correlation-request-id") or uuid.uuid4())


def check_signed(
    autopilot: Autopilot, headers: Mapping[str, str], body: bytes, now: dt.datetime, action: str
) -> None:
    """When the operator requires signed requests (AUTOPILOT_HMAC_SECRET): the request's signature,
    each seen once (replays refused); a refusal is audited under `action` and raised as a Problem."""
    secret = autopilot.settings.hmac_secret
    if not secret:
        return
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
            action=action,
            reason=refused.detail,
            outcome=f"refused {refused.status}",
            source="http",
        )
        raise
