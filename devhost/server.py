"""HTTP plumbing: a threading HTTP/1.1 server that turns each request into a call of ``handle``."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["HttpServer", "Request", "Response"]

log = logging.getLogger("devhost")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string, not decoded
    query: dict[str, str]  # first value of each name, decoded
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes
    url: str  # absolute, as the client asked for it


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, document: Any) -> Response:
        return cls(
            status, json.dumps(document).encode(), [("Content-Type", "application/json; charset=utf-8")]
        )

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])


Handle = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handle: Handle, max_body_bytes: int) -> None:
        super().__init__(address, _Handler)
        self.handle = handle
        self.max_body_bytes = max_body_bytes
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.active = 0  # requests being answered
        self.idle = threading.Condition()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        with self.idle:
            self.active += 1
        try:
            yield
        finally:
            with self.idle:
                self.active -= 1
                self.idle.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devhost"
    server: _Server
    timeout = 120  # an idle keep-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, ...) reaches the router too, which answers 404 as the
        # Functions host does, instead of http.server's 501.
        if name.startswith("do_"):
            return self.do_GET
        raise AttributeError(name)

    def _serve(self) -> None:
        with self.server.answering():
            self._answer()

    def _answer(self) -> None:
        body = self._read_body()
        if body is None:
            return
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        split = urlsplit(self.path)
        request = Request(
            method=self.command.upper(),
            path=split.path,
            query=dict(reversed(parse_qsl(split.query, keep_blank_values=True))),
            headers=headers,
            body=body,
            url=f"http://{host}{self.path}",
        )
        try:
            response = self.server.handle(request)
        except Exception:
            log.exception("devhost failed on %s %s", self.command, split.path)
            response = Response(HTTPStatus.INTERNAL_SERVER_ERROR)
        self._send(response)

    def _read_body(self) -> bytes | None:
        """The request body, or None after replying with an error."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(
                Response.text(HTTPStatus.LENGTH_REQUIRED, "devhost needs a Content-Length"), close=True
            )
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(Response.text(HTTPStatus.BAD_REQUEST, "invalid Content-Length"), close=True)
            return None
        if length > self.server.max_body_bytes:
            limit = self.server.max_body_bytes
            self._send(Response.text(413, f"request body larger than {limit} bytes"), close=True)
            return None
        return self.rfile.read(length)

    def _send(self, response: Response, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Keys travel in ?code=: never log them.
        log.debug("%s %s", self.address_string(), _CODE.sub(r"\1code=[hidden]", format % args))


_CODE = re.compile(r"([?&])code=[^&\s\"]*")


class HttpServer:
    """Serves ``handle`` on ``host:port`` (port 0: a free one) from a background thread."""

    def __init__(self, host: str, port: int, handle: Handle, max_body_bytes: int) -> None:
        self._server = _Server((host, port), handle, max_body_bytes)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="devhost-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        """Stop taking new connections; requests in progress go on."""
        self._server.shutdown()
        self._thread.join()

    def close(self, timeout: float) -> bool:
        """Wait (up to ``timeout`` s) for requests being answered, then close the listening socket
        and every connection; False if some request was still being answered."""
        with self._server.idle:
            finished = self._server.idle.wait_for(lambda: self._server.active == 0, timeout)
        self._server.server_close()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        return finished
