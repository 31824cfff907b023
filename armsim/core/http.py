"""Requests, responses and routes: the small HTTP vocabulary the providers use."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from armsim.core.errors import InvalidRequestContent

if TYPE_CHECKING:
    from armsim.core.responses import Responses


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path, without the query
    query: dict[str, str]  # keys lower-cased, as ARM treats query parameter names
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    base_url: str  # scheme://host:port as the client addressed us
    params: dict[str, str] = field(default_factory=dict)  # from the route's {placeholders}
    principal: str = ""  # the caller of an authenticated ARM request (its token's oid)
    _json: Any = None

    def json(self) -> Any:
        """The body parsed as JSON; malformed JSON is ARM's InvalidRequestContent."""
        if self._json is None:
            if not self.body.strip():
                raise InvalidRequestContent(
                    "The request content was invalid and could not be deserialized: "
                    "'The request body is empty.'"
                )
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidRequestContent(
                    f"The request content was invalid and could not be deserialized: '{exc}'."
                ) from None
            if not isinstance(self._json, dict):
                raise InvalidRequestContent(
                    "The request content was invalid and could not be deserialized: 'expected a JSON object'."
                )
        return self._json

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    def url_for(self, path: str, **query: str) -> str:
        """An absolute URL on this server, as clients must follow it (Location, nextLink)."""
        q = {"api-version": self.api_version or "", **query}
        return f"{self.base_url}{path}?{urlencode(q)}"


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes/str for raw bodies
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", ""
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode(), "application/json; charset=utf-8"


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Endpoint:
    """One line of a service's route table: a request armsim answers, and the name of the method of
    the service's response class that answers it."""

    method: str
    template: str  # the path, with {placeholders} for request.params
    operation: str  # e.g. "VirtualMachines_Get": what stats, faults and throttling count by
    handler: str  # the response class's method, `(request) -> Response`
    api_versions: tuple[str, ...] | None = None  # None: no api-version needed (control API, data planes)
    resource_type: str = ""  # e.g. "Microsoft.Compute/virtualMachines", for api-version errors
    service: str = "arm"  # whose token audience applies: arm, arg (Resource Graph), eventgrid, logs, or none


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    operation: str  # e.g. "VirtualMachines_Get": what stats count
    api_versions: frozenset[str] | None  # None: no api-version needed (control API)
    resource_type: str = ""  # e.g. "Microsoft.Compute/virtualMachines", for api-version errors
    service: str = "arm"  # whose token audience applies: arm, arg (Resource Graph), eventgrid, logs, or none
    regex: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "regex", re.compile(f"^{pattern}/?$", re.IGNORECASE))


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def mount(self, responses: Responses[Any], endpoints: Iterable[Endpoint]) -> None:
        """Routes `endpoints` (a service's table) to the methods of `responses` they name."""
        for endpoint in endpoints:
            versions = frozenset(endpoint.api_versions) if endpoint.api_versions is not None else None
            self.routes.append(
                Route(
                    endpoint.method,
                    endpoint.template,
                    responses.bind(endpoint),
                    endpoint.operation,
                    versions,
                    endpoint.resource_type,
                    endpoint.service,
                )
            )

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for a request, its path parameters, and whether the path exists for another method."""
        path_exists = False
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                path_exists = True
        return None, {}, path_exists
