"""ARM's request throttling: token buckets per subscription, principal and kind of request.

Azure Resource Manager ("Understand how Azure Resource Manager throttles requests", 2024 token-bucket
architecture) keeps a bucket per subscription, per service principal and per operation type: reads
(GET, HEAD) 250 tokens refilled at 25 a second, writes (PUT, POST, PATCH) and deletes 200 at 10 a
second, and a global bucket per subscription and operation type, across principals, 15 times those
figures. A request takes one token from each; when either is empty the answer is 429
SubscriptionRequestsThrottled with Retry-After. Every answer reports the tokens left after it in
`x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` and the global ones in
`x-ms-ratelimit-remaining-subscription-global-{...}` (both seen on real answers: 249 / 3749 on a first
GET, 199 / 2999 on a first PUT). Requests outside a subscription (GET /subscriptions) use the tenant's
buckets of the same figures per principal.

Buckets refill on wall time (time.monotonic), not on armsim's simulated clock: throttling is about
how fast a client calls, so moving or speeding up the simulated clock never refills them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("reads", "writes", "deletes")
VERBS = {"reads": "read", "writes": "write", "deletes": "delete"}

DEFAULT_THROTTLING: dict[str, Any] = {
    "enabled": True,
    "reads": {"capacity": 250, "refillPerSecond": 25.0},
    "writes": {"capacity": 200, "refillPerSecond": 10.0},
    "deletes": {"capacity": 200, "refillPerSecond": 10.0},
    # The subscription-wide buckets across principals: this many times each principal's figures
    # (0 leaves them out, and their headers with them).
    "globalMultiplier": 15,
}


def kind_of(method: str) -> str:
    """ARM's operation type of an HTTP method: reads (GET, HEAD), deletes, or writes (the rest)."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


def principal_of(claims: dict[str, Any] | None) -> str:
    """The caller ARM throttles by: the token's object id (oid), else its app id or subject."""
    claims = claims or {}
    for claim in ("oid", "appid", "azp", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value.lower()
    return "unknown"


def merge_settings(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`current` with `change` applied: {"enabled", "globalMultiplier", "reads"|"writes"|"deletes":
    {"capacity", "refillPerSecond"}}; ValueError names what is wrong."""
    if not isinstance(change, dict):
        raise ValueError("throttling must be an object")
    unknown = set(change) - set(DEFAULT_THROTTLING)
    if unknown:
        raise ValueError(
            f"unknown throttling settings {sorted(unknown)}; known: {sorted(DEFAULT_THROTTLING)}"
        )
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in current.items()}
    for key, value in change.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise ValueError("throttling.enabled must be true or false")
            merged[key] = value
        elif key == "globalMultiplier":
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError("throttling.globalMultiplier must be a number of 0 or more")
            merged[key] = value
        else:
            if not isinstance(value, dict):
                raise ValueError(f"throttling.{key} must be an object with capacity and refillPerSecond")
            extra = set(value) - {"capacity", "refillPerSecond"}
            if extra:
                raise ValueError(f"unknown throttling.{key} entries {sorted(extra)}")
            for field, number in value.items():
                if not isinstance(number, int | float) or isinstance(number, bool) or number <= 0:
                    raise ValueError(f"throttling.{key}.{field} must be a number above 0")
                if field == "capacity" and number < 1:
                    raise ValueError(f"throttling.{key}.capacity must be at least 1")
            merged[key] = {**merged[key], **value}
    return merged


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    level: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self) -> float:
        """Seconds until a token is back."""
        return max(0.0, (1.0 - self.level) / self.rate)


@dataclass(frozen=True)
class Decision:
    """What the buckets say about one request: allowed or not, and the headers of its answer."""

    allowed: bool
    kind: str
    scope: str  # "subscription" or "tenant"
    scope_id: str
    principal: str
    headers: dict[str, str]
    retry_after: int = 0
    by_global: bool = False  # refused by the subscription-wide bucket, not the principal's


class Throttler:
    """The token buckets of every subscription (and tenant), principal and kind of request."""

    def __init__(
        self, settings: Callable[[], dict[str, Any]], now: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._now = now
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str, str], _Bucket] = {}

    def reset(self) -> None:
        """Forget every bucket: each starts full again on its next request."""
        with self._lock:
            self._buckets.clear()

    def _bucket(self, key: tuple[str, str, str, str], capacity: float, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity or bucket.rate != rate:
            bucket = self._buckets[key] = _Bucket(capacity, rate, capacity, now)
        bucket.refill(now)
        return bucket

    def take(self, subscription_id: str | None, tenant_id: str, principal: str, method: str) -> Decision:
        """Take a token for one request (or refuse it) and say what its answer reports."""
        settings = self._settings()
        kind = kind_of(method)
        figures = settings[kind]
        capacity, rate = float(figures["capacity"]), float(figures["refillPerSecond"])
        multiplier = float(settings.get("globalMultiplier") or 0)
        scope, scope_id = (
            ("subscription", subscription_id.lower()) if subscription_id else ("tenant", tenant_id)
        )
        prefix = f"x-ms-ratelimit-remaining-{scope}"
        if not settings.get("enabled", True):
            # Not simulated: report full buckets, as armsim did before throttling was simulated.
            headers = {f"{prefix}-{kind}": str(int(capacity) - 1)}
            if scope == "subscription" and multiplier:
                headers[f"{prefix}-global-{kind}"] = str(int(capacity * multiplier) - 1)
            return Decision(True, kind, scope, scope_id, principal, headers)
        with self._lock:
            now = self._now()
            own = self._bucket((scope, scope_id, principal, kind), capacity, rate, now)
            shared = (
                self._bucket((scope, scope_id, "*", kind), capacity * multiplier, rate * multiplier, now)
                if scope == "subscription" and multiplier
                else None
            )
            empty = [b for b in (own, shared) if b is not None and b.level < 1.0]
            if not empty:
                own.level -= 1.0
                if shared is not None:
                    shared.level -= 1.0
            headers = {f"{prefix}-{kind}": str(max(0, math.floor(own.level)))}
            if shared is not None:
                headers[f"{prefix}-global-{kind}"] = str(max(0, math.floor(shared.level)))
            if not empty:
                return Decision(True, kind, scope, scope_id, principal, headers)
            retry_after = max(1, math.ceil(max(b.wait() for b in empty)))
            return Decision(
                False,
                kind,
                scope,
                scope_id,
                principal,
                headers,
                retry_after,
                by_global=own not in empty,
            )

    def refill(self) -> None:
        """Fill every bucket (a test's shortcut for waiting)."""
        with self._lock:
            for bucket in self._buckets.values():
                bucket.level = bucket.capacity
                bucket.updated = self._now()

    def describe(self) -> list[dict[str, Any]]:
        """The buckets as they are now (principal '*' is a subscription's global bucket)."""
        with self._lock:
            now = self._now()
            result = []
            for (scope, scope_id, principal, kind), bucket in sorted(self._buckets.items()):
                bucket.refill(now)
                result.append(
                    {
                        "scope": scope,
                        "id": scope_id,
                        "principal": principal,
                        "kind": kind,
                        "capacity": bucket.capacity,
                        "refillPerSecond": bucket.rate,
                        "tokens": round(bucket.level, 3),
                    }
                )
            return result


def throttled_error_body(decision: Decision) -> dict[str, Any]:
    """ARM's 429 body. Subscription scope, verbatim from a real capture (velero-io/velero#9171, 2025):
    "Number of 'read' requests for subscription '<sub>' actor '<oid>' exceeded. Please try again after
    '1' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for
    additional information." 'write' / 'delete' by analogy. The tenant scope's code and wording
    (TenantRequestsThrottled) are armsim's guess after it."""
    verb = VERBS[decision.kind]
    code = "SubscriptionRequestsThrottled" if decision.scope == "subscription" else "TenantRequestsThrottled"
    return {
        "error": {
            "code": code,
            "message": f"Number of '{verb}' requests for {decision.scope} '{decision.scope_id}' actor "
            f"'{decision.principal}' exceeded. Please try again after '{decision.retry_after}' seconds after "
            "additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
        }
    }
