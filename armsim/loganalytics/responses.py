"""Routes of the Log Analytics query API (api.loganalytics.io/v1) as LogsQueryClient calls it, and the
control routes that register workspaces.

    POST /v1/workspaces/{workspaceId}/query   {"query", "timespan", "workspaces"}   Prefer: wait=, include-statistics=true
    GET  /v1/workspaces/{workspaceId}/query?query=...&timespan=...
    POST /v1/$batch                           {"requests": [{"id", "headers", "body", "method", "path", "workspace"}]}

The same routes are served under /loganalytics/v1. azure-monitor-query 2.0.0 drops the path of an
endpoint that ends in /v1 (LogsQueryClient.__init__ keeps only scheme and host), so
`endpoint="https://127.0.0.1:8443/loganalytics/v1"` reaches /v1/..., while
`endpoint="https://127.0.0.1:8443/loganalytics"` reaches /loganalytics/v1/...; both work.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import isodate

from armsim.core.clock import parse_iso
from armsim.core.errors import ArmError
from armsim.core.http import Endpoint, Request, Response
from armsim.core.responses import Responses
from armsim.loganalytics.engine import QueryError, QueryResult, run_query
from armsim.loganalytics.models import LogAnalyticsBackend

DEFAULT_WAIT = 180  # seconds: Log Analytics' default server timeout
MAX_WAIT = 600  # and its maximum
BAD_ARGUMENT = "The request had some invalid properties"


class LogsError(ArmError):
    """A Log Analytics error envelope: {"error": {"message", "code", "correlationId", "innererror"}}."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        innererror: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers=headers)
        self.innererror = innererror

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "correlationId": str(uuid.uuid4()),
        }
        if self.innererror:
            error["innererror"] = self.innererror
        return {"error": error}


def auth_error(err: ArmError) -> ArmError:
    """How the Log Analytics API answers a token problem: no header 401 AuthenticationFailed (its
    errors page); a token for another audience 403 InvalidTokenError "The provided authentication is
    not valid for this resource" (observed by azure-sdk-for-js#15399); malformed or expired tokens are
    answered the same way (chosen). armsim's own check is kept as the inner error."""
    if err.code == "AuthenticationFailed":
        return err
    return LogsError(
        403,
        "InvalidTokenError",
        "The provided authentication is not valid for this resource",
        {"code": err.code, "message": err.message},
        headers=err.headers,
    )


def path_not_found() -> LogsError:
    """What the service answers for a workspace id that is not a workspace (a name, a resource id or
    an unknown GUID): 404 PathNotFoundError (azure-sdk-for-python#32798, #45580)."""
    return LogsError(404, "PathNotFoundError", "The requested path does not exist")


def bad_argument(inner_code: str, inner_message: str, inner: dict[str, Any] | None = None) -> LogsError:
    innererror: dict[str, Any] = {"code": inner_code, "message": inner_message}
    if inner:
        innererror["innererror"] = inner
    return LogsError(400, "BadArgumentError", BAD_ARGUMENT, innererror)


def query_error(err: QueryError) -> LogsError:
    """A query armsim cannot answer, in the envelope Log Analytics uses for a query it refuses."""
    if err.kind == "syntax":
        return bad_argument(
            "SyntaxError",
            "A recognition error occurred in the query.",
            {
                "code": "SYN0002",
                "message": f"Query could not be parsed at '{err.near}' on line [{err.line},{err.pos}]",
                "line": err.line,
                "pos": err.pos,
                "token": err.near,
            },
        )
    if err.kind == "semantic":
        what = f"named '{err.name}'" if err.name else f"({err.message})"
        return bad_argument(
            "SemanticError",
            "A semantic error occurred.",
            {"code": "SEM0100", "message": f"Failed to resolve table or column expression {what}"},
        )
    if err.kind == "unsupported":
        return bad_argument(
            "SemanticError",
            "A semantic error occurred.",
            {
                "code": "ARMSIM_UNSUPPORTED",
                "message": f"armsim cannot evaluate this query (duckdb-kql: {err.message}). "
                "Log Analytics may accept it; armsim never guesses an answer.",
            },
        )
    if err.kind == "timeout":
        return LogsError(504, "GatewayTimeout", err.message)
    if err.kind == "unavailable":
        return LogsError(501, "NotImplemented", err.message)
    return bad_argument(
        "SemanticError",
        "A semantic error occurred.",
        {"code": "ARMSIM_ENGINE_ERROR", "message": f"armsim could not run this query: {err.message}"},
    )


WORKSPACES = "/_armsim/loganalytics/workspaces"
CONTROL = "Control_/loganalytics/workspaces"  # the control routes' operation name


def _logs(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, None, service="logs")


def _control(method: str, template: str, handler: str) -> Endpoint:
    return Endpoint(method, template, CONTROL, handler, None, service="none")


ROUTES = (
    # /v1 and /loganalytics/v1 answer alike (the module's docstring says why both).
    _logs("POST", "/v1/workspaces/{workspaceId}/query", "Query_Execute", "execute"),
    _logs("GET", "/v1/workspaces/{workspaceId}/query", "Query_Get", "get"),
    _logs("POST", "/v1/$batch", "Query_Batch", "batch"),
    _logs("POST", "/loganalytics/v1/workspaces/{workspaceId}/query", "Query_Execute", "execute"),
    _logs("GET", "/loganalytics/v1/workspaces/{workspaceId}/query", "Query_Get", "get"),
    _logs("POST", "/loganalytics/v1/$batch", "Query_Batch", "batch"),
    # -- control: which workspaces exist
    _control("POST", WORKSPACES, "add_workspace"),
    _control("GET", WORKSPACES, "list_workspaces"),
    _control("DELETE", WORKSPACES + "/{workspaceId}", "remove_workspace"),
)


class LogAnalyticsResponses(Responses[LogAnalyticsBackend]):
    def execute(self, request: Request) -> Response:
        body = _body(request)
        return _answer(self.backend, request.params["workspaceId"], body, request.headers.get("prefer", ""))

    def get(self, request: Request) -> Response:
        body = {"query": request.query.get("query"), "timespan": request.query.get("timespan")}
        return _answer(self.backend, request.params["workspaceId"], body, request.headers.get("prefer", ""))

    def batch(self, request: Request) -> Response:
        requests = _body(request).get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_argument("InvalidBatchRequest", "The batch needs a non-empty 'requests' array.")
        return Response(200, {"responses": [self._batch_entry(entry) for entry in requests]})

    # -- control: which workspaces exist ---------------------------------------------------------
    def add_workspace(self, request: Request) -> Response:
        data = request.json() if request.body.strip() else {}
        record = self.backend.add_workspace(data)
        return Response(201, {**record, "endpoint": f"{request.base_url}/loganalytics/v1"})

    def list_workspaces(self, request: Request) -> Response:
        return Response(200, {"value": list(self.backend.workspaces.values())})

    def remove_workspace(self, request: Request) -> Response:
        self.backend.remove_workspace(request.params["workspaceId"])
        return Response(204)

    def _batch_entry(self, entry: Any) -> dict[str, Any]:
        """One request of a $batch, answered in the batch's answer (its errors too)."""
        item: dict[str, Any] = entry if isinstance(entry, dict) else {}
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        try:
            if str(item.get("path", "/query")) != "/query":
                raise path_not_found()
            raw_body = item.get("body")
            query_body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
            answer = _answer(
                self.backend, str(item.get("workspace", "")), query_body, headers.get("prefer", "")
            )
            return {"id": item.get("id"), "status": answer.status, "body": answer.body}
        except ArmError as err:
            return {"id": item.get("id"), "status": err.status, "body": err.body()}


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_argument("InvalidRequestBody", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_argument("InvalidRequestBody", "The request body must be a JSON object.")
    return data


def _answer(backend: LogAnalyticsBackend, workspace_id: str, body: dict[str, Any], prefer: str) -> Response:
    """One query: workspace, body and Prefer checked, rows taken under the world lock, KQL run outside it."""
    if backend.workspace(workspace_id) is None:
        raise path_not_found()
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise bad_argument("QueryValidationError", "The query is required and cannot be empty.")
    extra = body.get("workspaces") or []
    if not isinstance(extra, list) or not all(isinstance(w, str) for w in extra):
        raise bad_argument("InvalidWorkspaces", "'workspaces' must be a list of workspace ids.")
    workspaces = [workspace_id]
    for other in extra:
        record = backend.workspace(other)
        if record is None:
            raise bad_argument("WorkspaceNotFoundError", f"The workspace '{other}' could not be found.")
        if record["workspaceId"] not in [w.lower() for w in workspaces]:
            workspaces.append(other)
    wait, statistics, applied = _prefer(prefer)
    with backend.world.lock:
        start, end = _timespan(body.get("timespan"), backend.world.now())
        rows = backend.job_rows(workspaces, start, end)
    try:
        result = run_query(rows, query, timeout=wait)
    except QueryError as err:
        raise query_error(err) from None
    payload = _tables(result)
    if statistics:
        payload["statistics"] = {
            "query": {
                "executionTime": round(result.seconds, 6),
                "datasetStatistics": [{"tableRowCount": len(result.rows), "tableSize": 0}],
                "inputDatasetStatistics": {
                    "extents": {"total": 1, "scanned": 1},
                    "rows": {"total": result.table_rows, "scanned": result.table_rows},
                },
            }
        }
    headers = {"Preference-Applied": ",".join(applied)} if applied else {}
    return Response(200, payload, headers)


def _tables(result: QueryResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "tables": [{"name": "PrimaryResult", "columns": result.columns, "rows": result.rows}]
    }
    if result.truncated:
        payload["error"] = {
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "details": [
                {
                    "code": "EngineError",
                    "message": "Something went wrong processing your query on the server.",
                    "innererror": {
                        "code": "-2133196797",
                        "message": f"Query result set has exceeded the internal record count limit {len(result.rows)} "
                        "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)",
                        "severity": 2,
                        "severityName": "Error",
                    },
                }
            ],
        }
    return payload


def _prefer(header: str) -> tuple[float, bool, list[str]]:
    """The Prefer header: wait=N (server timeout, seconds), include-statistics=true, include-render=true."""
    wait: float = DEFAULT_WAIT
    statistics = False
    applied: list[str] = []
    for part in (p.strip() for p in header.split(",") if p.strip()):
        name, _, value = part.partition("=")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "wait" and value.isdigit():
            wait = float(min(max(int(value), 1), MAX_WAIT))
            applied.append(f"wait={int(wait)}")
        elif name == "include-statistics" and value == "true":
            statistics = True
            applied.append("include-statistics=true")
    return wait, statistics, applied


def parse_duration(text: str) -> float:
    """An ISO 8601 duration in seconds (isodate): P30D, PT1H, PT2592000.0S (what LogsQueryClient
    sends), P1DT2H, P1W. Months and years have no fixed length: refused, as are empty forms (PT, P1DT)."""
    stripped = text.strip()
    if stripped.upper().endswith("T"):
        raise ValueError(f"'{text}' is not an ISO 8601 duration")
    duration = isodate.parse_duration(stripped)  # ISO8601Error is a ValueError
    if not isinstance(duration, dt.timedelta):
        raise ValueError(f"'{text}' counts months or years, which have no fixed length; use days")
    return duration.total_seconds()


def _timespan(value: Any, now: float) -> tuple[float | None, float | None]:
    """The body's timespan as [start, end] timestamps (None: unbounded). A duration alone ends now;
    "start/end", "start/duration" and "duration/end" are ISO 8601 intervals."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, str):
        raise bad_argument("InvalidTimespan", "The timespan must be an ISO 8601 duration or interval.")
    try:
        if "/" not in value:
            return now - parse_duration(value), None
        first, _, second = value.partition("/")
        if first.strip().upper().startswith("P"):
            end = _instant(second)
            return end - parse_duration(first), end
        start = _instant(first)
        if second.strip().upper().startswith("P"):
            return start, start + parse_duration(second)
        return start, _instant(second)
    except ValueError as exc:
        raise bad_argument("InvalidTimespan", f"The timespan '{value}' is not valid: {exc}") from None


def _instant(text: str) -> float:
    parsed: dt.datetime = parse_iso(text)
    return parsed.timestamp()
