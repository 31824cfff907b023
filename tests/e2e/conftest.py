"""The e2e level: `make serve`'s stack (Azurite, armsim, the app on devhost) on free ports, driven
through the real SDK clients as a user would."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
from azure.mgmt.resource.resources import ResourceManagementClient

from armsim import SANDBOX_SUBSCRIPTION
from devhost.stack import Stack
from tests.bodies import vm_body

T = TypeVar("T")


class E2E:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.armsim.url
        credential = DefaultAzureCredential()
        kwargs = {"base_url": self.url, "polling_interval": 0.1}
        self.resources = ResourceManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs)
        self.compute = ComputeManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs)
        self.backup = RecoveryServicesBackupClient(credential, SANDBOX_SUBSCRIPTION, **kwargs)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.url}/_armsim{path}", json=body, verify=str(self.stack.armsim.ca_path), timeout=60
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def app(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        assert self.stack.host is not None
        headers = {"x-functions-key": self.stack.values["DEVHOST_FUNCTION_KEY"], **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.stack.host.url}{path}", headers=headers, timeout=60, **kwargs)

    def outcome_events(self, vm_name: str) -> list[dict[str, Any]]:
        events = self.control("GET", "/eventgrid/topics/autopilot-events")["events"]
        return [
            e
            for e in events
            if str(e.get("subject", "")).lower().endswith(f"/virtualmachines/{vm_name.lower()}")
        ]

    def delivered(self, vm_name: str, copies: int = 1) -> bool:
        """Whether every resource event of the VM reached the app (answered 200) `copies` times."""
        events = self.control("GET", "/events")
        ids = {
            e["id"]
            for e in events["resourceEvents"]
            if e["subject"].lower().endswith(f"/virtualmachines/{vm_name.lower()}")
        }
        done: dict[str, int] = {}
        for delivery in events["deliveries"]:
            if delivery["status"] == 200:
                for event_id in delivery["eventIds"]:
                    done[event_id] = done.get(event_id, 0) + 1
        return bool(ids) and all(done.get(i, 0) >= copies for i in ids)

    def create_vm(self, group: str, name: str, location: str, tags: dict[str, str], **properties: Any) -> Any:
        self.resources.resource_groups.create_or_update(group, {"location": location})
        return self.compute.virtual_machines.begin_create_or_update(
            group, name, vm_body(name, location, tags, **properties)
        ).result()

    def item(self, vault: str, group: str, name: str) -> Any | None:
        container = f"iaasvmcontainerv2;{group};{name}"
        try:
            return self.backup.protected_items.get(
                vault, "rg-autopilot-backup", "Azure", f"IaasVMContainer;{container}", f"VM;{container}"
            )
        except ResourceNotFoundError:
            return None


def wait_for(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.1) -> T:
    """The first truthy result of `check`, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    result = check()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = check()
    return result


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    run_dir: Path = tmp_path_factory.mktemp("stack")
    # A new VM's agent reports Ready as soon as it is created here (armsim, as Azure: a while later),
    # to isolate what these tests check from the wait for the agent; the first backup that waits for
    # it has its own tests (test_protect_on_create.py), which set armsim's agentReadySeconds.
    stack = Stack.ephemeral(run_dir, snapshotSeconds=1.0, transferSeconds=2.0, agentReadySeconds=0)
    stack.start()
    try:
        yield E2E(stack)
    finally:
        stack.stop()


@contextlib.contextmanager
def app_settings(**values: str) -> Iterator[None]:
    """Change app settings for a test, as an operator would, and put them back afterwards."""
    from autopilot.app import get_autopilot
    from autopilot.settings import get_settings

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    get_autopilot.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        get_autopilot.cache_clear()
