"""Bursts of new VMs protected on creation, on the local stack (Azurite, armsim, the app on devhost)
with ARM's throttling on at ARM's figures (reads 250 at 25/s, writes 200 at 10/s per subscription and
principal):

- 1,000 tagged VMs appear at once in one subscription (armsim's seed with their ResourceWriteSuccess
  events, so that the creations themselves spend none of the app's tokens): the time until every VM
  is protected against the token-bucket minimum for the ARM requests the app made (ratio; the buckets
  start full), requests per VM, 429s the app received, and p50/p95 from a VM's appearance to its
  Protected outcome;
- 20 VMs created at once through the Compute API: p50/p95 from each VM's PUT to its protected-item
  PUT, from armsim's request log.

    python -m bench.burst
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
USER_AGENT = "backup-autopilot/"
BURST = 1000
SMALL_BURST = 20
BUCKETS = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
KIND_OF = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def bucket_minimum(counts: dict[str, int]) -> float:
    """The least time ARM's buckets (full at the start) need to admit these requests."""
    return max(
        max(0.0, (counts.get(kind, 0) - capacity) / rate) for kind, (capacity, rate) in BUCKETS.items()
    )


def app_entries(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if USER_AGENT in e.get("userAgent", "") and not e["path"].startswith("/_armsim")]


def start_stack(run_dir: Path) -> Any:
    from devhost.stack import Stack

    # Backups take their time as in Azure's order of magnitude scaled down; protection operations
    # finish at once (their LRO waits do not spend tokens).
    return Stack.ephemeral(run_dir, lroSeconds=0, snapshotSeconds=5, transferSeconds=10).start()


def protected_times(stack: Any) -> dict[str, float]:
    """VM name -> when armsim's topic received its Protected outcome (Unix time)."""
    import datetime as dt

    from armsim.eventgrid.models import EventGridBackend

    topic = stack.armsim.world.backend(EventGridBackend).topic("autopilot-events")
    found: dict[str, float] = {}
    for entry in topic["events"]:
        event = entry["event"]
        if event["type"] == "BackupAutopilot.VM.Protected":
            stamp = dt.datetime.fromisoformat(entry["received"].replace("Z", "+00:00")[:26] + "+00:00")
            found.setdefault(str(event["subject"]).rsplit("/", 1)[-1], stamp.timestamp())
    return found


def big_burst() -> None:
    from armsim import SANDBOX_SUBSCRIPTION

    stack = start_stack(Path(tempfile.mkdtemp(prefix="bench-burst-")))
    try:
        vms = [
            {
                "subscriptionId": SANDBOX_SUBSCRIPTION,
                "resourceGroup": "rg-burst",
                "name": f"burst-{i:04d}",
                "location": "westeurope",
                "tags": {"backup-policy": "gold" if i % 2 else "silver"},
            }
            for i in range(BURST)
        ]
        stack._control("POST", "/stats/reset")
        started = time.time()
        stack._control("POST", "/seed", {"vms": vms, "emitEvents": True})
        deadline = started + 1800
        protected: dict[str, float] = {}
        while len(protected) < BURST and time.time() < deadline:
            time.sleep(1)
            protected = protected_times(stack)
        log = app_entries(stack._control("GET", "/stats?log=1")["log"])
    finally:
        stack.stop()
    counts: dict[str, int] = {}
    by_operation: dict[str, int] = {}
    for entry in log:
        kind = KIND_OF.get(entry["method"], "writes")
        counts[kind] = counts.get(kind, 0) + 1
        by_operation[entry["operation"]] = by_operation.get(entry["operation"], 0) + 1
    throttled = sum(1 for e in log if e["status"] == 429)
    total = sum(counts.values())
    elapsed = max(protected.values()) - started if protected else math.inf
    minimum = bucket_minimum(counts)
    delays = [t - started for t in protected.values()]
    print(f"burst {BURST}: {len(protected)}/{BURST} VMs protected in {elapsed:.1f} s")
    print(
        f"burst {BURST}: token-bucket minimum for the app's {total} requests ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}): {minimum:.1f} s; ratio {elapsed / minimum if minimum else math.inf:.2f} (target <= 1.1)"
    )
    print(f"burst {BURST}: ARM requests per protected VM {total / max(1, len(protected)):.2f} (target <= 4)")
    print(f"burst {BURST}: 429s received by the app: {throttled} (target 0)")
    print(
        f"burst {BURST}: appearance -> protected p50 {percentile(delays, 0.5):.1f} s, p95 {percentile(delays, 0.95):.1f} s"
    )
    print(f"burst {BURST}: by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(by_operation.items())))


def small_burst() -> None:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from armsim import SANDBOX_SUBSCRIPTION
    from tests.bodies import vm_body

    stack = start_stack(Path(tempfile.mkdtemp(prefix="bench-burst20-")))
    try:
        credential = DefaultAzureCredential()
        kwargs: dict[str, Any] = {"base_url": stack.armsim.url, "polling_interval": 0.05}
        compute = ComputeManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs)
        ResourceManagementClient(credential, SANDBOX_SUBSCRIPTION, **kwargs).resource_groups.create_or_update(
            "rg-burst20", {"location": "westeurope"}
        )
        stack._control("POST", "/stats/reset")

        def create(index: int) -> None:
            name = f"b20-{index:02d}"
            compute.virtual_machines.begin_create_or_update(
                "rg-burst20",
                name,
                vm_body(name, "westeurope", {"backup-policy": "gold"}),
            )

        with ThreadPoolExecutor(SMALL_BURST) as pool:
            list(pool.map(create, range(SMALL_BURST)))
        deadline = time.time() + 120
        puts: dict[str, float] = {}
        protections: dict[str, float] = {}
        while len(protections) < SMALL_BURST and time.time() < deadline:
            time.sleep(0.5)
            for entry in stack._control("GET", "/stats?log=1")["log"]:
                path = entry["path"].lower()
                name = path.rsplit(";", 1)[-1] if ";" in path else path.rsplit("/", 1)[-1]
                if entry["operation"] == "VirtualMachines_CreateOrUpdate":
                    puts.setdefault(name, entry["t"])
                elif entry["operation"] == "ProtectedItems_CreateOrUpdate" and entry["status"] == 202:
                    protections.setdefault(name, entry["t"])
    finally:
        stack.stop()
    delays = [protections[name] - puts[name] for name in protections if name in puts]
    print(
        f"burst {SMALL_BURST}: VM PUT -> protected-item PUT for {len(delays)}/{SMALL_BURST} VMs: p50 {percentile(delays, 0.5):.2f} s, p95 {percentile(delays, 0.95):.2f} s, max {max(delays):.2f} s (target p95 <= 2 s)"
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    small_burst()
    big_burst()


if __name__ == "__main__":
    main()
