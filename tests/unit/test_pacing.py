"""The client side of ARM's token buckets (autopilot/azure/pacing.py), through a real azure-core pipeline
against a local HTTP endpoint that answers as ARM does (remaining-token headers, 429 + Retry-After)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest

from autopilot.azure.pacing import LOW_PRIORITY_RESERVE, ArmPacer, low_priority

SUB = "00000000-0000-0000-0000-000000000001"


class FakeArm:
    """Answers every request 200 with the remaining-reads header it is told, or 429s first."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []
        self.remaining: str | None = None
        self.throttle = 0  # how many of the next requests get 429 + Retry-After: 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                fake.sent.append((time.monotonic(), self.command))
                if fake.throttle:
                    fake.throttle -= 1
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                else:
                    self.send_response(200)
                    if fake.remaining is not None:
                        self.send_header("x-ms-ratelimit-remaining-subscription-reads", fake.remaining)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    fake = FakeArm()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def client(arm: FakeArm, pacer: ArmPacer) -> PipelineClient[Any, Any]:
    return PipelineClient(
        arm.url,
        policies=[RetryPolicy(retry_total=3, retry_backoff_factor=0.01)],  # as the SDK clients list theirs
        per_retry_policies=[pacer],
    )


def get(
    c: PipelineClient[Any, Any], method: str = "GET", path: str = f"/subscriptions/{SUB}/resourceGroups/rg"
) -> int:
    response = c.send_request(HttpRequest(method, c.format_url(path) + "?api-version=1"))
    return int(response.status_code)


def test_requests_beyond_the_bucket_wait_for_its_refill(arm: FakeArm) -> None:
    pacer = ArmPacer({"reads": (5.0, 20.0), "writes": (5.0, 20.0), "deletes": (5.0, 20.0)})
    c = client(arm, pacer)
    started = time.monotonic()
    for _ in range(20):
        assert get(c) == 200
    # 15 requests beyond the bucket's 5 need 0.75 s of refill at 20 a second, however fast ARM answers.
    assert time.monotonic() - started >= 15 / 20 * 0.95
    times = [t for t, _ in arm.sent]
    # Never faster than the bucket: at most 5 + 20 per second in any span of the run (+1 for jitter
    # between leaving the pacer and reaching the server).
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 5 + 20 * (times[j] - start) + 1, (i, j)
    assert pacer.waited > 0


def test_the_remaining_tokens_arm_reports_bring_the_bucket_down(arm: FakeArm) -> None:
    pacer = ArmPacer({"reads": (100.0, 20.0), "writes": (100.0, 20.0), "deletes": (100.0, 20.0)})
    c = client(arm, pacer)
    arm.remaining = "0"  # another instance of the app used the bucket up
    get(c)
    arm.remaining = None
    get(c)
    assert arm.sent[1][0] - arm.sent[0][0] >= 0.8 / 20
    assert pacer.waited > 0


def test_a_429_closes_the_bucket_until_retry_after(arm: FakeArm) -> None:
    pacer = ArmPacer()
    c = client(arm, pacer)
    arm.throttle = 1
    assert get(c) == 200  # azure-core retried it
    assert len(arm.sent) == 2
    assert arm.sent[1][0] - arm.sent[0][0] >= 0.95  # not before Retry-After


def test_low_priority_work_leaves_a_reserve(arm: FakeArm) -> None:
    pacer = ArmPacer({"reads": (20.0, 10.0), "writes": (20.0, 10.0), "deletes": (20.0, 10.0)})
    c = client(arm, pacer)
    reserve = int(20 * LOW_PRIORITY_RESERVE)
    with low_priority():
        for _ in range(20 - reserve):
            get(c)
    waited_low = pacer.waited
    assert waited_low < 0.5  # the part above the reserve was there at once
    with low_priority():
        get(c)  # the reserve is not for low priority work: it waits for a refill
    assert pacer.waited - waited_low > 0.01
    before = pacer.waited
    for _ in range(reserve - 1):
        get(c)  # normal work takes from the reserve at once
    assert pacer.waited - before < 0.05


def test_requests_outside_a_subscription_and_writes_use_their_own_buckets(arm: FakeArm) -> None:
    pacer = ArmPacer({"reads": (1.0, 1.0), "writes": (3.0, 1.0), "deletes": (1.0, 1.0)})
    c = client(arm, pacer)
    assert get(c) == 200  # the read token
    for _ in range(3):
        assert get(c, "PUT") == 200  # writes have their own bucket
    assert get(c, path="/providers/x") == 200
    assert pacer.waited < 0.05
