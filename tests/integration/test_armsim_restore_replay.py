"""Replay of the recorded restores, vault configurations and staging storage accounts against armsim
(the machinery of test_armsim_replay.py: armsim is put in the recorded situation, the recorded request
is sent again, and status, LRO headers, keys at every level, names and formats are compared).

Recordings (tests/fixtures/azure-recordings): test_backup_disk_exclusion #229-#261 (Dec 2019: a
Windows VM with three data disks, LUN 1 excluded, its disks restored twice into its own group, once
the OS disk only), test_backup_restore #284-#298 (Sep 2019: a VM without data disks restored into
another group), test_backup_job #242, #246, #247 (Jul 2019: restore jobs in lists), and the
backupconfig/vaultconfig GETs and PATCHes of test_backup_disk_exclusion, _softdelete and _vault.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.armsim_support import Sandbox
from tests.integration.test_armsim_replay import (
    BAG_TIME,
    DURATION,
    ITEM_PATH,
    RG,
    S,
    Scene,
    check_status,
    compare,
    same,
    status_pair,
    vault_path,
)
from tests.recordings import Interaction, recorded

STORAGE = "clitest000004"  # the staging account of test_backup_disk_exclusion
GUID_HEX = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def restored(sim: Sandbox) -> Scene:
    """The disk-exclusion VM, protected with LUN 1 excluded and backed up (both tiers), its staging
    storage account made; a restore's transfer takes 180 s and its finish 37 s (recorded: 3 min 37 s)."""
    sim.configure(
        lroSeconds=0,
        snapshotSeconds=20,
        transferSeconds=3600,
        scheduledBackups=False,
        restoreTransferSeconds=180,
        restoreFinalizeSeconds=37,
    )
    scene = Scene(sim, "southeastasia")
    scene.backed_up(luns=[1])
    sim.seed(
        storageAccounts=[
            {"subscriptionId": S, "resourceGroup": RG, "name": STORAGE, "location": "southeastasia"}
        ]
    )
    return scene


def point_of(scene: Scene) -> str:
    points = scene.call("GET", f"{ITEM_PATH}/recoveryPoints", ok=(200,)).json()["value"]
    return str(points[0]["name"])


def trigger(scene: Scene, rec: Interaction) -> tuple[requests.Response, str]:
    """The recorded restore request again, on armsim's newest recovery point; the 202 and its job."""
    point = point_of(scene)
    body = rec.request_body
    body["properties"]["recoveryPointId"] = point
    path = rec.path.rsplit("/recoveryPoints/", 1)[0] + f"/recoveryPoints/{point}/restore"
    response = scene.replay(rec, body=body, path=path)
    return response, scene.job_of(response)


def check_restore_job(rec: Interaction, body: Any, job_id: str) -> None:
    """A restore job agrees with the recorded one: discriminators, status, its task, the propertyBag's
    keys and their values where they are facts of the scene (names, disks), and formats elsewhere."""
    props, theirs = body["properties"], rec.body["properties"]
    same(rec, body, "type", "properties.jobType", "properties.backupManagementType", "properties.operation")
    same(rec, body, "properties.status", "properties.entityFriendlyName", "properties.virtualMachineVersion")
    assert DURATION.match(props["duration"]), props["duration"]
    assert ("endTime" in props) == ("endTime" in theirs)
    same(
        rec, body, "properties.extendedInfo.tasksList[].taskId", "properties.extendedInfo.tasksList[].status"
    )
    same(rec, body, "properties.extendedInfo.progressPercentage")
    ours, recorded_info = props["extendedInfo"], theirs["extendedInfo"]
    assert ("estimatedRemainingDuration" in ours) == ("estimatedRemainingDuration" in recorded_info)
    if "estimatedRemainingDuration" in ours:
        assert DURATION.match(ours["estimatedRemainingDuration"])
    assert ours["internalPropertyBag"] == recorded_info["internalPropertyBag"] == {}
    bag, their_bag = ours["propertyBag"], recorded_info["propertyBag"]
    assert set(bag) == set(their_bag), (sorted(bag), sorted(their_bag))
    for key in (
        "Job Type",
        "Target Storage Account Name",
        "Target resource group",
        "Restored disk(s)",
        "Backed-up disk(s)",
    ):
        if key in their_bag:
            assert bag[key] == their_bag[key], f"{key}: Azure {their_bag[key]!r}, armsim {bag[key]!r}"
    assert BAG_TIME.match(bag["Recovery point time "]) and BAG_TIME.match(their_bag["Recovery point time "])
    if "Config Blob Name" in their_bag:
        # Azure: container '{vm}{suffix}-{32 hex}', blob 'config-{vm}{suffix}-{job}.json', template
        # 'azuredeploy{job}.json', both under the account's blob endpoint.
        container = bag["Config Blob Container Name"]
        token, _, suffix = container.rpartition("-")
        assert GUID_HEX.match(suffix) and GUID_HEX.match(
            their_bag["Config Blob Container Name"].rpartition("-")[2]
        )
        assert bag["Config Blob Name"] == f"config-{token}-{job_id}.json"
        assert bag["Config Blob Uri"].endswith(f"/{container}/{bag['Config Blob Name']}")
        assert bag["Template Blob Uri"].endswith(f"/{container}/azuredeploy{job_id}.json")
    for task, their_task in zip(ours["tasksList"], recorded_info["tasksList"], strict=True):
        assert task.get("taskExecutionDetails") == their_task.get("taskExecutionDetails")


# -- the trigger and its operation ----------------------------------------------------------------------------
@pytest.mark.parametrize("index", [230, 250], ids=["os-disk-only", "all-disks"])
def test_restore_trigger_and_its_status(restored: Scene, index: int) -> None:
    rec = recorded("disk_exclusion", index)
    response, job_id = trigger(restored, rec)
    compare(rec, response)
    done = recorded("disk_exclusion", 231)  # Azure's restore operation: Succeeded at once, with its job
    vault_level, item_level = status_pair(restored, response, done)
    check_status(done, compare(done, vault_level), item_level)
    assert vault_level.json()["properties"]["jobId"] == job_id
    assert vault_level.json()["startTime"] == vault_level.json()["endTime"]


def test_restore_job_while_it_transfers(restored: Scene) -> None:
    _, job_id = trigger(restored, recorded("disk_exclusion", 250))
    restored.advance(2)
    for rec in (recorded("disk_exclusion", 252), recorded("disk_exclusion", 232)):
        body = compare(rec, restored.replay(rec, path=vault_path(rec, f"backupJobs/{job_id}")))
        check_restore_job(rec, body, job_id)


def test_restore_job_while_it_finishes(restored: Scene) -> None:
    """Recorded at 3 min 12 s of 3 min 37 s: the transfer Completed with its size, the job at 99 %."""
    _, job_id = trigger(restored, recorded("disk_exclusion", 250))
    restored.advance(192)
    rec = recorded("disk_exclusion", 260)
    check_restore_job(
        rec, compare(rec, restored.replay(rec, path=vault_path(rec, f"backupJobs/{job_id}"))), job_id
    )


def test_restore_job_completed(restored: Scene) -> None:
    _, job_id = trigger(restored, recorded("disk_exclusion", 250))
    restored.advance(240)
    rec = recorded("disk_exclusion", 261)
    check_restore_job(
        rec, compare(rec, restored.replay(rec, path=vault_path(rec, f"backupJobs/{job_id}"))), job_id
    )


def test_restore_of_the_os_disk_only_completed(restored: Scene) -> None:
    _, job_id = trigger(restored, recorded("disk_exclusion", 230))
    restored.advance(240)
    rec = recorded("disk_exclusion", 240)
    check_restore_job(
        rec, compare(rec, restored.replay(rec, path=vault_path(rec, f"backupJobs/{job_id}"))), job_id
    )


def test_restore_disks_exist_once_completed(restored: Scene) -> None:
    """The disks the recorded job names (restore of all backed-up disks: the OS disk, mydisk1 and
    mydisk3; mydisk2 excluded) are managed disks of the target group, of the recorded sizes."""
    trigger(restored, recorded("disk_exclusion", 250))
    restored.advance(240)
    disks = requests.get(
        f"{restored.sim.url}/subscriptions/{S}/resourceGroups/{RG}/providers/Microsoft.Compute/disks",
        params={"api-version": "2026-03-02"},
        headers={"Authorization": f"Bearer {restored.token}"},
        verify=str(restored.sim.ca_path),
        timeout=30,
    )
    restored_disks = [
        d for d in disks.json()["value"] if d["properties"]["creationData"]["createOption"] == "Restore"
    ]
    assert sorted(d["properties"]["diskSizeGB"] for d in restored_disks) == [10, 10, 127]


# -- without disk exclusion, into another group (test_backup_restore, Sep 2019) -----------------------------
SEP_VAULT = (
    f"/subscriptions/{S}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/clitest-vault000003"
)
SEP_VM = (
    f"/subscriptions/{S}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/clitest-vm000004"
)


def test_restore_into_another_group(sim: Sandbox) -> None:
    """The recorded estate by its names: a Windows VM without data disks (the recorded 127 GBs), its
    vault, the staging account clitest000007 and the target group clitest.rg000002."""
    sim.configure(scheduledBackups=False, restoreTransferSeconds=180, restoreFinalizeSeconds=6)
    scene = Scene(sim, "southeastasia")
    sim.seed(
        resourceGroups=[{"subscriptionId": S, "name": "clitest.rg000002", "location": "southeastasia"}],
        vaults=[
            {
                "subscriptionId": S,
                "resourceGroup": RG,
                "name": "clitest-vault000003",
                "location": "southeastasia",
            }
        ],
        policies=[
            {
                "vaultId": SEP_VAULT,
                "name": "DefaultPolicy",
                "properties": recorded("item", 27).body["properties"],
            }
        ],
        vms=[
            {
                "subscriptionId": S,
                "resourceGroup": RG,
                "name": "clitest-vm000004",
                "location": "southeastasia",
                "osType": "Windows",
            }
        ],
        storageAccounts=[
            {"subscriptionId": S, "resourceGroup": RG, "name": "clitest000007", "location": "southeastasia"}
        ],
    )
    sim.seed(
        protections=[{"vmId": SEP_VM, "vaultId": SEP_VAULT, "policy": "DefaultPolicy"}],
        jobs=[{"vmId": SEP_VM, "outcome": "Completed", "hoursAgo": 2}],
    )
    rec = recorded("restore", 285)
    item = rec.path.rsplit("/recoveryPoints/", 1)[0]
    point = scene.call("GET", f"{item}/recoveryPoints", ok=(200,)).json()["value"][0]["name"]
    body = rec.request_body
    body["properties"]["recoveryPointId"] = point
    response = scene.replay(rec, body=body, path=f"{item}/recoveryPoints/{point}/restore")
    compare(rec, response)
    done = recorded("restore", 286)
    operation = response.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[1]
    status = scene.replay(done, path=f"{SEP_VAULT}/backupOperations/{operation}")
    check_status(done, compare(done, status))
    job_id = status.json()["properties"]["jobId"]
    running = recorded("restore", 287)
    check_restore_job(
        running, compare(running, scene.replay(running, path=f"{SEP_VAULT}/backupJobs/{job_id}")), job_id
    )
    scene.advance(240)
    completed = recorded("restore", 295)
    check_restore_job(
        completed,
        compare(completed, scene.replay(completed, path=f"{SEP_VAULT}/backupJobs/{job_id}")),
        job_id,
    )


# -- jobs in lists ----------------------------------------------------------------------------------------
def test_restore_jobs_in_lists(restored: Scene) -> None:
    _, job_id = trigger(restored, recorded("disk_exclusion", 250))
    for rec in (recorded("job", 246), recorded("job", 247)):
        body = compare(rec, restored.replay(rec))
        assert [j["name"] for j in body["value"]] == [job_id]
        same(
            rec,
            body,
            "value[].properties.operation",
            "value[].properties.status",
            "value[].properties.jobType",
        )


# -- vault configuration -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("get", "patch"),
    [(("disk_exclusion", 11), ("disk_exclusion", 12)), (("softdelete", 108), ("softdelete", 109))],
)
def test_vault_config_get_and_patch(sim: Sandbox, get: tuple[str, int], patch: tuple[str, int]) -> None:
    scene = Scene(sim, "westus")
    scene.vault()
    for rec in (recorded(*get), recorded(*patch)):
        body = compare(rec, scene.replay(rec, path=vault_path(rec, "backupconfig/vaultconfig")))
        same(rec, body, "name", "type", "properties")
        assert body["id"].lower() == rec.body["id"].lower()


def test_vault_config_of_a_new_vault(sim: Sandbox) -> None:
    scene = Scene(sim, "westus")
    scene.vault()
    rec = recorded("vault", 6)
    same(rec, compare(rec, scene.replay(rec, path=vault_path(rec, "backupconfig/vaultconfig"))), "properties")


# -- the staging storage account ---------------------------------------------------------------------------
@pytest.mark.parametrize("at", [("disk_exclusion", 229), ("restore", 284)], ids=["dec-2019", "sep-2019"])
def test_staging_storage_account(sim: Sandbox, at: tuple[str, int]) -> None:
    rec = recorded(*at)
    model = rec.body
    sim.seed(
        storageAccounts=[
            {
                "subscriptionId": S,
                "resourceGroup": RG,
                "name": model["name"],
                "location": model["location"],
                "sku": model["sku"]["name"],
                "kind": model["kind"],
            }
        ]
    )
    scene = Scene(sim, model["location"])
    body = compare(rec, scene.replay(rec))
    same(
        rec,
        body,
        "name",
        "type",
        "kind",
        "location",
        "sku",
        "properties.primaryLocation",
        "properties.statusOfPrimary",
    )
    assert body["properties"]["primaryEndpoints"]["blob"].endswith(f"/{model['name']}.blob/")


def test_staging_storage_account_keys(sim: Sandbox) -> None:
    rec = recorded("restore", 298)
    sim.seed(
        storageAccounts=[
            {"subscriptionId": S, "resourceGroup": RG, "name": "clitest000007", "location": "southeastasia"}
        ]
    )
    scene = Scene(sim, "southeastasia")
    body = compare(rec, scene.replay(rec))
    same(rec, body, "keys[].keyName", "keys[].permissions")
