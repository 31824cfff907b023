"""`make serve`: the whole local stack, wired together.

    Azurite (tables, queues, blobs)   http://127.0.0.1:10000-10002
    armsim (the Azure sandbox)        https://127.0.0.1:8443
    the function app on devhost       http://127.0.0.1:7071

It writes local.settings.json (from local.settings.template.json) with every value the app needs
for the sandbox, subscribes the app's Event Grid trigger to armsim's resource events, prints when
it is ready, and stops everything on Ctrl-C. This launcher is the one place that knows about both
armsim and the app; neither knows about the other.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devhost.azurite import Azurite
from devhost.host import Host

REPO = Path(__file__).resolve().parents[1]
SANDBOX_RULES = "rules/sandbox.yaml"
EVENT_FUNCTION = "protect_on_create"
EVENT_TOPIC = "autopilot-events"
SANDBOX_WORKSPACE = "00000000-0000-0000-0000-0000000000a1"  # armsim's default Log Analytics workspace
VM_OPERATIONS = ["Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/delete"]

log = logging.getLogger("devhost.stack")


@dataclass
class Stack:
    """Azurite + armsim + the app; ports 0 pick free ones (tests), the defaults are `make serve`'s."""

    app_dir: Path = REPO
    run_dir: Path = REPO / ".run"
    armsim_port: int = 8443
    host_port: int = 7071
    azurite_ports: tuple[int, int, int] = (10000, 10001, 10002)
    settings_file: Path | None = None  # default: app_dir/local.settings.json
    sandbox_config: dict[str, Any] = field(default_factory=dict)
    persist: bool = True
    azurite: Azurite | None = None
    armsim: Any = None
    host: Host | None = None
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ephemeral(
        cls, run_dir: Path, app_dir: Path = REPO, settings_file: Path | None = None, **sandbox: Any
    ) -> Stack:
        """A stack on free ports that keeps nothing (tests, benchmarks, the demo); `sandbox` are
        armsim settings such as snapshotSeconds=1."""
        return cls(
            app_dir=app_dir,
            run_dir=run_dir,
            armsim_port=0,
            host_port=0,
            azurite_ports=(0, 0, 0),
            settings_file=settings_file or run_dir / "local.settings.json",
            persist=False,
            sandbox_config=sandbox,
        )

    def start(self) -> Stack:
        from armsim import SANDBOX_SUBSCRIPTION, ArmSim

        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            blob, queue, table = self.azurite_ports
            self.azurite = Azurite(
                blob_port=blob,
                queue_port=queue,
                table_port=table,
                location=self.run_dir / "azurite" if self.persist else None,
            ).start()
            self.armsim = ArmSim(
                port=self.armsim_port, data_dir=self.run_dir / "armsim" if self.persist else None
            ).start()
            if self.sandbox_config:
                self._control("POST", "/config", self.sandbox_config)
            self._provision_vaults()
            topic = self._control("GET", f"/eventgrid/topics/{EVENT_TOPIC}")
            self.values = self._write_settings(SANDBOX_SUBSCRIPTION, topic["endpoint"])
            _forget_cached_settings()
            self.host = Host(self.app_dir, port=self.host_port, settings=self._host_settings()).start()
            self._subscribe(SANDBOX_SUBSCRIPTION)
        except BaseException:
            self.stop()  # nothing started is left running when a later part fails
            raise
        return self

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
        if self.armsim is not None:
            self.armsim.stop()
        if self.azurite is not None:
            self.azurite.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- wiring ----------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.armsim.url}/_armsim{path}", json=body, verify=str(self.armsim.ca_path), timeout=60
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def _provision_vaults(self) -> None:
        """What `azd up` does in Azure: the vaults the rules file names (policies are the app's job)."""
        from autopilot.rules import load_rules

        rules = load_rules(str(self.app_dir / SANDBOX_RULES))
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
        self._control("POST", "/seed", {"vaults": vaults, "storageAccounts": _staging_accounts(rules)})

    def _write_settings(self, subscription: str, events_endpoint: str) -> dict[str, str]:
        """local.settings.json for the sandbox: the template's keys, the sandbox's values, and
        whatever else the user added (kept)."""
        path = self.settings_file or self.app_dir / "local.settings.json"
        template = json.loads((REPO / "local.settings.template.json").read_text())
        current = json.loads(path.read_text()) if path.exists() else template
        values: dict[str, str] = {**template["Values"], **current.get("Values", {})}
        assert self.azurite is not None
        values.update(
            {
                "AzureWebJobsStorage": self.azurite.connection_string,
                "AUTOPILOT_ARM_ENDPOINT": self.armsim.url,
                "AUTOPILOT_SUBSCRIPTIONS": subscription,
                "AUTOPILOT_RULES": str(self.app_dir / SANDBOX_RULES),
                "AUTOPILOT_EVENTS_ENDPOINT": events_endpoint,
                "AUTOPILOT_LOGS_ENDPOINT": f"{self.armsim.url}/loganalytics",
                "AUTOPILOT_LOGS_WORKSPACE_ID": SANDBOX_WORKSPACE,
                "REQUESTS_CA_BUNDLE": str(self.armsim.ca_path),
                "IDENTITY_ENDPOINT": f"{self.armsim.url}/_armsim/identity/token",
                "IDENTITY_HEADER": self.armsim.identity_header,
            }
        )
        for key in ("DEVHOST_FUNCTION_KEY", "DEVHOST_MASTER_KEY", "DEVHOST_EVENTGRID_KEY"):
            if not values.get(key):
                values[key] = secrets.token_urlsafe(24)
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n")
        path.chmod(0o600)
        return values

    def _host_settings(self) -> dict[str, str]:
        # The values win over an environment that may point elsewhere (e.g. a developer's real Azure).
        return dict(self.values)

    def _subscribe(self, subscription: str) -> None:
        assert self.host is not None
        endpoint = f"{self.host.url}/runtime/webhooks/eventgrid?functionName={EVENT_FUNCTION}&code={self.values['DEVHOST_EVENTGRID_KEY']}"
        existing = self._control("GET", "/eventgrid/subscriptions")["value"]
        for subscription_spec in existing:
            self._control("DELETE", f"/eventgrid/subscriptions/{subscription_spec['name']}")
        self._control(
            "POST",
            "/eventgrid/subscriptions",
            {
                "name": "autopilot-vm-writes",
                "endpoint": endpoint,
                "subscriptionId": subscription,
                "includedEventTypes": [
                    "Microsoft.Resources.ResourceWriteSuccess",
                    "Microsoft.Resources.ResourceDeleteSuccess",
                ],
                "advancedFilters": [
                    {"operatorType": "StringIn", "key": "data.operationName", "values": VM_OPERATIONS}
                ],
                "maxEventsPerBatch": 10,
            },
        )

    def describe(self) -> str:
        assert self.host is not None and self.azurite is not None
        return "\n".join(
            [
                f"armsim (Azure sandbox)  {self.armsim.url}   CA: {self.armsim.ca_path}",
                f"Azurite                 {self.azurite.connection_string.split(';')[3]} (blob, queue, table)",
                f"function app (devhost)  {self.host.url}",
                f"settings                {self.settings_file or self.app_dir / 'local.settings.json'}",
                self.host.describe(),
            ]
        )


def _staging_accounts(rules: Any) -> list[dict[str, Any]]:
    """What `azd up` makes for restore drills: each region's staging group and storage account
    (Standard LRS, in the vaults' region), in the subscriptions of the region's vaults."""
    if rules.drills is None:
        return []
    accounts: dict[tuple[str, str], dict[str, Any]] = {}
    for vault in rules.vaults:
        staging = rules.drills.staging_for(vault.subscription_id, vault.region)
        if staging is not None:
            subscription = staging.subscription or vault.subscription_id
            accounts[(subscription, staging.storage_account)] = {
                "subscriptionId": subscription,
                "resourceGroup": staging.resource_group,
                "name": staging.storage_account,
                "location": staging.region,
                "sku": "Standard_LRS",
                "kind": "StorageV2",
            }
    return list(accounts.values())


def _forget_cached_settings() -> None:
    """The app caches its settings per process; an in-process stack (tests) starts with fresh ones."""
    from autopilot.app import get_autopilot
    from autopilot.settings import get_settings

    get_settings.cache_clear()
    get_autopilot.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="start from an empty sandbox and empty storage")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    stack = Stack(persist=not args.fresh)
    try:
        stack.start()
    except Exception as exc:
        print(f"make serve: could not start the stack: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    print(stack.describe(), flush=True)
    print("Ready. Create VMs in the sandbox (see README); Ctrl-C stops everything.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    print("Stopping...", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
