"""Test support for armsim: one sandbox in-process and one started from its command line, both
trusted through REQUESTS_CA_BUNDLE (they share one CA), and a small client of the control API.

Tests take the `arm` fixture (tests/conftest.py), which runs each test against both modes and
resets the sandbox before every test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo

from armsim import SANDBOX_SUBSCRIPTION, ArmSim

REPO = Path(__file__).resolve().parents[1]
ARM_SCOPE = "https://management.azure.com/.default"


@dataclass
class Sandbox:
    """One running armsim, whichever way it was started."""

    mode: str
    url: str
    ca_path: Path
    identity_header: str
    data_dir: Path
    subscription: str = SANDBOX_SUBSCRIPTION
    process: subprocess.Popen[str] | None = None
    inprocess: ArmSim | None = None
    _session: requests.Session = field(default_factory=requests.Session)

    # -- the control API -------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.url}/_armsim{path}", json=body, verify=str(self.ca_path), timeout=60
        )
        if response.status_code >= 400:
            raise AssertionError(f"armsim control {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        self.control("POST", "/reset")

    def seed(self, **spec: Any) -> dict[str, int]:
        result: dict[str, int] = self.control("POST", "/seed", spec)
        return result

    def configure(self, **settings: Any) -> None:
        self.control("POST", "/config", settings)

    def faults(self, **settings: Any) -> None:
        self.control("POST", "/faults", settings)

    def clock(self, **change: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "/clock", change)
        return result

    def stats(self, log: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "/stats?log=1" if log else "/stats")
        return result

    def reset_stats(self) -> None:
        self.control("POST", "/stats/reset")

    def events(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "/events")
        return result

    # -- the environment SDK clients read ----------------------------------------------------
    def activate(self) -> None:
        """Point DefaultAzureCredential's managed identity and the CA bundle at this sandbox."""
        os.environ["REQUESTS_CA_BUNDLE"] = str(self.ca_path)
        os.environ["IDENTITY_ENDPOINT"] = f"{self.url}/_armsim/identity/token"
        os.environ["IDENTITY_HEADER"] = self.identity_header

    def credential(self) -> Any:
        from azure.identity import DefaultAzureCredential

        self.activate()
        return DefaultAzureCredential()

    def arm_kwargs(self, **extra: Any) -> dict[str, Any]:
        return {"base_url": self.url, "credential_scopes": [ARM_SCOPE], "polling_interval": 0.05, **extra}

    def stop(self) -> None:
        if self.inprocess is not None:
            self.inprocess.stop()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_inprocess(data_dir: Path) -> Sandbox:
    sim = ArmSim(port=0, data_dir=data_dir).start()
    return Sandbox("inprocess", sim.url, sim.ca_path, sim.identity_header, data_dir, inprocess=sim)


def start_cli(data_dir: Path, certs_from: Path | None = None) -> Sandbox:
    """`python -m armsim --port 0 --data DIR`, reusing another sandbox's certificates if given."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if certs_from is not None:
        for name in ("ca.pem", "server.pem", "server-key.pem"):
            shutil.copy(certs_from / name, data_dir / name)
    process = subprocess.Popen(
        [sys.executable, "-m", "armsim", "--port", "0", "--data", str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.time() + 30
    url = ""
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            url = line.split("listening on", 1)[1].split()[0]
            break
    if not url:
        process.kill()
        raise RuntimeError("armsim did not start from its command line")
    sandbox = Sandbox(
        "cli",
        url,
        data_dir / "ca.pem",
        (data_dir / "identity-header").read_text().strip(),
        data_dir,
        process=process,
    )
    health = requests.get(f"{url}/_armsim/health", verify=str(sandbox.ca_path), timeout=10)
    assert health.status_code == 200, health.text
    return sandbox


# -- seeds the integration tests share (request bodies: tests/bodies.py) ----------------------------
def sandbox_vault_policies() -> list[dict[str, Any]]:
    """The sandbox rules' policies in every vault of the rules, as the app would have made them (a
    seed for armsim's control API)."""
    from autopilot.rules import load_rules

    rules = load_rules(str(Path(__file__).resolve().parents[1] / "rules" / "sandbox.yaml"))
    return [
        {"vaultId": v.resource_id, "name": p.name, "properties": p.to_arm_properties()}
        for v in rules.vaults
        for p in rules.policies
    ]


# -- clients and endpoints the integration tests share ---------------------------------------------
def sdk_clients(arm: Sandbox) -> dict[str, Any]:
    """The real management clients (resources, compute, network, vaults, backup) against `arm`, without
    retries."""
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.recoveryservices import RecoveryServicesClient
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    credential = arm.credential()
    kwargs = arm.arm_kwargs(retry_total=0)
    return {
        "resources": ResourceManagementClient(credential, arm.subscription, **kwargs),
        "compute": ComputeManagementClient(credential, arm.subscription, **kwargs),
        "network": NetworkManagementClient(credential, arm.subscription, **kwargs),
        "vaults": RecoveryServicesClient(credential, arm.subscription, **kwargs),
        "backup": RecoveryServicesBackupClient(credential, arm.subscription, **kwargs),
    }


class FixedToken:
    """A credential that always presents one token (to send armsim an expired or misdirected one)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


class Webhook:
    """An HTTP endpoint on 127.0.0.1 that answers Event Grid's validation handshake, records every POST
    (headers and JSON body) and answers notifications with the statuses it is given, then 200."""

    def __init__(self, answers: list[int] | None = None, validate: bool = True) -> None:
        self.answers = list(answers or [])
        self.validate = validate
        self.received: list[tuple[dict[str, str], Any]] = []
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with hook._lock:
                    hook.received.append((headers, body))
                    status = 200
                    answer: Any = None
                    if headers.get("aeg-event-type") == "SubscriptionValidation":
                        if hook.validate:
                            answer = {"validationResponse": body[0]["data"]["validationCode"]}
                        else:
                            status = 403
                    elif hook.answers:
                        status = hook.answers.pop(0)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/events"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def notifications(self) -> list[tuple[dict[str, str], Any]]:
        with self._lock:
            return [(h, b) for h, b in self.received if h.get("aeg-event-type") == "Notification"]

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], Any]]:
        """The notifications once at least `count` have arrived (or what arrived by the deadline)."""
        deadline = time.time() + timeout
        while len(self.notifications()) < count and time.time() < deadline:
            time.sleep(0.02)
        return self.notifications()
