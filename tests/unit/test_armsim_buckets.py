"""armsim's token buckets on a fake wall clock: refill, Retry-After, the global bucket, kinds,
principals, the switch, and the settings' validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from armsim.core.throttling import (
    DEFAULT_THROTTLING,
    Throttler,
    kind_of,
    merge_settings,
    principal_of,
    throttled_error_body,
)

SUB = "00000000-0000-0000-0000-000000000001"
TENANT = "72f988bf-0000-4000-8000-00000000a7e5"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttler(**change: Any) -> tuple[Throttler, FakeClock, dict[str, Any]]:
    settings = merge_settings(copy.deepcopy(DEFAULT_THROTTLING), change)
    clock = FakeClock()
    return Throttler(lambda: settings, clock), clock, settings


@pytest.mark.parametrize(
    ("method", "kind"),
    [("GET", "reads"), ("head", "reads"), ("PUT", "writes"), ("POST", "writes"), ("PATCH", "writes"),
     ("DELETE", "deletes")],
)  # fmt: skip
def test_methods_map_to_arms_operation_types(method: str, kind: str) -> None:
    assert kind_of(method) == kind


def test_the_principal_is_the_tokens_object_id() -> None:
    assert principal_of({"oid": "ABC", "appid": "x"}) == "abc"
    assert principal_of({"appid": "app"}) == "app"
    assert principal_of(None) == "unknown"


def test_a_full_bucket_empties_then_refills_at_its_rate() -> None:
    throttle, clock, _ = throttler(reads={"capacity": 3, "refillPerSecond": 2})
    left = [throttle.take(SUB, TENANT, "p", "GET").headers["x-ms-ratelimit-remaining-subscription-reads"]
            for _ in range(3)]  # fmt: skip
    assert left == ["2", "1", "0"]
    refused = throttle.take(SUB, TENANT, "p", "GET")
    assert not refused.allowed and refused.retry_after == 1  # one token at 2 a second: 0.5 s, rounded up
    clock.now += 0.5
    assert throttle.take(SUB, TENANT, "p", "GET").allowed
    clock.now += 100
    assert (
        throttle.take(SUB, TENANT, "p", "GET").headers["x-ms-ratelimit-remaining-subscription-reads"] == "2"
    )


def test_retry_after_rounds_up_the_wait_for_one_token() -> None:
    throttle, clock, _ = throttler(writes={"capacity": 1, "refillPerSecond": 0.3})
    throttle.take(SUB, TENANT, "p", "PUT")
    assert throttle.take(SUB, TENANT, "p", "PUT").retry_after == 4  # 3.33 s
    clock.now += 3
    assert throttle.take(SUB, TENANT, "p", "PUT").retry_after == 1  # 0.33 s left


def test_the_global_bucket_is_shared_by_every_principal_of_a_subscription() -> None:
    throttle, _, _ = throttler(deletes={"capacity": 2, "refillPerSecond": 0.001}, globalMultiplier=2)
    first = [throttle.take(SUB, TENANT, f"p{n}", "DELETE") for n in range(4)]
    assert all(d.allowed for d in first)
    assert [d.headers["x-ms-ratelimit-remaining-subscription-global-deletes"] for d in first] == [
        "3",
        "2",
        "1",
        "0",
    ]
    refused = throttle.take(SUB, TENANT, "p9", "DELETE")
    assert not refused.allowed and refused.by_global
    assert refused.headers["x-ms-ratelimit-remaining-subscription-deletes"] == "2"  # its own bucket is full
    assert throttle.take("11111111-1111-1111-1111-111111111111", TENANT, "p9", "DELETE").allowed


def test_a_refused_request_takes_no_token() -> None:
    throttle, clock, _ = throttler(reads={"capacity": 1, "refillPerSecond": 1})
    throttle.take(SUB, TENANT, "p", "GET")
    for _ in range(10):
        assert not throttle.take(SUB, TENANT, "p", "GET").allowed
    clock.now += 1
    assert throttle.take(SUB, TENANT, "p", "GET").allowed


def test_switched_off_every_request_is_allowed_and_reports_a_full_bucket() -> None:
    throttle, _, _ = throttler(enabled=False, reads={"capacity": 1, "refillPerSecond": 1})
    decisions = [throttle.take(SUB, TENANT, "p", "GET") for _ in range(5)]
    assert all(d.allowed for d in decisions)
    assert decisions[-1].headers == {
        "x-ms-ratelimit-remaining-subscription-reads": "0",
        "x-ms-ratelimit-remaining-subscription-global-reads": "14",
    }


def test_tenant_requests_have_their_own_buckets_and_no_global_header() -> None:
    throttle, _, _ = throttler()
    decision = throttle.take(None, TENANT, "p", "GET")
    assert decision.headers == {"x-ms-ratelimit-remaining-tenant-reads": "249"}
    assert throttled_error_body(decision)["error"]["code"] == "TenantRequestsThrottled"


def test_new_figures_apply_to_existing_buckets() -> None:
    throttle, _, settings = throttler(reads={"capacity": 1, "refillPerSecond": 0.001})
    throttle.take(SUB, TENANT, "p", "GET")
    assert not throttle.take(SUB, TENANT, "p", "GET").allowed
    settings["reads"] = {"capacity": 5, "refillPerSecond": 0.001}
    assert (
        throttle.take(SUB, TENANT, "p", "GET").headers["x-ms-ratelimit-remaining-subscription-reads"] == "4"
    )


def test_merging_settings_keeps_what_is_not_changed() -> None:
    merged = merge_settings(DEFAULT_THROTTLING, {"writes": {"capacity": 20}})
    assert merged["writes"] == {"capacity": 20, "refillPerSecond": 10.0}
    assert merged["reads"] == DEFAULT_THROTTLING["reads"]
    assert DEFAULT_THROTTLING["writes"]["capacity"] == 200  # the defaults are not touched
