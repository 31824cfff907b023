"""Staying inside ARM's request budget instead of running into it.

Azure Resource Manager throttles with token buckets per subscription and principal (Azure Resource
Manager "Request limits and throttling"): reads 250 tokens refilled at 25 a second, writes 200 at 10,
deletes 200 at 10. Each answer reports what is left (`x-ms-ratelimit-remaining-subscription-reads`,
`-writes`, `-deletes`); an empty bucket answers 429 with Retry-After.

`ArmPacer` is an azure-core pipeline policy on every management client (one per process, shared by
its threads). Before a request leaves it takes a token from its own copy of the bucket, waiting for
the refill if there is none; each answer brings the copy down to what ARM reports left (which also
counts other instances of the app, since they share the principal), and a 429 closes the bucket
until its Retry-After has passed. azure-core's retry policy still retries the refused request.

Work that can wait (first backups, the sweep's fixes and reads) runs with `low_priority()`: it leaves
a reserve of each bucket to the protection of new VMs, so a burst of creations is protected first.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

# (tokens, refilled per second) of ARM's buckets per subscription and principal.
LIMITS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}
LOW_PRIORITY_RESERVE = 0.25  # of each bucket, kept for work that cannot wait
_KIND_OF_METHOD = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}
_SUBSCRIPTION = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})", re.IGNORECASE)
_low_priority: contextvars.ContextVar[bool] = contextvars.ContextVar("autopilot_low_priority", default=False)


@contextlib.contextmanager
def low_priority() -> Iterator[None]:
    """ARM requests made in the block leave a reserve of each bucket to other work."""
    token = _low_priority.set(True)
    try:
        yield
    finally:
        _low_priority.reset(token)


@dataclass
class _Bucket:
    capacity: float
    rate: float
    level: float
    updated: float
    closed_until: float = 0.0

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now


class ArmPacer(SansIOHTTPPolicy[object, object]):
    """The client side of ARM's token buckets, per subscription and kind of request."""

    def __init__(self, limits: dict[str, tuple[float, float]] | None = None) -> None:
        self._limits = limits or LIMITS
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds requests spent waiting for tokens (for benchmarks and logs)

    def _bucket(self, subscription: str, kind: str, now: float) -> _Bucket:
        bucket = self._buckets.get((subscription, kind))
        if bucket is None:
            capacity, rate = self._limits[kind]
            bucket = self._buckets[(subscription, kind)] = _Bucket(capacity, rate, capacity, now)
        return bucket

    @staticmethod
    def _key(request: PipelineRequest[object]) -> tuple[str, str] | None:
        http = request.http_request
        match = _SUBSCRIPTION.search(http.url)  # type: ignore[attr-defined]
        if match is None:
            return None  # tenant-level requests have buckets of their own; not paced
        return match[1].lower(), _KIND_OF_METHOD.get(http.method.upper(), "writes")  # type: ignore[attr-defined]

    def on_request(self, request: PipelineRequest[object]) -> None:
        key = self._key(request)
        if key is None:
            return
        floor = LOW_PRIORITY_RESERVE if _low_priority.get() else 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                bucket = self._bucket(*key, now)
                bucket.refill(now)
                needed = 1.0 + floor * bucket.capacity
                if now >= bucket.closed_until and bucket.level >= needed:
                    bucket.level -= 1.0
                    return
                wait = max(bucket.closed_until - now, (needed - bucket.level) / bucket.rate, 0.01)
                self.waited += wait
            time.sleep(wait)

    def on_response(
        self, request: PipelineRequest[object], response: PipelineResponse[object, object]
    ) -> None:
        key = self._key(request)
        if key is None:
            return
        headers = response.http_response.headers  # type: ignore[attr-defined]
        remaining = headers.get(f"x-ms-ratelimit-remaining-subscription-{key[1]}")
        with self._lock:
            now = time.monotonic()
            bucket = self._bucket(*key, now)
            bucket.refill(now)
            if remaining is not None and remaining.strip().isdigit():
                bucket.level = min(bucket.level, float(remaining))
            if response.http_response.status_code == 429:  # type: ignore[attr-defined]
                retry_after = headers.get("Retry-After", "")
                seconds = float(retry_after) if retry_after.strip().isdigit() else 1.0 / bucket.rate
                bucket.level = 0.0
                bucket.closed_until = max(bucket.closed_until, now + seconds)
