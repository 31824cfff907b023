"""``python -m devhost`` as a user starts it, and the Azurite launcher's refusals."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from devhost_support import Journal

from devhost.azurite import ACCOUNT_KEY, Azurite, AzuriteError, connection_string

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cli_serves_the_app_and_stops_cleanly_on_ctrl_c(app_dir: Path, journal: Journal) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app-dir", str(app_dir), "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if requests.get(f"http://127.0.0.1:{port}/admin/host/ping", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "devhost did not start"
            time.sleep(0.1)
        assert requests.get(f"http://127.0.0.1:{port}/api/hello?name=cli", timeout=5).text == "hello cli"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"hello: [GET] http://127.0.0.1:{port}/api/hello" in stdout
    assert "Executed 'Functions.hello' (Succeeded, Id=" in stderr
    assert "devhost: stopped" in stderr
    assert journal.entries("on_startup") == [{"past_due": False}]
    assert "Traceback" not in stderr


def test_cli_refusal_exits_1_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "--app-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "host.json not found" in result.stderr


def test_azurite_missing_tells_to_run_make_setup(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="run `make setup`"):
        Azurite(repo_root=tmp_path).start()


def test_connection_string_names_the_well_known_account_and_each_endpoint() -> None:
    value = connection_string("127.0.0.1", 1, 2, 3)
    assert value == (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};"
        "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
        "QueueEndpoint=http://127.0.0.1:2/devstoreaccount1;"
        "TableEndpoint=http://127.0.0.1:3/devstoreaccount1;"
    )
