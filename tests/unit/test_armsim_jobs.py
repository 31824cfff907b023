"""The backup job status table of DESIGN §1, on armsim's models directly (no server): each row of
Snapshot x Transfer data to vault gives the documented job status."""

from __future__ import annotations

from typing import Any

import pytest

from armsim.backup.models import BackupBackend
from armsim.control.seed import apply_seed
from armsim.core.world import World
from armsim.registry import build_world
from tests.armsim_support import v1_policy

SUB = "00000000-0000-0000-0000-000000000001"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"


@pytest.fixture
def world() -> World:
    world = build_world()
    world.clock.set_speed(0)
    world.configure({"snapshotSeconds": 10, "transferSeconds": 100, "scheduledBackups": False})
    apply_seed(
        world,
        {
            "vaults": [
                {"subscriptionId": SUB, "resourceGroup": "rg", "name": "rsv", "location": "westeurope"}
            ],
            "policies": [{"vaultId": VAULT, "name": "daily", "properties": v1_policy()}],
            "vms": [{"subscriptionId": SUB, "resourceGroup": "rg", "name": "vm-1", "location": "westeurope"}],
            "protections": [{"vmId": VM, "vaultId": VAULT, "policy": "daily"}],
        },
    )
    return world


def backup(world: World) -> BackupBackend:
    backend: BackupBackend = world.provider("backup")
    return backend


def start(world: World, outcome: str | None = None) -> dict[str, Any]:
    backend = backup(world)
    if outcome:
        backend.force_outcomes(VM, outcome, None, 1)
    item = backend.items[backend.by_vm[VM.lower()]]
    return backend.start_backup(world.provider("vaults").find(VAULT), item, "OnDemand", world.now(), None)


def status(world: World, job: dict[str, Any]) -> tuple[str, str, str]:
    job_status, (snapshot, transfer) = backup(world).job_status(job, world.now())
    return snapshot["status"], transfer["status"], job_status


def test_snapshot_in_progress(world: World) -> None:
    job = start(world)
    assert status(world, job) == ("InProgress", "NotStarted", "InProgress")


def test_completed_snapshot_and_transfer_in_progress_is_in_progress(world: World) -> None:
    job = start(world)
    world.clock.advance(50)
    assert status(world, job) == ("Completed", "InProgress", "InProgress")


def test_completed_snapshot_and_skipped_transfer_is_completed(world: World) -> None:
    first = start(world)
    world.clock.advance(50)  # the first job is transferring
    second = start(world)
    world.clock.advance(10)
    assert status(world, second) == ("Completed", "Skipped", "Completed")
    assert status(world, first) == ("Completed", "InProgress", "InProgress")


def test_completed_snapshot_and_transfer_is_completed(world: World) -> None:
    job = start(world)
    world.clock.advance(110)
    assert status(world, job) == ("Completed", "Completed", "Completed")


def test_failed_transfer_completes_with_warnings(world: World) -> None:
    job = start(world, "CompletedWithWarnings")
    world.clock.advance(110)
    assert status(world, job) == ("Completed", "Failed", "CompletedWithWarnings")


def test_failed_snapshot_fails_the_job(world: World) -> None:
    job = start(world, "Failed")
    world.clock.advance(10)
    assert status(world, job) == ("Failed", "Failed", "Failed")


def test_a_snapshot_waits_for_the_previous_snapshot(world: World) -> None:
    first = start(world)
    second = start(world)  # armsim plans it; the ARM route refuses it (UserErrorBackupOperationInProgress)
    assert second["plan"]["snapshotStart"] == first["plan"]["snapshotEnd"]
