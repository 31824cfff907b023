"""The sweep: a timer splits the estate into units of work on a Storage queue; a queue trigger
sweeps one unit; the poison queue's trigger records units that kept failing; GET /api/report shows
the latest report."""

import json
import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("handlers.sweep")


@bp.function_name("sweep_timer")
@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False)
@bp.queue_output(arg_name="units", queue_name="%SWEEP_QUEUE%", connection="AzureWebJobsStorage")
def sweep_timer(timer: func.TimerRequest, units: func.Out[list[str]]) -> None:
    from autopilot.app import get_autopilot
    from autopilot.sweep.run import new_run

    autopilot = get_autopilot()
    run_id, messages = new_run(autopilot, autopilot.settings.sweep_dry_run)
    units.set([json.dumps(m) for m in messages])
    log.info(
        "sweep %s: %d unit(s) queued (dry run: %s)",
        run_id,
        len(messages),
        autopilot.settings.sweep_dry_run,
    )


@bp.function_name("sweep_unit")
@bp.queue_trigger(arg_name="message", queue_name="%SWEEP_QUEUE%", connection="AzureWebJobsStorage")
def sweep_unit(message: func.QueueMessage) -> None:
    from autopilot.app import get_autopilot
    from autopilot.sweep.run import parse_message, run_unit

    text = message.get_body().decode("utf-8", errors="replace")
    unit = parse_message(text)
    if unit is None:
        # Not a unit of work: set aside with a log line (returning deletes it; it is never retried).
        log.warning("set aside a sweep message that is not a unit of work (id %s): %.200r", message.id, text)
        return
    result = run_unit(get_autopilot(), unit)
    log.info(
        "sweep %s unit %s: %d VM(s), %d finding(s)",
        unit["runId"],
        unit["subscription"],
        result.vms,
        len(result.findings),
    )


@bp.function_name("sweep_poison")
@bp.queue_trigger(arg_name="message", queue_name="%SWEEP_QUEUE%-poison", connection="AzureWebJobsStorage")
def sweep_poison(message: func.QueueMessage) -> None:
    from autopilot.app import get_autopilot
    from autopilot.sweep.run import fail_unit

    text = message.get_body().decode("utf-8", errors="replace")
    fail_unit(
        get_autopilot(),
        text,
        f"the unit failed {message.dequeue_count or 'several'} times and was moved to the poison queue",
    )


@bp.function_name("sweep_report")
@bp.route(route="report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def sweep_report(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.kernel.problems import Problem
    from autopilot.sweep.report import latest_report
    from handlers.http import problem_response

    try:
        body, media_type, headers = latest_report(get_autopilot().reports, req.params.get("format"))
    except Problem as problem:
        return problem_response(problem)
    return func.HttpResponse(body, status_code=200, mimetype=media_type, headers=headers)
