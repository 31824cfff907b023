"""Backup now on the local stack: latency (p50, p95) and requests per second of POST /api/backups
and GET /api/backups/{id}, from 4 client threads.

POSTs use distinct request ids over a set of protected VMs (each VM's first POST starts a backup;
later ones find it running and answer with it, as the API promises); GETs read the operations back.

    python -m bench.backup_now
"""

from __future__ import annotations

import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.protect_on_create import percentile

VMS = 20
POSTS = 400
GETS = 400
THREADS = 4


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    from armsim import SANDBOX_SUBSCRIPTION
    from devhost.stack import Stack

    run_dir = Path(tempfile.mkdtemp(prefix="bench-backup-now-"))
    # Backups stay running: later POSTs for a VM find its backup running and answer with it.
    stack = Stack.ephemeral(run_dir, snapshotSeconds=600, transferSeconds=600).start()
    try:
        group = "rg-bench-bn"
        vms = [
            {
                "subscriptionId": SANDBOX_SUBSCRIPTION,
                "resourceGroup": group,
                "name": f"bn-{i:02d}",
                "location": "westeurope",
                "tags": {"backup-policy": "gold"},
            }
            for i in range(VMS)
        ]
        stack._control("POST", "/seed", {"vms": vms})
        # Protect them through the CLI path (policies are created on first use).
        from autopilot.app import Autopilot
        from autopilot.protect.carry_out import protect_vm
        from autopilot.settings import Settings

        autopilot = Autopilot.from_settings(Settings.from_env(stack.values))
        vm_ids = [
            f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{v['name']}"
            for v in vms
        ]
        for vm_id in vm_ids:
            protect_vm(autopilot, vm_id, source="bench")
        assert stack.host is not None
        url = f"{stack.host.url}/api/backups"
        headers = {"x-functions-key": stack.values["DEVHOST_FUNCTION_KEY"]}
        session = requests.Session()

        def timed(call: Any) -> tuple[float, requests.Response]:
            started = time.perf_counter()
            response = call()
            return time.perf_counter() - started, response

        post_results: list[tuple[float, requests.Response]] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            post_results = list(
                pool.map(
                    lambda i: timed(
                        lambda: session.post(
                            url,
                            json={
                                "vm": vm_ids[i % VMS],
                                "requestId": f"BENCH-{i}",
                                "retainUntil": "2030-01-01",
                            },
                            headers=headers,
                            timeout=60,
                        )
                    ),
                    range(POSTS),
                )
            )
        post_seconds = time.perf_counter() - started
        ids = [r.json()["id"] for _, r in post_results if r.status_code == 202]
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            get_results = list(
                pool.map(
                    lambda i: timed(
                        lambda: session.get(f"{url}/{ids[i % len(ids)]}", headers=headers, timeout=60)
                    ),
                    range(GETS),
                )
            )
        get_seconds = time.perf_counter() - started
        trigger_count = stack._control("GET", "/stats")["byOperation"].get("Backups_Trigger", 0)
    finally:
        stack.stop()
    for name, results, seconds in (
        ("POST /api/backups", post_results, post_seconds),
        ("GET /api/backups/{id}", get_results, get_seconds),
    ):
        latencies = [t for t, _ in results]
        statuses: dict[int, int] = {}
        for _, response in results:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        print(
            f"backup-now: {name}: {len(results)} requests from {THREADS} threads, p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, {len(results) / seconds:.0f} requests/s; statuses {statuses}"
        )
    print(
        f"backup-now: backups.trigger calls in armsim: {trigger_count} for {VMS} VMs (one running backup per VM)"
    )


if __name__ == "__main__":
    main()
