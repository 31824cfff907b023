"""Restore drills under ARM faults: a fifth of ARM requests fail (429 and 503 with Retry-After, 500,
409 ObjectLocked). Every drill still ends and passes (nothing lost), no VM's point is restored twice
by one drill, and nothing of a restore is left in the staging group or the staging account."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.reliability.test_arm_faults import FAULTS

VMS = 8


def started_with_retries(call: Any) -> Any:
    """As a client does with the API's 503 (Azure busy): the same request again."""
    from autopilot.kernel.problems import Problem

    for _ in range(20):
        try:
            return call()
        except Problem as problem:
            assert problem.status == 503, problem.detail
            time.sleep(0.5)
    raise AssertionError("the drill could not be started in 20 attempts")


def test_drills_under_arm_faults_lose_nothing_and_leave_nothing(tmp_path: Path) -> None:
    from armsim import SANDBOX_SUBSCRIPTION as SUB
    from autopilot.app import Autopilot
    from autopilot.drills import engine
    from autopilot.drills.api import run_to_end, start
    from autopilot.protect.carry_out import protect_vm
    from autopilot.settings import Settings
    from devhost.stack import Stack

    stack = Stack.ephemeral(
        tmp_path,
        scheduledBackups=False,
        restoreTransferSeconds=1.0,
        restoreFinalizeSeconds=0.5,
        agentReadySeconds=0,
    )
    stack.start()
    try:
        group = "rg-rel-drills"
        ids = [
            f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/rd-{i}"
            for i in range(VMS)
        ]
        stack._control(
            "POST",
            "/seed",
            {
                "vms": [
                    {
                        "subscriptionId": SUB,
                        "resourceGroup": group,
                        "name": f"rd-{i}",
                        "location": "westeurope",
                        "tags": {"backup-policy": "gold"},
                    }
                    for i in range(VMS)
                ]
            },
        )
        settings = Settings.from_env(
            {**stack.values, "AUTOPILOT_DRILL_POLL_SECONDS": "1", "AUTOPILOT_RETRY_BACKOFF_MAX": "2"}
        )
        autopilot = Autopilot.from_settings(settings)
        drills = autopilot.rules.drills
        assert drills is not None
        autopilot.rules = dataclasses.replace(
            autopilot.rules, drills=dataclasses.replace(drills, in_flight_per_vault=4)
        )
        for vm in ids:
            protect_vm(autopilot, vm, source="test")
        stack._control(
            "POST", "/seed", {"jobs": [{"vmId": vm, "outcome": "Completed", "hoursAgo": 2} for vm in ids]}
        )
        stack._control("POST", "/stats/reset")
        stack._control("POST", "/faults", FAULTS)
        records = [started_with_retries(lambda vm=vm: start(autopilot, vm, source="test")[0]) for vm in ids]
        deadline = time.monotonic() + 240
        results = []
        for record in records:
            assert time.monotonic() < deadline, "the drills did not end in 4 minutes"
            results.append(run_to_end(autopilot, str(record["Id"]), sleep=lambda s: time.sleep(min(s, 0.5))))
        log = stack._control("GET", "/stats?log=1")["log"]
        stack._control("POST", "/faults", {"rate": 0.0})
        faulted = Counter(e["status"] for e in log if e["status"] >= 400)
        assert sum(faulted.values()) >= 10, f"the faults were not applied: {faulted}"
        assert [r["status"] for r in results] == ["Passed"] * VMS, [
            (r["status"], r["detail"]) for r in results
        ]
        assert all(r["cleanedUp"] for r in results)
        started = [e for e in log if e["operation"] == "Restores_Trigger" and e["status"] == 202]
        assert len(started) == VMS, "each drill started exactly one restore"
        assert (
            list(autopilot.clients.compute(SUB).disks.list_by_resource_group("rg-autopilot-drills-weu")) == []
        )
        assert [r for r in autopilot.state.rows(engine.KIND) if r.get("Status") not in engine.FINAL] == []
        assert autopilot.state.rows(engine.SLOT) == [] and autopilot.state.rows(engine.ACTIVE) == []
    finally:
        stack.stop()
