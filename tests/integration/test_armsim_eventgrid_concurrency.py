"""Event Grid in armsim delivers concurrently (both modes): several batches in flight at once per
event subscription (eventConcurrency, 8 by default), each batch of maxEventsPerBatch events; event
subscriptions do not share their share; a failed delivery is retried while others go on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.armsim_support import Sandbox


class SlowHook:
    """A webhook that takes `seconds` to answer each notification and counts how many it answers at
    once; `fail_first` notifications get a 500."""

    def __init__(self, seconds: float, fail_first: int = 0) -> None:
        self.seconds = seconds
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.batches: list[list[dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                status, answer = 200, b""
                if self.headers.get("aeg-event-type") == "SubscriptionValidation":
                    answer = json.dumps({"validationResponse": body[0]["data"]["validationCode"]}).encode()
                else:
                    with hook.lock:
                        hook.now += 1
                        hook.most = max(hook.most, hook.now)
                        failing = hook.fail_first > 0
                        hook.fail_first -= 1
                    time.sleep(hook.seconds)
                    with hook.lock:
                        hook.now -= 1
                        if failing:
                            status = 500
                        else:
                            hook.batches.append(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> SlowHook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        with self.lock:
            return [event["subject"] for batch in self.batches for event in batch]

    def wait(self, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events()


@pytest.fixture
def hook(request: pytest.FixtureRequest) -> Iterator[SlowHook]:
    seconds, fail_first = getattr(request, "param", (0.8, 0))
    with SlowHook(seconds, fail_first) as slow:
        yield slow


def subscribe(arm: Sandbox, hook: SlowHook, name: str = "slow", batch: int = 1) -> None:
    arm.control(
        "POST",
        "/eventgrid/subscriptions",
        {"name": name, "endpoint": hook.url, "topic": "autopilot-events", "maxEventsPerBatch": batch},
    )


def publish(arm: Sandbox, count: int, prefix: str = "e") -> None:
    topic = arm.control("GET", "/eventgrid/topics/autopilot-events")
    events = [
        {
            "id": f"{prefix}-{n}",
            "subject": f"{prefix}-{n:03d}",
            "eventType": "Test.Event",
            "eventTime": "2026-12-06T00:00:00Z",
            "data": {"n": n},
            "dataVersion": "1",
        }
        for n in range(count)
    ]
    response = requests.post(
        topic["endpoint"],
        params={"api-version": "2018-01-01"},
        json=events,
        headers={"aeg-sas-key": topic["key"]},
        verify=str(arm.ca_path),
        timeout=10,
    )
    assert response.status_code == 200, response.text


def recorded(arm: Sandbox, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """armsim's delivery records once `count` are in (an answer is recorded after it arrives)."""
    deadline = time.monotonic() + timeout
    deliveries: list[dict[str, Any]] = arm.events()["deliveries"]
    while len(deliveries) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        deliveries = arm.events()["deliveries"]
    return deliveries


def most_at_once(deliveries: list[dict[str, Any]]) -> int:
    """The most deliveries whose [started, time] overlap at one moment."""
    edges = sorted([(d["started"], 1) for d in deliveries] + [(d["time"], -1) for d in deliveries])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_eight_deliveries_are_in_flight_at_once_by_default(arm: Sandbox, hook: SlowHook) -> None:
    subscribe(arm, hook)
    started = time.monotonic()
    publish(arm, 20)
    assert sorted(hook.wait(20)) == [f"e-{n:03d}" for n in range(20)]
    assert hook.most == 8
    assert time.monotonic() - started < 20 * 0.8 / 2  # far from one at a time (16 s)
    deliveries = recorded(arm, 20)
    assert len(deliveries) == 20
    assert most_at_once(deliveries) == 8  # as armsim records them too


def test_batches_follow_max_events_per_batch(arm: Sandbox, hook: SlowHook) -> None:
    subscribe(arm, hook, batch=5)
    publish(arm, 20)
    hook.wait(20)
    assert sorted(len(b) for b in hook.batches) == [5, 5, 5, 5]
    assert hook.most == 4  # every batch at once


def test_the_concurrency_is_configurable(arm: Sandbox, hook: SlowHook) -> None:
    arm.configure(eventConcurrency=3)
    subscribe(arm, hook)
    publish(arm, 9)
    assert len(hook.wait(9)) == 9
    assert hook.most == 3
    assert arm.control("GET", "/config")["eventConcurrency"] == 3


@pytest.mark.parametrize("hook", [(0.05, 0)], indirect=True)
def test_one_at_a_time_keeps_the_order(arm: Sandbox, hook: SlowHook) -> None:
    arm.configure(eventConcurrency=1)
    subscribe(arm, hook)
    publish(arm, 6)
    assert hook.wait(6) == [f"e-{n:03d}" for n in range(6)]
    assert hook.most == 1


def test_each_event_subscription_has_its_own_share(arm: Sandbox) -> None:
    arm.configure(eventConcurrency=2)
    with SlowHook(0.8) as first, SlowHook(0.8) as second:
        subscribe(arm, first, "first")
        subscribe(arm, second, "second")
        publish(arm, 6)
        assert len(first.wait(6)) == 6 and len(second.wait(6)) == 6
        assert (first.most, second.most) == (2, 2)


@pytest.mark.parametrize("hook", [(0.2, 1)], indirect=True)
def test_a_failed_delivery_is_retried_while_the_others_go_on(arm: Sandbox, hook: SlowHook) -> None:
    subscribe(arm, hook)
    publish(arm, 4)
    assert sorted(hook.wait(4)) == ["e-000", "e-001", "e-002", "e-003"]
    attempts = [(d["attempt"], d["status"]) for d in recorded(arm, 5)]
    assert sorted(attempts) == [(0, 200), (0, 200), (0, 200), (0, 500), (1, 200)]


def test_a_bad_concurrency_is_refused(arm: Sandbox) -> None:
    response = requests.post(
        f"{arm.url}/_armsim/config", json={"eventConcurrency": 0}, verify=str(arm.ca_path), timeout=10
    )
    assert response.status_code == 400
