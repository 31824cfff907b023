"""The pruning timer: once a day (PRUNE_SCHEDULE) the expired rows of the state and audit tables are
deleted (autopilot/retention.py; the lifetimes are in docs/STATE.md)."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("handlers.retention")


@bp.function_name("prune_timer")
@bp.timer_trigger(arg_name="timer", schedule="%PRUNE_SCHEDULE%", run_on_startup=False)
def prune_timer(timer: func.TimerRequest) -> None:
    from autopilot.app import get_autopilot
    from autopilot.retention import prune

    result = prune(get_autopilot())  # logs its counts per kind
    log.info("prune timer: %d expired row(s) deleted, complete: %s", result.deleted, result.complete)
