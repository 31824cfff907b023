"""HTTP API for ticketing tools: POST /api/backups, GET /api/backups/{id}, GET /api/openapi.json;
and the timer that follows started backups and calls back when they end."""

import datetime as dt
import json
import logging

import azure.functions as func

from autopilot.problems import Problem

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
    from autopilot.backup_now import (
        MAX_BODY_BYTES,
        check_callback_url,
        check_signature,
        parse_request,
        request_backup,
    )
    from autopilot.context import get_autopilot

    body = req.get_body()
    try:
        if len(body) > MAX_BODY_BYTES:
            raise Problem(
                413,
                "body-too-large",
                "The request body is too large",
                f"The limit is {MAX_BODY_BYTES} bytes.",
            )
        autopilot = get_autopilot()
        now = dt.datetime.now(dt.UTC)
        secret = autopilot.settings.hmac_secret
        if secret:
            try:
                check_signature(
                    req.headers,
                    body,
                    secret,
                    now,
                    lambda sig: autopilot.state.put_once("signature", sig, {"Seen": now}),
                )
            except Problem as refused:
                autopilot.audit.record(
                    vm_id="-",
                    action="backup-now",
                    reason=refused.detail,
                    outcome=f"refused {refused.status}",
                    source="http",
                )
                raise
        request = parse_request(body, autopilot.settings.backup_retain_days, now)
        if request.callback_url:
            check_callback_url(request.callback_url, autopilot.settings.callback_allowed_hosts)
        status, view = request_backup(autopilot, request, source=f"http:{request.request_id}")
        return _json(status, view, {"Location": f"/api/backups/{view['id']}"})
    except Problem as problem:
        return _problem(problem)


@bp.function_name("backup_status")
@bp.route(route="backups/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def backup_status(req: func.HttpRequest) -> func.HttpResponse:
    from autopilot.backup_now import backup_status
    from autopilot.context import get_autopilot

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
    from autopilot.callbacks import follow_up
    from autopilot.context import get_autopilot

    sent = follow_up(get_autopilot())
    log.info("backup follow-up: %d callback(s) sent", sent)
