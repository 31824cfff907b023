"""The request bodies tests and benchmarks send to ARM (armsim), written out once.

- `vm_body`: a Compute virtualMachines PUT body, the portal's Ubuntu 24.04 VM (Standard_D2s_v5,
  Premium SSD OS disk, VM agent provisioned), with what callers vary as parameters: name, location,
  tags, data disks, the agent, Trusted Launch, the OS disk, no image (a VM made of attached disks),
  and any further properties;
- `v1_policy`, `v2_policy`: an AzureIaasVM backup policy's properties, standard (V1) or enhanced
  (V2), daily; `daily_policy_body`: a V1 one as a backupPolicies PUT body.

Plain data only (no imports beyond typing), so that bench/ imports it as well as tests/: both run
from the repository root (`python -m bench`, pytest's pythonpath "."), where `tests.bodies` resolves.
"""

from __future__ import annotations

from typing import Any

VM_SIZE = "Standard_D2s_v5"
UBUNTU_IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}


def vm_body(
    name: str = "vm",
    location: str = "westeurope",
    tags: dict[str, str] | None = None,
    *,
    data_disks: int | list[dict[str, Any]] = 0,
    data_disk_gb: int = 64,
    agent: bool = True,
    trusted_launch: bool = False,
    os_disk: dict[str, Any] | None = None,
    image: bool = True,
    **properties: Any,
) -> dict[str, Any]:
    """A VM PUT body named `name` (its computer name: the first 15 characters), tagged `tags`
    (None: none).

    `data_disks`: a number of empty `data_disk_gb` GiB disks at LUNs 0.., or the disks themselves;
    `agent`: whether the Linux VM agent is provisioned; `trusted_launch`: a Trusted Launch security
    profile (secure boot, vTPM); `os_disk`: the OS disk (default: from the image, Premium SSD);
    `image=False`: no image reference and no OS profile (a VM of attached disks); `properties`:
    further properties, replacing those of the same name (networkProfile, osProfile, ...).
    """
    disks = (
        [{"lun": lun, "createOption": "Empty", "diskSizeGB": data_disk_gb} for lun in range(data_disks)]
        if isinstance(data_disks, int)
        else data_disks
    )
    storage: dict[str, Any] = {
        "osDisk": os_disk
        or {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
        "dataDisks": disks,
    }
    body_properties: dict[str, Any] = {"hardwareProfile": {"vmSize": VM_SIZE}, "storageProfile": storage}
    if image:
        storage["imageReference"] = dict(UBUNTU_IMAGE)
        body_properties["osProfile"] = {
            "computerName": name[:15],
            "adminUsername": "azureuser",
            "linuxConfiguration": {"provisionVMAgent": agent},
        }
    if trusted_launch:
        body_properties["securityProfile"] = {
            "securityType": "TrustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    body_properties.update(properties)
    body: dict[str, Any] = {"location": location, "properties": body_properties}
    if tags is not None:
        body["tags"] = tags
    return body


def v1_policy(
    run: str = "22:00", instant: int | None = 2, time_zone: str = "UTC", **retention: Any
) -> dict[str, Any]:
    """A standard (V1) AzureIaasVM policy's properties: daily at `run` in `time_zone`, kept 30 days,
    `instant` days of instant restore (None: left out, armsim's default 2); `retention` adds weekly,
    monthly or yearly rules to the retentionPolicy."""
    when = f"2026-01-01T{run}:00Z"
    properties: dict[str, Any] = {
        "backupManagementType": "AzureIaasVM",
        "policyType": "V1",
        "timeZone": time_zone,
        "schedulePolicy": {
            "schedulePolicyType": "SimpleSchedulePolicy",
            "scheduleRunFrequency": "Daily",
            "scheduleRunTimes": [when],
        },
        "retentionPolicy": {
            "retentionPolicyType": "LongTermRetentionPolicy",
            "dailySchedule": {
                "retentionTimes": [when],
                "retentionDuration": {"count": 30, "durationType": "Days"},
            },
            **retention,
        },
    }
    if instant is not None:
        properties["instantRpRetentionRangeInDays"] = instant
    return properties


def v2_policy(
    run: str = "22:00", instant: int = 7, retention_time: str | None = None, time_zone: str = "UTC"
) -> dict[str, Any]:
    """An enhanced (V2) AzureIaasVM policy's properties: daily at `run` in `time_zone`, recovery points
    kept 30 days at `retention_time` (default: the run time; V2 lets them differ)."""
    return {
        "backupManagementType": "AzureIaasVM",
        "policyType": "V2",
        "instantRpRetentionRangeInDays": instant,
        "timeZone": time_zone,
        "schedulePolicy": {
            "schedulePolicyType": "SimpleSchedulePolicyV2",
            "scheduleRunFrequency": "Daily",
            "dailySchedule": {"scheduleRunTimes": [f"2026-01-01T{run}:00Z"]},
        },
        "retentionPolicy": {
            "retentionPolicyType": "LongTermRetentionPolicy",
            "dailySchedule": {
                "retentionTimes": [f"2026-01-01T{retention_time or run}:00Z"],
                "retentionDuration": {"count": 30, "durationType": "Days"},
            },
        },
    }


def daily_policy_body(time_of_day: str = "22:00", instant_days: int = 2) -> dict[str, Any]:
    """An AzureIaasVM V1 policy PUT body: daily at `time_of_day` UTC, kept 30 days."""
    return {"properties": v1_policy(time_of_day, instant_days)}
