"""The seed document's flow through the real, pinned SDK clients against armsim (both modes):
create a vault, set its redundancy, create a policy, create a VM, refresh containers, enable
protection, back up now, follow the job through both phases, list recovery points, stop protection."""

from __future__ import annotations

import time
from typing import Any

from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from tests.armsim_support import Sandbox
from tests.bodies import daily_policy_body, vm_body

RG = "rg-seed"
VAULT = "rsv-seed-weu"
VM = "vm-seed-1"
CONTAINER = f"IaasVMContainer;iaasvmcontainerv2;{RG};{VM}"
ITEM = f"VM;iaasvmcontainerv2;{RG};{VM}"


def test_seed_flow_end_to_end(arm: Sandbox, sdk: dict[str, Any]) -> None:
    # agentReadySeconds 0: this flow reads the new VM's agent as Ready at once (Azure: a while later).
    arm.configure(snapshotSeconds=0.5, transferSeconds=1.0, agentReadySeconds=0)
    resources, compute, vaults, backup = (sdk[k] for k in ("resources", "compute", "vaults", "backup"))

    resources.resource_groups.create_or_update(RG, {"location": "westeurope"})
    vault = vaults.vaults.begin_create_or_update(
        RG,
        VAULT,
        {
            "location": "West Europe",
            "sku": {"name": "Standard"},
            "properties": {"publicNetworkAccess": "Enabled"},
        },
    ).result()
    assert vault.location == "westeurope"
    assert vault.properties.provisioning_state == "Succeeded"

    # Redundancy: GeoRedundant by default, LocallyRedundant as the cheaper option while the vault is empty.
    config = backup.backup_resource_storage_configs_non_crr.get(VAULT, RG)
    assert config.properties.storage_type == "GeoRedundant"
    assert config.properties.storage_type_state == "Unlocked"
    backup.backup_resource_storage_configs_non_crr.patch(
        VAULT, RG, {"properties": {"storageType": "LocallyRedundant", "storageTypeState": "Unlocked"}}
    )
    assert (
        backup.backup_resource_storage_configs_non_crr.get(VAULT, RG).properties.storage_type
        == "LocallyRedundant"
    )

    policy = backup.protection_policies.create_or_update(VAULT, RG, "gold", daily_policy_body())
    assert policy.name == "gold"
    assert policy.properties.instant_rp_retention_range_in_days == 2

    vm = compute.virtual_machines.begin_create_or_update(
        RG, VM, vm_body(tags={"backup-policy": "gold"}, data_disks=2)
    ).result()
    assert vm.properties.provisioning_state == "Succeeded"
    view = compute.virtual_machines.get(RG, VM, expand="instanceView").properties.instance_view
    assert view.vm_agent.statuses[0].display_status == "Ready"
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]

    # A new VM is not discoverable until the vault refreshes its containers.
    protectable = list(
        backup.backup_protectable_items.list(VAULT, RG, filter="backupManagementType eq 'AzureIaasVM'")
    )
    assert protectable == []
    backup.protection_containers.refresh(VAULT, RG, "Azure")
    protectable = list(
        backup.backup_protectable_items.list(VAULT, RG, filter="backupManagementType eq 'AzureIaasVM'")
    )
    assert [p.name for p in protectable] == [ITEM.removeprefix("VM;")]  # as Azure names it (recorded)

    item = backup.protected_items.begin_create_or_update(
        VAULT,
        RG,
        "Azure",
        CONTAINER,
        ITEM,
        {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm.id,
                "policyId": policy.id,
                "extendedProperties": {
                    "diskExclusionProperties": {"diskLunList": [1], "isInclusionList": False}
                },
            }
        },
    ).result()
    typed = AzureIaaSComputeVMProtectedItem(item.properties)
    assert typed.protection_state == "IRPending"
    assert typed.policy_id.lower() == policy.id.lower()

    # Once an item is protected the redundancy is locked.
    assert (
        backup.backup_resource_storage_configs_non_crr.get(VAULT, RG).properties.storage_type_state
        == "Locked"
    )

    headers: dict[str, str] = {}
    backup.backups.trigger(
        VAULT,
        RG,
        "Azure",
        CONTAINER,
        ITEM,
        {
            "properties": {
                "objectType": "IaasVMBackupRequest",
                "recoveryPointExpiryTimeInUTC": "2099-01-01T00:00:00Z",
            }
        },
        cls=lambda pipeline_response, _, __: headers.update(pipeline_response.http_response.headers),
    )
    operation_id = headers["Azure-AsyncOperation"].split("/operationsStatus/")[1].split("?")[0]
    status = backup.protected_item_operation_statuses.get(VAULT, RG, "Azure", CONTAINER, ITEM, operation_id)
    job_id = status.properties["jobId"]

    job = backup.job_details.get(VAULT, RG, job_id)
    assert job.properties.operation == "Backup"
    phases = [(t.task_id, t.status) for t in job.properties.extended_info.tasks_list]
    assert phases[0] == ("Take Snapshot", "InProgress")
    assert phases[1] == ("Transfer data to vault", "NotStarted")

    deadline = time.time() + 20
    while job.properties.status == "InProgress" and time.time() < deadline:
        time.sleep(0.2)
        job = backup.job_details.get(VAULT, RG, job_id)
    assert job.properties.status == "Completed"
    assert [(t.task_id, t.status) for t in job.properties.extended_info.tasks_list] == [
        ("Take Snapshot", "Completed"),
        ("Transfer data to vault", "Completed"),
    ]

    points = list(backup.recovery_points.list(VAULT, RG, "Azure", CONTAINER, ITEM))
    assert len(points) == 1
    point = points[0].properties
    assert point.recovery_point_type == "FileSystemConsistent"
    assert {t.type for t in point.recovery_point_tier_details} == {"InstantRP", "HardenedRP"}
    # A list counts the disks; a GET of the point lists them (recorded).
    got = backup.recovery_points.get(VAULT, RG, "Azure", CONTAINER, ITEM, points[0].name).properties
    assert [d.lun for d in got.recovery_point_disk_configuration.excluded_disk_list] == [1]

    typed = AzureIaaSComputeVMProtectedItem(
        backup.protected_items.get(VAULT, RG, "Azure", CONTAINER, ITEM).properties
    )
    assert typed.protection_state == "Protected"
    assert typed.last_backup_status == "Completed"

    # Stop protection and keep the data: the item and its recovery point stay.
    backup.protected_items.begin_create_or_update(
        VAULT,
        RG,
        "Azure",
        CONTAINER,
        ITEM,
        {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm.id,
                "protectionState": "ProtectionStopped",
                "policyId": "",
            }
        },
    ).result()
    typed = AzureIaaSComputeVMProtectedItem(
        backup.protected_items.get(VAULT, RG, "Azure", CONTAINER, ITEM).properties
    )
    assert typed.protection_state == "ProtectionStopped"
    assert len(list(backup.recovery_points.list(VAULT, RG, "Azure", CONTAINER, ITEM))) == 1

    operations = [j.properties.operation for j in backup.backup_jobs.list(VAULT, RG)]
    assert sorted(operations) == ["Backup", "ConfigureBackup", "DisableBackup"]
