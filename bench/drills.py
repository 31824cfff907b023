"""Restore drills on the local stack: ARM requests per drill (by operation), and a drill round over
100 protected, backed-up VMs carried on by 4 threads (wall time, ARM requests, and what is left in the
staging group and account afterwards: nothing).

    python -m bench.drills
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

VMS = 100
THREADS = 4
IN_FLIGHT = 20  # per vault, for the round (the sandbox rules say 2)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    from armsim import SANDBOX_SUBSCRIPTION
    from autopilot.app import Autopilot
    from autopilot.drills import engine
    from autopilot.drills.api import run_to_end, start
    from autopilot.protect.carry_out import protect_vm
    from autopilot.settings import Settings
    from devhost.stack import Stack

    run_dir = Path(tempfile.mkdtemp(prefix="bench-drills-"))
    stack = Stack.ephemeral(
        run_dir,
        scheduledBackups=False,
        restoreTransferSeconds=1.0,
        restoreFinalizeSeconds=0.5,
        agentReadySeconds=0,
    ).start()
    try:
        group = "rg-bench-drills"
        names = [f"dr-{i:03d}" for i in range(VMS)]
        vms = [
            {
                "subscriptionId": SANDBOX_SUBSCRIPTION,
                "resourceGroup": group,
                "name": n,
                "location": "westeurope",
                "tags": {"backup-policy": "gold"},
            }
            for n in names
        ]
        stack._control("POST", "/seed", {"vms": vms})
        settings = Settings.from_env({**stack.values, "AUTOPILOT_DRILL_POLL_SECONDS": "1"})
        autopilot = Autopilot.from_settings(settings)
        drills = autopilot.rules.drills
        assert drills is not None
        autopilot.rules = dataclasses.replace(
            autopilot.rules, drills=dataclasses.replace(drills, in_flight_per_vault=IN_FLIGHT)
        )
        ids = [
            f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{n}"
            for n in names
        ]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda vm: protect_vm(autopilot, vm, source="bench"), ids))
        stack._control(
            "POST", "/seed", {"jobs": [{"vmId": vm, "outcome": "Completed", "hoursAgo": 2} for vm in ids]}
        )

        stack._control("POST", "/stats/reset")
        record, _ = start(autopilot, ids[0], source="bench")
        one = run_to_end(autopilot, str(record["Id"]), sleep=lambda s: time.sleep(min(s, 0.5)))
        stats = stack._control("GET", "/stats")
        by_operation = {k: v for k, v in sorted(stats["byOperation"].items()) if v}
        print(
            f"drills: one drill ({one['status']}, restore {one['restoreSeconds']} s): {sum(by_operation.values())} ARM requests: {by_operation}"
        )

        stack._control("POST", "/stats/reset")
        started = time.perf_counter()
        records = [start(autopilot, vm, source="bench")[0] for vm in ids[1:]]

        def carry(drill_id: str) -> dict[str, Any]:
            return run_to_end(autopilot, drill_id, sleep=lambda s: time.sleep(min(s, 1.0)))

        with ThreadPoolExecutor(THREADS * 2) as pool:
            results = list(pool.map(carry, [str(r["Id"]) for r in records]))
        seconds = time.perf_counter() - started
        stats = stack._control("GET", "/stats")
        passed = sum(1 for r in results if r["status"] == "Passed")
        left = list(
            autopilot.clients.compute(SANDBOX_SUBSCRIPTION).disks.list_by_resource_group(
                "rg-autopilot-drills-weu"
            )
        )
        in_flight = [r for r in autopilot.state.rows(engine.KIND) if r.get("Status") not in engine.FINAL]
        print(
            f"drills: a round of {len(results)} drills ({IN_FLIGHT} in flight per vault, {THREADS * 2} runner threads): "
            f"{seconds:.1f} s wall, {passed} passed, {stats['total']} ARM requests ({stats['total'] / len(results):.1f} per drill); "
            f"left behind: {len(left)} disk(s) in the staging group, {len(in_flight)} drill(s) not ended"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
