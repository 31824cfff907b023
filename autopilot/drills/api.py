"""Starting a drill and reading it: POST /api/drills, GET /api/drills/{id}, the command line, and the
drill queue whose messages carry drills on (one message per drill and wait)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from autopilot.azure.failures import TransientError
from autopilot.azure.vms import vm_id_from_subject
from autopilot.drills import engine
from autopilot.drills.view import view
from autopilot.kernel.api import azure_problem, check_signed, in_scope
from autopilot.kernel.problems import Problem, printable

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.drills")
MAX_BODY_BYTES = 4 * 1024
_FIELDS = {"vm", "reason"}
_DRILL_ID = re.compile(r"^[0-9a-f]{20}$")


def _bad(field: str, detail: str) -> Problem:
    return Problem(400, "invalid-field", "A field of the request is not valid", detail, field)


def parse_request(body: bytes) -> tuple[str, str]:
    """(VM id, reason) of a POST /api/drills body; raises Problem naming the field and the fix."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413, "body-too-large", "The request body is too large", f"The limit is {MAX_BODY_BYTES} bytes."
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Problem(
            400,
            "malformed-json",
            "The body is not valid JSON",
            'Send a JSON object such as {"vm": "/subscriptions/..."}.',
        ) from None
    if not isinstance(data, dict):
        raise Problem(
            400, "malformed-json", "The body is not a JSON object", 'Send {"vm": "/subscriptions/..."}.'
        )
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise _bad(unknown[0], f"Unknown field '{unknown[0]}'; the fields are {', '.join(sorted(_FIELDS))}.")
    vm_id = vm_id_from_subject(data.get("vm")) if isinstance(data.get("vm"), str) else None
    if vm_id is None:
        raise _bad(
            "vm",
            "vm is required: a virtual machine's ARM id, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>.",
        )
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 400:
        raise _bad("reason", "reason must be text of at most 400 characters.")
    return vm_id, reason


def accept(
    autopilot: Autopilot, headers: Mapping[str, str], body: bytes, now: dt.datetime
) -> tuple[int, dict[str, Any]]:
    """POST /api/drills: the signature (when the operator requires one, as for backup now), the
    request, then the drill (queued for the app). Raises Problem."""
    check_signed(autopilot, headers, body, now, "restore-drill")
    vm_id, reason = parse_request(body)
    record, created = start(autopilot, vm_id, source="http", reason=reason)
    if created:
        enqueue(autopilot, str(record["Id"]), 0)
    return 202, view(record)


def start(autopilot: Autopilot, vm_id: str, source: str, reason: str = "") -> tuple[dict[str, Any], bool]:
    """A drill of the VM: a new one, or the one in flight for it. Raises Problem when the VM cannot
    be drilled (no drills in the rules, outside the scopes, not protected, no staging)."""

    drills = autopilot.rules.drills
    if drills is None:
        raise Problem(
            409,
            "drills-not-configured",
            "The rules have no drills",
            "Add a drills section to the rules file (docs/RULES.md, drills).",
        )
    if not in_scope(autopilot, vm_id):
        raise Problem(
            403,
            "vm-out-of-scope",
            "The VM is outside the scopes this API may touch",
            "Ask the operator to add its subscription or resource group to the scopes.",
            "vm",
        )
    try:
        vm = autopilot.azure.get_vm(vm_id)
        if vm is None:
            raise Problem(404, "vm-not-found", "The VM does not exist", f"No virtual machine {vm_id}.", "vm")
        item, vault = None, None
        for candidate in autopilot.rules.vault_set(vm.subscription_id, vm.location):
            item = autopilot.azure.get_item(candidate, vm)
            if item is not None and not item.soft_deleted:
                vault = candidate
                break
    except (AzureError, TransientError) as error:
        raise azure_problem(error) from error
    if vault is None or item is None:
        raise Problem(
            409,
            "vm-not-protected",
            "The VM is not protected",
            f"{vm.name} has no backup item in the vaults of {vm.location}; a drill restores a backup.",
            "vm",
        )
    if drills.staging_for(vault.subscription_id, vault.region) is None:
        raise Problem(
            409,
            "no-staging",
            "No staging for the VM's region",
            f"The rules' drills name no staging resource group and storage account for {vault.region}.",
            "vm",
        )
    return engine.create(
        autopilot, vm.id, vault, item.policy_name, item.excluded_luns, source, printable(reason)
    )


def status(autopilot: Autopilot, drill_id: str) -> dict[str, Any]:
    if not _DRILL_ID.fullmatch(drill_id):
        raise Problem(404, "not-found", "No such drill", f"'{drill_id[:80]}' is not a drill id.")
    record = engine.get(autopilot, drill_id)
    if record is None:
        raise Problem(404, "not-found", "No such drill", f"No drill {drill_id}.")
    return view(record)


def enqueue(autopilot: Autopilot, drill_id: str, delay: float) -> None:
    """A message that carries the drill on after `delay` seconds (the drill queue's trigger)."""
    queue = autopilot.clients.queue(autopilot.settings.drill_queue)
    text = json.dumps({"drill": drill_id})
    seconds = max(0, round(delay))
    try:
        queue.send_message(text, visibility_timeout=seconds)
    except ResourceNotFoundError:  # the host creates its trigger's queue; this may run before it
        queue.create_queue()
        queue.send_message(text, visibility_timeout=seconds)


def parse_message(text: str) -> str | None:
    """The drill id of a drill-queue message, or None if it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    drill_id = data.get("drill") if isinstance(data, dict) else None
    return drill_id if isinstance(drill_id, str) and _DRILL_ID.fullmatch(drill_id) else None


def carry_on(autopilot: Autopilot, drill_id: str) -> None:
    """What the drill queue's trigger does: the drill's next steps, then a message for its next look."""
    wait = engine.advance(autopilot, drill_id)
    if wait is not None:
        enqueue(autopilot, drill_id, wait)


def run_to_end(autopilot: Autopilot, drill_id: str, sleep: Any = None) -> dict[str, Any]:
    """Carry the drill on here until it ends (the command line's --wait)."""
    import time

    pause = sleep or time.sleep
    while (wait := engine.advance(autopilot, drill_id)) is not None:
        pause(min(wait, autopilot.settings.drill_poll_seconds))
    record = engine.get(autopilot, drill_id)
    assert record is not None
    return view(record)
