"""HTTP triggers served at /api/<route> with the Functions host's auth levels."""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from devhost_support import FUNCTION_KEY, MASTER_KEY, Journal, StartHost

from devhost import Host


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({}, {}, 401),
        ({"x-functions-key": "wrong"}, {}, 401),
        ({}, {"code": "wrong"}, 401),
        ({"x-functions-key": FUNCTION_KEY}, {}, 200),
        ({}, {"code": FUNCTION_KEY}, 200),
        ({"x-functions-key": MASTER_KEY}, {}, 200),
    ],
    ids=["no key", "wrong header key", "wrong code", "header key", "code", "master key"],
)
def test_function_auth_level_needs_the_function_key(
    host: Host, http: requests.Session, headers: dict[str, str], query: dict[str, str], status: int
) -> None:
    response = http.get(f"{host.url}/api/secure", headers=headers, params=query)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"ok": True}
        assert response.headers["Content-Type"] == "application/json"
    else:
        assert response.content == b""


def test_admin_auth_level_needs_the_master_key(host: Host, http: requests.Session) -> None:
    url = f"{host.url}/api/admin-only"
    assert http.get(url, headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
    response = http.get(url, headers={"x-functions-key": MASTER_KEY})
    assert response.status_code == 200
    assert response.text == "admin"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_anonymous_function_needs_no_key_and_gets_the_query(host: Host, http: requests.Session) -> None:
    response = http.get(f"{host.url}/api/hello", params={"name": "Ada"})
    assert response.status_code == 200
    assert response.text == "hello Ada"


def test_route_params_method_headers_body_and_response_shape(host: Host, http: requests.Session) -> None:
    response = http.post(
        f"{host.url}/api/items/42?color=red", data=b"payload", headers={"X-Sample": "present"}
    )
    assert response.status_code == 201
    assert response.headers["X-Item"] == "yes"
    assert response.json() == {
        "method": "POST",
        "id": "42",
        "params": {"color": "red"},
        "header": "present",
        "body": "payload",
        "url": f"{host.url}/api/items/42?color=red",
    }


def test_route_matching(host: Host, http: requests.Session) -> None:
    assert http.get(f"{host.url}/api/items/special").text == "the literal route wins"
    assert http.get(f"{host.url}/api/ITEMS/a%20b").json()["id"] == "a b"  # routes ignore case
    assert http.delete(f"{host.url}/api/items/42").status_code == 404  # not a registered method
    assert http.get(f"{host.url}/api/nothing-here").status_code == 404
    assert http.get(f"{host.url}/hello").status_code == 404  # outside the route prefix


def test_exception_gives_500_without_detail_and_logs_the_traceback(
    host: Host, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = http.get(f"{host.url}/api/boom")
    assert response.status_code == 500
    assert b"secret detail" not in response.content
    assert b"Traceback" not in response.content
    failed = [r for r in caplog.records if "Executed 'Functions.boom' (Failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None
    assert "secret detail 42" in str(failed[0].exc_info[1])


def test_each_invocation_is_logged_like_the_host(
    host: Host, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost"):
        http.get(f"{host.url}/api/hello")
    messages = [r.getMessage() for r in caplog.records]
    executed = [m for m in messages if m.startswith("Executed 'Functions.hello' (Succeeded, Id=")]
    assert len(executed) == 1
    assert executed[0].endswith("ms)")


def test_requests_are_served_concurrently(host: Host) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: requests.get(f"{host.url}/api/slow", timeout=10), range(4)))
    elapsed = time.monotonic() - started
    assert [r.text for r in responses] == ["done"] * 4
    assert elapsed < 1.5, f"4 requests of 0.5 s took {elapsed:.2f} s: not concurrent"


def test_request_body_limit(start_host: StartHost, journal: Journal, http: requests.Session) -> None:
    host = start_host(max_body_bytes=1000)
    assert http.post(f"{host.url}/api/items/1", data=b"x" * 1000).status_code == 201
    response = http.post(f"{host.url}/api/items/1", data=b"x" * 1001)
    assert response.status_code == 413


def test_environment_wins_over_local_settings(
    start_host: StartHost, journal: Journal, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREETING", "from the environment")
    host = start_host()
    assert http.get(f"{host.url}/api/greeting").text == "from the environment"


def test_local_settings_become_environment_for_the_app_only_while_running(
    start_host: StartHost, journal: Journal, http: requests.Session
) -> None:
    host = start_host()
    assert http.get(f"{host.url}/api/greeting").text == "from local.settings.json"
    host.stop()
    assert "GREETING" not in os.environ


def test_stop_lets_a_running_request_finish_and_then_refuses_connections(
    start_host: StartHost, journal: Journal
) -> None:
    host = start_host()
    url = host.url
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, f"{url}/api/slow", timeout=10)
        time.sleep(0.2)  # the function is running
        host.stop()
        assert pending.result().text == "done"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/hello", timeout=2)
