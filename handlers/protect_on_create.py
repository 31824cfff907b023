"""Event Grid trigger: protect a VM seconds after it is written (Microsoft.Resources.ResourceWriteSuccess).

A malformed or foreign event is logged and dropped (Event Grid must not retry it forever). A
transient failure raises, so Event Grid retries the delivery. A permanent failure ends as a
"protection failed" outcome event with its reason.
"""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("handlers.protect_on_create")


@bp.function_name("protect_on_create")
@bp.event_grid_trigger(arg_name="event")
def protect_on_create(event: func.EventGridEvent) -> None:
    # The core is imported on first use: importing the app stays cheap (a cold start indexes it).
    from autopilot.app import get_autopilot
    from autopilot.protect.carry_out import protect_vm
    from autopilot.protect.intake import vm_from_event

    autopilot = get_autopilot()
    try:
        data = event.get_json()
    except ValueError:
        log.warning("dropped event %s: its data is not JSON", event.id)
        return
    # An Event Grid schema event has event_type; a CloudEvents one (if the subscription uses that schema) has type.
    event_type = getattr(event, "event_type", None) or getattr(event, "type", None)
    intake = vm_from_event(event_type, getattr(event, "subject", None), data, autopilot.subscriptions())
    if intake.vm_id is None:
        log.info("ignored event %s: %s", event.id, intake.reason)
        return
    outcome = protect_vm(autopilot, intake.vm_id, source=f"event:{event.id}")
    log.info("event %s: %s %s", event.id, intake.vm_id, outcome.kind.value)
