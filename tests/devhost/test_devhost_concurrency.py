"""devhost runs invocations concurrently as the Functions host does, bounded by the Python worker's
settings: PYTHON_THREADPOOL_THREAD_COUNT threads per worker (default min(32, cpu + 4)) for sync
functions, FUNCTIONS_WORKER_PROCESS_COUNT workers (default 1), async functions on each worker's event
loop; HTTP requests, the events of an Event Grid batch, queue messages (batchSize + newBatchThreshold)
and timers all wait for a worker thread."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from devhost_support import EVENTGRID_KEY, MASTER_KEY, StartHost, write_app

from devhost import Host, HostError
from devhost.azurite import Azurite
from devhost.workers import WorkerPool, default_thread_count, worker_settings

APP = """
import asyncio
import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
_lock = threading.Lock()
state = {"now": 0, "peak": 0, "threads": [], "done": 0}


def enter():
    with _lock:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        state["threads"].append(threading.current_thread().name)


def leave():
    with _lock:
        state["now"] -= 1
        state["done"] += 1


@app.route(route="slow")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    enter()
    time.sleep(float(req.params.get("s", "0.3")))
    leave()
    return func.HttpResponse(threading.current_thread().name)


@app.route(route="aslow")
async def aslow(req: func.HttpRequest) -> func.HttpResponse:
    enter()
    await asyncio.sleep(float(req.params.get("s", "0.3")))
    leave()
    return func.HttpResponse(threading.current_thread().name)


@app.route(route="stats")
def stats(req: func.HttpRequest) -> func.HttpResponse:
    with _lock:
        body = json.dumps(state)
        state.update(now=0, peak=0, threads=[], done=0)
    return func.HttpResponse(body, mimetype="application/json")


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    enter()
    time.sleep(0.3)
    leave()
"""

QUEUE_FUNCTION = """

@app.queue_trigger(arg_name="msg", queue_name="burst", connection="AzureWebJobsStorage")
def on_burst(msg: func.QueueMessage) -> None:
    enter()
    text = msg.get_body().decode()
    if text.startswith("sleep:"):
        time.sleep(float(text.split(":")[1]))
    else:
        time.sleep(0.3 + 0.3 * (int(text.split("-")[1]) % 4))  # a batch ends in steps
    leave()
"""


def app_dir(tmp_path: Path, queues: bool = False, host_json: Any = None) -> Path:
    return write_app(
        tmp_path / "app",
        APP + (QUEUE_FUNCTION if queues else ""),
        values={"DEVHOST_MASTER_KEY": MASTER_KEY, "DEVHOST_EVENTGRID_KEY": EVENTGRID_KEY},
        host_json=host_json,
    )


def stats(host: Host) -> dict[str, Any]:
    result: dict[str, Any] = requests.get(f"{host.url}/api/stats", timeout=10).json()
    return result


def burst(host: Host, path: str, count: int) -> list[str]:
    with ThreadPoolExecutor(count) as clients:
        answers = list(clients.map(lambda _: requests.get(f"{host.url}{path}", timeout=30), range(count)))
    assert {a.status_code for a in answers} == {200}
    return [a.text for a in answers]


# -- the settings ---------------------------------------------------------------------------------
def test_the_default_is_one_worker_with_min_32_cpu_plus_4_threads() -> None:
    assert worker_settings({}) == (min(32, (os.cpu_count() or 1) + 4), 1)
    assert default_thread_count() == min(32, (os.cpu_count() or 1) + 4)


def test_the_settings_are_read_as_the_worker_and_host_read_them(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"PYTHON_THREADPOOL_THREAD_COUNT": "3", "FUNCTIONS_WORKER_PROCESS_COUNT": "2"}
    assert worker_settings(environ) == (3, 2)
    assert worker_settings({"PYTHON_THREADPOOL_THREAD_COUNT": "100"}) == (100, 1)  # no cap on 3.9+
    assert worker_settings({"PYTHON_THREADPOOL_THREAD_COUNT": "0"}) == (default_thread_count(), 1)
    assert worker_settings({"PYTHON_THREADPOOL_THREAD_COUNT": "many"}) == (default_thread_count(), 1)
    assert "PYTHON_THREADPOOL_THREAD_COUNT must be a whole number" in caplog.text
    for bad in ("0", "11", "two"):
        with pytest.raises(HostError, match="FUNCTIONS_WORKER_PROCESS_COUNT"):
            worker_settings({"FUNCTIONS_WORKER_PROCESS_COUNT": bad})


def nap() -> str:
    time.sleep(0.1)
    return threading.current_thread().name


def test_a_pool_reuses_its_threads_and_counts_its_peak() -> None:
    pool = WorkerPool(threads=2, processes=1)
    try:
        with ThreadPoolExecutor(6) as callers:
            names = list(
                callers.map(
                    lambda _: pool.call(nap, {}),
                    range(6),
                )
            )
        assert len(set(names)) == 2 and pool.peak == 2 and pool.running == 0
    finally:
        pool.close()


# -- HTTP -----------------------------------------------------------------------------------------
def test_http_requests_run_at_once_up_to_the_thread_count(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(app_dir(tmp_path), settings={"PYTHON_THREADPOOL_THREAD_COUNT": "4"})
    started = time.monotonic()
    threads = burst(host, "/api/slow", 12)
    elapsed = time.monotonic() - started
    seen = stats(host)
    assert seen["peak"] == 4 and seen["done"] == 12
    assert len(set(threads)) == 4  # the worker's threads, reused
    assert elapsed > 0.85  # at least 3 rounds of 0.3 s: never all twelve at once


def test_the_default_thread_count_bounds_a_larger_burst(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(app_dir(tmp_path))
    expected = default_thread_count()
    burst(host, "/api/slow?s=1.5", expected + 4)
    assert stats(host)["peak"] == expected
    assert host.workers.threads == expected and host.workers.processes == 1


def test_worker_processes_multiply_the_threads(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(
        app_dir(tmp_path),
        settings={"PYTHON_THREADPOOL_THREAD_COUNT": "2", "FUNCTIONS_WORKER_PROCESS_COUNT": "3"},
    )
    threads = burst(host, "/api/slow", 12)
    assert stats(host)["peak"] == 6
    assert {name.rsplit("_", 1)[0] for name in threads} == {
        "devhost-worker-0",
        "devhost-worker-1",
        "devhost-worker-2",
    }


def test_async_functions_run_on_the_workers_event_loop(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(app_dir(tmp_path), settings={"PYTHON_THREADPOOL_THREAD_COUNT": "1"})
    started = time.monotonic()
    threads = burst(host, "/api/aslow?s=1.5", 10)
    assert time.monotonic() - started < 7.5  # not bound by the one thread (15 s): awaited together
    assert stats(host)["peak"] == 10
    assert set(threads) == {"devhost-worker-0-loop"}


# -- Event Grid -----------------------------------------------------------------------------------
def test_the_events_of_a_batch_run_at_once(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(app_dir(tmp_path), settings={"PYTHON_THREADPOOL_THREAD_COUNT": "3"})
    events = [
        {
            "id": f"e-{n}",
            "subject": f"/vm/{n}",
            "eventType": "Test.Event",
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {},
            "dataVersion": "1",
        }
        for n in range(6)
    ]
    started = time.monotonic()
    response = requests.post(
        f"{host.url}/runtime/webhooks/eventgrid",
        params={"functionName": "on_event", "code": EVENTGRID_KEY},
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
        data=json.dumps(events),
        timeout=30,
    )
    assert response.status_code == 200
    assert time.monotonic() - started > 0.55  # at least two rounds of three
    seen = stats(host)
    assert (seen["peak"], seen["done"]) == (3, 6)


# -- timers and the admin API --------------------------------------------------------------------
def test_admin_runs_wait_for_a_worker_thread_too(tmp_path: Path, start_host: StartHost) -> None:
    host = start_host(app_dir(tmp_path), settings={"PYTHON_THREADPOOL_THREAD_COUNT": "2"})
    event = json.dumps({"id": "1", "subject": "/x", "eventType": "T", "eventTime": "2026-01-01T00:00:00Z",
                        "data": {}, "dataVersion": "1"})  # fmt: skip
    for _ in range(5):
        answer = requests.post(
            f"{host.url}/admin/functions/on_event",
            json={"input": event},
            headers={"x-functions-key": MASTER_KEY},
            timeout=10,
        )
        assert answer.status_code == 202
    deadline = time.monotonic() + 10
    while host.workers.peak < 2 or host.workers.running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stats(host)["peak"] == 2


# -- queues ---------------------------------------------------------------------------------------
@pytest.mark.azurite
def test_queue_messages_run_up_to_batch_size_plus_the_new_batch_threshold(
    tmp_path: Path, start_host: StartHost, azurite: Azurite
) -> None:
    client = QueueClient.from_connection_string(
        azurite.connection_string, "burst", message_encode_policy=TextBase64EncodePolicy()
    )
    with contextlib.suppress(ResourceNotFoundError):
        client.delete_queue()
    client.create_queue()
    for n in range(20):
        client.send_message(f"m-{n}")
    host_json = {
        "version": "2.0",
        "extensions": {"queues": {"batchSize": 4, "maxPollingInterval": "00:00:01"}},
    }
    host = start_host(
        app_dir(tmp_path, queues=True, host_json=host_json),
        settings={"AzureWebJobsStorage": azurite.connection_string, "PYTHON_THREADPOOL_THREAD_COUNT": "32"},
    )
    deadline = time.monotonic() + 30
    time.sleep(0.5)
    while host.workers.running or client.get_queue_properties().approximate_message_count:
        assert time.monotonic() < deadline, "the burst was not processed"
        time.sleep(0.1)
    seen = stats(host)
    assert seen["done"] == 20
    # A new batch of 4 comes once 2 (newBatchThreshold, batchSize/2) are left: more than one batch
    # at once, never more than batchSize + newBatchThreshold = 6, whatever the 32 threads allow.
    assert 4 < seen["peak"] <= 6


@pytest.mark.azurite
def test_a_message_is_not_run_twice_while_its_function_outlasts_the_lease(
    tmp_path: Path, start_host: StartHost, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devhost.queues

    monkeypatch.setattr(devhost.queues, "LEASE_SECONDS", 1)  # renewed every half second
    client = QueueClient.from_connection_string(
        azurite.connection_string, "burst", message_encode_policy=TextBase64EncodePolicy()
    )
    with contextlib.suppress(ResourceNotFoundError):
        client.delete_queue()
    client.create_queue()
    client.send_message("sleep:2.5")
    host_json = {"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:00:01"}}}
    host = start_host(
        app_dir(tmp_path, queues=True, host_json=host_json),
        settings={"AzureWebJobsStorage": azurite.connection_string},
    )
    deadline = time.monotonic() + 20
    time.sleep(0.5)
    while host.workers.running or client.get_queue_properties().approximate_message_count:
        assert time.monotonic() < deadline, "the message was not processed"
        time.sleep(0.1)
    time.sleep(1.5)  # a lease that had lapsed would have brought it back by now
    seen = stats(host)
    assert (seen["done"], seen["peak"]) == (1, 1)
