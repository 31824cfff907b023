"""The Azure calls of a restore drill, on the SDK clients of autopilot/azure/clients.py: recovery points,
Restores_Trigger (RestoreDisks), the Restore job, the managed disks a restore made in the staging
group, the configuration blob in the staging storage account, and their deletion. Wire formats as
docs/ARMSIM.md ("Restores and restore drills") and armsim/SUPPORTED_OPERATIONS.md ("Restores") give
them, with their evidence."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.recoveryservicesbackup.models import RestoreRequestResource

from autopilot.azure.facts import PointFacts
from autopilot.azure.gateway import FABRIC
from autopilot.azure.vms import backup_names
from autopilot.names import split_id, text

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

SNAPSHOT, VAULT = "InstantRP", "HardenedRP"  # recoveryPointTierDetails types
# A restored disk is made after its job started and before it ended (armsim stamps it at the end of
# the transfer); the margin covers clocks of Azure's services that differ by a little.
DISK_TIME_MARGIN = dt.timedelta(minutes=5)
_DATA_LUN = re.compile(r"-datadisk-(\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class SourceDisk:
    lun: int  # -1: the OS disk
    size_gb: int


@dataclass(frozen=True)
class RestoredDisk:
    id: str
    name: str
    size_gb: int
    os_disk: bool
    lun: int | None  # from the disk's name where it says (…-datadisk-{lun}-…)
    managed_by: str


def recovery_points(autopilot: Autopilot, vault: VaultSpec, vm_id: str) -> list[PointFacts]:
    """Every recovery point of the VM's item, newest first."""
    backup = autopilot.clients.backup(vault.subscription_id)
    container, item = backup_names(vm_id)
    points = backup.recovery_points.list(vault.name, vault.resource_group, FABRIC, container, item)
    return sorted((PointFacts.from_resource(p) for p in points), key=lambda p: p.time, reverse=True)


def choose_point(points: list[PointFacts], tier: str) -> PointFacts | None:
    """The newest point of a tier: `snapshot`, a point whose snapshot is still there (restored from
    it: instant restore); `vault`, a point held in the vault only (its snapshot gone), so that the
    restore reads the vault's copy."""
    for point in points:
        if tier == "snapshot" and SNAPSHOT in point.tiers:
            return point
        if tier == "vault" and VAULT in point.tiers and SNAPSHOT not in point.tiers:
            return point
    return None


def trigger_restore(
    autopilot: Autopilot,
    vault: VaultSpec,
    vm_id: str,
    point: str,
    staging_group_id: str,
    account_id: str,
) -> str:
    """Start a restore of the point's disks into the staging group (RestoreDisks); the operation id,
    whose status names the Restore job."""
    backup = autopilot.clients.backup(vault.subscription_id)
    container, item = backup_names(vm_id)
    body = RestoreRequestResource(
        {
            "properties": {
                "objectType": "IaasVMRestoreRequest",
                "recoveryType": "RestoreDisks",
                "recoveryPointId": point,
                "sourceResourceId": vm_id,
                "storageAccountId": account_id,
                "targetResourceGroupId": staging_group_id,
                "region": vault.region,
                "createNewCloudService": False,
                "originalStorageAccountOption": False,
                "encryptionDetails": {"encryptionEnabled": False},
            }
        }
    )
    response = backup.restores.begin_trigger(
        vault.name,
        vault.resource_group,
        FABRIC,
        container,
        item,
        point,
        body,
        polling=False,
        cls=lambda pipeline_response, _, __: pipeline_response.http_response,
    ).result()
    assert response is not None, "the cls callback returns the HTTP response"
    status_url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location") or ""
    return str(status_url.split("?")[0].rstrip("/").rsplit("/", 1)[-1])


def job_bag(autopilot: Autopilot, vault: VaultSpec, job_id: str) -> dict[str, str]:
    """The propertyBag of a job (the restore's blobs, once it has completed)."""
    backup = autopilot.clients.backup(vault.subscription_id)
    job = backup.job_details.get(vault.name, vault.resource_group, job_id)
    extended = getattr(job.properties, "extended_info", None)
    return {str(k).strip(): str(v) for k, v in ((extended.property_bag or {}) if extended else {}).items()}


def source_disks(autopilot: Autopilot, vm_id: str) -> list[SourceDisk] | None:
    """The VM's OS disk and data disks with their sizes (the managed disk's where the VM's model has
    none); None when the VM is gone."""
    subscription, group, name = split_id(vm_id)
    compute = autopilot.clients.compute(subscription)
    try:
        vm = compute.virtual_machines.get(group, name)
    except ResourceNotFoundError:
        return None
    storage = vm.properties.storage_profile if vm.properties else None
    if storage is None:
        return []
    disks: list[tuple[int, Any]] = [(-1, storage.os_disk)] if storage.os_disk else []
    disks += [(int(d.lun), d) for d in storage.data_disks or []]
    return [SourceDisk(lun, _size(autopilot, disk)) for lun, disk in disks]


def _size(autopilot: Autopilot, disk: Any) -> int:
    if disk.disk_size_gb:
        return int(disk.disk_size_gb)
    managed = disk.managed_disk.id if disk.managed_disk and disk.managed_disk.id else None
    if not managed:
        return 0
    subscription, group, name = split_id(managed)
    try:
        found = autopilot.clients.compute(subscription).disks.get(group, name)
    except ResourceNotFoundError:
        return 0
    return int(found.properties.disk_size_gb or 0) if found.properties else 0


def restored_disks(
    autopilot: Autopilot,
    subscription: str,
    staging_group: str,
    vm_name: str,
    since: dt.datetime,
    until: dt.datetime,
) -> list[RestoredDisk]:
    """The managed disks a restore of the VM made in the staging group between two times: created by
    Restore, named after the VM, made within the job's time (one page of the group's disks after
    another)."""
    compute = autopilot.clients.compute(subscription)
    found = []
    for disk in compute.disks.list_by_resource_group(staging_group):
        props = disk.properties
        if props is None or text(getattr(props.creation_data, "create_option", "")) != "Restore":
            continue
        made = props.time_created
        if made is None or not since - DISK_TIME_MARGIN <= made <= until + DISK_TIME_MARGIN:
            continue
        if not str(disk.name).lower().startswith(f"{vm_name.lower()}-"):
            continue
        lun = _DATA_LUN.search(str(disk.name))
        found.append(
            RestoredDisk(
                id=str(disk.id),
                name=str(disk.name),
                size_gb=int(props.disk_size_gb or 0),
                os_disk=bool(props.os_type),
                lun=int(lun.group(1)) if lun else None,
                managed_by=str(disk.managed_by or ""),
            )
        )
    return found


def delete_disk(autopilot: Autopilot, disk_id: str) -> None:
    """Delete a managed disk and wait for it to be gone (a disk already gone is fine)."""
    subscription, group, name = split_id(disk_id)
    compute = autopilot.clients.compute(subscription)
    with contextlib.suppress(ResourceNotFoundError):
        compute.disks.begin_delete(group, name, polling_interval=autopilot.settings.polling_interval).result()


def blob_exists(autopilot: Autopilot, url: str) -> bool:
    try:
        autopilot.clients.blob_at(url).get_blob_properties()
    except ResourceNotFoundError:
        return False
    return True


def delete_container(autopilot: Autopilot, url: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        autopilot.clients.container_at(url).delete_container()
