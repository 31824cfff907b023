"""HTTP API for ticketing tools: POST /api/backups, GET /api/backups/{id}, GET /api/openapi.json;
and the timer that follows started backups and calls back when they end."""

import datetime as dt
import logging

import azure.functions as func

from autopilot.kernel.problems import Problem
from handlers.http import json_response, problem_response

bp = func.Blueprint()
log = logging.getLogger("handlers.backup_now")


@bp.function_name("backup_now")
@bp.route(route="backups", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def backup_now(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.accept import accept

    try:
        status, view = accept(get_autopilot(), req.headers, req.get_body(), dt.datetime.now(dt.UTC))
        return json_response(status, view, {"Location": f"/api/backups/{view['id']}"})
    except Problem as problem:
        return problem_response(problem)


@bp.function_name("backup_status")
@bp.route(route="backups/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def backup_status(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.status import backup_status

    try:
        return json_response(200, backup_status(get_autopilot(), req.route_params.get("id", "")))
    except Problem as problem:
        return problem_response(problem)


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.openapi import document

    return json_response(200, document())


@bp.function_name("backup_followup")
@bp.timer_trigger(arg_name="timer", schedule="%BACKUP_FOLLOWUP_SCHEDULE%", run_on_startup=False)
def backup_followup(timer: func.TimerRequest) -> None:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.callbacks import follow_up

    sent = follow_up(get_autopilot())
    log.info("backup follow-up: %d callback(s) sent", sent)
