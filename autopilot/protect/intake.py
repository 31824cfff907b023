"""Which Event Grid events concern the product: VM writes in the subscriptions in scope.

Events arrive at least once, out of order, and for every write (extensions, tags, power state), so
the event only names the VM; the VM is re-read before anything is decided.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autopilot.azure.vms import vm_id_from_subject
from autopilot.names import split_id

log = logging.getLogger("autopilot.protect.intake")

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
VM_WRITE = "microsoft.compute/virtualmachines/write"


@dataclass(frozen=True)
class Intake:
    vm_id: str | None  # the VM to look at, or None when the event is ignored
    reason: str


def vm_from_event(event_type: object, subject: object, data: object, subscriptions: Iterable[str]) -> Intake:
    """The VM an event asks to look at, or why the event is ignored (never raises on bad input)."""
    if event_type != WRITE_SUCCESS:
        return Intake(None, f"event type {str(event_type)[:100]!r} is not {WRITE_SUCCESS}")
    vm_id = vm_id_from_subject(subject)
    if vm_id is None:
        return Intake(
            None, f"subject {str(subject)[:300]!r} is not a virtual machine (child resources are ignored)"
        )
    if not isinstance(data, Mapping):
        return Intake(None, "the event has no data object")
    operation = data.get("operationName")
    if not isinstance(operation, str) or operation.lower() != VM_WRITE:
        return Intake(None, f"operation {str(operation)[:100]!r} is not a VM write")
    resource_uri = data.get("resourceUri")
    if resource_uri is not None and (
        not isinstance(resource_uri, str) or resource_uri.lower() != str(subject).lower()
    ):
        return Intake(None, "data.resourceUri does not match the subject")
    subscription = split_id(vm_id)[0].lower()
    allowed = {s.lower() for s in subscriptions}
    if subscription not in allowed:
        return Intake(None, f"subscription {subscription} is not in scope")
    return Intake(vm_id, "VM write")


def describe(event: Mapping[str, Any]) -> str:
    """A short, safe description of an event for log lines."""
    return f"id={str(event.get('id'))[:64]!r} type={str(event.get('eventType'))[:80]!r}"
