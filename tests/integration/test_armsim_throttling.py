"""ARM's request throttling in armsim (both modes): the tokens left on every ARM answer, per kind of
request; the 429 SubscriptionRequestsThrottled with Retry-After once a bucket is empty; refill on wall
time (not the simulated clock); buckets per subscription and per principal, with the subscription-wide
global bucket across principals; the control API's figures, switch and refill; statistics.

Most tests set small figures through the control API so that a handful of requests empty a bucket."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient

from armsim.core.auth import make_token
from tests.armsim_support import Sandbox

OTHER_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
OTHER_PRINCIPAL = "0a0b0c0d-0000-4000-8000-00000000beef"
ARM = "https://management.azure.com"
RG_API = {"api-version": "2024-11-01"}
PUT_RG = {"location": "westeurope"}


def token(principal: str | None = None) -> str:
    """An ARM token of the sandbox's principal, or of another one."""
    if principal is None:
        return make_token(ARM, time.time() + 3600)
    return make_token(ARM, time.time() + 3600, object_id=principal)


def call(
    arm: Sandbox,
    method: str,
    path: str,
    principal: str | None = None,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> requests.Response:
    return requests.request(
        method,
        f"{arm.url}{path}",
        params=params or RG_API,
        json=body,
        headers={"Authorization": f"Bearer {token(principal)}"},
        verify=str(arm.ca_path),
        timeout=10,
    )


def group(subscription: str, name: str = "rg-t") -> str:
    return f"/subscriptions/{subscription}/resourcegroups/{name}"


def remaining(response: requests.Response, kind: str, scope: str = "subscription") -> int:
    return int(response.headers[f"x-ms-ratelimit-remaining-{scope}-{kind}"])


def ratelimit_headers(response: requests.Response) -> set[str]:
    return {k.lower() for k in response.headers if k.lower().startswith("x-ms-ratelimit-")}


def slow(capacity: int, rate: float = 0.001, **extra: Any) -> dict[str, Any]:
    """Throttling figures where `capacity` requests of any kind empty a bucket (refilled `rate`/s)."""
    figures = {"capacity": capacity, "refillPerSecond": rate}
    return {"reads": figures, "writes": figures, "deletes": figures, **extra}


@pytest.fixture
def rg(arm: Sandbox) -> Sandbox:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": "rg-t", "location": "westeurope"}])
    return arm


# -- the headers -----------------------------------------------------------------------------------
def test_first_answers_report_the_default_buckets_less_one(rg: Sandbox) -> None:
    read = call(rg, "GET", group(rg.subscription))
    assert read.status_code == 200
    # As captured from Azure: 249 of 250 left, and 3749 of the subscription's 15 x 250.
    assert (remaining(read, "reads"), remaining(read, "global-reads")) == (249, 3749)
    assert ratelimit_headers(read) == {
        "x-ms-ratelimit-remaining-subscription-reads",
        "x-ms-ratelimit-remaining-subscription-global-reads",
    }
    write = call(rg, "PUT", group(rg.subscription, "rg-2"), body={"location": "westeurope"})
    assert write.status_code == 201
    assert (remaining(write, "writes"), remaining(write, "global-writes")) == (199, 2999)
    deleted = call(rg, "DELETE", group(rg.subscription, "rg-2"))
    assert deleted.status_code == 202
    assert (remaining(deleted, "deletes"), remaining(deleted, "global-deletes")) == (199, 2999)
    assert not any("writes" in h or "reads" in h for h in ratelimit_headers(deleted))


def test_remaining_tokens_go_down_by_one_per_request_of_each_kind(rg: Sandbox) -> None:
    rg.configure(throttling=slow(100))
    reads = [remaining(call(rg, "GET", group(rg.subscription)), "reads") for _ in range(4)]
    assert reads == [99, 98, 97, 96]
    writes = [
        remaining(
            call(rg, "PUT", group(rg.subscription), body={"location": "westeurope", "tags": {"n": str(n)}}),
            "writes",
        )
        for n in range(3)
    ]
    assert writes == [99, 98, 97]  # reads and writes have buckets of their own
    post = call(rg, "POST", f"/subscriptions/{rg.subscription}/providers/Microsoft.RecoveryServices/"
                "locations/westeurope/backupStatus", body={"resourceType": "VM", "resourceId": "/x"},
                params={"api-version": "2026-10-01"})  # fmt: skip
    assert remaining(post, "writes") == 96  # POST is a write


def test_error_answers_carry_the_headers_too(rg: Sandbox) -> None:
    rg.configure(throttling=slow(100))
    missing = call(rg, "GET", group(rg.subscription, "rg-none"))
    assert missing.status_code == 404
    bad_version = call(rg, "GET", group(rg.subscription), params={"api-version": "2001-01-01"})
    assert bad_version.status_code == 400
    assert [remaining(missing, "reads"), remaining(bad_version, "reads")] == [99, 98]


def test_the_control_api_the_identity_endpoint_and_unauthenticated_requests_are_not_throttled(
    rg: Sandbox,
) -> None:
    rg.configure(throttling=slow(1))
    assert call(rg, "GET", group(rg.subscription)).status_code == 200
    for _ in range(5):
        response = requests.get(f"{rg.url}/_armsim/health", verify=str(rg.ca_path), timeout=10)
        assert response.status_code == 200 and not ratelimit_headers(response)
        identity = requests.get(
            f"{rg.url}/_armsim/identity/token",
            params={"resource": ARM},
            headers={"X-IDENTITY-HEADER": rg.identity_header},
            verify=str(rg.ca_path),
            timeout=10,
        )
        assert identity.status_code == 200 and not ratelimit_headers(identity)
    anonymous = requests.get(
        f"{rg.url}{group(rg.subscription)}", params=RG_API, verify=str(rg.ca_path), timeout=10
    )
    assert anonymous.status_code == 401 and not ratelimit_headers(anonymous)


# -- the 429 ---------------------------------------------------------------------------------------
def test_an_empty_bucket_answers_429_with_retry_after_and_arms_body(rg: Sandbox) -> None:
    rg.configure(throttling=slow(3, rate=0.5))
    served = [call(rg, "GET", group(rg.subscription)) for _ in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    throttled = call(rg, "GET", group(rg.subscription))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"  # one token at 0.5 a second
    assert remaining(throttled, "reads") == 0
    error = throttled.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert error["message"] == (
        f"Number of 'read' requests for subscription '{rg.subscription}' actor "
        "'5f3c2b1a-0000-4000-8000-0000000a0701' exceeded. Please try again after '2' seconds after additional "
        "tokens are available. Refer to https://aka.ms/arm-throttling for additional information."
    )
    # Writes and deletes are counted apart: they are still served.
    assert call(rg, "PUT", group(rg.subscription), body=PUT_RG).status_code == 200
    refused_write = [call(rg, "PUT", group(rg.subscription), body=PUT_RG) for _ in range(3)][-1]
    assert refused_write.status_code == 429
    assert "'write' requests" in refused_write.json()["error"]["message"]
    refused_delete = [call(rg, "DELETE", group(rg.subscription, f"rg-{n}")) for n in range(4)][-1]
    assert refused_delete.status_code == 429
    assert "'delete' requests" in refused_delete.json()["error"]["message"]
    assert remaining(refused_delete, "deletes") == 0


def test_retry_after_is_at_least_one_second(rg: Sandbox) -> None:
    rg.configure(throttling=slow(1, rate=100.0))
    call(rg, "GET", group(rg.subscription))
    responses = [call(rg, "GET", group(rg.subscription)) for _ in range(20)]
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.headers["Retry-After"] == "1" for r in refused)


def test_buckets_refill_on_wall_time(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2, rate=10.0))
    statuses = [call(rg, "GET", group(rg.subscription)).status_code for _ in range(2)]
    while call(rg, "GET", group(rg.subscription)).status_code == 200:  # drain what refilled meanwhile
        pass
    time.sleep(0.25)  # 2.5 tokens at 10 a second, capped at the bucket's 2
    after = [call(rg, "GET", group(rg.subscription)).status_code for _ in range(2)]
    assert statuses == [200, 200] and after == [200, 200]


def test_moving_the_simulated_clock_does_not_refill_buckets(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2))
    for _ in range(2):
        call(rg, "GET", group(rg.subscription))
    rg.clock(advanceSeconds=3 * 86400)
    rg.clock(speed=1000)
    assert call(rg, "GET", group(rg.subscription)).status_code == 429


def test_the_sdk_waits_the_retry_after_and_gets_through(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2, rate=1.0))
    client = ResourceManagementClient(
        rg.credential(), rg.subscription, **rg.arm_kwargs(retry_total=3, retry_backoff_factor=0.01)
    )
    started = time.monotonic()
    for _ in range(3):
        assert client.resource_groups.get("rg-t").name == "rg-t"
    assert time.monotonic() - started >= 0.9  # the third waited for a token
    assert rg.stats()["throttled"] == {"total": 1, "reads": 1}


# -- what a bucket belongs to ----------------------------------------------------------------------
def test_each_subscription_has_its_own_buckets(rg: Sandbox) -> None:
    rg.seed(
        subscriptions=[OTHER_SUBSCRIPTION],
        resourceGroups=[{"subscriptionId": OTHER_SUBSCRIPTION, "name": "rg-t", "location": "westeurope"}],
    )
    rg.configure(throttling=slow(2))
    for _ in range(2):
        call(rg, "GET", group(rg.subscription))
    assert call(rg, "GET", group(rg.subscription)).status_code == 429
    other = call(rg, "GET", group(OTHER_SUBSCRIPTION))
    assert other.status_code == 200 and remaining(other, "reads") == 1


def test_each_principal_has_its_own_bucket_and_the_global_one_is_shared(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2, globalMultiplier=1.5))  # global: 3 tokens across principals
    mine = [call(rg, "GET", group(rg.subscription)) for _ in range(2)]
    assert [remaining(r, "reads") for r in mine] == [1, 0]
    assert [remaining(r, "global-reads") for r in mine] == [2, 1]
    assert call(rg, "GET", group(rg.subscription)).status_code == 429
    theirs = call(rg, "GET", group(rg.subscription), principal=OTHER_PRINCIPAL)
    assert theirs.status_code == 200
    assert (remaining(theirs, "reads"), remaining(theirs, "global-reads")) == (1, 0)
    # Their own bucket still holds a token, but the subscription-wide one is empty.
    refused = call(rg, "GET", group(rg.subscription), principal=OTHER_PRINCIPAL)
    assert refused.status_code == 429
    assert refused.headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    assert f"actor '{OTHER_PRINCIPAL}'" in refused.json()["error"]["message"]


def test_a_user_assigned_identity_is_a_principal_of_its_own(rg: Sandbox) -> None:
    from azure.identity import ManagedIdentityCredential

    rg.configure(throttling=slow(1))
    rg.activate()
    system = ResourceManagementClient(rg.credential(), rg.subscription, **rg.arm_kwargs(retry_total=0))
    assigned = ResourceManagementClient(
        ManagedIdentityCredential(client_id="8e3a9d2c-1111-4000-8000-00000000c0de"),
        rg.subscription,
        **rg.arm_kwargs(retry_total=0),
    )
    assert system.resource_groups.get("rg-t").name == "rg-t"
    with pytest.raises(HttpResponseError) as err:
        system.resource_groups.get("rg-t")
    assert err.value.status_code == 429
    assert assigned.resource_groups.get("rg-t").name == "rg-t"


def test_tenant_level_requests_use_the_tenants_buckets(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2))
    listed = call(rg, "GET", "/subscriptions", params={"api-version": "2022-12-01"})
    assert listed.status_code == 200
    assert ratelimit_headers(listed) == {"x-ms-ratelimit-remaining-tenant-reads"}
    assert remaining(listed, "reads", scope="tenant") == 1
    assert remaining(call(rg, "GET", group(rg.subscription)), "reads") == 1  # a subscription's own bucket
    call(rg, "GET", "/subscriptions", params={"api-version": "2022-12-01"})
    refused = call(rg, "GET", "/subscriptions", params={"api-version": "2022-12-01"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TenantRequestsThrottled"


# -- the control API -------------------------------------------------------------------------------
def test_throttling_can_be_switched_off_and_reset_switches_it_back_on(rg: Sandbox) -> None:
    rg.configure(throttling={"enabled": False, **slow(1)})
    answers = [call(rg, "GET", group(rg.subscription)) for _ in range(5)]
    assert {r.status_code for r in answers} == {200}
    assert {(remaining(r, "reads"), remaining(r, "global-reads")) for r in answers} == {(0, 14)}
    rg.reset()
    assert rg.control("GET", "/config")["throttling"] == {
        "enabled": True,
        "reads": {"capacity": 250, "refillPerSecond": 25.0},
        "writes": {"capacity": 200, "refillPerSecond": 10.0},
        "deletes": {"capacity": 200, "refillPerSecond": 10.0},
        "globalMultiplier": 15,
    }


def test_the_control_api_shows_and_refills_the_buckets(rg: Sandbox) -> None:
    rg.configure(throttling=slow(2, globalMultiplier=0))
    call(rg, "GET", group(rg.subscription))
    call(rg, "GET", group(rg.subscription))
    buckets = rg.control("GET", "/throttling")["buckets"]
    assert [(b["id"], b["principal"], b["kind"], round(b["tokens"])) for b in buckets] == [
        (rg.subscription, "5f3c2b1a-0000-4000-8000-0000000a0701", "reads", 0)
    ]
    assert call(rg, "GET", group(rg.subscription)).status_code == 429
    rg.control("POST", "/throttling/refill")
    refilled = call(rg, "GET", group(rg.subscription))
    assert refilled.status_code == 200 and remaining(refilled, "reads") == 1
    assert "x-ms-ratelimit-remaining-subscription-global-reads" not in refilled.headers  # multiplier 0


@pytest.mark.parametrize(
    "bad",
    [
        {"reads": {"capacity": 0}},
        {"reads": {"refillPerSecond": -1}},
        {"reads": {"burst": 5}},
        {"enabled": "yes"},
        {"globalMultiplier": -1},
        {"tenant": {}},
    ],
)
def test_bad_throttling_settings_are_refused(rg: Sandbox, bad: dict[str, Any]) -> None:
    response = requests.post(
        f"{rg.url}/_armsim/config", json={"throttling": bad}, verify=str(rg.ca_path), timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidControlRequest"


def test_statistics_count_the_throttled_requests_apart_from_injected_ones(rg: Sandbox) -> None:
    rg.configure(throttling=slow(1))
    rg.reset_stats()
    call(rg, "GET", group(rg.subscription))
    call(rg, "GET", group(rg.subscription))
    call(rg, "PUT", group(rg.subscription), body=PUT_RG)
    call(rg, "PUT", group(rg.subscription), body=PUT_RG)
    call(rg, "PUT", group(rg.subscription), body=PUT_RG)
    stats = rg.stats(log=True)
    assert stats["throttled"] == {"total": 3, "reads": 1, "writes": 2}
    assert stats["byStatus"] == {"200": 2, "429": 3}
    arm_log = [e for e in stats["log"] if not e["path"].startswith("/_armsim")]
    assert [e.get("throttled") for e in arm_log] == [None, "reads", None, "writes", "writes"]
