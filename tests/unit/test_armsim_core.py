"""armsim's core pieces without a server: bearer-token checks, the clock, paging and $filter."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from collections.abc import Callable

import pytest

from armsim.backup.models import filter_time
from armsim.core.auth import ARM_AUDIENCES, check_bearer, issue_token, make_token
from armsim.core.clock import SimClock, iso, parse_iso
from armsim.core.errors import ArmError
from armsim.core.http import Request
from armsim.core.paging import newest_first, paged, parse_filter


def bearer(audience: str, expires_in: float = 3600) -> str:
    return f"Bearer {make_token(audience, time.time() + expires_in)}"


# -- tokens --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "audience",
    [
        "https://management.azure.com",
        "https://management.azure.com/",
        "https://management.core.windows.net/",
    ],
)
def test_arm_audiences_with_or_without_trailing_slash_are_accepted(audience: str) -> None:
    assert check_bearer(bearer(audience), ARM_AUDIENCES)["aud"] == audience


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "AuthenticationFailed"),
        ("Basic dXNlcjpwYXNz", "AuthenticationFailed"),
        ("Bearer not-a-jwt", "InvalidAuthenticationToken"),
        ("expired", "ExpiredAuthenticationToken"),
        ("vault", "InvalidAuthenticationTokenAudience"),
    ],
)
def test_bad_tokens_get_arms_401_codes(authorization: str | None, code: str) -> None:
    if authorization == "expired":
        authorization = bearer("https://management.azure.com", expires_in=-5)
    elif authorization == "vault":
        authorization = bearer("https://vault.azure.net")
    with pytest.raises(ArmError) as err:
        check_bearer(authorization, ARM_AUDIENCES)
    assert (err.value.status, err.value.code) == (401, code)
    assert err.value.headers["WWW-Authenticate"].startswith(
        'Bearer authorization_uri="https://login.windows.net/"'
    )


def test_expired_token_message_uses_arms_time_format() -> None:
    expired_at = dt.datetime(2023, 3, 21, 12, 44, 36, tzinfo=dt.UTC).timestamp()
    with pytest.raises(ArmError) as err:
        check_bearer(f"Bearer {make_token('https://management.azure.com', expired_at)}", ARM_AUDIENCES)
    assert "'3/21/2023 12:44:36 PM' is earlier than current UTC time" in err.value.message


def test_issued_tokens_are_for_the_resource_without_default_suffix() -> None:
    answer = issue_token("https://management.azure.com/.default")
    claims = check_bearer(f"Bearer {answer['access_token']}", ARM_AUDIENCES)
    assert claims["aud"] == "https://management.azure.com"
    assert int(answer["expires_on"]) == claims["exp"]


# -- the clock -----------------------------------------------------------------------------------
def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = SimClock()
    clock.set_speed(0)
    before = clock.now_ts()
    time.sleep(0.02)
    assert clock.now_ts() == before
    clock.advance(3600)
    assert clock.now_ts() == pytest.approx(before + 3600)


def test_clock_never_goes_back() -> None:
    clock = SimClock()
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(dt.datetime(2001, 1, 1, tzinfo=dt.UTC))


def test_sped_up_clock_runs_faster_than_real_time() -> None:
    clock = SimClock()
    clock.set_speed(1000)
    before = clock.now_ts()
    time.sleep(0.02)
    assert clock.now_ts() - before >= 10


def test_iso_has_seven_fraction_digits_and_parses_back() -> None:
    when = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC)
    text = iso(when)
    assert text == "2026-05-04T03:02:01.1234560Z"
    assert parse_iso(text) == when


# -- paging and filters --------------------------------------------------------------------------
def request(query: dict[str, str]) -> Request:
    return Request("GET", "/subscriptions/s/things", query, {}, b"", "https://127.0.0.1:8443")


def things(*names: str) -> list[dict[str, str]]:
    return [{"id": f"/subscriptions/s/things/{name}", "name": name} for name in names]


def follow(items: Callable[[int], list[dict[str, str]]], page_size: int) -> list[str]:
    """Every name listed by following nextLinks; `items(n)` is the list as it is when page n is asked."""
    names: list[str] = []
    query = {"api-version": "2025-04-01"}
    for n in range(100):
        body = paged(request(query), items(n), page_size).body
        names += [item["name"] for item in body["value"]]
        if "nextLink" not in body:
            return names
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(body["nextLink"]).query))
    raise AssertionError("the pages never ended")


def test_pages_link_to_the_rest_with_a_skip_token() -> None:
    first = paged(request({"api-version": "2025-04-01", "statusonly": "true"}), things("c", "a", "b"), 2).body
    assert [item["name"] for item in first["value"]] == ["a", "b"]  # by id
    assert first["nextLink"].startswith(
        "https://127.0.0.1:8443/subscriptions/s/things?api-version=2025-04-01"
    )
    assert "statusonly=true" in first["nextLink"] and "%24skiptoken=" in first["nextLink"]
    assert follow(lambda n: things("c", "a", "b"), 2) == ["a", "b", "c"]
    assert follow(lambda n: things("a", "b"), 2) == ["a", "b"]  # a full last page links nowhere


def test_paging_lists_every_item_once_while_items_come_and_go() -> None:
    # Between pages, items are added before and after the cursor and others removed: every item that
    # is there throughout is listed exactly once (an offset token skipped or repeated them).
    base = [f"vm{i:02}" for i in range(0, 40, 2)]

    def changing(n: int) -> list[dict[str, str]]:
        added = [f"vm{i:02}" for i in range(1, 2 * n + 1, 2)]  # odd names, before and after the cursor
        removed = {f"vm{i:02}" for i in range(30, 30 + 2 * n, 2) if i < 30 + 2 * n - 2}
        return things(*[name for name in base + added if name not in removed])

    listed = follow(changing, 3)
    assert len(listed) == len(set(listed)), "an item was listed twice"
    always = [name for name in base if name < "vm30"]
    assert all(name in listed for name in always), "an item that was there throughout was skipped"
    assert listed == sorted(listed)


def test_newest_first_lists_page_by_time_and_id() -> None:
    jobs = [{"id": f"job{i}", "start": float(i // 2)} for i in range(7)]
    order = newest_first("start")
    first = paged(request({}), jobs, 3, position=order).body
    assert [job["id"] for job in first["value"]] == ["job6", "job4", "job5"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first["nextLink"]).query))
    jobs.append({"id": "job7", "start": 9.0})  # a new job: it sorts before the cursor, not listed again
    second = paged(request(query), jobs, 3, position=order).body
    assert [job["id"] for job in second["value"]] == ["job2", "job3", "job0"]


@pytest.mark.parametrize("token", ["x", "4", "bm90IGpzb24", "W10", "WzFd"])
def test_bad_skip_token_is_refused(token: str) -> None:
    # Not base64, an old offset, not JSON, an empty position, a position of another kind of list.
    with pytest.raises(ArmError) as err:
        paged(request({"$skiptoken": token}), things("a", "b"), 1)
    assert err.value.status == 400 and err.value.code == "InvalidSkipToken"


def test_filter_clauses_are_parsed_case_insensitively_with_quotes() -> None:
    parsed = parse_filter(
        "BackupManagementType eq 'AzureIaasVM' and friendlyName eq 'o''brien'",
        ["backupManagementType", "friendlyName"],
    )
    assert parsed == {"backupManagementType": "AzureIaasVM", "friendlyName": "o'brien"}


@pytest.mark.parametrize("expression", ["status ne 'Failed'", "colour eq 'blue'", "status eq Failed"])
def test_unsupported_filters_are_refused(expression: str) -> None:
    with pytest.raises(ArmError) as err:
        parse_filter(expression, ["status"])
    assert (err.value.status, err.value.code) == (400, "BMSUserErrorInvalidFilter")


@pytest.mark.parametrize(
    "text",
    ["2026-03-01 01:30:00 PM", "2026-03-01 13:30:00", "2026-03-01T13:30:00Z", "2026-03-01T13:30:00.0000000Z"],
)
def test_job_filter_times_in_azures_formats(text: str) -> None:
    assert filter_time(text) == dt.datetime(2026, 3, 1, 13, 30, tzinfo=dt.UTC).timestamp()
