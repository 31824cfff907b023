"""The admin API (run a non-HTTP function once, host status) and timer triggers."""

import json
import time
from pathlib import Path

import requests
from devhost_support import FUNCTION_KEY, MASTER_KEY, Journal, StartHost, write_app

from devhost import Host

ADMIN = {"x-functions-key": MASTER_KEY}


def test_admin_runs_a_timer_function_in_the_background(
    host: Host, http: requests.Session, journal: Journal
) -> None:
    response = http.post(f"{host.url}/admin/functions/tick", headers=ADMIN, json={"input": ""})
    assert response.status_code == 202
    assert journal.wait_for("tick", 1, timeout=5) == [{"past_due": False}]


def test_admin_runs_an_event_grid_function_with_the_input_as_one_event(
    host: Host, http: requests.Session, journal: Journal
) -> None:
    one_event = {"id": "e-1", "subject": "/vm/1", "eventType": "T", "data": {"a": 1}, "dataVersion": "1"}
    response = http.post(
        f"{host.url}/admin/functions/on_event", headers=ADMIN, json={"input": json.dumps(one_event)}
    )
    assert response.status_code == 202
    [entry] = journal.wait_for("on_event", 1, timeout=5)
    assert (entry["id"], entry["subject"], entry["data"]) == ("e-1", "/vm/1", {"a": 1})


def test_admin_run_refusals(host: Host, http: requests.Session, journal: Journal) -> None:
    url = f"{host.url}/admin/functions"
    assert http.post(f"{url}/tick", json={"input": ""}).status_code == 401
    assert http.post(f"{url}/tick", headers={"x-functions-key": FUNCTION_KEY}, json={}).status_code == 401
    assert http.post(f"{url}/nope", headers=ADMIN, json={}).status_code == 404
    assert http.post(f"{url}/hello", headers=ADMIN, json={}).status_code == 400  # HTTP: call its URL
    bad_event = http.post(f"{url}/on_event", headers=ADMIN, json={"input": "not json"})
    assert bad_event.status_code == 400
    assert http.post(f"{url}/on_work", headers=ADMIN, json={"input": "x"}).status_code == 404  # disabled
    time.sleep(0.2)
    assert journal.entries("tick") == []
    assert journal.entries("on_event") == []


def test_host_status_and_function_list(host: Host, http: requests.Session) -> None:
    assert http.get(f"{host.url}/admin/host/status").status_code == 401
    assert http.get(f"{host.url}/admin/host/ping").status_code == 200  # anonymous, for readiness checks
    status = http.get(f"{host.url}/admin/host/status", headers=ADMIN)
    assert status.status_code == 200
    document = status.json()
    assert document["state"] == "Running"
    assert {"hello", "secure", "on_event", "tick", "on_startup"} <= set(document["functions"])
    assert "on_work" not in document["functions"]  # disabled
    listing = http.get(f"{host.url}/admin/functions", headers=ADMIN).json()
    by_name = {entry["name"]: entry for entry in listing}
    assert by_name["tick"]["trigger"] == "timerTrigger"
    assert by_name["tick"]["bindings"][0]["schedule"] == "%TICK_SCHEDULE%"
    assert by_name["on_work"]["isDisabled"] is True
    assert by_name["on_work"]["bindings"][1] == {
        "direction": "OUT",
        "type": "queue",
        "name": "out",
        "queueName": "results",
        "connection": "AzureWebJobsStorage",
    }


def test_run_on_startup(host: Host, journal: Journal) -> None:
    assert journal.wait_for("on_startup", 1, timeout=5) == [{"past_due": False}]


def test_timer_runs_on_its_schedule_from_the_setting(start_host: StartHost, journal: Journal) -> None:
    start_host(settings={"TICK_SCHEDULE": "* * * * * *"})  # every second
    entries = journal.wait_for("tick", 2, timeout=5)
    assert all(entry == {"past_due": False} for entry in entries)


def test_timer_retry_policy(tmp_path: Path, start_host: StartHost) -> None:
    attempts = tmp_path / "attempts.txt"
    code = (
        "import azure.functions as func\n\napp = func.FunctionApp()\n\n"
        "@app.timer_trigger(arg_name='timer', schedule='0 0 0 1 1 *', run_on_startup=True)\n"
        "@app.retry(strategy='fixed_delay', max_retry_count='3', delay_interval='00:00:00.100')\n"
        "def flaky(timer: func.TimerRequest, context: func.Context) -> None:\n"
        "    retry = context.retry_context\n"
        f"    with open({str(attempts)!r}, 'a') as f:\n"
        "        f.write(f'{retry.retry_count}/{retry.max_retry_count}\\n')\n"
        "    if retry.retry_count < 2:\n"
        "        raise RuntimeError('not yet')\n"
    )
    start_host(write_app(tmp_path / "app", code, values={}))

    def recorded() -> list[str]:
        return attempts.read_text().split() if attempts.exists() else []

    deadline = time.monotonic() + 5
    while recorded() != ["0/3", "1/3", "2/3"]:
        assert time.monotonic() < deadline, recorded()
        time.sleep(0.05)
    time.sleep(0.3)
    assert recorded() == ["0/3", "1/3", "2/3"]  # no retry after the success
