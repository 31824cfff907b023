"""The reliability suite's test support (issue 7), imported by its tests: a local stack whose parts
run as separate processes, and the checks that read armsim's request log, the host's log and the
audit table.

What it offers:
- `RelStack`, `running(...)` (start stacks side by side), `LoggedProcess`, `KnownTokenIdentity`;
- estates to seed: `Estate`, `sweep_estate`, `new_vms`; ids: `vm_id`, `vm_key`, `key_of_id`;
- waiting and concurrency: `wait_for`, `in_parallel`, `function_timeout_seconds`;
- request-log checks: `arm_requests`, `ok`, `is_write`, `writes_by_vm`, `retry_after_violations`,
  `retried_ids`, `lro_waits`, `item_key`;
- host-log checks: `failed_invocations`, `unexpected_failures`;
- event and protection checks: `deliveries`, `all_delivered`, `protected_items`, `unprotected`;
- audit checks: `unaudited_writes`, `audit_without_write`, `change_rows`, `audit_target`, `write_target`;
- constants: `SUB`, `BACKUP_GROUP`, `WEU_VAULT`, `EUS_VAULT`, `NEVER`, `FAST_QUEUES`,
  `TEST_REQUEST_PREFIX`, `ARM_WRITES`.
The pytest hooks (the table printed at the end of the run) and the `workdir` fixture live in
tests/reliability/conftest.py; the sizes and the table's rows in tests/reliability/soak.py.

Two sizes: RELIABILITY_SIZE=small (the default, inside `make test`) and RELIABILITY_SIZE=full
(`make soak`). Each scenario is one test that takes its load from `sized(small, full)` and adds one
or more rows to the table with `record(...)`; the table is printed at the end of the run.

The stack (`RelStack`): Azurite, armsim (`python -m armsim`) and the app on devhost
(`python -m devhost --app-dir DIR`), each its own process with its output in a log file, on free
ports, in a temporary app directory with its own host.json (queues retried within a second),
local.settings.json, and rules. Separate processes let two stacks run side by side (a faulted run
and its fault-free twin), let a test kill the host with SIGKILL and start it again, and give every
log line of every part to the secrets scan.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests

from armsim import SANDBOX_SUBSCRIPTION
from devhost.azurite import Azurite
from tests.armsim_support import sandbox_vault_policies

REPO = Path(__file__).resolve().parents[2]
SUB = SANDBOX_SUBSCRIPTION
BACKUP_GROUP = "rg-autopilot-backup"
WEU_VAULT = f"/subscriptions/{SUB}/resourceGroups/{BACKUP_GROUP}/providers/Microsoft.RecoveryServices/vaults/rsv-autopilot-weu"
EUS_VAULT = WEU_VAULT.replace("rsv-autopilot-weu", "rsv-autopilot-eus")
# Requests the tests themselves send to armsim carry this client request id prefix, so that the
# checks of the app's requests leave them out.
TEST_REQUEST_PREFIX = "reliability-test-"
ARM_WRITES = ("CreateOrUpdate", "Trigger", "Refresh", "Update", "Patch", "Delete")
T = TypeVar("T")


# -- processes -----------------------------------------------------------------------------------------
def _clean_env() -> dict[str, str]:
    """The environment for the stack's processes: without the settings an outer test session or a
    developer's shell may have set (local.settings.json gives them; the environment would win)."""
    drop = ("AUTOPILOT_", "IDENTITY_", "DEVHOST_", "AzureWebJobs", "SWEEP_", "BACKUP_", "MSI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for key in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO)
    return env


class LoggedProcess:
    """A child process whose stdout and stderr go to one log file (kept for the scans)."""

    def __init__(self, command: list[str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, ready: re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=_clean_env()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = ready.search(self.text(since_start=True))
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.text(since_start=True)[-3000:]
        self.kill()
        raise RuntimeError(f"{self.command[:4]} did not start:\n{tail}")

    def text(self, since_start: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        return data[self._offset :].decode(errors="replace") if since_start else data.decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind (the crash scenario)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


# devhost keeps a received queue message invisible for 10 minutes (the host's lease, not renewed),
# a module constant. The crash scenario shortens it so that a message taken by a killed host comes
# back within seconds; everything else runs `python -m devhost` unchanged.
_DEVHOST_WITH_LEASE = (
    "import sys, devhost.queues as q; q.LEASE_SECONDS = int(sys.argv[1]); "
    "from devhost.__main__ import main; sys.exit(main(sys.argv[2:]))"
)


# -- a known identity (the secrets scenario) -------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KnownTokenIdentity:
    """A managed-identity endpoint (App Service 2019-08-01 shape) that issues one known token per
    audience, so that a scan can look for the exact access tokens the app used. armsim checks a
    token's audience and expiry, not its signature, so these are accepted like its own."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.marker = "known-token-" + secrets.token_hex(12)
        self.tokens: dict[str, str] = {}
        self.issued = 0
        identity = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if self.headers.get("X-IDENTITY-HEADER") != identity.header:
                    self.send_response(401)
                    self.end_headers()
                    return
                resource = (query.get("resource") or [""])[0]
                body = json.dumps(identity.issue(resource)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/msi/token"

    def issue(self, resource: str) -> dict[str, Any]:
        audience = resource.removesuffix("/.default").rstrip("/")
        expires = int(time.time()) + 3600
        if audience not in self.tokens:
            claims = {"aud": audience, "exp": expires + 24 * 3600, "tid": "reliability", "oid": "reliability"}
            self.tokens[audience] = ".".join(
                [
                    _b64(b'{"alg":"RS256","typ":"JWT"}'),
                    _b64(json.dumps(claims).encode()),
                    _b64(f"{self.marker}-{len(self.tokens)}".encode()),
                ]
            )
        self.issued += 1
        return {
            "access_token": self.tokens[audience],
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
        }

    def stop(self) -> None:
        self.server.shutdown()


# -- the stack -----------------------------------------------------------------------------------------
FAST_QUEUES = {
    "visibilityTimeout": "00:00:01",
    "maxPollingInterval": "00:00:01",
    "batchSize": 8,
    "maxDequeueCount": 5,
}
NEVER = "0 0 0 1 1 *"  # timers run only when a test asks (admin API)


@dataclass
class RelStack:
    """Azurite + armsim + the app on devhost, each a process of its own, in `root`."""

    root: Path
    name: str = "stack"
    armsim_config: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    queues: dict[str, Any] = field(default_factory=lambda: dict(FAST_QUEUES))
    lease_seconds: int | None = None  # None: devhost's own (600 s)
    rules_text: str | None = None  # None: rules/sandbox.yaml
    max_events_per_batch: int = 1  # as infra/eventgrid-subscription.json
    armsim_log_level: str = "INFO"
    verbose_host: bool = False  # devhost --verbose: its HTTP request lines too
    identity: KnownTokenIdentity | None = None
    keys: dict[str, str] = field(default_factory=dict)
    azurite: Azurite | None = None
    armsim: LoggedProcess | None = None
    host: LoggedProcess | None = None
    arm_url: str = ""
    ca_path: Path = Path()
    identity_header: str = ""
    host_url: str = ""
    values: dict[str, str] = field(default_factory=dict)
    _session: requests.Session = field(default_factory=requests.Session)
    _token: tuple[str, float] = ("", 0.0)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> RelStack:
        self.root.mkdir(parents=True, exist_ok=True)
        self.app_dir = self.root / "app"
        self.app_dir.mkdir(exist_ok=True)
        try:
            in_parallel(self._start_azurite, self._start_armsim)
            config = {"eventMaxAttempts": 30, "scheduledBackups": False, **self.armsim_config}
            self.control("POST", "/config", config)
            self._write_app()
            self.start_host()
            self._subscribe()
        except BaseException:
            self.stop()  # what did start (Azurite, armsim) is not left running when a later part fails
            raise
        return self

    def _start_azurite(self) -> None:
        self.azurite = Azurite().start()

    def _start_armsim(self) -> None:
        data = self.root / "armsim"
        self.armsim = LoggedProcess(
            [
                sys.executable,
                "-m",
                "armsim",
                "--port",
                "0",
                "--data",
                str(data),
                "--log-level",
                self.armsim_log_level,
            ],
            self.root / "armsim.log",
        )
        match = self.armsim.start(re.compile(r"armsim listening on (https://\S+)"))
        self.arm_url = match.group(1)
        self.ca_path = data / "ca.pem"
        self.identity_header = (data / "identity-header").read_text().strip()

    def _write_app(self) -> None:
        app = self.app_dir
        shutil.copy(REPO / "function_app.py", app / "function_app.py")
        (app / "rules").mkdir(exist_ok=True)
        rules_path = app / "rules" / "sandbox.yaml"
        rules_path.write_text(self.rules_text or (REPO / "rules" / "sandbox.yaml").read_text())
        host = json.loads((REPO / "host.json").read_text())
        host["extensions"]["queues"] = dict(self.queues)
        (app / "host.json").write_text(json.dumps(host, indent=2))
        self._provision_vaults(rules_path)
        topic = self.control("GET", "/eventgrid/topics/autopilot-events")
        for key in ("DEVHOST_FUNCTION_KEY", "DEVHOST_MASTER_KEY", "DEVHOST_EVENTGRID_KEY"):
            self.keys.setdefault(key, secrets.token_urlsafe(24))
        assert self.azurite is not None
        identity_endpoint = self.identity.url if self.identity else f"{self.arm_url}/_armsim/identity/token"
        identity_header = self.identity.header if self.identity else self.identity_header
        self.values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": self.azurite.connection_string,
            "AUTOPILOT_ARM_ENDPOINT": self.arm_url,
            "AUTOPILOT_SUBSCRIPTIONS": SUB,
            "AUTOPILOT_RULES": str(rules_path),
            "AUTOPILOT_EVENTS_ENDPOINT": topic["endpoint"],
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
            "IDENTITY_ENDPOINT": identity_endpoint,
            "IDENTITY_HEADER": identity_header,
            "SWEEP_SCHEDULE": NEVER,
            "SWEEP_QUEUE": "autopilot-sweep",
            "FIRST_BACKUP_QUEUE": "autopilot-first-backup",
            "BACKUP_FOLLOWUP_SCHEDULE": NEVER,
            "PRUNE_SCHEDULE": NEVER,
            "DRILL_QUEUE": "autopilot-drills",
            "DRILL_TIMER_SCHEDULE": NEVER,
            **self.keys,
            **self.settings,
        }
        settings = {"IsEncrypted": False, "Values": self.values}
        (app / "local.settings.json").write_text(json.dumps(settings, indent=2))

    def _provision_vaults(self, rules_path: Path) -> None:
        from autopilot.rules import load_rules

        rules = load_rules(str(rules_path))
        vaults = [
            {
                "subscriptionId": v.subscription_id,
                "resourceGroup": v.resource_group,
                "name": v.name,
                "location": v.region,
                "redundancy": v.storage_redundancy,
            }
            for v in rules.vaults
        ]
        self.control("POST", "/seed", {"vaults": vaults})

    def start_host(self) -> None:
        """Start (or start again) the app on devhost, as a process of its own."""
        command = [sys.executable, "-m", "devhost"]
        if self.lease_seconds is not None:
            command = [sys.executable, "-c", _DEVHOST_WITH_LEASE, str(self.lease_seconds)]
        command += ["--app-dir", str(self.app_dir), "--port", "0"]
        if self.verbose_host:
            command.append("--verbose")
        if self.host is None:
            self.host = LoggedProcess(command, self.root / "devhost.log")
        match = self.host.start(re.compile(r"devhost is running at (http://\S+)"))
        self.host_url = match.group(1)

    def _subscribe(self) -> None:
        endpoint = (
            f"{self.host_url}/runtime/webhooks/eventgrid?functionName=protect_on_create"
            f"&code={self.keys['DEVHOST_EVENTGRID_KEY']}"
        )
        for existing in self.control("GET", "/eventgrid/subscriptions")["value"]:
            self.control("DELETE", f"/eventgrid/subscriptions/{existing['name']}")
        self.control(
            "POST",
            "/eventgrid/subscriptions",
            {
                "name": "autopilot-vm-writes",
                "endpoint": endpoint,
                "subscriptionId": SUB,
                "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
                "advancedFilters": [
                    {
                        "operatorType": "StringIn",
                        "key": "data.operationName",
                        "values": ["Microsoft.Compute/virtualMachines/write"],
                    }
                ],
                "maxEventsPerBatch": self.max_events_per_batch,
            },
        )

    def stop(self) -> None:
        for part in (self.host, self.armsim):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()
        if self.azurite is not None:
            with contextlib.suppress(Exception):
                self.azurite.stop()

    def __enter__(self) -> RelStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- armsim -----------------------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.arm_url}/_armsim{path}", json=body, verify=str(self.ca_path), timeout=120
        )
        if response.status_code >= 400:
            raise AssertionError(f"armsim {method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def seed(self, **spec: Any) -> dict[str, int]:
        result: dict[str, int] = self.control("POST", "/seed", spec)
        return result

    def faults(self, **spec: Any) -> None:
        self.control("POST", "/faults", spec)

    def fail_first(self, operation: str, kind: str = "409") -> None:
        """Make the next request of `operation` fail with `kind` and the one after it succeed: with
        rate 0.5 and seed 1, armsim's fault generator draws 0.134 (fault), then 0.764 (served)."""
        self.faults(rate=0.5, kinds={kind: 1}, operations=[operation], retryAfter=1, seed=1)

    def no_faults(self) -> None:
        self.control("POST", "/faults", {"rate": 0.0, "eventDuplicates": 1, "eventShuffle": False})

    def request_log(self) -> list[dict[str, Any]]:
        """Every ARM request the app sent (the tests' own left out), oldest first."""
        log = self.control("GET", "/stats?log=1")["log"]
        return [e for e in log if not str(e.get("clientRequestId", "")).startswith(TEST_REQUEST_PREFIX)]

    def events(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "/events")
        return result

    def topic_events(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "/eventgrid/topics/autopilot-events")["events"]
        return result

    def arm(self, method: str, path: str, body: Any = None, api_version: str = "2024-07-01") -> Any:
        """An ARM request of the test itself (marked, so the checks leave it out)."""
        token, expires = self._token
        if time.time() > expires - 60:
            answer = self._session.get(
                f"{self.arm_url}/_armsim/identity/token",
                params={"api-version": "2019-08-01", "resource": "https://management.azure.com/"},
                headers={"X-IDENTITY-HEADER": self.identity_header},
                verify=str(self.ca_path),
                timeout=30,
            ).json()
            token, expires = answer["access_token"], float(answer["expires_on"])
            self._token = (token, expires)
        url = path if path.startswith("https://") else f"{self.arm_url}{path}"
        if "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={api_version}"
        for _ in range(50):  # armsim's injected faults hit the test's own requests too: retry them
            response = self._session.request(
                method,
                url,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "x-ms-client-request-id": TEST_REQUEST_PREFIX + uuid.uuid4().hex,
                },
                verify=str(self.ca_path),
                timeout=60,
            )
            if response.status_code not in (409, 429, 500, 503):
                break
            time.sleep(0.05)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response.json() if response.content else None

    def set_tags(self, vm_id: str, tags: dict[str, str]) -> None:
        self.arm("PATCH", vm_id, {"tags": tags})

    # -- the app ------------------------------------------------------------------------------------
    def app(self, method: str, path: str, key: str | None = "function", **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("x-functions-key", self.keys[f"DEVHOST_{key.upper()}_KEY"])
        return requests.request(method, f"{self.host_url}{path}", headers=headers, timeout=120, **kwargs)

    def webhook(
        self, body: bytes | str, event_type: str = "Notification", **headers: str
    ) -> requests.Response:
        url = (
            f"{self.host_url}/runtime/webhooks/eventgrid?functionName=protect_on_create"
            f"&code={self.keys['DEVHOST_EVENTGRID_KEY']}"
        )
        return requests.post(
            url,
            data=body,
            headers={"aeg-event-type": event_type, "Content-Type": "application/json", **headers},
            timeout=120,
        )

    def run_function(self, name: str, text: str = "") -> None:
        response = self.app("POST", f"/admin/functions/{name}", key="master", json={"input": text})
        assert response.status_code == 202, response.text

    def run_sweep(self, timeout: float = 600) -> dict[str, Any]:
        """Run the sweep timer as the host's admin API does and wait for that run's report."""
        before = set(self.report_names())
        self.run_function("sweep_timer")
        new = wait_for(lambda: [n for n in self.report_names() if n not in before], timeout=timeout)
        assert new, f"the sweep did not finish within {timeout} s"
        return self.report(new[0])

    def host_log(self) -> str:
        return self.host.text() if self.host else ""

    def armsim_log(self) -> str:
        return self.armsim.text() if self.armsim else ""

    # -- storage ------------------------------------------------------------------------------------
    @property
    def connection_string(self) -> str:
        assert self.azurite is not None
        return self.azurite.connection_string

    def table_rows(self, name: str) -> list[dict[str, Any]]:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableClient

        client = TableClient.from_connection_string(self.connection_string, table_name=name)
        try:
            return [dict(e) for e in client.list_entities()]
        except ResourceNotFoundError:
            return []

    def audit_rows(self) -> list[dict[str, Any]]:
        return self.table_rows(self.values.get("AUTOPILOT_AUDIT_TABLE", "autopilotaudit"))

    def state_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        rows = self.table_rows(self.values.get("AUTOPILOT_STATE_TABLE", "autopilotstate"))
        return [r for r in rows if kind is None or r["PartitionKey"] == kind]

    def update_state_row(self, row: dict[str, Any]) -> None:
        from azure.data.tables import TableClient, UpdateMode

        client = TableClient.from_connection_string(self.connection_string, table_name="autopilotstate")
        client.update_entity(row, mode=UpdateMode.REPLACE)

    def _container(self) -> Any:
        from azure.storage.blob import ContainerClient

        return ContainerClient.from_connection_string(self.connection_string, "autopilot-reports")

    def report_names(self) -> list[str]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [
                b.name
                for b in self._container().list_blobs(name_starts_with="runs/")
                if b.name.endswith("/report.json")
            ]
        except ResourceNotFoundError:
            return []

    def report(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._container().download_blob(name).readall())
        return result

    def blobs_text(self) -> str:
        from azure.core.exceptions import ResourceNotFoundError

        container = self._container()
        try:
            names = [b.name for b in container.list_blobs()]
        except ResourceNotFoundError:
            return ""
        return "\n".join(container.download_blob(n).readall().decode(errors="replace") for n in names)

    def queue_messages(self, name: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.queue import QueueClient

        queue = QueueClient.from_connection_string(self.connection_string, name)
        try:
            return list(queue.peek_messages(max_messages=32))
        except ResourceNotFoundError:
            return []


@contextlib.contextmanager
def running(*stacks: RelStack) -> Iterator[tuple[RelStack, ...]]:
    """Start stacks side by side; stop them all at the end."""
    errors: list[BaseException] = []

    def start(stack: RelStack) -> None:
        try:
            stack.start()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(s,)) for s in stacks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        if errors:
            raise errors[0]
        yield stacks
    finally:
        for stack in stacks:
            stack.stop()


def in_parallel(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads; their results in order (the first exception is raised)."""
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def wait_for(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """The first truthy result of `check`, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = check()
    return result


# -- estates ---------------------------------------------------------------------------------------------
def vm_id(group: str, name: str, subscription: str = SUB) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def vm_key(group: str, name: str) -> str:
    return f"{group};{name}".lower()


def key_of_id(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return vm_key(parts[3], parts[-1])


@dataclass
class Estate:
    """A seeded estate and what the rules say about each VM."""

    vms: list[dict[str, Any]] = field(default_factory=list)
    protections: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # vm key -> policy the rules select
    needs_write: set[str] = field(default_factory=set)  # vm keys that need a protection write
    needs_enable: set[str] = field(default_factory=set)  # of those, the unprotected ones

    def seed(self, stack: RelStack, emit_events: bool = False, chunk: int = 2000) -> None:
        """Seed the estate (with the rules' policies in both vaults, as the app would have made them,
        when it has protections)."""
        if self.protections:
            stack.seed(policies=sandbox_vault_policies())
        for start in range(0, max(len(self.vms), 1), chunk):
            stack.seed(
                vms=self.vms[start : start + chunk],
                protections=self.protections if start == 0 else [],
                jobs=self.jobs if start == 0 else [],
                emitEvents=emit_events,
            )


def sweep_estate(count: int, group_prefix: str = "rg-sweep", fixes: int | None = None) -> Estate:
    """`count` VMs in westeurope and eastus: most protected as the rules say; of every 20, two
    unprotected, one on the wrong policy and one with stopped protection (each needs one protection
    write; at most `fixes` of them when given), one untagged and one opted out (left alone).
    Groups of 50 VMs."""
    estate = Estate()
    for i in range(count):
        group = f"{group_prefix}-{i // 50:03d}"
        name = f"vm-{i:05d}"
        location = "westeurope" if i % 3 else "eastus"
        vault = WEU_VAULT if location == "westeurope" else EUS_VAULT
        policy = "gold" if i % 2 else "silver"
        kind = i % 20
        if kind < 4 and fixes is not None and len(estate.needs_write) >= fixes:
            kind = 4  # healthy
        key = vm_key(group, name)
        tags = {"backup-policy": policy}
        if kind == 18:
            tags = {"owner": "team-a"}
        elif kind == 19:
            tags = {"backup-policy": "none"}
        estate.vms.append(
            {"subscriptionId": SUB, "resourceGroup": group, "name": name, "location": location, "tags": tags}
        )
        if kind >= 18:
            continue
        estate.expected[key] = policy
        if kind in (0, 1):  # unprotected
            estate.needs_write.add(key)
            estate.needs_enable.add(key)
            continue
        state = "Protected"
        seeded_policy = policy
        if kind == 2:  # the wrong policy
            seeded_policy = "silver" if policy == "gold" else "gold"
            estate.needs_write.add(key)
        elif kind == 3:  # protection stopped
            state = "ProtectionStopped"
            estate.needs_write.add(key)
        estate.protections.append(
            {"vmId": vm_id(group, name), "vaultId": vault, "policy": seeded_policy, "state": state}
        )
        estate.jobs.append({"vmId": vm_id(group, name), "outcome": "Completed", "hoursAgo": 3})
    return estate


def new_vms(count: int, group: str, start: int = 0, selected_only: bool = False) -> Estate:
    """`count` VMs to be created (their ResourceWriteSuccess events drive protect-on-create): gold and
    silver in both vault regions, and (unless `selected_only`) of every ten one untagged, one opted
    out and one in a region without a vault."""
    estate = Estate()
    for i in range(start, start + count):
        name = f"new-{i:05d}"
        kind = 0 if selected_only else i % 10
        location = ("westeurope", "eastus")[i % 2]
        tags: dict[str, str] = {"backup-policy": "gold" if i % 4 < 2 else "silver"}
        if kind == 7:
            tags = {}
        elif kind == 8:
            tags = {"backup-policy": "none"}
        elif kind == 9:
            location = "northeurope"  # no vault there: needs attention, nothing written
        estate.vms.append(
            {"subscriptionId": SUB, "resourceGroup": group, "name": name, "location": location, "tags": tags}
        )
        if tags.get("backup-policy") in ("gold", "silver") and location != "northeurope":
            key = vm_key(group, name)
            estate.expected[key] = tags["backup-policy"]
            estate.needs_write.add(key)
            estate.needs_enable.add(key)
    return estate


def function_timeout_seconds() -> float:
    """host.json functionTimeout of the app, in seconds."""
    hours, minutes, seconds = json.loads((REPO / "host.json").read_text())["functionTimeout"].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# -- reading armsim's request log --------------------------------------------------------------------
_CONTAINER = re.compile(r"/protectionContainers/([^/]+)/protectedItems/([^/?]+)", re.IGNORECASE)


def item_key(path: str) -> str | None:
    """The VM key of a protected-item path (.../protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg;vm/...)."""
    match = _CONTAINER.search(path)
    if not match:
        return None
    parts = match.group(2).split(";")
    return vm_key(parts[-2], parts[-1]) if len(parts) >= 2 else None


def arm_requests(log: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ARM requests of a log (not armsim's control API, Event Grid topics or the token endpoint)."""
    return [
        e for e in log if not str(e.get("operation", "")).startswith(("Control_", "EventGrid_", "Unknown"))
    ]


def ok(entry: dict[str, Any]) -> bool:
    return 200 <= int(entry["status"]) < 300


def is_write(entry: dict[str, Any]) -> bool:
    return str(entry.get("operation", "")).endswith(ARM_WRITES)


def writes_by_vm(log: Iterable[dict[str, Any]], operation: str) -> Counter[str]:
    """Successful (2xx) requests of one write operation, per VM key."""
    counts: Counter[str] = Counter()
    for entry in log:
        if entry["operation"] == operation and ok(entry):
            key = item_key(entry["path"])
            if key:
                counts[key] += 1
    return counts


def retry_after_violations(log: Iterable[dict[str, Any]], retry_after: float) -> list[str]:
    """Requests sent again before the Retry-After of the 429 (or 503) they follow had passed.

    azure-core sends a request's retries with the same x-ms-client-request-id, so the next request
    with that id after a 429 at time t with Retry-After N must come at t + N or later."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        if entry.get("clientRequestId"):
            by_id[entry["clientRequestId"]].append(entry)
    violations = []
    for request_id, entries in by_id.items():
        entries.sort(key=lambda e: e["t"])
        for first, then in itertools.pairwise(entries):
            if first["status"] not in (429, 503):
                continue
            wait = float(first.get("retryAfter", retry_after))
            if then["t"] < first["t"] + wait:
                violations.append(
                    f"{request_id}: {first['status']} {first['operation']} at {first['t']:.3f} "
                    f"(Retry-After {wait:g}) then again after {then['t'] - first['t']:.3f} s"
                )
    return violations


def retried_ids(log: Iterable[dict[str, Any]]) -> int:
    """How many requests were retries by azure-core: sent again with the client request id of a
    request answered 429 or 5xx. (An operation's status polls share its id too, so ids that merely
    repeat are not counted.)"""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        if entry.get("clientRequestId"):
            by_id[entry["clientRequestId"]].append(entry)
    retries = 0
    for entries in by_id.values():
        entries.sort(key=lambda e: e["t"])
        retries += sum(1 for a, _ in itertools.pairwise(entries) if a["status"] in (429, 500, 502, 503, 504))
    return retries


def lro_waits(log: Iterable[dict[str, Any]], operation: str = "ProtectedItems_CreateOrUpdate") -> list[float]:
    """Seconds from each accepted write of `operation` to the last request with its client request id
    (azure-core polls the operation's status with the id of the request that started it)."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        if entry.get("clientRequestId"):
            by_id[entry["clientRequestId"]].append(entry)
    waits = []
    for entries in by_id.values():
        entries.sort(key=lambda e: e["t"])
        starts = [e for e in entries if e["operation"] == operation and ok(e)]
        if starts:
            waits.append(entries[-1]["t"] - starts[0]["t"])
    return waits


# -- the host's log ------------------------------------------------------------------------------------
_FAILED = re.compile(r"Executed 'Functions\.(\w+)' \(Failed, Id=([0-9a-f-]+)")
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)[\w.]*)(?::|$)")


def failed_invocations(log_text: str) -> list[tuple[str, str]]:
    """(function, exception type) of every invocation the host logged as Failed."""
    lines = log_text.splitlines()
    result = []
    for index, line in enumerate(lines):
        match = _FAILED.search(line)
        if not match:
            continue
        exception = "?"
        for following in lines[index + 1 : index + 200]:
            if following.startswith("["):  # the next log record
                break
            found = _EXC_LINE.match(following.strip())
            if found:
                exception = found.group(1).rsplit(".", 1)[-1]
        result.append((match.group(1), exception))
    return result


# What a function may raise so that its trigger retries it (Event Grid redelivers, the queue message
# comes back): the product's TransientError, and azure-core's errors for Azure or storage answering
# an error (HttpResponseError and its subclasses) or not answering.
RETRY_SIGNALS = {
    "TransientError",
    "HttpResponseError",
    "ResourceExistsError",
    "ResourceNotFoundError",
    "ResourceModifiedError",
    "ServiceRequestError",
    "ServiceResponseError",
}


def unexpected_failures(log_text: str) -> list[tuple[str, str]]:
    return [(f, e) for f, e in failed_invocations(log_text) if e not in RETRY_SIGNALS]


# -- Event Grid deliveries -----------------------------------------------------------------------------
@dataclass
class Deliveries:
    events: int  # resource events the subscription matched and delivered at least once
    attempts: int
    retried: int  # attempts answered with an error and tried again
    final_5xx: int  # events whose last attempt was an error (dead-lettered or still failing)
    dead_letters: int
    pending: set[str]  # event ids with no 200 yet


def deliveries(stack: RelStack) -> Deliveries:
    data = stack.events()
    last: dict[str, int] = {}
    attempts = 0
    errors = 0
    for delivery in sorted(data["deliveries"], key=lambda d: d["time"]):
        attempts += 1
        if delivery["status"] != 200:
            errors += 1
        for event_id in delivery["eventIds"]:
            if last.get(event_id) != 200:
                last[event_id] = delivery["status"]
    pending = {e for e, s in last.items() if s != 200}
    dead = len(data["deadLetters"])
    return Deliveries(len(last), attempts, errors, len(pending), dead, pending)


def all_delivered(stack: RelStack, expected_events: int) -> bool:
    d = deliveries(stack)
    return d.events >= expected_events and not d.pending


# -- end state -----------------------------------------------------------------------------------------
def protected_items(stack: RelStack) -> dict[str, tuple[str, str]]:
    """vm key -> (policy, protection state) of every protected item in the sandbox vaults (read
    through ARM as a test request, so the app's request counts are not touched)."""
    items: dict[str, tuple[str, str]] = {}
    for vault in (WEU_VAULT, EUS_VAULT):
        url = f"{vault}/backupProtectedItems?$filter=backupManagementType eq 'AzureIaasVM'"
        while url:
            page = stack.arm("GET", url, api_version="2025-02-01")
            for item in page.get("value", []):
                props = item["properties"]
                key = key_of_id(props.get("sourceResourceId") or props.get("virtualMachineId") or "")
                items[key] = (
                    str(props.get("policyId") or props.get("policyName") or "").rsplit("/", 1)[-1].lower(),
                    str(props.get("protectionState", "")),
                )
            url = page.get("nextLink") or ""
    return items


def unprotected(stack: RelStack, expected: dict[str, str]) -> dict[str, str]:
    """The selected VMs that are not protected under the policy the rules name: vm key -> why."""
    items = protected_items(stack)
    wrong = {}
    for key, policy in expected.items():
        found = items.get(key)
        if found is None:
            wrong[key] = "not protected"
        elif found[1] == "ProtectionStopped":
            wrong[key] = "protection stopped"
        elif not found[0].startswith(policy):
            wrong[key] = f"policy {found[0]}, not {policy}"
    return wrong


# -- audit against writes -------------------------------------------------------------------------------
# The audit actions that account for each kind of ARM write the product makes.
AUDIT_FOR = {
    "ProtectedItems_CreateOrUpdate": {
        "enable-protection",
        "change-policy",
        "resume-protection",
        "stop-protection",
        "undelete",
    },
    "Backups_Trigger": {"first-backup", "backup-now", "retry-backup"},
    "ProtectionPolicies_CreateOrUpdate": {"create-policy", "update-policy"},
    "BackupResourceStorageConfigsNonCRR_Patch": {"set-redundancy"},
}
# Writes that change no configuration (discovery), so are not audit actions.
NOT_CHANGES = {"ProtectionContainers_Refresh"}


def audit_target(row: dict[str, Any]) -> str:
    vm = str(row.get("VmId", ""))
    if "/virtualmachines/" in vm.lower():
        return key_of_id(vm)
    return vm.lower()


def write_target(entry: dict[str, Any]) -> str:
    key = item_key(entry["path"])
    if key:
        return key
    path = entry["path"].lower()
    return path.split("/backuppolicies/")[0].split("/backupstorageconfig")[0]


def unaudited_writes(log: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> list[str]:
    """Successful ARM writes of the app that no audit row accounts for: for each target (VM or vault)
    and kind of write, the writes beyond the number of matching audit rows. An action that reached
    Azure was a change whether or not the app saw its end, so it must be audited."""
    writes: Counter[tuple[str, str]] = Counter()
    for entry in log:
        if is_write(entry) and ok(entry) and entry["operation"] not in NOT_CHANGES:
            writes[(entry["operation"], write_target(entry))] += 1
    audited: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for operation, actions in AUDIT_FOR.items():
            if row.get("Action") in actions and _row_is_a_change(row):
                audited[(operation, audit_target(row))] += 1
                if row.get("Action") == "resume-protection" and "soft-deleted" in str(row.get("Reason", "")):
                    # One decision, two writes (undelete, then resume), one row that names both.
                    audited[(operation, audit_target(row))] += 1
    missing = []
    for (operation, target), count in sorted(writes.items()):
        if operation not in AUDIT_FOR:
            missing.append(f"{count} x {operation} on {target}: no audit action covers this operation")
            continue
        if audited[(operation, target)] < count:
            missing.append(
                f"{operation} on {target}: {count} write(s), {audited[(operation, target)]} audit row(s)"
            )
    return missing


def _row_is_a_change(row: dict[str, Any]) -> bool:
    """A row that records a change made: not a refusal, a failure, or the intent row the product
    writes before a change ("starting") and its closing when the change was not needed ("closed")."""
    outcome = str(row.get("Outcome", "")).lower()
    return not outcome.startswith(("refused", "failed", "starting", "closed"))


def change_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if _row_is_a_change(r)]


def audit_without_write(log: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> list[str]:
    """Audit rows that claim a change no successful write made (the other direction)."""
    writes: Counter[tuple[str, str]] = Counter()
    for entry in log:
        if is_write(entry) and ok(entry):
            writes[(entry["operation"], write_target(entry))] += 1
    extra = []
    for row in rows:
        if not _row_is_a_change(row):
            continue
        for operation, actions in AUDIT_FOR.items():
            if row.get("Action") in actions and writes[(operation, audit_target(row))] == 0:
                extra.append(f"{row.get('Action')} on {audit_target(row)} without a {operation}")
    return extra
