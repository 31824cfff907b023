"""What devhost refuses at start-up, with a message that says what to change."""

import os
from pathlib import Path

import pytest
import requests
from devhost_support import write_app

from devhost import Host, HostError

HEADER = (
    "import azure.functions as func\n\napp = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
)


def refusal(directory: Path) -> str:
    with pytest.raises(HostError) as error:
        Host(directory).start()
    return str(error.value)


def test_parameter_names_must_be_the_binding_names(tmp_path: Path) -> None:
    code = HEADER + (
        "\n@app.route(route='a')\ndef a(request: func.HttpRequest) -> str:\n    return 'a'\n"
        "\n@app.timer_trigger(arg_name='timer', schedule='0 0 * * * *')\ndef b(timer, extra) -> None:\n    pass\n"
        "\n@app.route(route='c')\ndef c(req: func.HttpRequest) -> str:\n    return 'fine'\n"
    )
    message = refusal(write_app(tmp_path, code))
    assert "function 'a': its parameters (request) are not its bindings' names (req)" in message
    assert "function 'b': its parameters (timer, extra) are not its bindings' names (timer)" in message
    assert "silently drop every function" in message
    assert "'c'" not in message


def test_unsupported_bindings_and_triggers_are_refused(tmp_path: Path) -> None:
    code = HEADER + (
        "\n@app.route(route='a')\n@app.blob_input(arg_name='blob', path='c/b', connection='S')\n"
        "def a(req, blob) -> str:\n    return 'a'\n"
        "\n@app.blob_trigger(arg_name='blob', path='c/{name}', connection='S')\ndef b(blob) -> None:\n    pass\n"
    )
    message = refusal(write_app(tmp_path, code))
    assert "function 'a': devhost does not support binding type 'blob' (binding 'blob')" in message
    assert "function 'b': devhost does not support trigger type 'blobTrigger'" in message


def test_unresolved_schedule_setting_names_the_setting(tmp_path: Path) -> None:
    code = (
        HEADER
        + "\n@app.timer_trigger(arg_name='t', schedule='%MISSING_SCHEDULE%')\ndef t(t) -> None:\n    pass\n"
    )
    message = refusal(write_app(tmp_path, code, values={}))
    assert "function 't': schedule '%MISSING_SCHEDULE%' names the app setting 'MISSING_SCHEDULE'" in message
    assert "not set" in message


def test_bad_schedule_names_the_function_and_field(tmp_path: Path) -> None:
    code = HEADER + "\n@app.timer_trigger(arg_name='t', schedule='%S%')\ndef t(t) -> None:\n    pass\n"
    message = refusal(write_app(tmp_path, code, values={"S": "0 0 25 * * *"}))
    assert "function 't'" in message
    assert "hour field '25': 25 is outside 0-23" in message


QUEUE_APP = HEADER + (
    "\n@app.queue_trigger(arg_name='msg', queue_name='jobs', connection='JobsStorage')\n"
    "def work(msg) -> None:\n    pass\n"
)


def test_queue_connection_must_be_a_connection_string(tmp_path: Path) -> None:
    message = refusal(write_app(tmp_path / "missing", QUEUE_APP, values={}))
    assert "function 'work': queue binding 'msg': the connection setting 'JobsStorage' is not set" in message
    identity = {"JobsStorage__queueServiceUri": "https://account.queue.core.windows.net"}
    message = refusal(write_app(tmp_path / "identity", QUEUE_APP, values=identity))
    assert "connection 'JobsStorage' is identity-based" in message


def test_host_json_and_import_errors(tmp_path: Path) -> None:
    no_host_json = write_app(tmp_path / "a", HEADER)
    (no_host_json / "host.json").unlink()
    assert "host.json not found" in refusal(no_host_json)
    broken = write_app(tmp_path / "b", HEADER + "raise RuntimeError('settings missing at import')\n")
    message = refusal(broken)
    assert "importing" in message
    assert "RuntimeError: settings missing at import" in message


def test_a_refused_start_leaves_the_environment_as_it_was(tmp_path: Path) -> None:
    app = write_app(
        tmp_path, HEADER + "\n@app.route(route='a')\ndef a(x) -> str:\n    return ''\n", {"ZZ_X": "1"}
    )
    refusal(app)
    assert "ZZ_X" not in os.environ


def test_async_functions_are_awaited_and_context_is_given(tmp_path: Path) -> None:
    code = HEADER + (
        "\n@app.route(route='a')\nasync def a(req: func.HttpRequest, context: func.Context) -> str:\n"
        "    return context.function_name + ' ' + req.params['x']\n"
    )
    with Host(write_app(tmp_path, code, values={})) as host:
        assert requests.get(f"{host.url}/api/a?x=1", timeout=5).text == "a 1"


def test_a_stack_that_fails_to_start_leaves_nothing_running(tmp_path: Path) -> None:
    # The stack starts Azurite and armsim, then fails on the app (here: no rules file to provision
    # the vaults from): what it started is stopped, not left listening (it once leaked a pair of
    # processes per failed start in the test suite).
    import socket

    from autopilot.rules import RulesError
    from devhost.stack import Stack

    app = tmp_path / "app"
    app.mkdir()
    stack = Stack.ephemeral(tmp_path / "run", app_dir=app)
    with pytest.raises(RulesError):
        stack.start()
    assert stack.azurite is not None and stack.armsim is not None, "the failure came before both started"
    ports = [stack.azurite.blob_port, stack.azurite.queue_port, stack.azurite.table_port]
    ports.append(int(stack.armsim.url.rsplit(":", 1)[1]))
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
