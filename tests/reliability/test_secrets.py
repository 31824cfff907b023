"""Scenario 5, secrets: a run with known secrets, and a scan of everything it wrote for them.

The stack runs with known function, master and eventgrid keys, a known HMAC secret, and a
managed-identity endpoint of the test's own (`KnownTokenIdentity`) that issues known access tokens
(armsim checks a token's audience and expiry, not its signature, so it accepts them). The scenario
exercises every path: the sweep (fixes, first backups, events), protect-on-create, backup now with
a signed request and a signed callback to a local receiver, the callback timer, the report, and
refused requests (no key, a wrong key, a bad and a replayed signature).

Then every captured text is searched for each secret: the host's log (the app's logging, azure-core's
HTTP logging, devhost's own), armsim's log at DEBUG, the events published to the topic, the resource
events and their delivery records, the callback bodies and headers, the audit and state tables, and
the report blobs. None may contain a key, the secret, the identity header or a token.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from autopilot.kernel.signing import sign
from tests.reliability.soak import record, sized
from tests.reliability.support import (
    KnownTokenIdentity,
    RelStack,
    all_delivered,
    new_vms,
    sweep_estate,
    vm_id,
    wait_for,
)

VMS = sized(20, 200)
EVENTS = sized(3, 20)


class Receiver:
    """A callback endpoint that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def texts(self) -> list[str]:
        return [json.dumps(h) + "\n" + b.decode(errors="replace") for h, b in self.received]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("secrets")
    identity = KnownTokenIdentity(header="identity-header-" + uuid.uuid4().hex)
    receiver = Receiver()
    secret = "hmac-secret-" + uuid.uuid4().hex
    keys = {
        "DEVHOST_FUNCTION_KEY": "function-key-" + uuid.uuid4().hex,
        "DEVHOST_MASTER_KEY": "master-key-" + uuid.uuid4().hex,
        "DEVHOST_EVENTGRID_KEY": "eventgrid-key-" + uuid.uuid4().hex,
    }
    stack = RelStack(
        root,
        identity=identity,
        keys=dict(keys),
        armsim_log_level="DEBUG",
        armsim_config={"snapshotSeconds": 1, "transferSeconds": 1},
        settings={
            "AUTOPILOT_HMAC_SECRET": secret,
            "AUTOPILOT_CALLBACK_ALLOWED_HOSTS": "127.0.0.1/32",
            "AUTOPILOT_CALLBACK_HTTP_ALLOWED": "127.0.0.1/32",
        },
    )
    started = time.monotonic()
    with stack:
        estate = sweep_estate(VMS)
        estate.seed(stack)
        stack.run_sweep(timeout=300)
        new_vms(EVENTS, "rg-new", selected_only=True).seed(stack, emit_events=True)
        assert wait_for(lambda: all_delivered(stack, EVENTS), timeout=120)
        healthy = sorted(set(estate.expected) - estate.needs_write)[0].split(";")
        body = json.dumps(
            {"vm": vm_id(*healthy), "requestId": "SECRET-1", "callbackUrl": receiver.url, "reason": "scan"}
        ).encode()
        timestamp = str(int(time.time()))
        headers = {"X-Autopilot-Timestamp": timestamp, "X-Autopilot-Signature": sign(secret, timestamp, body)}
        accepted = stack.app("POST", "/api/backups", data=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        # Refusals: a replayed signature, a wrong one, no key, a wrong key.
        assert stack.app("POST", "/api/backups", data=body, headers=headers).status_code == 401
        bad = {**headers, "X-Autopilot-Signature": "sha256=" + "0" * 64}
        assert stack.app("POST", "/api/backups", data=body, headers=bad).status_code == 401
        assert stack.app("POST", "/api/backups", key=None, data=body, headers=headers).status_code == 401
        wrong = {**headers, "x-functions-key": "wrong-" + keys["DEVHOST_FUNCTION_KEY"][:8]}
        assert stack.app("POST", "/api/backups", data=body, headers=wrong).status_code == 401
        location = accepted.headers["Location"]
        assert wait_for(lambda: stack.app("GET", location).json()["status"] != "InProgress", timeout=120)
        stack.run_function("backup_followup")
        assert wait_for(lambda: receiver.received, timeout=60), "no callback arrived"
        assert stack.app("GET", "/api/report").status_code == 200
        events = stack.events()
        texts = {
            "devhost log": stack.host_log(),
            "armsim log": stack.armsim_log(),
            "published events": json.dumps(stack.topic_events()),
            "resource events and deliveries": json.dumps(
                {k: v for k, v in events.items() if k in ("resourceEvents", "deliveries", "deadLetters")}
            ),
            "callbacks": "\n".join(receiver.texts()),
            "audit table": json.dumps(stack.audit_rows(), default=str),
            "state table": json.dumps(stack.state_rows(), default=str),
            "report blobs": stack.blobs_text(),
        }
        secrets = {
            **keys,
            "AUTOPILOT_HMAC_SECRET": secret,
            "IDENTITY_HEADER": identity.header,
            "token marker": identity.marker,
            **{f"access token for {aud}": token for aud, token in identity.tokens.items()},
        }
        yield {
            "texts": texts,
            "secrets": secrets,
            "identity": identity,
            "receiver": receiver,
            "seconds": time.monotonic() - started,
            "stack": stack,
        }
    identity.stop()
    receiver.server.shutdown()


def leaks(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts.items():
        for name, value in secrets.items():
            if value and value in text:
                line = next(line for line in text.splitlines() if value in line)
                found.append(f"{name} in {where}: {line[:200]}")
    return found


def test_no_secret_in_any_log_event_callback_or_table(captured: dict[str, Any]) -> None:
    texts, secrets = captured["texts"], captured["secrets"]
    identity: KnownTokenIdentity = captured["identity"]
    found = leaks(texts, secrets)
    lines = sum(text.count("\n") + 1 for text in texts.values())
    record(
        "5 secrets",
        f"sweep of {VMS} VMs, {EVENTS} events, backup now with callback, refusals; {lines} lines scanned "
        f"in {len(texts)} sources",
        "known function/master/eventgrid keys, HMAC secret, identity header, tokens",
        f"{len(secrets)} secrets ({len(identity.tokens)} tokens, issued {identity.issued} times) searched; "
        + (f"found: {'; '.join(found)}" if found else "none found"),
        len(found),
        0,
        captured["seconds"],
    )
    # The scan means something only if the app used the known tokens and the paths ran.
    assert identity.issued > 0 and {"https://management.azure.com", "https://eventgrid.azure.net"} <= set(
        identity.tokens
    ), identity.tokens
    assert captured["receiver"].received, "the callback path did not run"
    assert "Authorization" in texts["devhost log"], "azure-core's HTTP logging did not run"
    assert found == [], found


def test_devhost_verbose_log_does_not_contain_the_eventgrid_key(tmp_path: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    devhost: devhost/server.py log_message logs the request line at DEBUG (--verbose), and Event Grid
    sends its key in the query string (?code=...): the eventgrid key is written to the log. The
    Functions host redacts 'code' in what it logs
    """
    key = "eventgrid-key-" + uuid.uuid4().hex
    with RelStack(tmp_path / "verbose", verbose_host=True, keys={"DEVHOST_EVENTGRID_KEY": key}) as stack:
        new_vms(1, "rg-new", selected_only=True).seed(stack, emit_events=True)
        assert wait_for(lambda: all_delivered(stack, 1), timeout=60)
        assert key not in stack.host_log()
