"""What devhost answers over HTTP: HTTP triggers, the Event Grid webhook and the admin API."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from http import HTTPStatus
from typing import Any

import azure.functions as func
from azure.functions.decorators.utils import StringifyEnumJsonEncoder
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from .functions import (
    EVENT_GRID_TRIGGER,
    HTTP_OUTPUT,
    HTTP_TRIGGER,
    QUEUE_TRIGGER,
    RETURN,
    TIMER_TRIGGER,
    Converted,
    FunctionSpec,
    Invoker,
)
from .routes import RouteTemplate
from .server import Request, Response

__all__ = ["Endpoints", "Keys", "event_from_json"]

log = logging.getLogger("devhost")

EVENT_GRID_PATH = "/runtime/webhooks/eventgrid"
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
ADMIN_REASON = "This function was programmatically called via the host APIs."


@dataclass(frozen=True)
class Keys:
    """The keys devhost accepts, as the host's function, master and eventgrid_extension keys."""

    master: str
    function: str
    eventgrid: str | None

    def allows(self, request: Request, level: str) -> bool:
        """Whether the request's key (``x-functions-key`` or ``?code=``) is good for ``level``.

        ``level``: "anonymous", "function", "admin" (master key only) or "eventgrid".
        """
        if level == "anonymous":
            return True
        given = request.headers.get("x-functions-key") or request.query.get("code") or ""
        accepted = [self.master]
        if level == "function":
            accepted.append(self.function)
        elif level == "eventgrid" and self.eventgrid:
            accepted.append(self.eventgrid)
        # compare with every key, so the time taken does not tell which one nearly matched
        matches = [hmac.compare_digest(given.encode(), key.encode()) for key in accepted]
        return bool(given) and any(matches)


@dataclass(frozen=True)
class _HttpRoute:
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: str
    spec: FunctionSpec


def event_from_json(event: Any) -> func.EventGridEvent | func.CloudEvent:
    """One event as the Python worker gives it: CloudEvent when it has ``specversion``."""
    if not isinstance(event, dict):
        raise ValueError("an event must be a JSON object")
    return EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata=None)


def _name(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


class Endpoints:
    """Answers requests (``handle``) for the functions of one app."""

    def __init__(
        self, specs: Iterable[FunctionSpec], invoker: Invoker, keys: Keys, route_prefix: str
    ) -> None:
        self._specs = {spec.name.lower(): spec for spec in specs}
        self._invoker = invoker
        self._keys = keys
        self._prefix = f"/{route_prefix}" if route_prefix else ""
        self._started = datetime.now(UTC)
        self._background: set[threading.Thread] = set()
        self._lock = threading.Lock()
        routes = []
        for spec in self._specs.values():
            if spec.trigger_type == HTTP_TRIGGER and not spec.disabled:
                methods = spec.attribute("methods")
                routes.append(
                    _HttpRoute(
                        RouteTemplate(str(spec.attribute("route") or spec.name)),
                        frozenset(_name(m).upper() for m in methods) if methods else None,
                        _name(spec.attribute("auth_level") or "function").lower(),
                        spec,
                    )
                )
        self._routes = sorted(routes, key=lambda route: route.template.parameter_count)

    def http_urls(self, base_url: str) -> dict[str, str]:
        """Function name -> URL of each HTTP function, for the start-up banner."""
        return {
            route.spec.name: f"{base_url}{self._prefix}/{route.template.template}" for route in self._routes
        }

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.lower() == EVENT_GRID_PATH:
            return self._event_grid(request)
        if path.lower().startswith("/admin/"):
            return self._admin(request, path)
        if self._prefix and not path.lower().startswith(self._prefix.lower() + "/"):
            return Response(HTTPStatus.NOT_FOUND)
        return self._http_function(request, path[len(self._prefix) :])

    # HTTP triggers

    def _http_function(self, request: Request, path: str) -> Response:
        for route in self._routes:
            route_params = route.template.match(path)
            if route_params is None or (route.methods is not None and request.method not in route.methods):
                continue
            if not self._keys.allows(request, route.auth_level):
                return Response(HTTPStatus.UNAUTHORIZED)
            http_request = func.HttpRequest(
                method=request.method,
                url=request.url,
                headers=request.headers,
                params=request.query,
                route_params=route_params,
                body=request.body,
            )
            try:
                outputs = self._invoker.invoke(route.spec, http_request, ADMIN_REASON)
                http_name = next((b.name for b in route.spec.outputs if b.type == HTTP_OUTPUT), RETURN)
                return _http_response(outputs.get(http_name))
            except Exception:  # logged by the invoker; the client sees no detail, as on the host
                return Response(HTTPStatus.INTERNAL_SERVER_ERROR)
        return Response(HTTPStatus.NOT_FOUND)

    # Event Grid

    def _event_grid(self, request: Request) -> Response:
        if not self._keys.allows(request, "eventgrid"):
            return Response(HTTPStatus.UNAUTHORIZED)
        spec = self._specs.get(request.query.get("functionName", "").lower())
        if spec is None or spec.trigger_type != EVENT_GRID_TRIGGER or spec.disabled:
            return Response.text(HTTPStatus.NOT_FOUND, "no Event Grid function of that functionName")
        if request.method == "OPTIONS":  # CloudEvents webhook validation (abuse protection)
            origin = request.headers.get("webhook-request-origin", "*")
            return Response(
                HTTPStatus.OK, headers=[("WebHook-Allowed-Origin", origin), ("WebHook-Allowed-Rate", "*")]
            )
        if request.method != "POST":
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("Allow", "POST, OPTIONS")])
        event_type = request.headers.get("aeg-event-type", "")
        content_type = request.headers.get("content-type", "").lower()
        try:
            document = json.loads(request.body or b"null")
        except (ValueError, RecursionError):
            return Response.text(HTTPStatus.BAD_REQUEST, "the body is not JSON")
        events = document if isinstance(document, list) else [document]
        if not all(isinstance(event, dict) for event in events):
            return Response.text(HTTPStatus.BAD_REQUEST, "expected a JSON array of event objects")
        if event_type == "SubscriptionValidation":
            return _validation_response(events)
        if event_type == "Unsubscribe":
            return Response(HTTPStatus.ACCEPTED)
        if event_type != "Notification" and not content_type.startswith("application/cloudevents"):
            return Response.text(HTTPStatus.BAD_REQUEST, "missing aeg-event-type header (Notification)")
        # As the host's Event Grid extension: one invocation per event, all started at once (each
        # waits for a thread of the language workers), and the answer once every one has ended.
        failed = _run_together(
            [
                lambda event=event: self._invoker.invoke(
                    spec, Converted(lambda: event_from_json(event)), "EventGrid trigger fired"
                )
                for event in events
            ]
        )
        if failed:
            # Event Grid retries the whole batch, so the events that succeeded are delivered again
            return Response.text(HTTPStatus.INTERNAL_SERVER_ERROR, f"{failed} of {len(events)} events failed")
        return Response(HTTPStatus.OK)

    # admin API

    def _admin(self, request: Request, path: str) -> Response:
        parts = path.split("/")[2:]
        if parts == ["host", "ping"]:
            return Response(HTTPStatus.OK)
        if not self._keys.allows(request, "admin"):
            return Response(HTTPStatus.UNAUTHORIZED)
        if parts == ["host", "status"] and request.method == "GET":
            return Response.json(
                HTTPStatus.OK,
                {
                    "id": "devhost",
                    "state": "Running",
                    "version": f"devhost (azure-functions {func.__version__})",
                    "processUptime": int((datetime.now(UTC) - self._started).total_seconds() * 1000),
                    "functions": [spec.name for spec in self._specs.values() if not spec.disabled],
                },
            )
        if parts == ["functions"] and request.method == "GET":
            return Response.json(HTTPStatus.OK, [_describe(spec) for spec in self._specs.values()])
        if len(parts) == 2 and parts[0] == "functions":
            spec = self._specs.get(parts[1].lower())
            if spec is None:
                return Response(HTTPStatus.NOT_FOUND)
            if request.method == "GET":
                return Response.json(HTTPStatus.OK, _describe(spec))
            if request.method == "POST":
                return self._admin_run(spec, request)
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("Allow", "GET, POST")])
        return Response(HTTPStatus.NOT_FOUND)

    def _admin_run(self, spec: FunctionSpec, request: Request) -> Response:
        """``POST /admin/functions/{name}`` with ``{"input": "..."}``: run once, in the background."""
        if spec.disabled:
            return Response(HTTPStatus.NOT_FOUND)
        try:
            document = json.loads(request.body or b"{}")
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object")
            given = document.get("input", "")
            text = given if isinstance(given, str) else json.dumps(given)
            trigger_value = self._admin_trigger_value(spec, text)
        except ValueError as error:
            return Response.text(HTTPStatus.BAD_REQUEST, f"cannot run {spec.name}: {error}")

        def run() -> None:
            try:
                with contextlib.suppress(Exception):  # logged by the invoker
                    self._invoker.invoke(spec, trigger_value, ADMIN_REASON)
            finally:
                with self._lock:
                    self._background.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"admin-{spec.name}", daemon=True)
        with self._lock:
            self._background.add(thread)
        thread.start()
        return Response(HTTPStatus.ACCEPTED)

    @staticmethod
    def _admin_trigger_value(spec: FunctionSpec, text: str) -> Any:
        if spec.trigger_type == TIMER_TRIGGER:
            return TimerRequest(past_due=False, schedule={"AdjustForDST": True})
        if spec.trigger_type == QUEUE_TRIGGER:
            now = datetime.now(UTC)
            return QueueMessage(
                id=f"admin-{now.timestamp()}",
                body=text.encode(),
                dequeue_count=1,
                insertion_time=now,
                expiration_time=now + timedelta(days=7),
            )
        if spec.trigger_type == EVENT_GRID_TRIGGER:
            try:
                return event_from_json(json.loads(text))
            except ValueError as error:
                raise ValueError(f"input must be one event as JSON ({error})") from None
        raise ValueError(
            f"{spec.trigger_type} functions are called at their own URL, not through the admin API"
        )

    def wait_background(self, timeout: float) -> None:
        """Wait for admin-started invocations (up to ``timeout`` seconds in all)."""
        with self._lock:
            threads = list(self._background)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _run_together(calls: list[Any]) -> int:
    """Run the calls concurrently (the first in this thread); how many raised (each is logged by
    the invoker)."""
    failures = [0] * len(calls)

    def run(index: int) -> None:
        try:
            calls[index]()
        except Exception:
            failures[index] = 1

    threads = [
        threading.Thread(target=run, args=(index,), name=f"devhost-event-{index}", daemon=True)
        for index in range(1, len(calls))
    ]
    for thread in threads:
        thread.start()
    if calls:
        run(0)
    for thread in threads:
        thread.join()
    return sum(failures)


def _validation_response(events: list[dict[str, Any]]) -> Response:
    for event in events:
        data = event.get("data")
        if event.get("eventType") == VALIDATION_EVENT and isinstance(data, dict) and "validationCode" in data:
            return Response.json(HTTPStatus.OK, {"validationResponse": data["validationCode"]})
    return Response.text(HTTPStatus.BAD_REQUEST, f"no {VALIDATION_EVENT} with a validationCode in the body")


def _http_response(value: Any) -> Response:
    if value is None:
        return Response(HTTPStatus.NO_CONTENT)
    if isinstance(value, func.HttpResponse):
        headers: list[tuple[str, str]] = list(value.headers.items())
        if not any(name.lower() == "content-type" for name, _ in headers):
            mimetype = value.mimetype
            content_type = (
                f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
            )
            headers.append(("Content-Type", content_type))
        return Response(value.status_code, value.get_body(), headers)
    if isinstance(value, str):
        return Response.text(HTTPStatus.OK, value)
    if isinstance(value, bytes):
        return Response(HTTPStatus.OK, value, [("Content-Type", "application/octet-stream")])
    log.error(
        "an HTTP function returned %s; expected azure.functions.HttpResponse or str", type(value).__name__
    )
    return Response(HTTPStatus.INTERNAL_SERVER_ERROR)


def _describe(spec: FunctionSpec) -> dict[str, Any]:
    bindings = [spec.trigger, *spec.outputs]
    config = json.loads(json.dumps([b.get_dict_repr() for b in bindings], cls=StringifyEnumJsonEncoder))
    return {"name": spec.name, "trigger": spec.trigger_type, "isDisabled": spec.disabled, "bindings": config}
