"""The functions level: every registered function through `app.get_functions()`.

The indexing contract guards what silently drops every function of the app on the Functions host:
one trigger per function, parameter names equal binding names, schedules and queue names from app
settings, and an import of function_app that does no I/O. Then the Event Grid function is called
the way the host calls it, with events that must be dropped without reaching Azure.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from autopilot.kernel.outcomes import Kind, Outcome

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "local.settings.template.json"
SUB = "00000000-0000-0000-0000-000000000001"
FOREIGN_SUB = "11111111-2222-3333-4444-555555555555"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01"
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
# A schedule or queue name is an app setting, optionally with a fixed suffix (the host resolves
# binding expressions such as %SWEEP_QUEUE%-poison).
SETTING = re.compile(r"^%([A-Za-z_][A-Za-z0-9_]*)%(-[a-z0-9-]+)?$")


def _load_app(module_name: str) -> Any:
    """A fresh import of function_app.py (a new FunctionApp object) under `module_name`."""
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def functions() -> list[Any]:
    # get_functions() may be called once per FunctionApp object: it remembers the names it indexed.
    return list(_load_app("function_app_indexing").get_functions())


@pytest.fixture(scope="module")
def setting_names() -> set[str]:
    return set(json.loads(TEMPLATE.read_text(encoding="utf-8"))["Values"])


def _triggers(function: Any) -> list[Any]:
    return [b for b in function.get_bindings() if str(b.type).lower().endswith("trigger")]


def indexing_problems(functions: Sequence[Any], setting_names: set[str]) -> list[str]:
    """Everything in the functions that the Functions host would reject or resolve wrongly."""
    problems: list[str] = []
    for function in functions:
        name = function.get_function_name()
        triggers = _triggers(function)
        if len(triggers) != 1:
            problems.append(f"{name}: {len(triggers)} triggers")
        bindings = {b.name for b in function.get_bindings() if b.name != "$return"}
        parameters = set(inspect.signature(function.get_user_function()).parameters)
        if parameters != bindings:
            problems.append(f"{name}: parameters {sorted(parameters)} != bindings {sorted(bindings)}")
        for binding in function.get_bindings():
            for attribute in ("schedule", "queue_name"):
                value = getattr(binding, attribute, None)
                if value is None:
                    continue
                match = SETTING.match(str(value))
                if match is None:
                    problems.append(f"{name}: {attribute} {value!r} is not an app setting (%NAME%)")
                elif match[1] not in setting_names:
                    problems.append(f"{name}: {attribute} setting {match[1]} is not in {TEMPLATE.name}")
    return problems


# --- the contract --------------------------------------------------------------------------------


def test_the_app_registers_the_event_grid_function(functions: list[Any]) -> None:
    by_name = {f.get_function_name(): f for f in functions}
    assert "protect_on_create" in by_name
    (trigger,) = _triggers(by_name["protect_on_create"])
    assert trigger.type == "eventGridTrigger"


def test_function_names_are_unique(functions: list[Any]) -> None:
    names = [f.get_function_name() for f in functions]
    assert len(names) == len(set(names))


def test_every_function_keeps_the_indexing_contract(functions: list[Any], setting_names: set[str]) -> None:
    assert indexing_problems(functions, setting_names) == []


def test_the_contract_check_finds_each_kind_of_mistake() -> None:
    """The check above is only worth something if it fails on a broken app."""
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
    def literal_schedule(timer: func.TimerRequest) -> None: ...

    @app.timer_trigger(arg_name="timer", schedule="%NOT_IN_TEMPLATE%")
    def unknown_setting(timer: func.TimerRequest) -> None: ...

    @app.queue_trigger(arg_name="msg", queue_name="autopilot-sweep", connection="AzureWebJobsStorage")
    def literal_queue(msg: func.QueueMessage) -> None: ...

    @app.event_grid_trigger(arg_name="event")
    def renamed_parameter(evt: func.EventGridEvent) -> None: ...

    @app.queue_trigger(arg_name="msg", queue_name="%SWEEP_QUEUE%", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="%SWEEP_QUEUE%", connection="AzureWebJobsStorage")
    def well_formed(msg: func.QueueMessage, out: func.Out[str]) -> None: ...

    problems = indexing_problems(app.get_functions(), {"SWEEP_QUEUE", "SWEEP_SCHEDULE"})
    assert len(problems) == 4, problems
    assert any(p.startswith("literal_schedule: schedule '0 */5 * * * *'") for p in problems)
    assert any(p.startswith("unknown_setting: schedule setting NOT_IN_TEMPLATE") for p in problems)
    assert any(p.startswith("literal_queue: queue_name 'autopilot-sweep'") for p in problems)
    assert any(p.startswith("renamed_parameter: parameters ['evt'] != bindings ['event']") for p in problems)


def test_importing_function_app_does_no_io() -> None:
    """No settings read, no client or credential built, no network; in a process without settings."""
    script = textwrap.dedent(
        """
        import os, socket, sys, time

        def no_network(*args, **kwargs):
            raise AssertionError("importing function_app used the network")

        socket.socket.connect = no_network
        socket.create_connection = no_network
        socket.getaddrinfo = no_network
        read = []
        original = os._Environ.__getitem__

        def spy(self, key):
            read.append(key)
            return original(self, key)

        os._Environ.__getitem__ = spy
        started = time.perf_counter()
        import function_app
        elapsed = time.perf_counter() - started
        os._Environ.__getitem__ = original

        import autopilot.app, autopilot.settings
        ours = sorted({k for k in read if k.startswith(("AUTOPILOT_", "AzureWebJobs", "SWEEP_"))})
        assert not ours, f"settings read at import: {ours}"
        assert autopilot.settings.get_settings.cache_info().currsize == 0, "settings loaded at import"
        assert not autopilot.app.get_autopilot.built, "autopilot built at import"
        assert "azure.identity" not in sys.modules, "a credential was built at import"
        print(f"{elapsed:.3f}")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # no AUTOPILOT_*, no AzureWebJobsStorage
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 5.0


# --- the Event Grid function, called as the host calls it ---------------------------------------


class AzureMustNotBeReached:
    """The autopilot a dropped event sees: it may ask which subscriptions are in scope, nothing else."""

    def subscriptions(self) -> tuple[str, ...]:
        return (SUB,)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"an event that must be dropped used autopilot.{name}")


@pytest.fixture(scope="module")
def protect_on_create(functions: list[Any]) -> Any:
    (function,) = [f for f in functions if f.get_function_name() == "protect_on_create"]
    return function.get_user_function()


@pytest.fixture
def protected(monkeypatch: pytest.MonkeyPatch, protect_on_create: Any) -> Iterator[list[tuple[str, str]]]:
    """Stubs Azure away from the handler; yields the (vm id, source) of every protect_vm call."""
    calls: list[tuple[str, str]] = []

    def fake_protect_vm(autopilot: Any, vm_id: str, source: str) -> Outcome:
        calls.append((vm_id, source))
        return Outcome(vm_id, Kind.ALREADY_PROTECTED, "stub")

    # The handler imports the core when it runs, so the stubs go where it imports them from.
    stub = AzureMustNotBeReached()
    monkeypatch.setattr("autopilot.app.get_autopilot", lambda: stub)
    monkeypatch.setattr("autopilot.protect.carry_out.protect_vm", fake_protect_vm)
    yield calls


def _event(
    subject: str = VM_ID, data: Any = None, event_type: str = WRITE, **fields: Any
) -> func.EventGridEvent:
    if data is None:
        data = {"operationName": "Microsoft.Compute/virtualMachines/write", "resourceUri": subject}
    return func.EventGridEvent(
        id=fields.get("id", "4db48cba-50a2-455a-93b4-de41a3b5b7f6"),
        data=data,
        topic=fields.get("topic", f"/subscriptions/{SUB}"),
        subject=subject,
        event_type=event_type,
        event_time=None,
        data_version="2",
    )


def _decoded(body: dict[str, Any]) -> Any:
    """The event as the Python worker builds it from the host's JSON."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata=None)


def _handler_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "handlers.protect_on_create"]


def test_well_formed_vm_write_reaches_protect_vm(
    protect_on_create: Any, protected: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """The control for the tests below: with the same stubs, a real VM write does get through."""
    caplog.set_level(logging.INFO)
    assert protect_on_create(_event()) is None
    assert protected == [(VM_ID, "event:4db48cba-50a2-455a-93b4-de41a3b5b7f6")]


MALFORMED = [
    pytest.param(lambda: _event(data=b"\xff\xfe not json"), id="data-bytes-not-json"),
    pytest.param(lambda: _event(data=object()), id="data-not-json-able"),
    pytest.param(lambda: _event(data="{operationName: write"), id="data-broken-json-text"),
    pytest.param(lambda: _event(subject=VM_ID.replace(SUB, FOREIGN_SUB)), id="foreign-subscription"),
    pytest.param(
        lambda: _event(
            subject=f"{VM_ID}/extensions/AzureBackupLinuxExtension",
            data={"operationName": "Microsoft.Compute/virtualMachines/extensions/write"},
        ),
        id="extension-subject",
    ),
    pytest.param(lambda: _event(event_type="Microsoft.Resources.ResourceDeleteSuccess"), id="delete-event"),
    pytest.param(lambda: _decoded({}), id="empty-body"),
    pytest.param(lambda: _decoded({"eventType": WRITE, "subject": VM_ID, "data": None}), id="null-data"),
    pytest.param(lambda: _decoded({"eventType": WRITE, "subject": VM_ID, "data": [1, 2]}), id="list-data"),
    pytest.param(lambda: _decoded({"eventType": WRITE, "subject": 42, "data": {}}), id="numeric-subject"),
    pytest.param(
        lambda: _decoded(
            {
                "id": "x",
                "eventType": WRITE,
                "subject": VM_ID,
                "data": {
                    "operationName": "Microsoft.Compute/virtualMachines/write",
                    "resourceUri": VM_ID + "2",
                },
            }
        ),
        id="resource-uri-mismatch",
    ),
]


@pytest.mark.parametrize("make_event", MALFORMED)
def test_malformed_or_foreign_event_is_dropped_without_touching_azure(
    make_event: Any,
    protect_on_create: Any,
    protected: list[tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    assert protect_on_create(make_event()) is None
    assert protected == []
    lines = _handler_lines(caplog)
    assert any(line.startswith(("ignored event", "dropped event")) for line in lines), lines


def test_cloud_event_delivery_is_handled_like_an_event_grid_one(
    protect_on_create: Any, protected: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    event = _decoded(
        {
            "specversion": "1.0",
            "id": "c1",
            "source": f"/subscriptions/{SUB}",
            "type": WRITE,
            "subject": VM_ID,
            "data": {"operationName": "Microsoft.Compute/virtualMachines/write", "resourceUri": VM_ID},
        }
    )
    assert isinstance(event, func.CloudEvent)
    # A subscription with the CloudEvents 1.0 schema delivers the same VM write: it is handled, not
    # dropped and not an error that Event Grid would retry.
    assert protect_on_create(event) is None
    assert [vm for vm, _ in protected] == [VM_ID]
