"""Restores of an Azure VM's disks (Restores_Trigger, recovery type RestoreDisks).

A restore is accepted (202, its operation done at once with the job's id, as recorded) and runs as a
Restore job on the simulated clock: one task, "Transfer data from vault", for `restoreTransferSeconds`,
then the job finishes for `restoreFinalizeSeconds` (recorded: the task Completed, the job InProgress at
99 % with an estimatedRemainingDuration, test_backup_disk_exclusion #260), then Completed. When it
completes, the restored managed disks exist in the target resource group (one per backed-up disk, or
per disk of restoreDiskLunList; excluded disks are not in the recovery point; sizes and SKUs of the
backed-up disks), and the VM's configuration and a template to create a VM from the disks are blobs
in the staging storage account, named in the job's propertyBag as recorded.

Evidence and confidence per behaviour and refusal: armsim/SUPPORTED_OPERATIONS.md, "Restores".

About 530 lines: every refusal of Restores_Trigger that the evidence shows, and the restore job's
phases and what it makes, read together as one operation.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from armsim.compute.models import ComputeBackend
from armsim.core.errors import (
    BadRequest,
    Conflict,
    InvalidBackupInput,
    NotFound,
    NotImplementedOnArmsim,
    resource_group_not_found,
)
from armsim.core.world import DEFAULT_CONFIG
from armsim.resources.models import ResourcesBackend
from armsim.storage.models import StorageBackend

if TYPE_CHECKING:
    from armsim.backup.models import BackupBackend

# Simulated seconds of a restore job's two stretches (recorded: about 3 min 6 s and 3 min 37 s in all,
# the last 25 s or so of it finishing; short by default, as the backup phases are).
DEFAULT_CONFIG.setdefault("restoreTransferSeconds", 6.0)
DEFAULT_CONFIG.setdefault("restoreFinalizeSeconds", 2.0)

TASK = "Transfer data from vault"  # recorded, Jul to Dec 2019
OS_DISK_GB = {"Windows": 127, "Linux": 30}  # marketplace images' OS disks (recorded: 127 GB of a Windows VM)
# Storage accounts Azure Backup restores into: "Only Basic or Standard storage accounts with locally
# redundant or geo-redundant replication settings are supported", and not zone-redundant (Azure docs).
SUPPORTED_STAGING_SKUS = ("Standard_LRS", "Standard_GRS", "Standard_RAGRS")
ALWAYS_LOCKED = "Another operation is in progress on the selected item. Wait until the previous operation is completed and then retry."


def disk_facts(compute: ComputeBackend, vm: dict[str, Any], included: list[dict[str, Any]]) -> dict[str, Any]:
    """What a recovery point keeps of its VM for a restore: the OS disk and the backed-up data disks
    (name, size, SKU), the OS type, whether the VM had an agent, its region and size."""
    props = vm["model"]["properties"]
    storage = props["storageProfile"]
    os_disk = storage.get("osDisk") or {}
    os_type = str(os_disk.get("osType", "Linux"))

    def size_of(disk: dict[str, Any], default: int) -> int:
        managed = compute.disks.get(str((disk.get("managedDisk") or {}).get("id") or "").lower())
        value = disk.get("diskSizeGB") or (managed or {}).get("properties", {}).get("diskSizeGB") or default
        return int(value)

    def sku_of(disk: dict[str, Any]) -> str:
        managed = compute.disks.get(str((disk.get("managedDisk") or {}).get("id") or "").lower())
        declared = (disk.get("managedDisk") or {}).get("storageAccountType")
        return str(declared or ((managed or {}).get("sku") or {}).get("name") or "Premium_LRS")

    return {
        "vm": vm["model"]["id"],
        "vmName": vm["model"]["name"],
        "location": vm["model"]["location"],
        "vmSize": (props.get("hardwareProfile") or {}).get("vmSize", ""),
        "agent": vm["sim"].get("agent", "Ready"),
        "securityProfile": copy.deepcopy(props.get("securityProfile")),
        "os": {
            "name": os_disk.get("name", ""),
            "osType": os_type,
            "sizeGB": size_of(os_disk, OS_DISK_GB.get(os_type, 30)),
            "sku": sku_of(os_disk),
        },
        "data": [
            {"lun": d["lun"], "name": d.get("name", ""), "sizeGB": size_of(d, 128), "sku": sku_of(d)}
            for d in included
        ],
    }


# One branch per refusal Azure gives for a restore request (SUPPORTED_OPERATIONS.md lists them in
# this order), then the job.
def trigger(  # noqa: C901
    backend: BackupBackend, vault: dict[str, Any], item: dict[str, Any], point_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Validate a restore request as Azure refuses it, then start its job; the job."""
    props = body.get("properties")
    if not isinstance(props, dict):
        raise InvalidBackupInput("The restore request needs 'properties'.")
    kind = props.get("objectType")
    if kind == "IaasVMRestoreWithRehydrationRequest":
        raise InvalidBackupInput(
            "Input provided for the call is invalid. The recovery point is not in the archive tier: a "
            "rehydration request restores archived points only (use IaasVMRestoreRequest)."
        )
    if kind != "IaasVMRestoreRequest":
        raise InvalidBackupInput("properties.objectType must be 'IaasVMRestoreRequest' for VMs.")
    recovery = props.get("recoveryType")
    if recovery in ("OriginalLocation", "AlternateLocation"):
        raise NotImplementedOnArmsim(
            f"armsim simulates restores of recoveryType 'RestoreDisks' only, not '{recovery}'."
        )
    if recovery != "RestoreDisks":
        raise InvalidBackupInput(f"recoveryType '{recovery}' is not valid.")
    if str(props.get("sourceResourceId") or item["vm"]).lower() != item["vm"].lower():
        raise InvalidBackupInput(
            f"Input provided for the call is invalid. properties.sourceResourceId is not the item's VM ({item['vm']})."
        )
    if item["softDeleted"]:
        # "you need to undelete the soft deleted resource in order to restore" (soft delete FAQ)
        raise InvalidBackupInput(
            "Input provided for the call is invalid. The item is in soft-deleted state; undelete it before "
            "restoring from its recovery points."
        )
    point = next((p for p in backend.visible_points(item) if p["id"] == point_id), None)
    if point is None:
        raise NotFound("BMSUserErrorRecoveryPointNotFound", "The recovery point was not found.")
    facts = point.get("restore")
    if not facts:
        raise InvalidBackupInput(
            "armsim has no disk facts of this recovery point (made before restores were simulated)."
        )
    storage_id = props.get("storageAccountId") or (props.get("identityBasedRestoreDetails") or {}).get(
        "targetStorageAccountId"
    )
    if not isinstance(storage_id, str) or not storage_id:
        raise InvalidBackupInput(
            "Input provided for the call is invalid. properties.storageAccountId (the staging storage account) "
            "is required to restore disks."
        )
    account = backend.world.backend(StorageBackend).find(storage_id)
    if account is None:
        raise BadRequest(
            "UserErrorStorageAccountNotFound",
            f"Operation failed as the specified storage account does not exist anymore. ({storage_id})",
        )
    if account["model"]["location"] != vault["model"]["location"]:
        raise BadRequest(
            "UserErrorStorageAccountInDifferentRegion",
            "The Recovery Services vault and target storage account are in two different regions. Make sure the "
            "storage account specified in the restore operation is in the same Azure region as your Recovery "
            f"Services vault ({account['model']['location']} and {vault['model']['location']}).",
        )
    if account["model"]["sku"]["name"] not in SUPPORTED_STAGING_SKUS:
        raise BadRequest(
            "UserErrorUnsupportedStorageAccountType",
            "The storage account specified for the restore operation isn't supported. Only Basic or Standard "
            "storage accounts with locally redundant or geo-redundant replication settings are supported "
            f"(this one is {account['model']['sku']['name']}).",
        )
    target = props.get("targetResourceGroupId")
    target_group: dict[str, Any] | None = None
    if target:
        match = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/?", str(target), re.IGNORECASE)
        if match is None:
            raise InvalidBackupInput(
                f"Input provided for the call is invalid. targetResourceGroupId '{target}' is not a resource group id."
            )
        target_group = backend.world.backend(ResourcesBackend).group(match.group(1), match.group(2))
        if target_group is None:
            raise resource_group_not_found(match.group(2))
    luns = props.get("restoreDiskLunList")
    if luns is not None:
        backed_up = {d["lun"] for d in facts["data"]}
        if not isinstance(luns, list) or any(lun not in backed_up for lun in luns):
            raise InvalidBackupInput(
                f"Input provided for the call is invalid. restoreDiskLunList {luns} names disks the recovery point "
                f"does not hold (its data disks are at LUNs {sorted(backed_up)})."
            )
    if running_restore(backend, item) is not None:
        raise Conflict("BMSUserErrorObjectLocked", ALWAYS_LOCKED)
    return _start(backend, vault, item, point, account, target_group, luns)


def running_restore(backend: BackupBackend, item: dict[str, Any]) -> dict[str, Any] | None:
    """A restore job of the item that has not finished."""
    now = backend.world.now()
    jobs = backend.jobs.get(item["vault"].lower(), {})
    for job_id in reversed(item["jobs"]):
        job = jobs.get(job_id)
        if job and job["operation"] == "Restore" and now < job["end"]:
            return job
    return None


def _start(
    backend: BackupBackend,
    vault: dict[str, Any],
    item: dict[str, Any],
    point: dict[str, Any],
    account: dict[str, Any],
    target_group: dict[str, Any] | None,
    luns: list[int] | None,
) -> dict[str, Any]:
    config = backend.world.config
    now = backend.world.now()
    job = backend._new_job(vault, item, "Restore", kind="Restore")
    facts = point["restore"]
    data = [d for d in facts["data"] if luns is None or d["lun"] in luns]
    transfer_end = now + float(config["restoreTransferSeconds"])
    end = transfer_end + float(config["restoreFinalizeSeconds"])
    # Instant restore reads the snapshot when it is still there, else the vault's copy. A point that is
    # only a snapshot and whose snapshot goes before the transfer ends cannot be read (Azure's
    # UserErrorInstantRpNotFound: "the snapshot could have been deleted").
    from_snapshot = now < point["instantExpiry"]
    error = _forced(backend, item)
    if error is None and from_snapshot and point["instantExpiry"] < transfer_end:
        in_vault = point["vaultFrom"] is not None and point["vaultFrom"] <= point["instantExpiry"]
        if not in_vault:
            error = ("Failed", "UserErrorInstantRpNotFound")
    token = re.sub(r"[^a-z0-9]", "", facts["vmName"].lower())[:30] or "vm"
    job["restore"] = {
        "point": point["id"],
        "pointTime": point["time"],
        "account": account["model"]["id"],
        "accountName": account["model"]["name"],
        "targetGroup": [target_group["id"].split("/")[2], target_group["name"]] if target_group else None,
        "luns": luns,
        "disks": [{"lun": -1, **facts["os"]}, *data],
        "transferEnd": transfer_end,
        "outcome": error[0] if error else "Completed",
        "container": f"{token}-{uuid.uuid4().hex}",
        "configBlob": f"config-{token}-{job['id']}.json",
        "templateBlob": f"azuredeploy{job['id']}.json",
        "applied": False,
        "made": [],
        "source": "InstantRP" if from_snapshot else "HardenedRP",
    }
    job["end"] = transfer_end if error and error[0] == "Failed" else end
    if error and error[1]:
        # A failure's code is the job's error (as a management job's, which Log Analytics reads as
        # Failed); a warning's is the restore's own.
        if error[0] == "Failed":
            job["error"] = error[1]
        else:
            job["restore"]["warning"] = error[1]
    backend.pending_restores.append([vault["model"]["id"].lower(), job["id"]])
    return job


def _forced(backend: BackupBackend, item: dict[str, Any]) -> tuple[str, str | None] | None:
    """The next forced outcome of a restore of the item's VM (POST /_armsim/jobs/outcomes)."""
    queue = backend.forced_restores.get(item["vm"].lower())
    if not queue:
        return None
    plan = queue.pop(0)
    if not queue:
        del backend.forced_restores[item["vm"].lower()]
    if plan["outcome"] == "Completed":
        return None
    default = "CloudInternalError" if plan["outcome"] == "Failed" else None
    return str(plan["outcome"]), plan.get("errorCode") or default


def status(job: dict[str, Any], now: float) -> tuple[str, list[dict[str, Any]]]:
    """A restore job's status and its one task at `now`."""
    restore = job["restore"]
    task: dict[str, Any] = {"taskId": TASK, "duration": "PT0S", "status": "InProgress"}
    if now < restore["transferEnd"]:
        return "InProgress", [task]
    if restore["outcome"] == "Failed":
        task["status"] = "Failed"
        return "Failed", [task]
    task["status"] = "Completed"
    task["taskExecutionDetails"] = f"{transferred_gb(job)} GBs / {transferred_gb(job)} GBs Transferred"
    if now < job["end"]:
        return "InProgress", [task]
    return str(restore["outcome"]), [task]


def transferred_gb(job: dict[str, Any]) -> int:
    return sum(int(d["sizeGB"]) for d in job["restore"]["disks"])


def extended_info(
    backend: BackupBackend, job: dict[str, Any], status_now: str, tasks: list[dict[str, Any]], base_url: str
) -> dict[str, Any]:
    """extendedInfo of a restore job's GET, as recorded: tasksList, propertyBag (the config and template
    blobs once done), an empty internalPropertyBag, progressPercentage (1 while transferring, 99 while
    finishing, 100 done) and estimatedRemainingDuration once the transfer is done."""
    now = backend.world.now()
    restore = job["restore"]
    bag = {
        "Job Type": "Recover disks",
        "Target Storage Account Name": restore["accountName"],
        "Recovery point time ": _bag_time(restore["pointTime"]),  # the trailing space is Azure's
    }
    if restore["targetGroup"]:
        bag["Target resource group"] = restore["targetGroup"][1]
    extended: dict[str, Any] = {"tasksList": tasks, "propertyBag": bag, "internalPropertyBag": {}}
    done = status_now in ("Completed", "CompletedWithWarnings")
    if done:
        uri = f"{base_url}/{restore['accountName']}.blob/{restore['container']}"
        bag["Config Blob Name"] = restore["configBlob"]
        bag["Config Blob Container Name"] = restore["container"]
        bag["Config Blob Uri"] = f"{uri}/{restore['configBlob']}"
        bag["Template Blob Uri"] = f"{uri}/{restore['templateBlob']}"
        item = backend.items.get(job["item"].lower())
        if restore["luns"] is not None or (item is not None and item["exclusion"]):
            bag["Restored disk(s)"] = "; ".join(d["name"] for d in restore["disks"])
            bag["Backed-up disk(s)"] = "; ".join(d["name"] for d in _backed_up(backend, job))
    if status_now == "InProgress":
        extended["progressPercentage"] = 1.0 if now < restore["transferEnd"] else 99.0
        if now >= restore["transferEnd"]:
            extended["estimatedRemainingDuration"] = _minutes(job["end"] - now)
    elif status_now != "Failed":
        extended["progressPercentage"] = 100.0
        extended["estimatedRemainingDuration"] = "PT0S"
    return extended


def _backed_up(backend: BackupBackend, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The disks the restored point holds (OS disk first), whatever part of them was restored."""
    for point in backend.points.get(job["item"].lower(), []):
        if point["id"] == job["restore"]["point"] and point.get("restore"):
            facts = point["restore"]
            return [facts["os"], *facts["data"]]
    return list(job["restore"]["disks"])


def _minutes(seconds: float) -> str:
    """Azure's estimate, in whole minutes as recorded ('PT2M'), at least a minute while not done."""
    return f"PT{max(1, round(seconds / 60))}M"


def _bag_time(ts: float) -> str:
    from armsim.backup.models import bag_time

    return bag_time(ts)


def tick(backend: BackupBackend, now: float) -> None:
    """Make what finished restores made: their disks and blobs."""
    keep = []
    for vault_key, job_id in backend.pending_restores:
        job = backend.jobs.get(vault_key, {}).get(job_id)
        if job is None:
            continue
        if job["end"] > now:
            keep.append([vault_key, job_id])
            continue
        if job["restore"]["outcome"] != "Failed" and not job["restore"]["applied"]:
            _apply(backend, job)
        job["restore"]["applied"] = True
    backend.pending_restores = keep


def _apply(backend: BackupBackend, job: dict[str, Any]) -> None:
    restore = job["restore"]
    facts = next(
        (p["restore"] for p in backend.points.get(job["item"].lower(), []) if p["id"] == restore["point"]),
        None,
    ) or {"vm": job["vm"], "vmName": job["name"], "location": "", "agent": "Ready", "os": restore["disks"][0]}
    compute = backend.world.backend(ComputeBackend)
    stamp = _stamp(job["start"])
    made: list[dict[str, Any]] = []
    if restore["targetGroup"]:
        subscription, group_name = restore["targetGroup"]
        group = backend.world.backend(ResourcesBackend).group(subscription, group_name)
        if group is not None:
            for disk in restore["disks"]:
                kind = "osdisk" if disk["lun"] == -1 else f"datadisk-{disk['lun']}"
                name = _free_name(compute, subscription, group["name"], f"{facts['vmName']}-{kind}-{stamp}")
                disk_id = f"/subscriptions/{subscription}/resourceGroups/{group['name']}/providers/Microsoft.Compute/disks/{name}"
                model: dict[str, Any] = {
                    "id": disk_id,
                    "name": name,
                    "type": "Microsoft.Compute/disks",
                    "location": facts.get("location") or group["location"],
                    "tags": {},
                    "sku": {
                        "name": disk["sku"],
                        "tier": "Premium" if disk["sku"].startswith("Premium") else "Standard",
                    },
                    "properties": {
                        "creationData": {"createOption": "Restore"},
                        "diskSizeGB": int(disk["sizeGB"]),
                        "maxShares": 1,
                        "diskState": "Unattached",
                        "provisioningState": "Succeeded",
                        "timeCreated": _iso(restore["transferEnd"]),
                    },
                }
                if disk["lun"] == -1:
                    model["properties"]["osType"] = facts["os"]["osType"]
                compute.add_restored_disk(
                    model,
                    {
                        "sourceVm": facts["vm"],
                        "agent": facts.get("agent", "Ready"),
                        "osType": facts["os"]["osType"],
                        "lun": disk["lun"],
                        "job": job["id"],
                    },
                )
                made.append({"lun": disk["lun"], "id": disk_id, "source": disk["name"]})
    restore["made"] = made
    account = backend.world.backend(StorageBackend).find(restore["account"])
    if account is not None:
        storage = backend.world.backend(StorageBackend)
        config = _vm_config(facts, restore)
        storage.put_blob(
            account, restore["container"], restore["configBlob"], _json(config), "application/json"
        )
        storage.put_blob(
            account,
            restore["container"],
            restore["templateBlob"],
            _json(_template(facts, made)),
            "application/json",
        )


def _vm_config(facts: dict[str, Any], restore: dict[str, Any]) -> dict[str, Any]:
    """The backed-up VM's configuration as the config blob holds it (armsim's reading: the VM's ARM model
    of the point, its disks as backed up)."""
    return {
        "id": facts["vm"],
        "name": facts["vmName"],
        "type": "Microsoft.Compute/virtualMachines",
        "location": facts.get("location", ""),
        "properties": {
            "hardwareProfile": {"vmSize": facts.get("vmSize", "")},
            "storageProfile": {
                "osDisk": {
                    "osType": facts["os"]["osType"],
                    "name": facts["os"]["name"],
                    "diskSizeGB": facts["os"]["sizeGB"],
                    "managedDisk": {"storageAccountType": facts["os"]["sku"]},
                },
                "dataDisks": [
                    {
                        "lun": d["lun"],
                        "name": d["name"],
                        "diskSizeGB": d["sizeGB"],
                        "managedDisk": {"storageAccountType": d["sku"]},
                    }
                    for d in facts.get("data", [])
                ],
            },
            **({"securityProfile": facts["securityProfile"]} if facts.get("securityProfile") else {}),
        },
    }


def _template(facts: dict[str, Any], made: list[dict[str, Any]]) -> dict[str, Any]:
    """An ARM template that creates a VM from the restored disks (attached, as Azure's template does)."""
    os_disk = next((m for m in made if m["lun"] == -1), None)
    storage: dict[str, Any] = {
        "osDisk": {
            "osType": facts["os"]["osType"],
            "createOption": "Attach",
            **({"managedDisk": {"id": os_disk["id"]}} if os_disk else {}),
        },
        "dataDisks": [
            {"lun": m["lun"], "createOption": "Attach", "managedDisk": {"id": m["id"]}}
            for m in made
            if m["lun"] >= 0
        ],
    }
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "VirtualMachineName": {"type": "string"},
            "VirtualNetwork": {"type": "string"},
            "Subnet": {"type": "string"},
        },
        "resources": [
            {
                "type": "Microsoft.Compute/virtualMachines",
                "apiVersion": "2024-07-01",
                "name": "[parameters('VirtualMachineName')]",
                "location": facts.get("location", ""),
                "properties": {
                    "hardwareProfile": {"vmSize": facts.get("vmSize", "")},
                    "storageProfile": storage,
                },
            }
        ],
    }


def _free_name(compute: ComputeBackend, subscription: str, group: str, name: str) -> str:
    base, suffix = name, 1
    while (
        f"/subscriptions/{subscription}/resourcegroups/{group}/providers/microsoft.compute/disks/{name}".lower()
        in compute.disks
    ):
        name = f"{base}-{suffix}"
        suffix += 1
    return name


def _stamp(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%d-%H%M%S")


def _iso(ts: float) -> str:
    from armsim.backup.models import ts_iso

    return ts_iso(ts)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode("utf-8")


def force_outcomes(
    backend: BackupBackend, vm_id: str, outcome: str, error_code: str | None, count: int
) -> int:
    """The next `count` restores of the VM's item end so (Completed, Failed, CompletedWithWarnings)."""
    from armsim.backup.errorcodes import JOB_ERRORS, RESTORE_ERRORS

    if outcome not in ("Completed", "Failed", "CompletedWithWarnings"):
        raise ValueError("outcome must be Completed, Failed or CompletedWithWarnings")
    if error_code is not None and error_code not in JOB_ERRORS and error_code not in RESTORE_ERRORS:
        known = sorted(set(JOB_ERRORS) | set(RESTORE_ERRORS))
        raise ValueError(f"unknown error code {error_code!r}; known: {', '.join(known)}")
    if count < 1:
        raise ValueError("count must be 1 or more")
    queue = backend.forced_restores.setdefault(vm_id.lower(), [])
    queue.extend({"outcome": outcome, "errorCode": error_code} for _ in range(count))
    return len(queue)
