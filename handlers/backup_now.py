"""HTTP API for ticketing tools: POST /api/backups, GET /api/backups/{id}, GET /api/openapi.json;
and the timer that follows started backups and calls back when they end."""

import datetime as dt
import json
import logging

import azure.functions as func

from autopilot.kernel.problems import Problem

bp = func.Blueprint()
log = logging.getLogger("handlers.backup_now")


def _json(
    status: int, body: object, headers: dict[str, str] | None = None, mimetype: str = "application/json"
) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=mimetype, headers=headers or {})


def _problem(problem: Problem) -> func.HttpResponse:
    return _json(problem.status, problem.body(), problem.headers, mimetype="application/problem+json")


@bp.function_name("backup_now")
@bp.route(route="backups", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def backup_now(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.accept import accept

    try:
        status, view = accept(get_autopilot(), req.headers, req.get_body(), dt.datetime.now(dt.UTC))
        return _json(status, view, {"Location": f"/api/backups/{view['id']}"})
    except Problem as problem:
        return _problem(problem)


@bp.function_name("backup_status")
@bp.route(route="backups/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def backup_status(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.status import backup_status

    try:
        return _json(200, backup_status(get_autopilot(), req.route_params.get("id", "")))
    except Problem as problem:
        return _problem(problem)


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.openapi import document

    return _json(200, document())


@bp.function_name("backup_followup")
@bp.timer_trigger(arg_name="timer", schedule="%BACKUP_FOLLOWUP_SCHEDULE%", run_on_startup=False)
def backup_followup(timer: func.TimerRequest) -> None:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.callbacks import follow_up

    sent = follow_up(get_autopilot())
    log.info("backup follow-up: %d callback(s) sent", sent)
