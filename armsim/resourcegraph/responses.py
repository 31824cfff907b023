"""Routes of Azure Resource Graph (Microsoft.ResourceGraph, the `Resources` operation) and its control routes.

    POST /providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01
         {"subscriptions": [...], "managementGroups": [...], "query": "...",
          "options": {"$skipToken", "$top", "$skip", "resultFormat": "objectArray"|"table"}}
    -> 200 {"totalRecords", "count", "resultTruncated", "$skipToken"?, "facets": [], "data": [...]}

Every answer carries the caller's quota (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`
as hh:mm:ss); a query over the quota is 429 RateLimiting. Evidence per field and code:
armsim/SUPPORTED_OPERATIONS.md, "Azure Resource Graph".
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from armsim.core.clock import iso
from armsim.core.errors import ArmError, BadRequest, TooManyRequests
from armsim.core.http import Endpoint, Request, Response
from armsim.core.responses import Responses
from armsim.resourcegraph.engine import QueryError, run
from armsim.resourcegraph.models import CachedResult, ResourceGraphBackend, hhmmss

# api-versions of the Resources operation in the REST specs; the pinned SDK
# (azure-mgmt-resourcegraph 8.0.1) sends 2021-03-01.
RESOURCE_GRAPH_API = ("2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01")
MAX_ROWS = 5_000_000  # what one query may hold across its pages (armsim's bound, not ARG's)


def _support(backend: ResourceGraphBackend) -> str:
    return (
        "Please provide below info when asking for support: timestamp = "
        f"{iso(backend.world.clock.now())}, correlationId = {uuid.uuid4()}."
    )


def bad_request(backend: ResourceGraphBackend, details: list[dict[str, Any]]) -> ArmError:
    return BadRequest("BadRequest", _support(backend), details=details)


def invalid_query(backend: ResourceGraphBackend, extra: dict[str, Any]) -> ArmError:
    return bad_request(
        backend,
        [
            {
                "code": "InvalidQuery",
                "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph "
                "service and fix the error before retrying.",
            },
            extra,
        ],
    )


CONTROL = "Control_/resourcegraph"  # the control routes' operation name


def _control(method: str, template: str, handler: str) -> Endpoint:
    return Endpoint(method, template, CONTROL, handler, None, service="none")


ROUTES = (
    Endpoint(
        "POST", "/providers/Microsoft.ResourceGraph/resources", "Resources", "resources", RESOURCE_GRAPH_API,
        "Microsoft.ResourceGraph/resources", service="arg",
    ),
    # -- control
    _control("POST", "/_armsim/resourcegraph/managementGroups", "add_management_group"),
    _control("GET", "/_armsim/resourcegraph/managementGroups", "list_management_groups"),
    _control("POST", "/_armsim/resourcegraph/refresh", "refresh"),
    _control("GET", "/_armsim/resourcegraph", "describe"),
)  # fmt: skip


class ResourceGraphResponses(Responses[ResourceGraphBackend]):
    def resources(self, request: Request) -> Response:
        backend = self.backend
        settings = backend.settings()
        allowed, remaining, resets = backend.quota.take(
            request.principal or "unknown", int(settings["quota"]), float(settings["quotaWindowSeconds"])
        )
        quota_headers = {
            "x-ms-user-quota-remaining": str(remaining),
            "x-ms-user-quota-resets-after": hhmmss(resets),
        }
        if not allowed:
            raise TooManyRequests(
                "RateLimiting",
                _support(backend),
                headers=quota_headers,
                details=[
                    {
                        "code": "RateLimiting",
                        "message": "Client application has been throttled and should not attempt to repeat the "
                        "request until an amount of time has elapsed. Please see "
                        "https://aka.ms/resourcegraph-throttling for help.",
                    }
                ],
            )
        try:
            return _query(backend, request, quota_headers)
        except ArmError as err:
            err.headers = {**quota_headers, **err.headers}
            raise

    # -- control -------------------------------------------------------------------------------
    def add_management_group(self, request: Request) -> Response:
        try:
            return Response(201, self.backend.add_management_group(request.json()))
        except ValueError as exc:
            raise BadRequest("InvalidControlRequest", f"/resourcegraph/managementGroups: {exc}") from None

    def list_management_groups(self, request: Request) -> Response:
        return Response(200, {"value": list(self.backend.management_groups.values())})

    def refresh(self, request: Request) -> Response:
        snapshot = self.backend.refresh()
        return Response(
            200,
            {
                "indexedAt": iso_ts(snapshot.tables.taken_sim),
                "rows": {
                    t: snapshot.tables.rows(t)
                    for t in ("Resources", "RecoveryServicesResources", "ResourceContainers")
                },
            },
        )

    def describe(self, request: Request) -> Response:
        backend = self.backend
        snapshot = backend._snapshot
        return Response(
            200,
            {
                "settings": backend.settings(),
                "indexedAt": iso_ts(snapshot.tables.taken_sim) if snapshot else None,
                "indexAgeSeconds": round(time.monotonic() - snapshot.tables.taken_wall, 3)
                if snapshot
                else None,
                "queries": backend.queries,
            },
        )


def iso_ts(ts: float) -> str:
    import datetime as dt

    return iso(dt.datetime.fromtimestamp(ts, dt.UTC))


def _body(backend: ResourceGraphBackend, request: Request) -> dict[str, Any]:
    data = request.json()
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise bad_request(
            backend, [{"code": "InvalidQuery", "message": "The query is required and cannot be empty."}]
        )
    for key in ("subscriptions", "managementGroups"):
        value = data.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise bad_request(
                backend, [{"code": "InvalidRequest", "message": f"'{key}' must be a list of strings."}]
            )
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise bad_request(backend, [{"code": "InvalidRequest", "message": "'options' must be an object."}])
    top, skip = options.get("$top"), options.get("$skip")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000):
        raise bad_request(
            backend, [{"code": "InvalidRequest", "message": "'$top' must be a whole number from 1 to 1000."}]
        )
    if skip is not None and (not isinstance(skip, int) or isinstance(skip, bool) or skip < 0):
        raise bad_request(
            backend, [{"code": "InvalidRequest", "message": "'$skip' must be a whole number of 0 or more."}]
        )
    fmt = str(options.get("resultFormat") or "objectArray")
    if fmt not in ("objectArray", "table"):
        raise bad_request(
            backend, [{"code": "InvalidRequest", "message": "'resultFormat' must be objectArray or table."}]
        )
    return data


def _scope(backend: ResourceGraphBackend, data: dict[str, Any]) -> set[str] | None:
    """The subscriptions a query sees: those named, those of the management groups named, or every
    subscription of the tenant (armsim's identities may read them all)."""
    if data.get("subscriptions"):
        return {s.strip().lower() for s in data["subscriptions"]}
    if data.get("managementGroups"):
        with backend.world.lock:
            return backend.subscriptions_of(list(data["managementGroups"]))
    return None


def _token(token_id: str, offset: int, scope: str) -> str:
    raw = json.dumps({"id": token_id, "offset": offset, "scope": scope}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_token(backend: ResourceGraphBackend, token: str) -> tuple[str, int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        return str(data["id"]), int(data["offset"]), str(data["scope"])
    except (ValueError, KeyError, TypeError):
        raise bad_request(
            backend, [{"code": "InvalidSkipToken", "message": "The $skipToken is not valid for this query."}]
        ) from None


def _query(backend: ResourceGraphBackend, request: Request, headers: dict[str, str]) -> Response:
    data = _body(backend, request)
    options = data.get("options") or {}
    scope = _scope(backend, data)
    scope_key = "*" if scope is None else ",".join(sorted(scope))
    page_size = min(int(backend.settings()["pageSize"]), int(options.get("$top") or 1000))
    cached: CachedResult | None = None
    token_id = ""
    start = int(options.get("$skip") or 0)
    if options.get("$skipToken"):
        token_id, offset, token_scope = _read_token(backend, str(options["$skipToken"]))
        if token_scope != scope_key:
            raise bad_request(
                backend,
                [{"code": "InvalidSkipToken", "message": "The $skipToken was given for another scope."}],
            )
        cached = backend.cached(token_id)
        if options.get("$skip") is None:
            start = offset
    if cached is None:
        snapshot = backend.snapshot()
        try:
            result = run(snapshot, str(data["query"]), scope, MAX_ROWS)
        except QueryError as err:
            raise _query_error(backend, err) from None
        cached = CachedResult(result.columns, result.rows, time.monotonic(), scope_key)
        token_id = ""
    backend.queries += 1
    total = len(cached.rows)
    page = cached.rows[start : start + page_size]
    body: dict[str, Any] = {"totalRecords": total, "count": len(page), "resultTruncated": "false"}
    if start + page_size < total:
        if not token_id:
            token_id = backend.keep(cached)
        body["$skipToken"] = _token(token_id, start + page_size, scope_key)
    body["facets"] = []
    if str(options.get("resultFormat") or "objectArray") == "table":
        body["data"] = {"columns": cached.columns, "rows": page}
    else:
        names = [c["name"] for c in cached.columns]
        body["data"] = [dict(zip(names, row, strict=True)) for row in page]
    return Response(200, body, dict(headers))


def _query_error(backend: ResourceGraphBackend, err: QueryError) -> ArmError:
    if err.kind == "syntax":
        return invalid_query(
            backend,
            {
                "code": "ParserFailure",
                "message": "ParserFailure",
                "line": err.line,
                "characterPositionInLine": err.pos,
                "token": err.token,
            },
        )
    if err.kind == "semantic":
        return invalid_query(
            backend,
            {
                "code": "FailedToResolveTableOrColumn" if err.token else "InvalidQuery",
                "message": f"Failed to resolve table or column expression named '{err.token}'"
                if err.token
                else err.message,
            },
        )
    return invalid_query(
        backend,
        {
            "code": "ARMSIM_UNSUPPORTED",
            "message": f"armsim cannot evaluate this query (duckdb-kql: {err.message}). Resource Graph may "
            "accept it; armsim never guesses an answer.",
        },
    )
