"""Seeding a whole estate in one call: subscriptions, groups, vaults, policies, VMs, protection and
job history. Everything goes through the same models (and rules) as the ARM routes.

    POST /_armsim/seed
    {
      "subscriptions": [{"subscriptionId": "...", "displayName": "..."}],
      "resourceGroups": [{"subscriptionId": "...", "name": "rg", "location": "westeurope"}],
      "vaults": [{"subscriptionId", "resourceGroup", "name", "location", "redundancy": "GeoRedundant",
                  "securitySettings": {"softDeleteSettings": {...}, "immutabilitySettings": {"state": "Locked"}},
                  "resourceGuard": "/subscriptions/…/providers/Microsoft.DataProtection/resourceGuards/rg1"}],
      "policies": [{"vaultId": "...", "name": "gold", "properties": {...ARM policy properties...}}],
      "vms": [{"subscriptionId", "resourceGroup", "name", "location", "tags": {}, "osType": "Linux",
               "image": {"publisher", "offer", "sku", "version"} | null (a migrated VM),
               "securityType": "TrustedLaunch" | null, "vmSize": "Standard_D2s_v5",
               "dataDisks": [{"lun": 0, "sizeGB": 128, "shared": false}],
               "agent": "Ready" | "NotReady" | "Missing", "power": "running" | "stopped" | "deallocated",
               "provisioningState": "Succeeded" | "Failed"}],
      "protections": [{"vmId", "vaultId", "policy": "gold", "state": "Protected" | "ProtectionStopped" |
                       "SoftDeleted", "excludedLuns": [1]}],
      "jobs": [{"vmId", "outcome": "Completed" | "Failed" | "CompletedWithWarnings", "errorCode": "...",
                "hoursAgo": 26, "kind": "Scheduled" | "OnDemand"}],
      "storageAccounts": [{"subscriptionId", "resourceGroup", "name", "location", "sku": "Standard_LRS",
                           "kind": "StorageV2", "tags": {}}],
      "emitEvents": false
    }

Resource groups named by VMs and vaults are created when missing. Answers counts of what was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.backup.models import BackupBackend
from armsim.compute.models import ComputeBackend
from armsim.core.errors import ResourceNotFound
from armsim.resources.models import ResourcesBackend
from armsim.storage.models import StorageBackend
from armsim.vaults.models import VaultsBackend

if TYPE_CHECKING:
    from armsim.core.world import World

KNOWN_KEYS = {
    "subscriptions",
    "resourceGroups",
    "vaults",
    "policies",
    "vms",
    "protections",
    "jobs",
    "storageAccounts",
    "emitEvents",
}


# One branch per kind of seed (groups, VMs, vaults, policies, protections, jobs, storage...), in the
# order they depend on each other.
def apply_seed(world: World, data: dict[str, Any]) -> dict[str, int]:  # noqa: C901
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown seed keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
    resources = world.backend(ResourcesBackend)
    compute = world.backend(ComputeBackend)
    vaults = world.backend(VaultsBackend)
    backup = world.backend(BackupBackend)
    storage = world.backend(StorageBackend)
    emit = bool(data.get("emitEvents", False))
    counts = dict.fromkeys(
        (
            "subscriptions",
            "resourceGroups",
            "vaults",
            "policies",
            "vms",
            "protections",
            "jobs",
            "storageAccounts",
        ),
        0,
    )

    def group(subscription_id: str, name: str, location: str) -> None:
        resources.add_subscription(subscription_id)
        if resources.group(subscription_id, name) is None:
            resources.put_group(subscription_id, name, location, {})
            counts["resourceGroups"] += 1

    for sub in data.get("subscriptions", []):
        spec = {"subscriptionId": sub} if isinstance(sub, str) else sub
        resources.add_subscription(spec["subscriptionId"], spec.get("displayName", ""))
        counts["subscriptions"] += 1
    for spec in data.get("resourceGroups", []):
        group(spec["subscriptionId"], spec["name"], spec["location"])
    for spec in data.get("storageAccounts", []):
        group(spec["subscriptionId"], spec["resourceGroup"], spec["location"])
        storage.put(
            spec["subscriptionId"],
            spec["resourceGroup"],
            spec["name"],
            {
                "location": spec["location"],
                "sku": {"name": spec.get("sku", "Standard_LRS")},
                "kind": spec.get("kind", "StorageV2"),
                "tags": spec.get("tags", {}),
            },
        )
        counts["storageAccounts"] += 1
    for spec in data.get("vaults", []):
        group(spec["subscriptionId"], spec["resourceGroup"], spec["location"])
        redundancy = spec.get("redundancy", "GeoRedundant")
        settings = dict(spec.get("securitySettings") or {})
        immutability = (settings.pop("immutabilitySettings", None) or {}).get("state")
        record, _ = vaults.put(
            spec["subscriptionId"],
            spec["resourceGroup"],
            spec["name"],
            {
                "location": spec["location"],
                "properties": {
                    "redundancySettings": {"standardTierStorageRedundancy": redundancy},
                    "securitySettings": settings,
                },
            },
        )
        if immutability:
            # As Azure takes it: Locked only from Unlocked (armsim/vaults/security.py).
            steps = ["Unlocked", "Locked"] if str(immutability).lower() == "locked" else [immutability]
            for state in steps:
                vaults.patch(
                    spec["subscriptionId"],
                    spec["resourceGroup"],
                    spec["name"],
                    {"properties": {"securitySettings": {"immutabilitySettings": {"state": state}}}},
                )
        if spec.get("resourceGuard"):
            backup.put_guard_proxy(
                record, "VaultProxy", {"properties": {"resourceGuardResourceId": spec["resourceGuard"]}}
            )
        counts["vaults"] += 1
    for spec in data.get("policies", []):
        vault = _vault(vaults, spec["vaultId"])
        backup.put_policy(vault, spec["name"], {"properties": spec["properties"]}, counted=False)
        counts["policies"] += 1
    for spec in data.get("vms", []):
        group(spec["subscriptionId"], spec["resourceGroup"], spec["location"])
        body, sim = vm_body(spec)
        for disk in spec.get("dataDisks", []):
            if disk.get("shared"):
                compute.put_disk(
                    spec["subscriptionId"],
                    spec["resourceGroup"],
                    f"{spec['name']}-shared-{disk['lun']}",
                    {
                        "location": spec["location"],
                        "properties": {"diskSizeGB": disk.get("sizeGB", 128), "maxShares": 2},
                    },
                )
        compute.put_vm(spec["subscriptionId"], spec["resourceGroup"], spec["name"], body, sim=sim, emit=emit)
        counts["vms"] += 1
    for spec in data.get("protections", []):
        vault = _vault(vaults, spec["vaultId"])
        vm = compute.find_vm(spec["vmId"])
        if vm is None:
            raise ValueError(f"protections: no VM {spec['vmId']}")
        backup.refresh(vault)
        group_name, name = vm["model"]["id"].split("/")[4], vm["model"]["name"]
        container = f"iaasvmcontainerv2;{group_name};{name}"
        props: dict[str, Any] = {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm["model"]["id"],
            "policyId": f"{vault['model']['id']}/backupPolicies/{spec['policy']}",
        }
        if spec.get("excludedLuns"):
            props["extendedProperties"] = {
                "diskExclusionProperties": {"diskLunList": spec["excludedLuns"], "isInclusionList": False}
            }
        item, _ = backup.put_item(
            vault,
            "Azure",
            f"IaasVMContainer;{container}",
            f"VM;{container}",
            {"properties": props},
            seeding=True,
        )
        item.pop("operation", None)  # seeded items are idle at once
        state = spec.get("state", "Protected")
        if state in ("ProtectionStopped", "SoftDeleted"):
            stop = {
                "sourceResourceId": vm["model"]["id"],
                "protectionState": "ProtectionStopped",
                "policyId": "",
            }
            backup.put_item(
                vault, "Azure", f"IaasVMContainer;{container}", f"VM;{container}", {"properties": stop}
            )
            item.pop("operation", None)
        if state == "SoftDeleted":
            backup.delete_item(vault, item)
            item.pop("operation", None)
        counts["protections"] += 1
    for spec in sorted(data.get("jobs", []), key=lambda j: -float(j.get("hoursAgo", 0))):
        key = backup.by_vm.get(spec["vmId"].lower())
        if key is None:
            raise ValueError(f"jobs: VM {spec['vmId']} is not protected (seed its protection first)")
        item = backup.items[key]
        vault = _vault(vaults, item["vault"])
        backup.force_outcomes(spec["vmId"], spec.get("outcome", "Completed"), spec.get("errorCode"), 1)
        start = world.now() - float(spec.get("hoursAgo", 0)) * 3600
        backup.start_backup(vault, item, spec.get("kind", "Scheduled"), start, None)
        counts["jobs"] += 1
    world.changed()
    return counts


def _vault(vaults: VaultsBackend, vault_id: str) -> dict[str, Any]:
    record = vaults.find(vault_id)
    if record is None:
        raise ResourceNotFound(f"No vault {vault_id}")
    return record


def vm_body(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ARM body of a seeded VM, and its simulated facts (agent, power, provisioning)."""
    os_type = spec.get("osType", "Linux")
    image = spec.get("image", _default_image(os_type))
    storage: dict[str, Any] = {
        "osDisk": {
            "osType": os_type,
            "createOption": "FromImage" if image else "Attach",
            "managedDisk": {"storageAccountType": "Premium_LRS"},
        },
        "dataDisks": [],
    }
    if image:
        storage["imageReference"] = image
    for disk in spec.get("dataDisks", []):
        entry: dict[str, Any] = {
            "lun": disk["lun"],
            "createOption": "Empty",
            "diskSizeGB": disk.get("sizeGB", 128),
        }
        if disk.get("shared"):
            group_id = f"/subscriptions/{spec['subscriptionId']}/resourceGroups/{spec['resourceGroup']}"
            entry["createOption"] = "Attach"
            entry["managedDisk"] = {
                "id": f"{group_id}/providers/Microsoft.Compute/disks/{spec['name']}-shared-{disk['lun']}"
            }
        storage["dataDisks"].append(entry)
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": spec.get("vmSize", "Standard_D2s_v5")},
        "storageProfile": storage,
        "networkProfile": {"networkInterfaces": []},
    }
    if image:
        key = "windowsConfiguration" if os_type == "Windows" else "linuxConfiguration"
        props["osProfile"] = {
            "computerName": spec["name"][:15],
            "adminUsername": "azureuser",
            key: {"provisionVMAgent": True},
        }
    if spec.get("securityType"):
        props["securityProfile"] = {
            "securityType": spec["securityType"],
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    sim: dict[str, Any] = {k: spec[k] for k in ("agent", "power", "provisioningState") if k in spec}
    return {"location": spec["location"], "tags": spec.get("tags", {}), "properties": props}, sim


def _default_image(os_type: str) -> dict[str, str]:
    if os_type == "Windows":
        return {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition",
            "version": "latest",
        }
    return {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
