"""The HTTPS server: routing, authentication, api-version checks, fault injection and statistics."""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from armsim.core.auth import (
    ARM_AUDIENCES,
    EVENTGRID_AUDIENCES,
    LOGANALYTICS_AUDIENCES,
    SANDBOX_PRINCIPAL_ID,
    TENANT_ID,
    check_bearer,
)
from armsim.core.certs import CertFiles, ensure_certs
from armsim.core.errors import ArmError, BadRequest, PayloadTooLarge, TooManyRequests, not_implemented
from armsim.core.http import Request, Response, Route, Router
from armsim.core.throttling import Decision, kind_of, principal_of, throttled_error_body
from armsim.core.world import World

log = logging.getLogger("armsim")

MAX_BODY = 4 * 1024 * 1024  # ARM refuses request bodies over 4 MB
MAX_CONTROL_BODY = 256 * 1024 * 1024  # fleet seeds are large
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha|-privatepreview)?$")
_AUDIENCES = {
    "arm": ARM_AUDIENCES,
    "arg": ARM_AUDIENCES,  # Resource Graph is reached through ARM, with ARM's tokens
    "eventgrid": EVENTGRID_AUDIENCES,
    "logs": LOGANALYTICS_AUDIENCES,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: ArmSim) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, not in the accept loop.
        try:
            tls = self.sim.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (about 40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _serve(self) -> None:
        self.server.sim.handle(self)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve


class ArmSim:
    """The sandbox: an in-process ARM simulator served over HTTPS on 127.0.0.1."""

    def __init__(self, port: int = 0, data_dir: Path | str | None = None, host: str = "127.0.0.1") -> None:
        from armsim.control.models import ControlBackend
        from armsim.registry import build_world

        self.data_dir = Path(data_dir) if data_dir else None
        cert_dir = self.data_dir or Path(_temp_dir())
        self.certs: CertFiles = ensure_certs(cert_dir)
        self.world: World = build_world(self.data_dir)
        self.router = Router()
        for provider in self.world.providers.values():
            provider.register(self.router)
        self.world.load()
        self.identity_header = _identity_header(self.data_dir)
        self.world.backend(ControlBackend).identity_header = self.identity_header
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_context.load_cert_chain(self.certs.server_pem, self.certs.server_key)
        self.httpd = _Server((host, port), _Handler, self)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.certs.ca_pem

    def start(self) -> ArmSim:
        serve = threading.Thread(target=self.httpd.serve_forever, name="armsim-http", daemon=True)
        background = threading.Thread(target=self._background, name="armsim-background", daemon=True)
        self._threads = [serve, background]
        for thread in self._threads:
            thread.start()
        for provider in self.world.providers.values():
            start = getattr(provider, "start", None)
            if start:
                start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for provider in self.world.providers.values():
            stop = getattr(provider, "stop", None)
            if stop:
                stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.world.save(force=True)

    def __enter__(self) -> ArmSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _background(self) -> None:
        while not self._stopping.wait(0.25):
            try:
                self.world.tick()
                self.world.save()
            except Exception:
                log.exception("armsim background tick failed")

    # -- one request -----------------------------------------------------------------------
    def handle(self, h: _Handler) -> None:
        started = time.time()
        split = urlsplit(h.path)
        path = unquote(split.path)
        query = {k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)}
        headers = {k.lower(): v for k, v in h.headers.items()}
        base_url = f"https://{headers.get('host', f'127.0.0.1:{self.port}')}"
        length = int(headers.get("content-length") or 0)
        route: Route | None = None
        decision: Decision | None = None  # ARM's token buckets' say on this request
        fault: str | None = None  # an injected fault (the control API's /faults)
        try:
            limit = MAX_CONTROL_BODY if path.startswith("/_armsim/") else MAX_BODY
            if length > limit:
                h.close_connection = True
                raise PayloadTooLarge(
                    "RequestEntityTooLarge", f"The request body of {length} bytes exceeds 4 MB."
                )
            body = h.rfile.read(length) if length else b""
            request = Request(h.command, path, query, headers, body, base_url)
            route, params, _ = self.router.match(h.command, path)
            if route is None:
                raise not_implemented(h.command, path)
            request.params = params
            claims = self._authenticate(route, request)
            if route.service == "arm":
                decision = self._throttle(params, claims, h.command)
                if not decision.allowed:
                    raise _throttled(decision)
            if route.api_versions is not None:
                self._check_api_version(request, route)
            fault = (
                self.world.faults.pick(route.operation, h.command)
                if route.service in ("arm", "arg")
                else None
            )
            if fault and fault != "drop":
                response = self._fault(fault, h.command, params.get("subscriptionId", ""), path, claims)
            else:
                response = self._run(route, request)
        except ArmError as err:
            response = Response(err.status, err.body(), dict(err.headers))
        except Exception:
            log.exception("armsim failed on %s %s", h.command, path)
            response = Response(500, {"error": {"code": "InternalServerError", "message": "armsim failed."}})
        if fault == "drop":  # carried out, and the connection closed before the answer
            h.close_connection = True
            response = Response(599, None)  # logged as 599: no status reached the caller
        # Counted before the answer leaves: whoever reads the statistics after an answer finds it.
        self._count(h.command, path, route, response, decision, started, headers)
        if fault != "drop":
            self._send(h, response, decision.headers if decision else {})

    def _count(
        self,
        method: str,
        path: str,
        route: Route | None,
        response: Response,
        decision: Decision | None,
        started: float,
        headers: dict[str, str],
    ) -> None:
        """The request in armsim's statistics (GET /_armsim/stats): ARM's and Resource Graph's apart."""
        arm = (route is not None and route.service in ("arm", "arg")) or (
            route is None and not path.startswith("/_armsim")
        )
        entry = {
            "t": started,
            "method": method,
            "path": path,
            "operation": route.operation if route else "Unknown",
            "status": response.status,
            "clientRequestId": headers.get("x-ms-client-request-id", ""),
            "userAgent": headers.get("user-agent", "")[:120],
            "ms": round((time.time() - started) * 1000, 2),
        }
        if response.status == 429:
            entry["retryAfter"] = int(response.headers.get("Retry-After", "0"))
        if decision is not None and not decision.allowed:
            entry["throttled"] = decision.kind
            entry["principal"] = decision.principal
        self.world.stats.record(entry, arm)

    def _authenticate(self, route: Route, request: Request) -> dict[str, Any] | None:
        """The bearer token's claims for the route's audience (None: no token is asked for); sets the
        request's principal."""
        headers = request.headers
        if route.service not in _AUDIENCES:
            return None
        if route.service == "eventgrid" and "aeg-sas-key" in headers:
            return None  # key auth is checked by the topic itself
        if route.service == "logs":
            from armsim.loganalytics.responses import auth_error

            try:
                check_bearer(headers.get("authorization"), _AUDIENCES[route.service])
            except ArmError as err:
                raise auth_error(err) from None
            return None
        claims = check_bearer(headers.get("authorization"), _AUDIENCES[route.service])
        request.principal = principal_of(claims)
        return claims

    def _throttle(self, params: dict[str, str], claims: dict[str, Any] | None, method: str) -> Decision:
        """ARM's token buckets' say on a request (per subscription and principal), taken before the
        resource provider sees it."""
        return self.world.throttle.take(
            params.get("subscriptionId"),
            str((claims or {}).get("tid") or TENANT_ID),
            principal_of(claims),
            method,
        )

    def _run(self, route: Route, request: Request) -> Response:
        """The operation itself, with the simulated clock moved on."""
        if route.service != "none":
            self.world.tick()
        if route.service in ("logs", "arg"):
            # Log and Resource Graph queries change nothing; they take the world lock only to read
            # what they index, and evaluate their KQL without holding it.
            return route.handler(request)
        with self.world.lock:
            response = route.handler(request)
            if request.method != "GET":
                self.world.changed()
        return response

    def _check_api_version(self, request: Request, route: Route) -> None:
        version = request.api_version
        assert route.api_versions is not None
        supported = "', '".join(sorted(route.api_versions, reverse=True))
        if not version:
            raise BadRequest(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION.match(version):
            raise BadRequest(
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{supported}'.",
            )
        if version not in route.api_versions:
            raise BadRequest(
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version '{version}' "
                f"for type '{route.resource_type}'. The supported api-versions are '{supported}'.",
            )

    def _fault(
        self, kind: str, method: str, subscription: str, path: str, claims: dict[str, Any] | None
    ) -> Response:
        retry_after = str(self.world.faults.retry_after)
        actor = principal_of(claims) if claims else SANDBOX_PRINCIPAL_ID
        if kind == "403":
            types = re.findall(r"/providers/([^/]+/[^/]+)", path)
            # A Resource Graph query is a POST that reads: its action is Microsoft.ResourceGraph/resources/read.
            verb = (
                "read"
                if method == "GET" or path.lower().startswith("/providers/microsoft.resourcegraph/")
                else "write"
            )
            action = f"{types[-1] if types else 'Microsoft.Resources/subscriptions'}/{verb}"
            return Response(
                403,
                {
                    "error": {
                        "code": "AuthorizationFailed",
                        "message": f"The client '{actor}' with object id '{actor}' "
                        f"does not have authorization to perform action '{action}' over scope "
                        f"'{path}' or the scope is invalid. If access was recently granted, "
                        "please refresh your credentials.",
                    }
                },
            )
        if kind == "429":
            kind_name = kind_of(method)
            return Response(
                429,
                throttled_error_body(
                    Decision(False, kind_name, "subscription", subscription, actor, {}, int(retry_after))
                ),
                {"Retry-After": retry_after, f"x-ms-ratelimit-remaining-subscription-{kind_name}": "0"},
            )
        if kind == "409":
            return Response(
                409,
                {
                    "error": {
                        "code": "BMSUserErrorObjectLocked",
                        "message": "Another operation is in progress on the selected item. "
                        "Wait until the previous operation is completed and then retry.",
                    }
                },
            )
        if kind == "503":
            return Response(
                503,
                {
                    "error": {
                        "code": "ServiceUnavailable",
                        "message": "The service is temporarily unavailable.",
                    }
                },
                {"Retry-After": retry_after},
            )
        return Response(
            500, {"error": {"code": "InternalServerError", "message": "Encountered internal server error."}}
        )

    def _send(self, h: _Handler, response: Response, rate_headers: dict[str, str]) -> None:
        """The answer, with the request ids and, for ARM requests, the tokens left (`rate_headers`;
        a header of the response itself wins, as an injected 429's remaining 0)."""
        payload, content_type = response.encoded()
        request_id = str(uuid.uuid4())
        own = {name.lower() for name in response.headers}
        try:
            h.send_response(response.status)
            if content_type:
                h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("x-ms-request-id", request_id)
            h.send_header("x-ms-correlation-request-id", request_id)
            for name, value in rate_headers.items():
                if name.lower() not in own:
                    h.send_header(name, value)
            for name, value in response.headers.items():
                if name.lower() != "content-type":
                    h.send_header(name, value)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            h.close_connection = True


def _identity_header(data_dir: Path | None) -> str:
    """The secret that managed-identity clients send in X-IDENTITY-HEADER: random, kept in DIR."""
    import secrets

    if data_dir is not None:
        path = data_dir / "identity-header"
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(24)
        path.write_text(value)
        path.chmod(0o600)
        return value
    return secrets.token_urlsafe(24)


def _temp_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="armsim-")


def _throttled(decision: Decision) -> TooManyRequests:
    """ARM's 429 for an empty bucket, with the Retry-After the bucket gives."""
    error = throttled_error_body(decision)["error"]
    return TooManyRequests(
        error["code"], error["message"], headers={"Retry-After": str(decision.retry_after)}
    )
