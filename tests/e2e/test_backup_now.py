"""Backup now, end to end on the local stack: the HTTP API as a ticketing tool calls it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from autopilot.kernel.signing import sign
from tests.e2e.conftest import E2E, app_settings, wait_for

GROUP = "rg-e2e-bn"


def vm_id(e2e: E2E, name: str) -> str:
    return f"/subscriptions/{e2e.stack.values['AUTOPILOT_SUBSCRIPTIONS']}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"


@pytest.fixture(scope="module", autouse=True)
def daily_cap_of_nine(e2e: E2E) -> Iterator[None]:
    """The tests of this module share one VM for many backups: Azure's own limit of 9 a day, not the
    default cap of 4 (test_the_daily_cap_counts_the_backups_the_autopilot_started sets 4 again)."""
    with app_settings(AUTOPILOT_BACKUP_DAILY_CAP="9"):
        yield


@pytest.fixture(scope="module")
def protected_vm(e2e: E2E) -> str:
    e2e.create_vm(GROUP, "bn-gold-1", "westeurope", {"backup-policy": "gold"})
    assert wait_for(lambda: e2e.item("rsv-autopilot-weu", GROUP, "bn-gold-1"), timeout=30)
    # Let the first backup (started by protect-on-create) finish, so it does not count as running.
    time.sleep(3.5)
    return vm_id(e2e, "bn-gold-1")


def post(e2e: E2E, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return e2e.app("POST", "/api/backups", data=data, **kwargs)


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (
        body["status"] == status
        and body["detail"]
        and body["type"].startswith("urn:backup-autopilot:problem:")
    )
    return body


def test_backup_now_completes_with_both_phases_and_a_recovery_point(e2e: E2E, protected_vm: str) -> None:
    response = post(
        e2e, {"vm": protected_vm, "requestId": "CHG-1001", "retainUntil": "2030-01-31", "reason": "patching"}
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["Location"] == f"/api/backups/{accepted['id']}"
    assert accepted["jobId"] and accepted["retainUntil"] == "2030-01-31T23:59:59Z"
    done = wait_for(
        lambda: (s := e2e.app("GET", response.headers["Location"]).json())["status"] != "InProgress" and s,
        timeout=30,
    )
    assert done["status"] == "Completed", done
    assert done["phases"] == [
        {"name": "Take Snapshot", "status": "Completed"},
        {"name": "Transfer data to vault", "status": "Completed"},
    ]
    assert done["recoveryPoint"]


def test_a_failed_transfer_shows_completed_with_warnings_and_what_it_means(
    e2e: E2E, protected_vm: str
) -> None:
    e2e.control(
        "POST", "/jobs/outcomes", {"vm": protected_vm, "outcome": "CompletedWithWarnings", "count": 1}
    )
    response = post(e2e, {"vm": protected_vm, "requestId": "CHG-1002"})
    assert response.status_code == 202, response.text
    done = wait_for(
        lambda: (s := e2e.app("GET", response.headers["Location"]).json())["status"] != "InProgress" and s,
        timeout=30,
    )
    assert done["status"] == "CompletedWithWarnings"
    assert done["phases"][1] == {"name": "Transfer data to vault", "status": "Failed"}
    assert "copying it to the vault failed" in done["meaning"]
    assert done["error"]["class"] == "transient"


def test_twenty_concurrent_identical_requests_start_one_backup(e2e: E2E, protected_vm: str) -> None:
    wait_for(
        lambda: (
            not [
                j
                for j in e2e.backup.backup_jobs.list("rsv-autopilot-weu", "rg-autopilot-backup")
                if j.properties.status == "InProgress"
            ]
        ),
        timeout=30,
    )
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    body = {"vm": protected_vm, "requestId": "CHG-2000", "retainUntil": "2030-06-30"}
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: post(e2e, body), range(20)))
    assert [r.status_code for r in responses] == [202] * 20
    assert len({r.json()["id"] for r in responses}) == 1
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1


def no_backup_running(e2e: E2E) -> bool:
    jobs = e2e.backup.backup_jobs.list("rsv-autopilot-weu", "rg-autopilot-backup")
    return not [j for j in jobs if j.properties.status == "InProgress"]


@contextlib.contextmanager
def failing(e2e: E2E, operation: str) -> Iterator[None]:
    """Every `operation` request answers 500, and the app retries once (as after azure-core's
    retries ran out)."""
    with app_settings(AUTOPILOT_RETRY_TOTAL="1", AUTOPILOT_RETRY_BACKOFF_MAX="1"):
        e2e.control("POST", "/faults", {"rate": 1.0, "kinds": {"500": 1}, "operations": [operation]})
        try:
            yield
        finally:
            e2e.control("POST", "/faults", {"rate": 0.0})


def test_azure_failing_while_a_backup_is_read_is_a_503_to_retry(e2e: E2E, protected_vm: str) -> None:
    accepted = post(e2e, {"vm": protected_vm, "requestId": "CHG-1501", "retainUntil": "2030-01-31"})
    assert accepted.status_code == 202, accepted.text
    with failing(e2e, "JobDetails_Get"):
        busy = e2e.app("GET", accepted.headers["Location"])
    assert problem(busy, 503)["type"].endswith(":azure-busy")
    assert busy.headers["Retry-After"] == "60"
    assert e2e.app("GET", accepted.headers["Location"]).status_code == 200


def own_vm(e2e: E2E, name: str) -> str:
    """A protected VM of its own (its daily cap untouched by the other tests), first backup done."""
    e2e.create_vm(GROUP, name, "westeurope", {"backup-policy": "gold"})
    assert wait_for(lambda: e2e.item("rsv-autopilot-weu", GROUP, name), timeout=30)
    assert wait_for(lambda: no_backup_running(e2e), timeout=30)
    return vm_id(e2e, name)


def finished(e2e: E2E, location: str) -> dict[str, Any]:
    done = wait_for(
        lambda: (
            (s := e2e.app("GET", location).json())["status"]
            not in ("Accepted", "Waiting", "Triggering", "InProgress")
            and s
        ),
        timeout=30,
    )
    assert done, f"{location} did not finish"
    return done


def test_the_daily_cap_counts_the_backups_the_autopilot_started(e2e: E2E) -> None:
    """Azure's jobs do not say who started them: the cap counts the on-demand backups the autopilot
    itself started today (here: the first backup after protection, then three backups now)."""
    vm = own_vm(e2e, "bn-cap-1")
    with app_settings(AUTOPILOT_BACKUP_DAILY_CAP="4"):
        cap_of_four(e2e, vm)


def cap_of_four(e2e: E2E, vm: str) -> None:
    for n in range(3):
        accepted = post(e2e, {"vm": vm, "requestId": f"CAP-{n}", "retainUntil": "2030-02-28"})
        assert accepted.status_code == 202, accepted.text
        finished(e2e, accepted.headers["Location"])
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    refused = problem(post(e2e, {"vm": vm, "requestId": "CAP-3"}), 429)
    assert refused["type"].endswith(":daily-cap-reached")
    assert "4 on-demand backups started by the autopilot today" in refused["detail"]
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) == before


def test_a_finished_backup_reports_its_recovery_point_and_the_expiry_azure_holds(e2e: E2E) -> None:
    vm = own_vm(e2e, "bn-rp-1")
    accepted = post(e2e, {"vm": vm, "requestId": "RP-1", "retainUntil": "2031-05-31T18:00:00Z"})
    assert accepted.status_code == 202, accepted.text
    done = finished(e2e, accepted.headers["Location"])
    assert done["status"] == "Completed", done
    item = e2e.item("rsv-autopilot-weu", GROUP, "bn-rp-1")
    assert item is not None
    container = item.id.split("/protectionContainers/")[1].split("/")[0]
    points = list(
        e2e.backup.recovery_points.list(
            "rsv-autopilot-weu", "rg-autopilot-backup", "Azure", container, item.name
        )
    )
    made = [p for p in points if p.name == done["recoveryPoint"]]
    assert len(made) == 1, (done, [p.name for p in points])
    assert done["recoveryPointTime"] == made[0].properties.recovery_point_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert done["recoveryPointExpiry"] == "2031-05-31T18:00:00Z"


def test_azure_failing_after_the_trigger_keeps_the_request_and_its_retry_starts_no_second_backup(
    e2e: E2E,
) -> None:
    vm = own_vm(e2e, "bn-lost-1")
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    body = {"vm": vm, "requestId": "CHG-1502", "retainUntil": "2030-01-31"}
    with failing(e2e, "JobDetails_Get"):  # read once the backup is triggered
        first = post(e2e, body)
    assert problem(first, 503)["type"].endswith(":azure-busy")
    retry = post(e2e, body)
    assert retry.status_code == 202, retry.text
    found = wait_for(lambda: (s := e2e.app("GET", retry.headers["Location"]).json())["jobId"] and s)
    assert found and found["status"] in ("InProgress", "Completed"), found
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1


def test_a_running_backup_of_a_namesake_in_another_resource_group_is_not_joined(e2e: E2E) -> None:
    """A job list names a job's VM only by its name: the running backup of 'bn-twin' in another
    resource group of the same vault is not this VM's, and a backup of this one starts."""
    other = f"/subscriptions/{e2e.stack.values['AUTOPILOT_SUBSCRIPTIONS']}/resourceGroups/rg-e2e-bn-twin/providers/Microsoft.Compute/virtualMachines/bn-twin"
    e2e.create_vm("rg-e2e-bn-twin", "bn-twin", "westeurope", {"backup-policy": "gold"})
    mine = own_vm(e2e, "bn-twin")
    assert wait_for(lambda: e2e.item("rsv-autopilot-weu", "rg-e2e-bn-twin", "bn-twin"), timeout=30)
    assert wait_for(lambda: no_backup_running(e2e), timeout=30)
    running = post(e2e, {"vm": other, "requestId": "TWIN-OTHER"})
    assert running.status_code == 202 and running.json()["status"] == "InProgress", running.text
    accepted = post(e2e, {"vm": mine, "requestId": "TWIN-MINE"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["jobId"] != running.json()["jobId"]
    job = e2e.backup.job_details.get("rsv-autopilot-weu", "rg-autopilot-backup", accepted.json()["jobId"])
    assert job.properties.container_name.lower().endswith(f"iaasvmcontainerv2;{GROUP};bn-twin")


def in_days(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%d")


def test_a_longer_retention_waits_for_the_running_backup_and_is_never_claimed_before_azure_holds_it(
    e2e: E2E,
) -> None:
    """A request meeting a running backup whose recovery point Azure keeps for less time than asked
    is not told the longer date: it waits, and its own backup starts once the running one ends."""
    vm = own_vm(e2e, "bn-ret-1")
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    short = post(e2e, {"vm": vm, "requestId": "RET-SHORT", "retainUntil": in_days(2)})
    assert short.status_code == 202 and short.json()["status"] == "InProgress", short.text
    running = short.json()["jobId"]
    long = post(e2e, {"vm": vm, "requestId": "RET-LONG", "retainUntil": "2035-12-31"})
    assert long.status_code == 202, long.text
    waiting = long.json()
    assert waiting["status"] == "Waiting" and waiting["waitingFor"] == running and waiting["jobId"] is None
    assert f"keeps its recovery point only until {in_days(2)}T23:59:59Z" in waiting["detail"]
    assert "recoveryPointExpiry" not in waiting
    done = finished(e2e, long.headers["Location"])  # its GETs start the backup once the first ended
    assert done["status"] == "Completed" and done["jobId"] != running, done
    assert done["recoveryPointExpiry"] == "2035-12-31T23:59:59Z"
    first = finished(e2e, short.headers["Location"])
    assert first["recoveryPointExpiry"] == f"{in_days(2)}T23:59:59Z"
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 2


def test_a_waiting_request_is_started_by_the_follow_up_timer(e2e: E2E) -> None:
    vm = own_vm(e2e, "bn-ret-2")
    short = post(e2e, {"vm": vm, "requestId": "RET2-SHORT", "retainUntil": in_days(3)})
    long = post(e2e, {"vm": vm, "requestId": "RET2-LONG", "retainUntil": "2034-06-30"})
    assert long.json()["status"] == "Waiting", long.text
    assert wait_for(lambda: no_backup_running(e2e), timeout=30)
    master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
    response = e2e.app("POST", "/admin/functions/backup_followup", json={"input": ""}, headers=master)
    assert response.status_code == 202
    from autopilot.app import get_autopilot

    def started() -> dict[str, Any] | None:
        row = get_autopilot().state.get_row("backup", long.json()["id"])
        return row if row and row.get("JobId") else None

    row = wait_for(started, timeout=30)
    assert row and row["JobId"] != short.json()["jobId"] and row["Status"] != "Waiting", row


def test_a_shorter_retention_joins_the_running_backup_that_keeps_it_longer(e2e: E2E) -> None:
    vm = own_vm(e2e, "bn-ret-3")
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    long = post(e2e, {"vm": vm, "requestId": "RET3-LONG", "retainUntil": "2033-03-31"})
    short = post(e2e, {"vm": vm, "requestId": "RET3-SHORT", "retainUntil": in_days(5)})
    assert short.json()["status"] == "InProgress" and short.json()["jobId"] == long.json()["jobId"], (
        short.text
    )
    done = finished(e2e, short.headers["Location"])
    assert done["recoveryPointExpiry"] == "2033-03-31T23:59:59Z"  # what Azure holds: longer than asked
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1


def test_concurrent_requests_with_other_ids_join_one_backup(e2e: E2E) -> None:
    vm = own_vm(e2e, "bn-conc-1")
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    with ThreadPoolExecutor(10) as pool:
        responses = list(
            pool.map(
                lambda n: post(e2e, {"vm": vm, "requestId": f"CONC-{n}", "retainUntil": "2030-09-30"}),
                range(10),
            )
        )
    assert [r.status_code for r in responses] == [202] * 10, [
        r.text for r in responses if r.status_code != 202
    ]
    assert len({r.json()["jobId"] for r in responses}) == 1
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1


def test_operation_ids_cannot_be_derived_from_the_ticket_number(e2e: E2E, protected_vm: str) -> None:
    from autopilot.kernel.state import row_key

    accepted = post(e2e, {"vm": protected_vm, "requestId": "GUESS-1001"})
    assert accepted.status_code == 202, accepted.text
    guessed = row_key("backup-request:GUESS-1001")  # what the id was before: a hash of the ticket
    assert accepted.json()["id"] != guessed
    assert e2e.app("GET", f"/api/backups/{guessed}").status_code == 404
    assert e2e.app("GET", accepted.headers["Location"]).status_code == 200


def test_control_characters_of_a_reason_are_escaped_in_the_audit(e2e: E2E) -> None:
    from autopilot.app import get_autopilot

    vm = own_vm(e2e, "bn-ctrl-1")
    reason = "patching\n2026-12-06 INFO audit backup-now: approved by CAB"
    accepted = post(e2e, {"vm": vm, "requestId": "CTRL-1", "reason": reason})
    assert accepted.status_code == 202, accepted.text
    rows = [r for r in get_autopilot().audit.entries() if "request CTRL-1" in str(r.get("Reason", ""))]
    assert rows and all("\n" not in str(r["Reason"]) and "\\x0a" in str(r["Reason"]) for r in rows), rows


def test_a_connection_lost_after_the_trigger_is_a_problem_and_a_later_retry_gets_the_truth(e2e: E2E) -> None:
    """The trigger reaches Azure and starts the backup, but its answer never comes back (armsim's
    'drop' fault): the caller gets a 503 problem, not a bare 500; the same request later finds the
    backup that was started, and no second one is started."""
    vm = own_vm(e2e, "bn-drop-1")
    before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    body = {"vm": vm, "requestId": "DROP-1", "retainUntil": "2031-07-31"}
    with app_settings(AUTOPILOT_RETRY_TOTAL="0"):  # azure-core's own retry would hide the loss
        e2e.control("POST", "/faults", {"rate": 1.0, "kinds": {"drop": 1}, "operations": ["Backups_Trigger"]})
        try:
            lost = post(e2e, body)
        finally:
            e2e.control("POST", "/faults", {"rate": 0.0})
    assert problem(lost, 503)["type"].endswith(":azure-busy"), lost.text
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1
    retry = post(e2e, body)
    assert retry.status_code == 202, retry.text
    found = wait_for(
        lambda: (s := e2e.app("GET", retry.headers["Location"]).json())["jobId"] and s, timeout=30
    )
    assert found and found["status"] in ("InProgress", "Completed"), found
    done = finished(e2e, retry.headers["Location"])
    assert done["recoveryPointExpiry"] == "2031-07-31T23:59:59Z", done
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) - before == 1


def test_a_vm_whose_agent_has_not_reported_is_refused_with_when_to_retry(e2e: E2E) -> None:
    """A VM created moments ago reports its agent Not Ready (recorded); a backup would fail, so the
    request is refused with a 409 that says why and a Retry-After, and starts nothing."""
    e2e.control("POST", "/config", {"agentReadySeconds": 3600})
    try:
        e2e.create_vm(GROUP, "bn-new-agent", "westeurope", {"backup-policy": "gold"})
        assert wait_for(lambda: e2e.item("rsv-autopilot-weu", GROUP, "bn-new-agent"), timeout=30)
        before = e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
        refused = problem(post(e2e, {"vm": vm_id(e2e, "bn-new-agent"), "requestId": "AGENT-1"}), 409)
    finally:
        e2e.control("POST", "/config", {"agentReadySeconds": 0})
    assert refused["type"].endswith(":vm-agent-not-ready") and "retry in a minute" in refused["detail"]
    assert e2e.control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0) == before


def test_the_same_request_id_with_another_body_is_refused(e2e: E2E, protected_vm: str) -> None:
    first = post(e2e, {"vm": protected_vm, "requestId": "CHG-3000", "retainUntil": "2031-01-01"})
    assert first.status_code == 202, first.text
    body = problem(post(e2e, {"vm": protected_vm, "requestId": "CHG-3000", "retainUntil": "2032-01-01"}), 409)
    assert body["field"] == "requestId"


def test_no_key_and_a_wrong_key_are_401(e2e: E2E, protected_vm: str) -> None:
    assert e2e.stack.host is not None
    url = f"{e2e.stack.host.url}/api/backups"
    assert requests.post(url, json={"vm": protected_vm, "requestId": "X"}, timeout=10).status_code == 401
    assert (
        requests.post(
            url, json={"vm": protected_vm, "requestId": "X"}, headers={"x-functions-key": "wrong"}, timeout=10
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"requestId": "B-1"}, 400, "subscriptionId"),
        ({"vm": "/subscriptions/not-a-vm", "requestId": "B-2"}, 400, "vm"),
        ({"vm": "{vm}", "requestId": "B-3", "retainUntil": "2020-01-01"}, 400, "retainUntil"),
        ({"vm": "{vm}", "requestId": "B-4", "retainUntil": "2199-01-01"}, 400, "retainUntil"),
        ({"vm": "{vm}", "requestId": "B-5", "retainUntil": 20300101}, 400, "retainUntil"),
        ({"vm": "{vm}", "requestId": 12}, 400, "requestId"),
        ({"vm": "{vm}", "requestId": "B-7", "protectIfNeeded": "yes"}, 400, "protectIfNeeded"),
        ({"vm": "{vm}", "requestId": "B-8", "extra": 1}, 400, "extra"),
        ({"vm": "{vm}", "requestId": "B-9", "callbackUrl": "https://127.0.0.1/hook"}, 403, "callbackUrl"),
        (
            {"vm": "{vm}", "requestId": "B-10", "callbackUrl": "http://169.254.169.254/latest/meta-data"},
            403,
            "callbackUrl",
        ),
        ({"vm": "{vm}", "requestId": "B-11", "callbackUrl": "https://10.0.0.1/hook"}, 403, "callbackUrl"),
    ],
)
def test_bad_input_is_refused_with_the_field_named(
    e2e: E2E, protected_vm: str, body: dict[str, Any], status: int, field: str
) -> None:
    body = {k: (protected_vm if v == "{vm}" else v) for k, v in body.items()}
    assert problem(post(e2e, body), status).get("field") == field


def test_malformed_json_and_oversized_bodies(e2e: E2E) -> None:
    problem(post(e2e, b"{not json"), 400)
    problem(post(e2e, b"[1, 2]"), 400)
    problem(post(e2e, b"x" * 17_000), 413)


def test_unknown_vm_outside_scope_and_unprotected(e2e: E2E) -> None:
    problem(post(e2e, {"vm": vm_id(e2e, "does-not-exist"), "requestId": "S-1"}), 404)
    foreign = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x"
    problem(post(e2e, {"vm": foreign, "requestId": "S-2"}), 403)
    e2e.create_vm(GROUP, "bn-untagged", "westeurope", {})
    body = problem(post(e2e, {"vm": vm_id(e2e, "bn-untagged"), "requestId": "S-3"}), 409)
    assert "not protected" in body["detail"]
    # The audit table has the refusal of the out-of-scope VM.
    from autopilot.app import get_autopilot

    assert any(
        r["Action"] == "backup-now" and "scopes" in r["Outcome"] for r in get_autopilot().audit.entries()
    )


def test_get_of_an_unknown_backup_is_404(e2e: E2E) -> None:
    problem(e2e.app("GET", "/api/backups/" + "0" * 64), 404)
    problem(e2e.app("GET", "/api/backups/..%2F..%2Fetc"), 404)


def test_openapi_document_is_served_anonymously_and_names_the_routes(e2e: E2E) -> None:
    assert e2e.stack.host is not None
    document = requests.get(f"{e2e.stack.host.url}/api/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/backups", "/backups/{id}", "/drills", "/drills/{id}", "/openapi.json"}


@pytest.fixture
def signing(e2e: E2E) -> Iterator[str]:
    """Turn the signature requirement on (as the operator would with AUTOPILOT_HMAC_SECRET)."""
    secret = "test-signing-secret-for-e2e"
    with app_settings(AUTOPILOT_HMAC_SECRET=secret):
        yield secret


def test_signed_requests(e2e: E2E, protected_vm: str, signing: str) -> None:
    body = json.dumps({"vm": protected_vm, "requestId": "SIG-1", "retainUntil": "2030-03-01"}).encode()
    timestamp = str(int(time.time()))
    good = {"X-Autopilot-Timestamp": timestamp, "X-Autopilot-Signature": sign(signing, timestamp, body)}
    problem(post(e2e, body), 401)  # not signed
    problem(
        post(e2e, body, headers={**good, "X-Autopilot-Signature": "sha256=" + "0" * 64}), 401
    )  # bad signature
    old = str(int(time.time()) - 600)
    problem(
        post(
            e2e,
            body,
            headers={"X-Autopilot-Timestamp": old, "X-Autopilot-Signature": sign(signing, old, body)},
        ),
        401,
    )
    assert post(e2e, body, headers=good).status_code == 202
    replayed = problem(post(e2e, body, headers=good), 401)
    assert "already received" in replayed["detail"]


def test_a_callback_reports_the_result_signed(e2e: E2E, protected_vm: str) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "callback-secret-for-e2e"
    try:
        with app_settings(
            AUTOPILOT_CALLBACK_ALLOWED_HOSTS="127.0.0.1/32",
            AUTOPILOT_CALLBACK_HTTP_ALLOWED="127.0.0.1/32",
            AUTOPILOT_HMAC_SECRET=secret,
        ):
            body = json.dumps(
                {
                    "vm": protected_vm,
                    "requestId": "CB-1",
                    "callbackUrl": f"http://127.0.0.1:{server.server_port}/hook",
                }
            ).encode()
            timestamp = str(int(time.time()))
            headers = {
                "X-Autopilot-Timestamp": timestamp,
                "X-Autopilot-Signature": sign(secret, timestamp, body),
            }
            accepted = post(e2e, body, headers=headers)
            assert accepted.status_code == 202, accepted.text
            wait_for(
                lambda: e2e.app("GET", accepted.headers["Location"]).json()["status"] != "InProgress",
                timeout=30,
            )
            master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
            assert (
                e2e.app(
                    "POST", "/admin/functions/backup_followup", json={"input": ""}, headers=master
                ).status_code
                == 202
            )
            assert wait_for(lambda: received, timeout=20)
    finally:
        server.shutdown()
    headers, payload = received[0]
    result = json.loads(payload)
    assert result["id"] == accepted.json()["id"] and result["status"] == "Completed"
    assert headers["X-Autopilot-Signature"] == sign(secret, headers["X-Autopilot-Timestamp"], payload)


def test_a_callback_that_keeps_failing_is_given_up_audited_and_announced(e2e: E2E) -> None:
    from autopilot.app import get_autopilot
    from autopilot.backup_now.callbacks import MAX_ATTEMPTS
    from autopilot.backup_now.request import KIND

    answered: list[int] = []

    class Broken(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            answered.append(503)
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    # A VM of its own: the tests above use up bn-gold-1's on-demand backups for the day.
    e2e.create_vm(GROUP, "bn-hook-1", "westeurope", {"backup-policy": "gold"})
    assert wait_for(lambda: e2e.item("rsv-autopilot-weu", GROUP, "bn-hook-1"), timeout=30)
    time.sleep(3.5)  # the first backup (protect-on-create's) ends, as for bn-gold-1
    vm = vm_id(e2e, "bn-hook-1")
    server = HTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}

    def follow_up() -> None:
        started = e2e.app("POST", "/admin/functions/backup_followup", json={"input": ""}, headers=master)
        assert started.status_code == 202

    try:
        with app_settings(
            AUTOPILOT_CALLBACK_ALLOWED_HOSTS="127.0.0.1/32", AUTOPILOT_CALLBACK_HTTP_ALLOWED="127.0.0.1/32"
        ):
            body = {
                "vm": vm,
                "requestId": "CB-FAIL-1",
                "callbackUrl": f"http://127.0.0.1:{server.server_port}/h",
            }
            accepted = post(e2e, body)
            assert accepted.status_code == 202, accepted.text
            operation = accepted.json()["id"]
            wait_for(
                lambda: e2e.app("GET", accepted.headers["Location"]).json()["status"] != "InProgress", 30
            )
            state = get_autopilot().state
            follow_up()
            # The first attempt fails (503) and waits 30 s for the next one.
            first = wait_for(
                lambda: (r := state.get_row(KIND, operation)) and r.get("CallbackAttempts") and r
            )
            assert first and first["CallbackAttempts"] == 1 and first["CallbackStatus"] == "pending"
            assert first["NextCallbackAt"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
            # Skip ahead to the last attempt, as if the backoff's hours had passed.
            last = {
                **first,
                "CallbackAttempts": MAX_ATTEMPTS - 1,
                "NextCallbackAt": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
            }
            assert state.replace_row(KIND, operation, last, str(first["_etag"]))
            follow_up()
            given_up = wait_for(
                lambda: (r := state.get_row(KIND, operation)) and r["CallbackStatus"] != "pending" and r
            )
    finally:
        server.shutdown()
    assert given_up and given_up["CallbackStatus"] == "failed"
    assert given_up["CallbackAttempts"] == MAX_ATTEMPTS and answered == [503, 503]
    audit = [
        r for r in get_autopilot().audit.entries() if r["Action"] == "backup-callback" and r["VmId"] == vm
    ]
    assert {r["Outcome"] for r in audit} == {
        "answered 503 (attempt 1)",
        f"answered 503 (attempt {MAX_ATTEMPTS})",
    }
    announced = wait_for(
        lambda: [
            e for e in e2e.outcome_events("bn-hook-1") if e["type"] == "BackupAutopilot.Backup.CallbackFailed"
        ]
    )
    assert announced and announced[0]["data"]["id"] == operation
    assert announced[0]["data"]["reason"] == "answered 503"
    # The caller can still read the result.
    assert e2e.app("GET", accepted.headers["Location"]).json()["status"] == "Completed"


def test_the_command_line_backs_up_a_vm_and_waits_for_it(e2e: E2E) -> None:
    import subprocess
    import sys

    # A VM of its own: the API tests above use up bn-gold-1's on-demand backups for the day.
    e2e.create_vm(GROUP, "bn-cli-1", "westeurope", {"backup-policy": "gold"})
    assert wait_for(lambda: e2e.item("rsv-autopilot-weu", GROUP, "bn-cli-1"), timeout=30)
    vm = vm_id(e2e, "bn-cli-1")
    wait_for(
        lambda: e2e.app("POST", "/api/backups", json={"vm": vm, "requestId": "probe-cli"}).status_code == 202,
        timeout=30,
    )
    settings = e2e.stack.settings_file
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopilot",
            "backup",
            vm,
            "--retain-until",
            "2031-01-01",
            "--request-id",
            "CLI-1",
            "--wait",
            "--settings",
            str(settings),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "Completed"
    assert [p["status"] for p in view["phases"]] == ["Completed", "Completed"]
