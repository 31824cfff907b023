"""Backup now, hardened: strict request ids, replay protection on the MAC's bytes, callbacks only
over https to the very addresses checked, and Azure's error text kept from callers."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from autopilot.azure.failures import classify_failure
from autopilot.backup_now.callback_target import check_callback_url, post
from autopilot.backup_now.request import parse_request
from autopilot.kernel.api import azure_problem
from autopilot.kernel.problems import Problem, printable
from autopilot.kernel.signing import check_signature, sign

VM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def body(**fields: Any) -> bytes:
    return json.dumps({"vm": VM, "requestId": "CHG-1", **fields}).encode()


@pytest.mark.parametrize("request_id", ["CHG-1\n", "CHG-1\r", "CHG\x00-1", "CHG-1\u2028", "-CHG", ""])
def test_request_ids_with_control_characters_or_a_final_newline_are_refused(request_id: str) -> None:
    with pytest.raises(Problem) as refused:
        parse_request(body(requestId=request_id), 30, NOW)
    assert refused.value.status == 400 and refused.value.field == "requestId"


def test_a_valid_request_id_is_taken_as_it_is() -> None:
    assert parse_request(body(requestId="INC0012345/a:b@c#1"), 30, NOW).request_id == "INC0012345/a:b@c#1"


# -- signatures -------------------------------------------------------------------------------------
def test_a_signature_re_encoded_from_hex_to_base64_is_a_replay() -> None:
    seen: set[str] = set()

    def first_use(mac: str) -> bool:
        if mac in seen:
            return False
        seen.add(mac)
        return True

    payload = body()
    timestamp = str(int(NOW.timestamp()))
    signed = sign("s3cret", timestamp, payload)
    check_signature(
        {"X-Autopilot-Timestamp": timestamp, "X-Autopilot-Signature": signed},
        payload,
        "s3cret",
        NOW,
        first_use,
    )
    as_base64 = "sha256=" + base64.b64encode(bytes.fromhex(signed.removeprefix("sha256="))).decode()
    with pytest.raises(Problem) as replayed:
        check_signature(
            {"X-Autopilot-Timestamp": timestamp, "X-Autopilot-Signature": as_base64},
            payload,
            "s3cret",
            NOW,
            first_use,
        )
    assert replayed.value.slug == "signature-replayed"


def test_a_base64_signature_is_accepted_once_and_a_wrong_one_never() -> None:
    payload = body()
    timestamp = str(int(NOW.timestamp()))
    mac = bytes.fromhex(sign("s3cret", timestamp, payload).removeprefix("sha256="))
    headers = {
        "X-Autopilot-Timestamp": timestamp,
        "X-Autopilot-Signature": "sha256=" + base64.b64encode(mac).decode(),
    }
    check_signature(headers, payload, "s3cret", NOW, lambda _: True)
    for wrong in (
        "sha256=" + "0" * 64,
        "sha256=not-base64!",
        "sha256=" + base64.b64encode(mac[:16]).decode(),
    ):
        with pytest.raises(Problem) as refused:
            check_signature(
                {**headers, "X-Autopilot-Signature": wrong}, payload, "s3cret", NOW, lambda _: True
            )
        assert refused.value.slug == "signature-invalid"


# -- callbacks --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["http://[::1", "https://hooks.example.com:99999/x", "https://[zz]/x", "https://hooks.example.com:-1/"],
)
def test_a_callback_url_that_does_not_parse_is_a_400(url: str) -> None:
    with pytest.raises(Problem) as refused:
        check_callback_url(url, ("hooks.example.com",))
    assert refused.value.status == 400 and refused.value.field == "callbackUrl"


def test_plain_http_is_refused_ip_literals_included_unless_the_operator_allows_its_range() -> None:
    for url in ("http://hooks.example.com/x", "http://127.0.0.1:8080/x"):
        with pytest.raises(Problem) as refused:
            check_callback_url(url, ("hooks.example.com", "127.0.0.1/32"), resolve=lambda _: ["127.0.0.1"])
        assert refused.value.status == 400 and "https" in refused.value.detail
    target = check_callback_url("http://127.0.0.1:8080/x", ("127.0.0.1/32",), http_allowed=("127.0.0.0/8",))
    assert (target.scheme, str(target.addresses[0]), target.port) == ("http", "127.0.0.1", 8080)


def test_names_resolving_to_loopback_link_local_or_private_addresses_are_refused() -> None:
    for address in ("127.0.0.1", "169.254.169.254", "10.0.0.5", "::1", "fd00::1"):
        with pytest.raises(Problem) as refused:
            check_callback_url(
                "https://hooks.example.com/x", ("hooks.example.com",), resolve=lambda _, a=address: [a]
            )
        assert refused.value.status == 403, address


class Receiver:
    def __init__(self) -> None:
        self.hosts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hosts.append(self.headers.get("Host", ""))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_the_callback_goes_to_the_address_checked_with_the_name_as_host(receiver: Receiver) -> None:
    """hooks.invalid does not resolve on this machine: the callback reaches the local receiver only
    because it is sent to the address the check resolved, once, and never resolved again."""
    resolved: list[str] = []

    def resolve(name: str) -> list[str]:
        resolved.append(name)
        return ["127.0.0.1"]

    target = check_callback_url(
        f"http://hooks.invalid:{receiver.port}/done?ticket=1",
        ("hooks.invalid", "127.0.0.1/32"),
        http_allowed=("127.0.0.1/32",),
        resolve=resolve,
    )
    assert post(target, b"{}", {"Content-Type": "application/json"}, timeout=5) == 204
    assert resolved == ["hooks.invalid"]
    assert receiver.hosts == [f"hooks.invalid:{receiver.port}"]


# -- what goes back out -----------------------------------------------------------------------------
class _Response:
    status_code = 403
    reason = "Forbidden"
    headers = {"x-ms-request-id": "5f1c9a1e-0000-4000-8000-000000000001"}

    def text(self) -> str:
        return ""


def test_azure_error_text_is_not_relayed_to_the_caller() -> None:
    error = HttpResponseError(
        message="The client '7f3e...' with object id '11111111-2222-3333-4444-555555555555' does not have "
        "authorization to perform action 'Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/"
        "protectedItems/backup/action' over scope '/subscriptions/secret-scope'",
        response=_Response(),  # type: ignore[arg-type]
    )
    problem = azure_problem(error)
    assert problem.status == 502
    assert (
        "11111111-2222-3333-4444-555555555555" not in problem.detail and "secret-scope" not in problem.detail
    )
    assert "5f1c9a1e-0000-4000-8000-000000000001" in problem.detail  # the correlation id


def test_control_characters_are_escaped_for_logs_and_audit_rows() -> None:
    assert printable("patch\n2026-12-06 INFO forged line\x1b[2J\u2028") == (
        "patch\\x0a2026-12-06 INFO forged line\\x1b[2J\\u2028"
    )


# -- one classification of Azure's failures -----------------------------------------------------------
class _Answer:
    def __init__(self, status: int, code: str) -> None:
        self.status_code = status
        self.reason = "x"
        self.headers: dict[str, str] = {}
        self._body = json.dumps({"error": {"code": code, "message": "m"}}).encode()

    def text(self) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (lambda: HttpResponseError(response=_Answer(409, "BMSUserErrorObjectLocked")), "conflict"),
        (lambda: HttpResponseError(response=_Answer(400, "UserErrorBackupOperationInProgress")), "conflict"),
        (lambda: HttpResponseError(response=_Answer(409, "VaultAlreadyExists")), "permanent"),
        (lambda: HttpResponseError(response=_Answer(409, "PropertyChangeNotAllowed")), "permanent"),
        (lambda: HttpResponseError(response=_Answer(429, "SubscriptionRequestsThrottled")), "transient"),
        (lambda: HttpResponseError(response=_Answer(503, "ServiceUnavailable")), "transient"),
        (lambda: HttpResponseError(response=_Answer(400, "BMSUserErrorInvalidInput")), "permanent"),
        (lambda: ServiceRequestError("connection refused"), "transient"),
        (lambda: ServiceResponseError("connection reset"), "transient"),
        (lambda: ValueError("a bug"), "permanent"),
    ],
)
def test_every_failure_of_azure_is_classified_one_way(error: Any, kind: str) -> None:
    failure = classify_failure(error())
    assert failure.kind.value == kind, (failure, kind)
    assert failure.remedy
