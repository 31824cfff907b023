"""The backup job status table of docs/AZURE_BACKUP_FACTS.md §1, on armsim's models directly (no server): each row of
Snapshot x Transfer data to vault gives the documented job status."""

from __future__ import annotations

from typing import Any

import pytest

from armsim.backup.models import BackupBackend
from armsim.control.seed import apply_seed
from armsim.core.world import World
from armsim.registry import build_world
from armsim.vaults.models import VaultsBackend
from tests.bodies import v1_policy

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
    return world.backend(BackupBackend)


def start(world: World, outcome: str | None = None) -> dict[str, Any]:
    backend = backup(world)
    if outcome:
        backend.force_outcomes(VM, outcome, None, 1)
    item = backend.items[backend.by_vm[VM.lower()]]
    return backend.start_backup(world.backend(VaultsBackend).find(VAULT), item, "OnDemand", world.now(), None)


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


# -- formats as Azure writes them (tests/fixtures/azure-recordings) ---------------------------------
@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (12.8073817, "PT12.8073817S"),  # test_backup_item #172
        (92.0333513, "PT1M32.0333513S"),  # test_backup_job #84
        (4277.4030139, "PT1H11M17.4030139S"),  # test_backup_disk_exclusion #219
        (3600, "PT1H"),
        (90061.5, "P1DT1H1M1.5S"),
    ],
)
def test_job_durations_are_dotnet_xml_time_spans(seconds: float, text: str) -> None:
    from armsim.backup.models import duration

    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (14 * 86400 - 16.6300319, "13.23:59:43.3699681"),  # test_backup_softdelete #97
        (3 * 3600 + 5, "03:00:05"),
        (86400, "1.00:00:00"),
    ],
)
def test_deferred_delete_remaining_is_a_dotnet_time_span(seconds: float, text: str) -> None:
    from armsim.backup.models import time_span

    assert time_span(seconds) == text


def test_property_bag_times_are_written_as_azure_does() -> None:
    import datetime as dt

    from armsim.backup.models import bag_time

    def at(text: str) -> float:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()

    assert bag_time(at("2020-01-29T00:00:00")) == "1/29/2020 12:00:00 AM"  # test_backup_disk_exclusion #80
    assert bag_time(at("2019-08-02T00:00:00")) == "8/2/2019 12:00:00 AM"  # test_backup_job #228
    assert bag_time(at("2027-12-31T13:05:09")) == "12/31/2027 1:05:09 PM"


def test_tasks_are_listed_as_azure_lists_them(world: World) -> None:
    """taskId, duration PT0S and status only (no times), at every stage."""
    job = start(world)
    for _ in range(3):
        _, tasks = backup(world).job_status(job, world.now())
        assert [list(t) for t in tasks] == [["taskId", "duration", "status"]] * 2
        assert [t["duration"] for t in tasks] == ["PT0S", "PT0S"]
        world.clock.advance(60)
