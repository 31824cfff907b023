"""armsim's simulated behaviour through the real SDK clients (both modes): paging, instance views,
job filters, the two backup phases, forced and VM-caused job failures, crash-consistent points,
scheduled backups, the on-demand limit, soft delete, Trusted Launch, backupStatus, fault injection,
statistics, persistence across a restart, Event Grid delivery and publishing, the identity endpoint."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.recoveryservices import RecoveryServicesClient
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from tests.armsim_support import Sandbox, Webhook, start_cli
from tests.bodies import v1_policy, v2_policy, vm_body
from tests.examples_support import optional_example

# -- the estate the tests share ------------------------------------------------------------------
RG = "rg-beh"
VAULT = "rsv-weu"
LOCATION = "westeurope"
ARM_RESOURCE = "https://management.azure.com/.default"


def vault_id(arm: Sandbox, name: str = VAULT) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{name}"


def vm_id(arm: Sandbox, name: str) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}"


def names(vm: str) -> tuple[str, str]:
    container = f"iaasvmcontainerv2;{RG};{vm}"
    return f"IaasVMContainer;{container}", f"VM;{container}"


def seed(
    arm: Sandbox,
    vms: list[dict[str, Any]] | None = None,
    protect: list[str] | None = None,
    jobs: list[dict[str, Any]] | None = None,
    policy: dict[str, Any] | None = None,
) -> None:
    """The vault with a 'daily' policy, the VMs given (name plus seed fields) and the protections."""
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": VAULT, "location": LOCATION}
        ],
        policies=[{"vaultId": vault_id(arm), "name": "daily", "properties": policy or v1_policy()}],
        vms=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "location": LOCATION, **vm}
            for vm in vms or []
        ],
        protections=[
            {"vmId": vm_id(arm, vm), "vaultId": vault_id(arm), "policy": "daily"} for vm in protect or []
        ],
        jobs=[{"vmId": vm_id(arm, job.pop("vm")), **job} for job in [dict(j) for j in jobs or []]],
    )


def trigger(backup: RecoveryServicesBackupClient, vm: str) -> str:
    """Backup now; the job id, read from the operation status the 202 points at."""
    container, item = names(vm)
    headers: dict[str, str] = {}
    backup.backups.trigger(
        VAULT,
        RG,
        "Azure",
        container,
        item,
        {"properties": {"objectType": "IaasVMBackupRequest"}},
        cls=lambda pipeline_response, _, __: headers.update(pipeline_response.http_response.headers),
    )
    operation = headers["Azure-AsyncOperation"].split("/operationsStatus/")[1].split("?")[0]
    status = backup.protected_item_operation_statuses.get(VAULT, RG, "Azure", container, item, operation)
    return str(status.properties["jobId"])


def job_of(backup: RecoveryServicesBackupClient, job_id: str) -> tuple[str, list[tuple[str, str]], Any]:
    """(status, [(task, status)], the job's properties)."""
    props = backup.job_details.get(VAULT, RG, job_id).properties
    return props.status, [(t.task_id, t.status) for t in props.extended_info.tasks_list], props


def protected_item(backup: RecoveryServicesBackupClient, vm: str) -> AzureIaaSComputeVMProtectedItem:
    container, item = names(vm)
    return AzureIaaSComputeVMProtectedItem(
        backup.protected_items.get(VAULT, RG, "Azure", container, item).properties
    )


def tomorrow_at(hour: int, minute: int = 0) -> dt.datetime:
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def ms_filter_time(when: dt.datetime) -> str:
    """Azure's job filter time format: yyyy-MM-dd hh:mm:ss tt (UTC)."""
    return when.strftime("%Y-%m-%d %I:%M:%S %p")


# -- paging --------------------------------------------------------------------------------------
def test_vm_list_all_follows_next_links(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.configure(pageSize={"virtualMachines": 3})
    seed(arm, vms=[{"name": f"vm-{i:02d}"} for i in range(10)])
    arm.reset_stats()
    listed = [vm.name for vm in sdk["compute"].virtual_machines.list_all()]
    assert listed == [f"vm-{i:02d}" for i in range(10)]
    assert arm.stats()["byOperation"] == {"VirtualMachines_ListAll": 4}


def test_vm_pages_stay_true_while_vms_are_created_and_deleted(arm: Sandbox, sdk: dict[str, Any]) -> None:
    # Another client creates and deletes VMs while the SDK walks the pages (the product's sweep runs
    # while deployments go on): a VM that is there from the first page to the last is listed once.
    arm.configure(pageSize={"virtualMachines": 4})
    seed(arm, vms=[{"name": f"vm-{i:02d}"} for i in range(0, 20, 2)])
    compute = sdk["compute"].virtual_machines
    listed: list[str] = []
    for number, page in enumerate(compute.list_all().by_page()):
        listed += [vm.name for vm in page]
        if number == 0:
            for name in ("vm-01", "vm-03", "vm-15", "vm-19"):  # before and after the cursor
                arm.seed(
                    vms=[
                        {
                            "subscriptionId": arm.subscription,
                            "resourceGroup": RG,
                            "location": LOCATION,
                            "name": name,
                        }
                    ]
                )
            compute.begin_delete(RG, "vm-00").result()  # already listed
            compute.begin_delete(RG, "vm-18").result()  # not yet listed
    assert len(listed) == len(set(listed)), listed
    assert {f"vm-{i:02d}" for i in range(2, 18, 2)} <= set(listed), listed
    assert "vm-18" not in listed and {"vm-15", "vm-19"} <= set(listed)
    assert not {"vm-01", "vm-03"} & set(listed)  # created behind the cursor: the next walk finds them


def test_protected_items_list_follows_next_links(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.configure(pageSize={"protectedItems": 2})
    vms = [f"vm-{i}" for i in range(5)]
    seed(arm, vms=[{"name": n} for n in vms], protect=vms)
    arm.reset_stats()
    items = list(
        sdk["backup"].backup_protected_items.list(VAULT, RG, filter="backupManagementType eq 'AzureIaasVM'")
    )
    assert sorted(AzureIaaSComputeVMProtectedItem(i.properties).friendly_name for i in items) == vms
    assert arm.stats()["byOperation"] == {"BackupProtectedItems_List": 3}


def test_jobs_list_follows_next_links(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.configure(pageSize={"jobs": 3})
    seed(
        arm,
        vms=[{"name": "vm-1"}],
        protect=["vm-1"],
        jobs=[{"vm": "vm-1", "hoursAgo": h} for h in range(1, 8)],
    )
    arm.reset_stats()
    jobs = list(sdk["backup"].backup_jobs.list(VAULT, RG))
    assert sorted(j.properties.operation for j in jobs) == ["Backup"] * 7 + ["ConfigureBackup"]
    assert len({j.name for j in jobs}) == 8
    assert arm.stats()["byOperation"] == {"BackupJobs_List": 3}


# -- instance views ------------------------------------------------------------------------------
def test_status_only_list_gives_instance_views(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed(
        arm,
        vms=[
            {"name": "vm-on"},
            {"name": "vm-off", "power": "deallocated"},
            {"name": "vm-noagent", "agent": "Missing"},
        ],
    )
    compute = sdk["compute"]
    views = {vm.name: vm.instance_view for vm in compute.virtual_machines.list_all(status_only="true")}
    power = {
        name: [s.code for s in view.statuses if s.code.startswith("PowerState/")]
        for name, view in views.items()
    }
    assert power == {
        "vm-noagent": ["PowerState/running"],
        "vm-off": ["PowerState/deallocated"],
        "vm-on": ["PowerState/running"],
    }
    assert views["vm-on"].vm_agent.statuses[0].display_status == "Ready"
    assert views["vm-noagent"].vm_agent is None
    assert all(vm.instance_view is None for vm in compute.virtual_machines.list_all())


# -- job filters ---------------------------------------------------------------------------------
@pytest.fixture
def job_history(arm: Sandbox) -> None:
    arm.clock(speed=0)
    seed(
        arm,
        vms=[{"name": "vm-1"}],
        protect=["vm-1"],
        jobs=[
            {"vm": "vm-1", "hoursAgo": 30, "outcome": "Completed"},
            {"vm": "vm-1", "hoursAgo": 20, "outcome": "Failed", "errorCode": "UserErrorFsFreezeFailed"},
            {"vm": "vm-1", "hoursAgo": 10, "outcome": "CompletedWithWarnings"},
        ],
    )


def test_job_filter_on_status(arm: Sandbox, sdk: dict[str, Any], job_history: None) -> None:
    jobs = list(
        sdk["backup"].backup_jobs.list(
            VAULT, RG, filter="backupManagementType eq 'AzureIaasVM' and status eq 'Failed'"
        )
    )
    assert [j.properties.status for j in jobs] == ["Failed"]
    assert jobs[0].properties.error_details[0].error_code == "UserErrorFsFreezeFailed"


def test_job_filter_on_operation(arm: Sandbox, sdk: dict[str, Any], job_history: None) -> None:
    backup = sdk["backup"]
    assert len(list(backup.backup_jobs.list(VAULT, RG, filter="operation eq 'Backup'"))) == 3
    configure = list(backup.backup_jobs.list(VAULT, RG, filter="operation eq 'ConfigureBackup'"))
    assert [j.properties.operation for j in configure] == ["ConfigureBackup"]


def test_job_filter_on_start_and_end_time(arm: Sandbox, sdk: dict[str, Any], job_history: None) -> None:
    now = dt.datetime.fromisoformat(arm.clock()["now"].replace("0Z", "+00:00"))
    window = (
        f"startTime eq '{ms_filter_time(now - dt.timedelta(hours=25))}' and "
        f"endTime eq '{ms_filter_time(now - dt.timedelta(hours=5))}'"
    )
    jobs = list(sdk["backup"].backup_jobs.list(VAULT, RG, filter=window))
    assert sorted(j.properties.status for j in jobs) == ["CompletedWithWarnings", "Failed"]


# -- the two phases of a backup ------------------------------------------------------------------
@pytest.fixture
def slow_phases(arm: Sandbox) -> None:
    arm.clock(set=tomorrow_at(10).isoformat(), speed=0)
    arm.configure(snapshotSeconds=60, transferSeconds=600)
    seed(arm, vms=[{"name": "vm-1"}], protect=["vm-1"])


def test_second_backup_during_snapshot_is_refused(
    arm: Sandbox, sdk: dict[str, Any], slow_phases: None
) -> None:
    backup = sdk["backup"]
    first = trigger(backup, "vm-1")
    assert job_of(backup, first)[:2] == (
        "InProgress",
        [("Take Snapshot", "InProgress"), ("Transfer data to vault", "NotStarted")],
    )
    with pytest.raises(HttpResponseError) as err:
        trigger(backup, "vm-1")
    assert err.value.status_code == 400
    assert err.value.error.code == "UserErrorBackupOperationInProgress"
    assert len(list(backup.backup_jobs.list(VAULT, RG, filter="operation eq 'Backup'"))) == 1


def test_second_backup_during_transfer_skips_its_transfer(
    arm: Sandbox, sdk: dict[str, Any], slow_phases: None
) -> None:
    backup = sdk["backup"]
    first = trigger(backup, "vm-1")
    arm.clock(advanceSeconds=120)
    assert job_of(backup, first)[:2] == (
        "InProgress",
        [("Take Snapshot", "Completed"), ("Transfer data to vault", "InProgress")],
    )
    second = trigger(backup, "vm-1")
    arm.clock(advanceSeconds=70)
    assert job_of(backup, second)[:2] == (
        "Completed",
        [("Take Snapshot", "Completed"), ("Transfer data to vault", "Skipped")],
    )
    assert job_of(backup, first)[0] == "InProgress"
    arm.clock(advanceSeconds=600)
    assert job_of(backup, first)[:2] == (
        "Completed",
        [("Take Snapshot", "Completed"), ("Transfer data to vault", "Completed")],
    )
    tiers = [
        sorted(t.type for t in p.properties.recovery_point_tier_details)
        for p in backup.recovery_points.list(VAULT, RG, "Azure", *names("vm-1"))
    ]
    assert tiers == [
        ["InstantRP"],
        ["HardenedRP", "InstantRP"],
    ]  # newest first: the skipped one is snapshot-only


# -- job outcomes --------------------------------------------------------------------------------
def test_forced_transfer_failure_completes_with_warnings(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.clock(speed=0)
    arm.configure(snapshotSeconds=10, transferSeconds=20)
    seed(arm, vms=[{"name": "vm-1"}], protect=["vm-1"])
    arm.control("POST", "/jobs/outcomes", {"vm": vm_id(arm, "vm-1"), "outcome": "CompletedWithWarnings"})
    backup = sdk["backup"]
    job = trigger(backup, "vm-1")
    arm.clock(advanceSeconds=60)
    status, tasks, props = job_of(backup, job)
    assert (status, tasks) == (
        "CompletedWithWarnings",
        [("Take Snapshot", "Completed"), ("Transfer data to vault", "Failed")],
    )
    assert props.error_details[0].error_code == "CopyingVHDsFromBackUpVaultTakingLongTime"
    assert props.error_details[0].recommendations
    assert protected_item(backup, "vm-1").health_status == "ActionSuggested"


@pytest.mark.parametrize(
    ("agent", "code"),
    [("Missing", "AzureVmOffline"), ("NotReady", "UserErrorGuestAgentStatusUnavailable")],
)
def test_vm_agent_state_fails_the_job(arm: Sandbox, sdk: dict[str, Any], agent: str, code: str) -> None:
    arm.clock(speed=0)
    arm.configure(snapshotSeconds=10, transferSeconds=20)
    seed(arm, vms=[{"name": "vm-1", "agent": agent}], protect=["vm-1"])
    backup = sdk["backup"]
    job = trigger(backup, "vm-1")
    arm.clock(advanceSeconds=15)
    status, tasks, props = job_of(backup, job)
    assert (status, tasks) == ("Failed", [("Take Snapshot", "Failed"), ("Transfer data to vault", "Failed")])
    assert props.error_details[0].error_code == code
    assert list(backup.recovery_points.list(VAULT, RG, "Azure", *names("vm-1"))) == []


@pytest.mark.parametrize(
    ("power", "os_type", "consistency"),
    [
        ("deallocated", "Windows", "CrashConsistent"),
        ("stopped", "Linux", "CrashConsistent"),
        ("running", "Windows", "AppConsistent"),
    ],
)
def test_recovery_point_consistency_follows_power_state(
    arm: Sandbox, sdk: dict[str, Any], power: str, os_type: str, consistency: str
) -> None:
    arm.clock(speed=0)
    arm.configure(snapshotSeconds=10, transferSeconds=20)
    seed(arm, vms=[{"name": "vm-1", "power": power, "osType": os_type}], protect=["vm-1"])
    backup = sdk["backup"]
    job = trigger(backup, "vm-1")
    arm.clock(advanceSeconds=60)
    assert job_of(backup, job)[0] == "Completed"
    points = list(backup.recovery_points.list(VAULT, RG, "Azure", *names("vm-1")))
    assert [p.properties.recovery_point_type for p in points] == [consistency]


# -- schedules and limits ------------------------------------------------------------------------
def test_scheduled_backup_fires_when_the_clock_passes_the_policy_time(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    start = tomorrow_at(20, 30)
    arm.clock(set=start.isoformat(), speed=0)
    # 22:00 in W. Europe Standard Time is 21:00 UTC, all year: Azure does not shift schedules for DST.
    seed(
        arm,
        vms=[{"name": "vm-1"}],
        protect=["vm-1"],
        policy=v1_policy("22:00", time_zone="W. Europe Standard Time"),
    )
    backup = sdk["backup"]

    def scheduled() -> list[Any]:  # no on-demand backup is started here: every Backup job is scheduled
        return list(backup.backup_jobs.list(VAULT, RG, filter="operation eq 'Backup'"))

    arm.clock(advanceSeconds=25 * 60)  # 20:55 UTC
    assert scheduled() == []
    arm.clock(advanceSeconds=10 * 60)  # 21:05 UTC
    jobs = scheduled()
    assert len(jobs) == 1
    assert jobs[0].properties.start_time == start.replace(hour=21, minute=0)
    arm.clock(advanceSeconds=24 * 3600)
    assert len(scheduled()) == 2


def test_daily_on_demand_limit(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.clock(set=tomorrow_at(9).isoformat(), speed=0)
    arm.configure(onDemandDailyLimit=2, snapshotSeconds=1, transferSeconds=1)
    seed(arm, vms=[{"name": "vm-1"}], protect=["vm-1"])
    backup = sdk["backup"]
    for _ in range(2):
        trigger(backup, "vm-1")
        arm.clock(advanceSeconds=5)
    with pytest.raises(HttpResponseError) as err:
        trigger(backup, "vm-1")
    assert err.value.status_code == 400
    assert err.value.error.code == "CloudDosAbsoluteLimitReached"
    arm.clock(advanceSeconds=24 * 3600)  # a new UTC day
    trigger(backup, "vm-1")


# -- soft delete ---------------------------------------------------------------------------------
def test_delete_of_an_item_soft_deletes_it_for_14_days(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.clock(speed=0)
    seed(arm, vms=[{"name": "vm-1"}], protect=["vm-1"], jobs=[{"vm": "vm-1", "hoursAgo": 2}])
    backup = sdk["backup"]
    backup.protected_items.delete(VAULT, RG, "Azure", *names("vm-1"))
    item = protected_item(backup, "vm-1")
    assert item.is_scheduled_for_deferred_delete is True
    assert item.protection_state == "ProtectionStopped"
    assert item.deferred_delete_time_in_utc is not None
    assert len(list(backup.recovery_points.list(VAULT, RG, "Azure", *names("vm-1")))) == 1
    with pytest.raises(HttpResponseError) as err:
        trigger(backup, "vm-1")
    assert err.value.error.code == "BMSUserErrorInvalidInput"
    arm.clock(advanceSeconds=14 * 86400 + 60)
    with pytest.raises(ResourceNotFoundError):
        protected_item(backup, "vm-1")


def test_undelete_with_is_rehydrate_restores_the_item(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.clock(speed=0)
    seed(arm, vms=[{"name": "vm-1"}], protect=["vm-1"])
    backup = sdk["backup"]
    container, item = names("vm-1")
    backup.protected_items.delete(VAULT, RG, "Azure", container, item)
    body = {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "protectionState": "ProtectionStopped",
            "sourceResourceId": vm_id(arm, "vm-1"),
            "isRehydrate": True,
        }
    }
    backup.protected_items.begin_create_or_update(VAULT, RG, "Azure", container, item, body).result()
    restored = protected_item(backup, "vm-1")
    # Azure sends isScheduledForDeferredDelete only while an item is soft-deleted (recorded).
    assert (restored.is_scheduled_for_deferred_delete, restored.protection_state) == (
        None,
        "ProtectionStopped",
    )
    resume = {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm_id(arm, "vm-1"),
            "policyId": f"{vault_id(arm)}/backupPolicies/daily",
        }
    }
    backup.protected_items.begin_create_or_update(VAULT, RG, "Azure", container, item, resume).result()
    assert protected_item(backup, "vm-1").policy_name == "daily"
    operations = sorted(j.properties.operation for j in backup.backup_jobs.list(VAULT, RG))
    assert operations == ["ConfigureBackup", "ConfigureBackup", "DeleteBackupData", "Undelete"]


# -- Trusted Launch ------------------------------------------------------------------------------
def _protect_trusted_launch(arm: Sandbox, sdk: dict[str, Any], policy: dict[str, Any]) -> Any:
    seed(arm, vms=[{"name": "vm-tl", "securityType": "TrustedLaunch"}], policy=policy)
    backup = sdk["backup"]
    backup.protection_containers.refresh(VAULT, RG, "Azure")
    body = {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm_id(arm, "vm-tl"),
            "policyId": f"{vault_id(arm)}/backupPolicies/daily",
        }
    }
    return backup.protected_items.begin_create_or_update(VAULT, RG, "Azure", *names("vm-tl"), body).result()


def test_trusted_launch_vm_is_refused_with_a_standard_policy(arm: Sandbox, sdk: dict[str, Any]) -> None:
    with pytest.raises(HttpResponseError) as err:
        _protect_trusted_launch(arm, sdk, v1_policy())
    assert err.value.status_code == 400
    assert err.value.error.code == "UserErrorTrustedLaunchVMRequiresEnhancedPolicy"
    assert list(sdk["backup"].backup_protected_items.list(VAULT, RG)) == []


def test_trusted_launch_vm_is_protected_with_an_enhanced_policy(arm: Sandbox, sdk: dict[str, Any]) -> None:
    _protect_trusted_launch(arm, sdk, v2_policy())
    item = protected_item(sdk["backup"], "vm-tl")
    assert (item.policy_name, item.protection_state) == ("daily", "IRPending")


# -- backupStatus --------------------------------------------------------------------------------
def test_backup_status_follows_protection(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed(
        arm,
        vms=[{"name": "vm-1"}, {"name": "vm-2"}, {"name": "vm-3"}],
        protect=["vm-2", "vm-3"],
        jobs=[{"vm": "vm-3", "hoursAgo": 2}],
    )
    status = sdk["backup"].backup_status.get
    unprotected = status(LOCATION, {"resourceId": vm_id(arm, "vm-1"), "resourceType": "VM"})
    assert (unprotected.protection_status, unprotected.vault_id) == ("NotProtected", None)
    pending = status(LOCATION, {"resourceId": vm_id(arm, "vm-2"), "resourceType": "VM"})
    assert pending.protection_status == "Protecting"  # no recovery point yet (IRPending)
    protected = status(LOCATION, {"resourceId": vm_id(arm, "vm-3").upper(), "resourceType": "VM"})
    assert protected.protection_status == "Protected"
    assert protected.vault_id.lower() == vault_id(arm).lower()
    assert (protected.policy_name, protected.fabric_name) == ("daily", "Azure")
    assert protected.container_name == f"iaasvmcontainer;iaasvmcontainerv2;{RG};vm-3"
    missing = status(LOCATION, {"resourceId": vm_id(arm, "vm-gone"), "resourceType": "VM"})
    assert (missing.protection_status, missing.error_code) == ("NotProtected", "ResourceNotFound")


# -- fault injection and statistics --------------------------------------------------------------
def test_injected_429_carries_retry_after_and_the_sdk_honours_it(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed(arm, vms=[{"name": "vm-1"}])
    arm.faults(rate=1.0, kinds={"429": 1}, operations=["VirtualMachines_Get"], retryAfter=1)
    arm.reset_stats()
    token = arm.credential().get_token(ARM_RESOURCE).token
    raw = requests.get(
        f"{arm.url}{vm_id(arm, 'vm-1')}",
        params={"api-version": "2025-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(arm.ca_path),
        timeout=10,
    )
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "1"
    assert raw.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    retrying = ComputeManagementClient(
        arm.credential(), arm.subscription, **arm.arm_kwargs(retry_total=1, retry_backoff_factor=0.01)
    )
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as err:
        retrying.virtual_machines.get(RG, "vm-1")
    assert err.value.status_code == 429
    assert time.monotonic() - started >= 1.0  # azure-core waited the Retry-After before its retry
    assert [vm.name for vm in retrying.virtual_machines.list_all()] == ["vm-1"]  # other operations are served
    stats = arm.stats(log=True)
    assert stats["byOperation"] == {"VirtualMachines_Get": 3, "VirtualMachines_ListAll": 1}
    assert stats["byStatus"] == {"429": 3, "200": 1}
    assert [e["retryAfter"] for e in stats["log"] if e["status"] == 429] == [1, 1, 1]


def test_sdk_retries_through_a_share_of_throttled_requests(arm: Sandbox) -> None:
    seed(arm, vms=[{"name": "vm-1"}])
    arm.faults(rate=0.5, kinds={"429": 1, "503": 1}, operations=["VirtualMachines_Get"], retryAfter=0, seed=7)
    arm.reset_stats()
    compute = ComputeManagementClient(
        arm.credential(),
        arm.subscription,
        **arm.arm_kwargs(retry_total=10, retry_status=10, retry_backoff_factor=0.01),
    )
    for _ in range(5):
        assert compute.virtual_machines.get(RG, "vm-1").name == "vm-1"
    stats = arm.stats()
    assert stats["byStatus"]["200"] == 5
    assert stats["total"] == stats["byOperation"]["VirtualMachines_Get"] > 5


def test_stats_count_every_arm_request_by_operation(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed(arm, vms=[{"name": "vm-1"}, {"name": "vm-2"}])
    arm.reset_stats()
    compute = sdk["compute"]
    compute.virtual_machines.get(RG, "vm-1")
    compute.virtual_machines.get(RG, "vm-2", expand="instanceView")
    list(compute.virtual_machines.list_all())
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, "vm-3")
    arm.clock()  # control calls are not ARM requests
    stats = arm.stats()
    assert stats["total"] == 4
    assert stats["byOperation"] == {"VirtualMachines_Get": 3, "VirtualMachines_ListAll": 1}
    assert stats["byStatus"] == {"200": 3, "404": 1}


# -- persistence ---------------------------------------------------------------------------------
def test_state_is_kept_across_a_restart_with_data(sandboxes: dict[str, Sandbox], tmp_path: Path) -> None:
    certs = sandboxes["inprocess"].data_dir
    first = start_cli(tmp_path / "data", certs_from=certs)
    try:
        first.activate()
        kwargs = first.arm_kwargs(retry_total=0)
        compute = ComputeManagementClient(first.credential(), first.subscription, **kwargs)
        vaults = RecoveryServicesClient(first.credential(), first.subscription, **kwargs)
        first.seed(resourceGroups=[{"subscriptionId": first.subscription, "name": RG, "location": LOCATION}])
        vaults.vaults.begin_create_or_update(
            RG, VAULT, {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {}}
        ).result()
        compute.virtual_machines.begin_create_or_update(
            RG, "vm-1", vm_body(location=LOCATION, tags={"backup": "daily"})
        ).result()
        seed(first, vms=[{"name": "vm-2"}], protect=["vm-2"], jobs=[{"vm": "vm-2", "hoursAgo": 1}])
        first.clock(advanceSeconds=3600)
        clock_before = first.clock()["now"]
    finally:
        first.stop()
    second = start_cli(tmp_path / "data", certs_from=certs)
    try:
        second.activate()
        kwargs = second.arm_kwargs(retry_total=0)
        compute = ComputeManagementClient(second.credential(), second.subscription, **kwargs)
        vaults = RecoveryServicesClient(second.credential(), second.subscription, **kwargs)
        backup = RecoveryServicesBackupClient(second.credential(), second.subscription, **kwargs)
        assert [vm.name for vm in compute.virtual_machines.list_all()] == ["vm-1", "vm-2"]
        assert vaults.vaults.get(RG, VAULT).location == LOCATION
        assert protected_item(backup, "vm-2").last_backup_status == "Completed"
        assert [p.name for p in backup.backup_policies.list(VAULT, RG)] == ["daily"]
        assert second.clock()["now"] >= clock_before  # the simulated clock does not go back
    finally:
        second.stop()


# -- Event Grid ----------------------------------------------------------------------------------
def subscribe(arm: Sandbox, hook: Webhook, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = arm.control(
        "POST",
        "/eventgrid/subscriptions",
        {"name": "autopilot", "endpoint": hook.url, "subscriptionId": arm.subscription, **extra},
    )
    return result


def create_vm(sdk: dict[str, Any], arm: Sandbox, name: str) -> str:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": LOCATION}])
    return str(
        sdk["compute"]
        .virtual_machines.begin_create_or_update(
            RG, name, vm_body(location=LOCATION, tags={"backup": "daily"})
        )
        .result()
        .id
    )


def test_webhook_gets_the_handshake_then_write_and_delete_events(arm: Sandbox, sdk: dict[str, Any]) -> None:
    with Webhook() as hook:
        subscribe(
            arm,
            hook,
            includedEventTypes=[
                "Microsoft.Resources.ResourceWriteSuccess",
                "Microsoft.Resources.ResourceDeleteSuccess",
            ],
        )
        (handshake_headers, handshake), *_ = hook.received
        assert handshake_headers["aeg-event-type"] == "SubscriptionValidation"
        assert handshake[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
        created = create_vm(sdk, arm, "vm-1")
        sdk["compute"].virtual_machines.begin_delete(RG, "vm-1").result()
        deliveries = hook.wait(2)
    assert [body[0]["eventType"] for _, body in deliveries] == [
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceDeleteSuccess",
    ]
    headers, (write,) = deliveries[0]
    assert headers["aeg-event-type"] == "Notification"
    assert headers["aeg-subscription-name"] == "AUTOPILOT"
    assert headers["aeg-delivery-count"] == "0"
    assert headers["aeg-data-version"] == write["dataVersion"]
    assert headers["aeg-metadata-version"] == "1"
    assert write["subject"].lower() == created.lower()
    assert write["data"]["operationName"] == "Microsoft.Compute/virtualMachines/write"
    assert deliveries[1][1][0]["data"]["operationName"] == "Microsoft.Compute/virtualMachines/delete"
    # The real field names (claims depend on the caller's kind of token); checked when the official
    # example is on this machine, always in CI.
    event_example = optional_example("eventgrid", "event-grid-schema", "resource_write_success.json")
    if event_example is not None:
        example = json.loads(event_example.read_text())
        assert set(write) == set(example)
        assert set(write["data"]) == set(example["data"])
        assert set(write["data"]["authorization"]) == set(example["data"]["authorization"])


def test_subscription_is_refused_when_the_handshake_fails(arm: Sandbox) -> None:
    with Webhook(validate=False) as hook:
        response = requests.post(
            f"{arm.url}/_armsim/eventgrid/subscriptions",
            json={"name": "autopilot", "endpoint": hook.url},
            verify=str(arm.ca_path),
            timeout=10,
        )
    assert response.status_code == 400
    assert arm.control("GET", "/eventgrid/subscriptions") == {"value": []}


def test_delivery_is_retried_after_a_500(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.configure(eventRetrySeconds=[0.2])
    with Webhook(answers=[500]) as hook:
        subscribe(arm, hook)
        create_vm(sdk, arm, "vm-1")
        deliveries = hook.wait(2)
    assert [h["aeg-delivery-count"] for h, _ in deliveries] == ["0", "1"]
    assert deliveries[0][1] == deliveries[1][1]  # the same event, again
    # armsim writes a delivery down once its answer is in, a moment after the webhook has it
    deadline = time.time() + 5
    while len(arm.events()["deliveries"]) < 2 and time.time() < deadline:
        time.sleep(0.02)
    assert [d["status"] for d in arm.events()["deliveries"]] == [500, 200]


def test_delivery_answered_400_is_dead_lettered(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.configure(eventRetrySeconds=[0.1])
    with Webhook(answers=[400]) as hook:
        subscribe(arm, hook)
        created = create_vm(sdk, arm, "vm-1")
        hook.wait(1)
        time.sleep(0.3)  # longer than a retry would take
        deliveries = hook.notifications()
    assert len(deliveries) == 1
    dead = arm.events()["deadLetters"]
    assert [(d["deadLetterReason"], d["status"]) for d in dead] == [("NonRetriableStatus", 400)]
    assert dead[0]["events"][0]["subject"].lower() == created.lower()


def test_fault_injection_duplicates_and_shuffles_events(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.faults(eventDuplicates=2, eventShuffle=True, seed=3)
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": LOCATION}])
    with Webhook() as hook:
        subscribe(arm, hook)
        arm.seed(
            vms=[
                {
                    "subscriptionId": arm.subscription,
                    "resourceGroup": RG,
                    "name": f"vm-{i}",
                    "location": LOCATION,
                }
                for i in range(6)
            ],
            emitEvents=True,
        )
        deliveries = hook.wait(12)
    subjects = [body[0]["subject"].rsplit("/", 1)[-1] for _, body in deliveries]
    assert sorted(subjects) == sorted([f"vm-{i}" for i in range(6)] * 2)
    ids = [body[0]["id"] for _, body in deliveries]
    assert len(set(ids)) == 6  # duplicates carry the same event id
    first_seen = list(dict.fromkeys(subjects))
    assert first_seen != sorted(first_seen)  # out of order


def test_cloud_events_published_with_a_token_land_in_the_topic(arm: Sandbox) -> None:
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient

    topic = arm.control("GET", "/eventgrid/topics/autopilot-events")
    client = EventGridPublisherClient(topic["endpoint"], arm.credential())
    client.send([CloudEvent(source="/autopilot", type="Autopilot.VmProtected", data={"vmId": "vm-1"})])
    events = arm.control("GET", "/eventgrid/topics/autopilot-events")["events"]
    assert [(e["type"], e["source"], e["data"], e["specversion"]) for e in events] == [
        ("Autopilot.VmProtected", "/autopilot", {"vmId": "vm-1"}, "1.0")
    ]


def test_cloud_events_published_with_the_topic_key_land_in_the_topic(arm: Sandbox) -> None:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import ClientAuthenticationError
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient

    topic = arm.control("GET", "/eventgrid/topics/autopilot-events")
    client = EventGridPublisherClient(topic["endpoint"], AzureKeyCredential(topic["key"]))
    client.send([CloudEvent(source="/autopilot", type=f"Autopilot.Test{i}", data={"n": i}) for i in range(3)])
    wrong = EventGridPublisherClient(topic["endpoint"], AzureKeyCredential("not-the-key"), retry_total=0)
    with pytest.raises(ClientAuthenticationError):
        wrong.send([CloudEvent(source="/autopilot", type="Autopilot.Forged", data={})])
    events = arm.control("GET", "/eventgrid/topics/autopilot-events")["events"]
    assert [e["type"] for e in events] == ["Autopilot.Test0", "Autopilot.Test1", "Autopilot.Test2"]


# -- the managed-identity endpoint ---------------------------------------------------------------
def test_identity_endpoint_refuses_a_wrong_identity_header(arm: Sandbox) -> None:
    url = f"{arm.url}/_armsim/identity/token"
    query = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    wrong = requests.get(
        url, params=query, headers={"X-IDENTITY-HEADER": "guess"}, verify=str(arm.ca_path), timeout=10
    )
    assert wrong.status_code == 401
    assert "access_token" not in wrong.text
    missing = requests.get(url, params=query, verify=str(arm.ca_path), timeout=10)
    assert missing.status_code == 401
    right = requests.get(
        url,
        params=query,
        headers={"X-IDENTITY-HEADER": arm.identity_header},
        verify=str(arm.ca_path),
        timeout=10,
    )
    assert right.status_code == 200
    assert right.json()["resource"] == "https://management.azure.com"
