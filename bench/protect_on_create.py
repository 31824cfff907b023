"""Protect on creation, measured on the local stack (Azurite, armsim, the app on devhost):

- the time from a VM's creation (its PUT returning) to its "protected" outcome, over 50 VMs (p50, p95),
  with armsim's own delays at zero;
- ARM requests the app made per protected VM, from armsim's request log (the app's requests are
  those with its User-Agent; the bench's own VM and resource group calls are left out);
- cold start: importing function_app in a fresh process, against importing the six card packages
  eagerly (clients included), in the same run.

    python -m bench.protect_on_create
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VMS = 50
USER_AGENT = "backup-autopilot/"
APP_IMPORT = "import function_app"
CARD_IMPORT = (
    "import azure.functions, azure.identity, azure.eventgrid, azure.monitor.query; "
    "from azure.mgmt.compute import ComputeManagementClient; "
    "from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient; "
    "from azure.identity import DefaultAzureCredential; from azure.eventgrid import EventGridPublisherClient; "
    "from azure.monitor.query import LogsQueryClient"
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def import_seconds(statement: str, runs: int = 7) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def latency_and_requests() -> None:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from armsim import SANDBOX_SUBSCRIPTION
    from devhost.stack import Stack
    from tests.bodies import vm_body

    run_dir = Path(tempfile.mkdtemp(prefix="bench-protect-"))
    stack = Stack.ephemeral(run_dir, lroSeconds=0, snapshotSeconds=0, transferSeconds=0).start()
    try:
        credential = DefaultAzureCredential()
        kwargs: dict[str, Any] = {"base_url": stack.armsim.url, "polling_interval": 0.05}
        compute = ComputeManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs)
        ResourceManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs).resource_groups.create_or_update(
            "rg-bench", {"location": "westeurope"}
        )
        stack._control("POST", "/stats/reset")
        created: dict[str, float] = {}

        def create(index: int) -> None:
            name = f"bench-vm-{index:03d}"
            compute.virtual_machines.begin_create_or_update(
                "rg-bench",
                name,
                vm_body(name, "westeurope", {"backup-policy": "gold" if index % 2 else "silver"}),
            ).result()
            created[name] = time.time()

        started = time.time()
        with ThreadPoolExecutor(5) as pool:
            list(pool.map(create, range(VMS)))
        protected: dict[str, float] = {}
        deadline = time.time() + 120
        while len(protected) < VMS and time.time() < deadline:
            for event in stack._control("GET", "/eventgrid/topics/autopilot-events")["events"]:
                name = str(event["subject"]).rsplit("/", 1)[-1]
                if event["type"] == "BackupAutopilot.VM.Protected" and name not in protected:
                    protected[name] = _received(stack, event)
            time.sleep(0.05)
        log = stack._control("GET", "/stats?log=1")["log"]
    finally:
        stack.stop()
    delays = [protected[name] - created[name] for name in protected]
    # The app's requests are told apart by its User-Agent (the bench's own SDK calls have another).
    by_operation: dict[str, int] = {}
    for entry in log:
        if USER_AGENT in entry.get("userAgent", "") and not entry["path"].startswith("/_armsim"):
            by_operation[entry["operation"]] = by_operation.get(entry["operation"], 0) + 1
    app_requests = sum(by_operation.values())
    print(
        f"protect-on-create: {len(protected)}/{VMS} VMs protected in {max(protected.values()) - started:.1f} s (5 creating at a time)"
    )
    print(
        f"protect-on-create: creation -> protected outcome p50 {percentile(delays, 0.5):.2f} s, p95 {percentile(delays, 0.95):.2f} s, max {max(delays):.2f} s (target p95 <= 2 s)"
    )
    print(
        f"protect-on-create: ARM requests by the app: {app_requests} = {app_requests / max(1, len(protected)):.2f} per protected VM (target <= 6)"
    )
    print(
        "protect-on-create: by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(by_operation.items()))
    )


def _received(stack: Any, event: dict[str, Any]) -> float:
    """When armsim's topic received the outcome event (its 'received' stamp), as a Unix time."""
    import datetime as dt

    from armsim.eventgrid.models import EventGridBackend

    topic = stack.armsim.world.backend(EventGridBackend).topic("autopilot-events")
    for entry in topic["events"]:
        if entry["event"]["id"] == event["id"]:
            return dt.datetime.fromisoformat(
                entry["received"].replace("Z", "+00:00")[:26] + "+00:00"
            ).timestamp()
    return time.time()


def cold_start() -> None:
    app = import_seconds(APP_IMPORT)
    card = import_seconds(CARD_IMPORT)
    print(
        f"cold start: import function_app {app * 1000:.0f} ms; the six card packages eagerly {card * 1000:.0f} ms; ratio {app / card:.2f} (target <= 0.5); median of 7 fresh processes each"
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cold_start()
    latency_and_requests()


if __name__ == "__main__":
    main()
