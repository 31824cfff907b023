"""What the HTTP triggers share: a JSON answer, and the core's Problem as application/problem+json."""

import json

import azure.functions as func

from autopilot.kernel.problems import Problem


def json_response(
    status: int, body: object, headers: dict[str, str] | None = None, mimetype: str = "application/json"
) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=mimetype, headers=headers or {})


def problem_response(problem: Problem) -> func.HttpResponse:
    return json_response(problem.status, problem.body(), problem.headers, mimetype="application/problem+json")
