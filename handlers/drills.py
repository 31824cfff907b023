"""Restore drills: POST /api/drills, GET /api/drills/{id}; the drill queue that carries drills on;
the timer that starts the rules' drill rounds and takes over drills whose runner died."""

import datetime as dt
import logging

import azure.functions as func

from autopilot.kernel.problems import Problem
from handlers.http import json_response, problem_response

bp = func.Blueprint()
log = logging.getLogger("handlers.drills")


@bp.function_name("drill_start")
@bp.route(route="drills", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def drill_start(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.drills.api import accept

    try:
        status, view = accept(get_autopilot(), req.headers, req.get_body(), dt.datetime.now(dt.UTC))
        return json_response(status, view, {"Location": f"/api/drills/{view['id']}"})
    except Problem as problem:
        return problem_response(problem)


@bp.function_name("drill_status")
@bp.route(route="drills/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def drill_status(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.drills.api import status

    try:
        return json_response(200, status(get_autopilot(), req.route_params.get("id", "")))
    except Problem as problem:
        return problem_response(problem)


@bp.function_name("drill_step")
@bp.queue_trigger(arg_name="message", queue_name="%DRILL_QUEUE%", connection="AzureWebJobsStorage")
def drill_step(message: func.QueueMessage) -> None:
    from autopilot.app import get_autopilot
    from autopilot.drills.api import carry_on, parse_message

    text = message.get_body().decode("utf-8", errors="replace")
    drill_id = parse_message(text)
    if drill_id is None:
        log.warning("set aside a drill message that is not a drill (id %s): %.200r", message.id, text)
        return
    carry_on(get_autopilot(), drill_id)


@bp.function_name("drill_timer")
@bp.timer_trigger(arg_name="timer", schedule="%DRILL_TIMER_SCHEDULE%", run_on_startup=False)
def drill_timer(timer: func.TimerRequest) -> None:
    from autopilot.app import get_autopilot
    from autopilot.drills.api import enqueue
    from autopilot.drills.rounds import look

    autopilot = get_autopilot()
    result, messages = look(autopilot)
    for drill_id, delay in messages:
        enqueue(autopilot, drill_id, delay)
    log.info(
        "drill timer: round started %s, %d drill(s) queued, %d taken over, %d VM(s) skipped",
        result.round_started,
        len(result.queued),
        len(result.taken_over),
        len(result.skipped),
    )
