"""The providers armsim simulates, assembled into one world."""

from __future__ import annotations

from pathlib import Path

from armsim.core.world import World


def build_world(data_dir: Path | None = None) -> World:
    from armsim.backup.models import BackupBackend
    from armsim.compute.models import ComputeBackend
    from armsim.control.models import ControlBackend
    from armsim.core.operations import Operations
    from armsim.eventgrid.models import EventGridBackend
    from armsim.loganalytics.models import LogAnalyticsBackend
    from armsim.network.models import NetworkBackend
    from armsim.resourcegraph.models import ResourceGraphBackend
    from armsim.resources.models import ResourcesBackend
    from armsim.storage.models import StorageBackend
    from armsim.vaults.models import VaultsBackend

    world = World(data_dir)
    for provider in (
        Operations,
        ResourcesBackend,
        ComputeBackend,
        NetworkBackend,
        StorageBackend,
        VaultsBackend,
        BackupBackend,
        EventGridBackend,
        LogAnalyticsBackend,
        ResourceGraphBackend,
        ControlBackend,
    ):
        world.add(provider)
    return world
