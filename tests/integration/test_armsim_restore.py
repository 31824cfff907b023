"""Restores of a VM's disks in armsim through the pinned SDK clients (both modes): the trigger and its
operation, the Restore job's phases, tasks and propertyBag on the simulated clock, the managed disks it
makes (one per backed-up disk, excluded LUNs absent, the sizes of the source), the configuration and
template blobs in the staging account (read with azure-storage-blob), forced outcomes, every refusal
with its SDK exception and code, a VM made from the restored disks that boots (or does not) on the
simulated clock, and the clean-up of what a drill made. Evidence: armsim/SUPPORTED_OPERATIONS.md,
"Restores"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from tests.armsim_support import Sandbox, sdk_clients, start_cli
from tests.bodies import v1_policy, vm_body

RG = "rg-app"
STAGING = "rg-drill-staging"
VAULT = "rsv-weu"
VM = "vm-db"
LOCATION = "westeurope"
ACCOUNT = "stagingweu01"
CONTAINER = f"iaasvmcontainerv2;{RG};{VM}"
ITEM = (f"IaasVMContainer;{CONTAINER}", f"VM;{CONTAINER}")


def ids(arm: Sandbox) -> dict[str, str]:
    sub = f"/subscriptions/{arm.subscription}"
    return {
        "vault": f"{sub}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}",
        "vm": f"{sub}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{VM}",
        "account": f"{sub}/resourceGroups/{STAGING}/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}",
        "staging": f"{sub}/resourceGroups/{STAGING}",
    }


def estate(arm: Sandbox, excluded: list[int] | None = None, hours_ago: float = 2, **vm: Any) -> None:
    """A Windows VM with two data disks (LUN 0: 256 GB, LUN 1: 64 GB), protected, backed up `hours_ago`;
    the staging group and storage account in the vault's region."""
    arm.clock(speed=0)
    arm.configure(scheduledBackups=False)
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": VAULT, "location": LOCATION}
        ],
        policies=[{"vaultId": ids(arm)["vault"], "name": "daily", "properties": v1_policy()}],
        vms=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": VM,
                "location": LOCATION,
                "osType": "Windows",
                "dataDisks": [{"lun": 0, "sizeGB": 256}, {"lun": 1, "sizeGB": 64}],
                **vm,
            }
        ],
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": STAGING,
                "name": ACCOUNT,
                "location": LOCATION,
            }
        ],
    )
    arm.seed(
        protections=[
            {
                "vmId": ids(arm)["vm"],
                "vaultId": ids(arm)["vault"],
                "policy": "daily",
                "excludedLuns": excluded or [],
            }
        ],
        jobs=[{"vmId": ids(arm)["vm"], "outcome": "Completed", "hoursAgo": hours_ago}],
    )


def newest_point(sdk: dict[str, Any]) -> str:
    return str(next(iter(sdk["backup"].recovery_points.list(VAULT, RG, "Azure", *ITEM))).name)


def request(arm: Sandbox, **overrides: Any) -> dict[str, Any]:
    """The CLI's RestoreDisks body (test_backup_disk_exclusion #230) for the staging account and group."""
    properties = {
        "objectType": "IaasVMRestoreRequest",
        "recoveryType": "RestoreDisks",
        "sourceResourceId": ids(arm)["vm"],
        "storageAccountId": ids(arm)["account"],
        "targetResourceGroupId": ids(arm)["staging"],
        "region": LOCATION,
        "createNewCloudService": False,
        "originalStorageAccountOption": False,
        "encryptionDetails": {"encryptionEnabled": False},
    }
    properties.update(overrides)
    return {"properties": {k: v for k, v in properties.items() if v is not None}}


def restore(arm: Sandbox, sdk: dict[str, Any], point: str | None = None, **overrides: Any) -> str:
    """Trigger a restore through the SDK (its long-running operation to the end); the Restore job's id."""
    point = point or newest_point(sdk)
    body = request(arm, recoveryPointId=point, **overrides)
    sdk["backup"].restores.begin_trigger(VAULT, RG, "Azure", *ITEM, point, body).result()
    jobs = list(sdk["backup"].backup_jobs.list(VAULT, RG, filter="operation eq 'Restore'"))
    return str(jobs[0].name)


def job(sdk: dict[str, Any], job_id: str) -> Any:
    return sdk["backup"].job_details.get(VAULT, RG, job_id).properties


def staging_disks(sdk: dict[str, Any]) -> dict[str, Any]:
    return {d.name: d for d in sdk["compute"].disks.list_by_resource_group(STAGING)}


def refused(error: pytest.ExceptionInfo[HttpResponseError], status: int, code: str) -> None:
    assert error.value.status_code == status
    assert error.value.error is not None and error.value.error.code == code, error.value.message


# -- the restore and its job ------------------------------------------------------------------------
def test_a_restore_job_transfers_then_finishes_then_completes(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.configure(restoreTransferSeconds=180, restoreFinalizeSeconds=30)
    job_id = restore(arm, sdk)
    running = job(sdk, job_id)
    assert (running.operation, running.status, running.entity_friendly_name) == ("Restore", "InProgress", VM)
    assert [(t.task_id, t.status) for t in running.extended_info.tasks_list] == [
        ("Transfer data from vault", "InProgress")
    ]
    assert running.extended_info.progress_percentage == 1.0
    assert running.extended_info.property_bag == {
        "Job Type": "Recover disks",
        "Target Storage Account Name": ACCOUNT,
        "Recovery point time ": running.extended_info.property_bag["Recovery point time "],
        "Target resource group": STAGING,
    }
    arm.clock(advanceSeconds=185)
    finishing = job(sdk, job_id)
    assert finishing.status == "InProgress" and finishing.extended_info.progress_percentage == 99.0
    task = finishing.extended_info.tasks_list[0]
    # 127 GB OS disk (a Windows image's) + 256 + 64 GB
    assert (task.status, task.task_execution_details) == ("Completed", "447 GBs / 447 GBs Transferred")
    assert finishing.extended_info.estimated_remaining_duration == "PT1M"
    arm.clock(advanceSeconds=30)
    done = job(sdk, job_id)
    assert done.status == "Completed" and done.end_time is not None
    assert done.extended_info.progress_percentage == 100.0
    assert done.extended_info.estimated_remaining_duration == "PT0S"
    assert done.duration.total_seconds() == pytest.approx(210, abs=1)


def test_a_restore_makes_one_managed_disk_per_backed_up_disk(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    job_id = restore(arm, sdk)
    assert staging_disks(sdk) == {}, "the disks exist once the job has completed"
    arm.clock(advanceSeconds=60)
    assert job(sdk, job_id).status == "Completed"
    disks = staging_disks(sdk)
    assert len(disks) == 3
    by_size = sorted((d.disk_size_gb, d.os_type, d.creation_data.create_option) for d in disks.values())
    assert by_size == [(64, None, "Restore"), (127, "Windows", "Restore"), (256, None, "Restore")]
    assert all(d.location == LOCATION and d.disk_state == "Unattached" for d in disks.values())
    assert {d.sku.name for d in disks.values()} == {"Premium_LRS"}


def test_an_excluded_disk_is_not_restored(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm, excluded=[1])
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    assert sorted(d.disk_size_gb for d in staging_disks(sdk).values()) == [127, 256]
    bag = job(sdk, job_id).extended_info.property_bag
    # As recorded when the item excludes disks (test_backup_disk_exclusion #261): the restored and the
    # backed-up disks by their source names, the OS disk first.
    assert bag["Restored disk(s)"] == bag["Backed-up disk(s)"] == f"{VM}_OsDisk_1; {VM}_DataDisk_0"


def test_restore_disk_lun_list_restores_those_disks_only(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """An empty list restores the OS disk alone (the CLI's --restore-only-osdisk, recorded #230/#240)."""
    estate(arm)
    job_id = restore(arm, sdk, restoreDiskLunList=[])
    arm.clock(advanceSeconds=60)
    assert [d.disk_size_gb for d in staging_disks(sdk).values()] == [127]
    bag = job(sdk, job_id).extended_info.property_bag
    assert bag["Restored disk(s)"] == f"{VM}_OsDisk_1"
    assert bag["Backed-up disk(s)"] == f"{VM}_OsDisk_1; {VM}_DataDisk_0; {VM}_DataDisk_1"


def test_the_configuration_and_template_blobs_are_in_the_staging_account(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    estate(arm)
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    bag = job(sdk, job_id).extended_info.property_bag
    assert bag["Config Blob Name"] == f"config-vmdb-{job_id}.json"
    assert bag["Config Blob Container Name"].startswith("vmdb-")
    assert bag["Config Blob Uri"].endswith(
        f"/{ACCOUNT}.blob/{bag['Config Blob Container Name']}/{bag['Config Blob Name']}"
    )
    assert bag["Template Blob Uri"].endswith(f"/azuredeploy{job_id}.json")
    config = BlobClient.from_blob_url(bag["Config Blob Uri"], credential=arm.credential())
    assert config.get_blob_properties().size > 0
    vm_config = json.loads(config.download_blob().readall())
    assert (
        vm_config["name"] == VM and vm_config["properties"]["storageProfile"]["osDisk"]["osType"] == "Windows"
    )
    template = json.loads(
        BlobClient.from_blob_url(bag["Template Blob Uri"], credential=arm.credential())
        .download_blob()
        .readall()
    )
    storage = template["resources"][0]["properties"]["storageProfile"]
    restored = {d.id.lower() for d in staging_disks(sdk).values()}
    attached = [
        storage["osDisk"]["managedDisk"]["id"],
        *(d["managedDisk"]["id"] for d in storage["dataDisks"]),
    ]
    assert {a.lower() for a in attached} == restored


def test_restore_jobs_are_listed_with_their_operation(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    job_id = restore(arm, sdk)
    listed = list(
        sdk["backup"].backup_jobs.list(VAULT, RG, filter="operation eq 'Restore' and status eq 'InProgress'")
    )
    assert [j.name for j in listed] == [job_id]
    assert "extendedInfo" not in listed[0].properties


# -- forced outcomes ---------------------------------------------------------------------------------
def test_a_forced_restore_failure_fails_the_job_and_makes_no_disk(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.control(
        "POST",
        "/jobs/outcomes",
        {
            "vm": ids(arm)["vm"],
            "operation": "Restore",
            "outcome": "Failed",
            "errorCode": "CloudInvalidInputError",
        },
    )
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    failed = job(sdk, job_id)
    assert failed.status == "Failed"
    assert [(t.task_id, t.status) for t in failed.extended_info.tasks_list] == [
        ("Transfer data from vault", "Failed")
    ]
    assert failed.error_details[0].error_code == "CloudInvalidInputError"
    assert "Invalid input error" in failed.extended_info.dynamic_error_message
    assert "Config Blob Uri" not in failed.extended_info.property_bag
    assert staging_disks(sdk) == {}


def test_a_forced_outcome_applies_to_the_next_restore_only(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.control("POST", "/jobs/outcomes", {"vm": ids(arm)["vm"], "operation": "Restore", "outcome": "Failed"})
    first = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    second = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    assert job(sdk, first).error_details[0].error_code == "CloudInternalError"
    assert job(sdk, second).status == "Completed"


def test_a_restore_forced_to_complete_with_warnings_makes_its_disks(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    estate(arm)
    arm.control(
        "POST",
        "/jobs/outcomes",
        {
            "vm": ids(arm)["vm"],
            "operation": "Restore",
            "outcome": "CompletedWithWarnings",
            "errorCode": "CloudInternalError",
        },
    )
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    warned = job(sdk, job_id)
    assert warned.status == "CompletedWithWarnings"
    assert warned.error_details[0].error_code == "CloudInternalError"
    assert "Config Blob Uri" in warned.extended_info.property_bag
    assert len(staging_disks(sdk)) == 3


def test_an_unknown_forced_restore_error_is_a_control_error(arm: Sandbox) -> None:
    estate(arm)
    with pytest.raises(AssertionError, match="InvalidControlRequest"):
        arm.control(
            "POST",
            "/jobs/outcomes",
            {"vm": ids(arm)["vm"], "operation": "Restore", "outcome": "Failed", "errorCode": "Nope"},
        )


def test_a_snapshot_that_goes_before_the_transfer_ends_fails_the_restore(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    """A point whose vault copy failed is a snapshot only; restoring it as its instant-restore days end
    fails with Azure's UserErrorInstantRpNotFound (Azure Backup docs, restore errors)."""
    arm.clock(speed=0)
    estate(arm, hours_ago=47.9)
    arm.configure(restoreTransferSeconds=3600)
    # Replace the seeded point with one whose transfer to the vault failed (a warning), 47.9 hours old.
    arm.seed(jobs=[{"vmId": ids(arm)["vm"], "outcome": "CompletedWithWarnings", "hoursAgo": 47.95}])
    points = list(sdk["backup"].recovery_points.list(VAULT, RG, "Azure", *ITEM))
    snapshot_only = [
        p.name for p in points if [t.type for t in p.properties.recovery_point_tier_details] == ["InstantRP"]
    ]
    assert snapshot_only
    job_id = restore(arm, sdk, point=snapshot_only[0])
    arm.clock(advanceSeconds=3700)
    failed = job(sdk, job_id)
    assert failed.status == "Failed" and failed.error_details[0].error_code == "UserErrorInstantRpNotFound"


# -- refusals --------------------------------------------------------------------------------------------
def test_a_staging_account_in_another_region_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": STAGING,
                "name": "stagingeus01",
                "location": "eastus",
            }
        ]
    )
    other = ids(arm)["account"].replace(ACCOUNT, "stagingeus01")
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, storageAccountId=other)
    refused(error, 400, "UserErrorStorageAccountInDifferentRegion")


def test_a_zone_redundant_staging_account_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": STAGING,
                "name": "stagingzrs01",
                "location": LOCATION,
                "sku": "Standard_ZRS",
            }
        ]
    )
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, storageAccountId=ids(arm)["account"].replace(ACCOUNT, "stagingzrs01"))
    refused(error, 400, "UserErrorUnsupportedStorageAccountType")


def test_a_missing_staging_account_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, storageAccountId=ids(arm)["account"].replace(ACCOUNT, "nosuchaccount1"))
    refused(error, 400, "UserErrorStorageAccountNotFound")


def test_a_missing_target_resource_group_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    with pytest.raises(ResourceNotFoundError) as error:
        restore(arm, sdk, targetResourceGroupId=f"/subscriptions/{arm.subscription}/resourceGroups/rg-gone")
    refused(error, 404, "ResourceGroupNotFound")


def test_a_recovery_point_that_is_not_there_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    with pytest.raises(ResourceNotFoundError) as error:
        restore(arm, sdk, point="123456789012345")
    refused(error, 404, "BMSUserErrorRecoveryPointNotFound")


def test_a_rehydration_request_for_a_point_not_archived_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """armsim has no archive tier: every point is in the snapshot or the vault tier."""
    estate(arm)
    rehydration = {"rehydrationPriority": "Standard", "rehydrationRetentionDuration": "P7D"}
    with pytest.raises(HttpResponseError) as error:
        restore(
            arm,
            sdk,
            objectType="IaasVMRestoreWithRehydrationRequest",
            recoveryPointRehydrationInfo=rehydration,
        )
    refused(error, 400, "BMSUserErrorInvalidInput")


def test_a_second_restore_of_the_item_while_one_runs_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    restore(arm, sdk)
    with pytest.raises(ResourceExistsError) as error:
        restore(arm, sdk)
    refused(error, 409, "BMSUserErrorObjectLocked")
    arm.clock(advanceSeconds=60)
    restore(arm, sdk)  # once the first has finished


def test_a_soft_deleted_item_is_not_restored(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    point = newest_point(sdk)
    sdk["backup"].protected_items.delete(VAULT, RG, "Azure", *ITEM)
    arm.clock(advanceSeconds=60)
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, point=point)
    refused(error, 400, "BMSUserErrorInvalidInput")


def test_a_lun_the_point_does_not_hold_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm, excluded=[1])
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, restoreDiskLunList=[1])
    refused(error, 400, "BMSUserErrorInvalidInput")


def test_a_restore_to_a_new_vm_is_not_simulated(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    with pytest.raises(HttpResponseError) as error:
        restore(arm, sdk, recoveryType="AlternateLocation")
    refused(error, 501, "NotImplemented")


# -- a VM from the restored disks, and the clean-up ------------------------------------------------------------
def vm_from_restored_disks(arm: Sandbox, sdk: dict[str, Any], name: str = "vm-db-drill") -> Any:
    disks = staging_disks(sdk)
    os_disk = next(d for d in disks.values() if d.os_type)
    data = sorted((d for d in disks.values() if not d.os_type), key=lambda d: d.name)
    body = vm_body(
        name,
        LOCATION,
        {"drill": "d-1"},
        image=False,
        os_disk={"osType": "Windows", "createOption": "Attach", "managedDisk": {"id": os_disk.id}},
        data_disks=[
            {
                "lun": int(d.name.split("-datadisk-")[1].split("-")[0]),
                "createOption": "Attach",
                "managedDisk": {"id": d.id},
            }
            for d in data
        ],
        networkProfile={"networkInterfaces": []},
    )
    return sdk["compute"].virtual_machines.begin_create_or_update(STAGING, name, body).result()


def agent(sdk: dict[str, Any], name: str = "vm-db-drill") -> tuple[str, str]:
    view = sdk["compute"].virtual_machines.instance_view(STAGING, name)
    status = view.vm_agent.statuses[0]
    return str(status.display_status), str(status.message)


def test_a_vm_made_from_restored_disks_boots_after_boot_seconds(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.configure(bootSeconds=240)
    restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    vm = vm_from_restored_disks(arm, sdk)
    assert vm.provisioning_state == "Succeeded"
    assert agent(sdk) == ("Not Ready", "VM status blob is found but not yet populated.")
    arm.clock(advanceSeconds=239)
    assert agent(sdk)[0] == "Not Ready"
    arm.clock(advanceSeconds=2)
    assert agent(sdk)[0] == "Ready"
    assert {d.disk_state for d in staging_disks(sdk).values()} == {"Attached"}


def test_a_vm_made_from_restored_disks_can_be_made_never_to_boot(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    queued = arm.control("POST", "/vms/boot", {"source": ids(arm)["vm"], "outcome": "NeverBoots"})
    assert queued == {"queued": 1}
    restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    vm_from_restored_disks(arm, sdk)
    arm.clock(advanceSeconds=86400)
    assert agent(sdk)[0] == "Not Ready"


def test_a_boot_plan_applies_to_the_next_vm_only(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    arm.control("POST", "/vms/boot", {"outcome": "Boots", "bootSeconds": 10})
    restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    vm_from_restored_disks(arm, sdk)
    arm.clock(advanceSeconds=11)
    assert agent(sdk)[0] == "Ready"


def test_a_drill_cleans_up_what_it_made(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """The VM first (its disks stay), then the disks, then the blobs' container; a disk still attached
    is refused."""
    estate(arm)
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    vm_from_restored_disks(arm, sdk)
    attached = next(iter(staging_disks(sdk)))
    with pytest.raises(ResourceExistsError) as error:
        sdk["compute"].disks.begin_delete(STAGING, attached).result()
    refused(error, 409, "OperationNotAllowed")
    sdk["compute"].virtual_machines.begin_delete(STAGING, "vm-db-drill").result()
    for name in staging_disks(sdk):
        sdk["compute"].disks.begin_delete(STAGING, name).result()
    assert staging_disks(sdk) == {}
    bag = job(sdk, job_id).extended_info.property_bag
    container_url = bag["Config Blob Uri"].rsplit("/", 1)[0]
    container = ContainerClient.from_container_url(container_url, credential=arm.credential())
    assert [b.name for b in container.list_blobs()] == sorted(
        [bag["Config Blob Name"], f"azuredeploy{job_id}.json"]
    )
    container.delete_container()
    with pytest.raises(ResourceNotFoundError):
        BlobClient.from_blob_url(bag["Config Blob Uri"], credential=arm.credential()).get_blob_properties()


def test_a_blob_read_needs_a_storage_token(arm: Sandbox, sdk: dict[str, Any]) -> None:
    estate(arm)
    job_id = restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    uri = job(sdk, job_id).extended_info.property_bag["Config Blob Uri"]
    with pytest.raises(HttpResponseError) as error:
        BlobClient.from_blob_url(uri).get_blob_properties()
    assert error.value.status_code == 401


def test_a_running_restore_survives_a_restart(sandboxes: dict[str, Sandbox], tmp_path: Path) -> None:
    """With --data, a restore still running when armsim stops makes its disks and blobs after the restart."""
    certs = sandboxes["inprocess"].data_dir
    first = start_cli(tmp_path / "data", certs_from=certs)
    try:
        estate(first)
        first.configure(restoreTransferSeconds=600)
        job_id = restore(first, sdk_clients(first))
    finally:
        first.stop()
    second = start_cli(tmp_path / "data", certs_from=certs)
    try:
        clients = sdk_clients(second)
        assert job(clients, job_id).status == "InProgress"
        second.clock(advanceSeconds=700)
        assert job(clients, job_id).status == "Completed"
        assert len(staging_disks(clients)) == 3
        uri = job(clients, job_id).extended_info.property_bag["Config Blob Uri"]
        assert BlobClient.from_blob_url(uri, credential=second.credential()).get_blob_properties().size > 0
    finally:
        second.stop()
