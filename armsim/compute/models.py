"""Microsoft.Compute virtual machines and managed disks: state and rules.

About 580 lines: VMs, their instance views and power, managed disks and VMs made from restored
disks share the same records (a disk's owner is a VM), so they are modelled together."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from armsim.core.clock import iso
from armsim.core.errors import (
    BadRequest,
    Conflict,
    InvalidRequestContent,
    NotFound,
    resource_not_found,
)
from armsim.core.http import Router
from armsim.core.operations import operations
from armsim.core.world import DEFAULT_CONFIG, Provider
from armsim.eventgrid.models import EventGridBackend
from armsim.resources.models import ResourcesBackend, normalize_location

IMAGE_OS_DISK_GB = {"Windows": 127, "Linux": 30}  # marketplace images' OS disks (recorded: 127 GB, Windows)

VM_TYPE = "Microsoft.Compute/virtualMachines"
DISK_TYPE = "Microsoft.Compute/disks"
DEFAULT_AGENT_VERSION = "2.7.41491.1102"
POWER_STATES = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}
AGENT_STATES = ("Ready", "NotReady", "Missing")


# A VM made from restored disks boots for this long (simulated seconds after its creation completes)
# before its agent reports Ready: armsim's choice (no evidence of a figure), configurable.
DEFAULT_CONFIG.setdefault("bootSeconds", 120.0)
NEVER = 253402300799.0  # 9999-12-31T23:59:59Z: a guest that never boots never reports


def vm_id(subscription_id: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{VM_TYPE}/{name}"


class ComputeBackend(Provider):
    name = "compute"

    def reset(self) -> None:
        self.vms: dict[
            str, dict[str, Any]
        ] = {}  # lower-case id -> {"model": ARM JSON, "sim": simulated facts}
        self.disks: dict[str, dict[str, Any]] = {}  # lower-case id -> ARM JSON
        # lower-case disk id -> what a restore made it from: {"sourceVm", "agent", "osType", "lun", "job"}
        self.restored: dict[str, dict[str, Any]] = {}
        # How the next VMs made from restored disks boot (POST /_armsim/vms/boot), oldest first:
        # {"source": lower source VM id or "*", "outcome": "Boots" | "NeverBoots", "bootSeconds": float | None}
        self.boot_plans: list[dict[str, Any]] = []

    def register(self, router: Router) -> None:
        from armsim.compute.responses import ROUTES, ComputeResponses

        router.mount(ComputeResponses(self), ROUTES)

    # -- virtual machines ------------------------------------------------------------------
    def get_vm(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        record = self.vms.get(vm_id(subscription_id, group, name).lower())
        if record is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(VM_TYPE, name, group)
        return record

    def find_vm(self, resource_id: str) -> dict[str, Any] | None:
        return self.vms.get(resource_id.lower())

    # The VM body's checks, one branch per refusal Compute gives, then the model: one place to read
    # what a VM PUT accepts.
    def put_vm(  # noqa: C901
        self,
        subscription_id: str,
        group: str,
        name: str,
        body: dict[str, Any],
        sim: dict[str, Any] | None = None,
        emit: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """Create or update a VM from its ARM body; `sim` sets simulated facts (agent, power)."""
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("LocationRequired", "The location property is required for this definition.")
        location = normalize_location(location)
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRequestContent("The 'properties' of a virtual machine must be an object.")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise InvalidRequestContent("The 'tags' must be an object of string values.")
        if len(tags) > 50:
            raise BadRequest("InvalidTagCount", "The number of tags exceeds the limit of 50.")
        existing = self.vms.get(vm_id(subscription_id, group, name).lower())
        if existing is not None and existing["model"]["location"] != location:
            raise Conflict(
                "PropertyChangeNotAllowed",
                "Changing property 'location' is not allowed.",
            )
        storage = props.get("storageProfile") or {}
        data_disks = storage.get("dataDisks") or []
        luns = [d.get("lun") for d in data_disks]
        if any(not isinstance(lun, int) or not 0 <= lun <= 63 for lun in luns) or len(set(luns)) != len(luns):
            raise BadRequest(
                "InvalidParameter",
                "Each data disk needs a unique 'lun' from 0 to 63.",
            )
        key = vm_id(subscription_id, group, name).lower()
        self._check_attached_disks(key, [storage.get("osDisk") or {}, *data_disks])
        self._check_nics(vm_id(subscription_id, rg["name"], name), location, props)

        model = copy.deepcopy(existing["model"]) if existing else {}
        model.update(
            {
                "id": vm_id(subscription_id, rg["name"], name),
                "name": name,
                "type": VM_TYPE,
                "location": location,
                "tags": dict(tags),
            }
        )
        if body.get("zones"):
            model["zones"] = body["zones"]
        new_props = copy.deepcopy(props)
        new_props.pop("instanceView", None)
        new_props.pop("provisioningState", None)
        new_props["vmId"] = (existing or {}).get("model", {}).get("properties", {}).get("vmId") or str(
            uuid.uuid4()
        )
        new_props["timeCreated"] = (existing or {}).get("model", {}).get("properties", {}).get(
            "timeCreated"
        ) or iso(self.world.clock.now())
        osdisk = new_props.setdefault("storageProfile", {}).setdefault("osDisk", {})
        osdisk.setdefault("osType", _os_type(new_props))
        osdisk.setdefault("name", f"{name}_OsDisk_1")
        osdisk.setdefault("createOption", "FromImage")
        if str(osdisk["createOption"]).lower() == "fromimage":
            # Azure sizes an image's OS disk and says so in the VM's model (the official
            # VirtualMachine_Get example: "diskSizeGB": 30): marketplace images' sizes.
            osdisk.setdefault("diskSizeGB", IMAGE_OS_DISK_GB.get(osdisk["osType"], 30))
        os_managed = osdisk.get("managedDisk")
        if isinstance(os_managed, dict) and not os_managed.get("id"):
            # Azure names the OS disk's managed disk (recorded); only the id is filled in.
            os_managed["id"] = (
                f"/subscriptions/{subscription_id}/resourceGroups/{rg['name']}/providers/{DISK_TYPE}/{osdisk['name']}"
            )
        new_props["storageProfile"].setdefault("dataDisks", [])
        os_profile = new_props.get("osProfile")
        if isinstance(os_profile, dict):
            # Azure never returns the password, and fills in the OS configuration's defaults.
            os_profile.pop("adminPassword", None)
            os_profile.setdefault("secrets", [])
            if osdisk["osType"] == "Windows":
                config = os_profile.setdefault("windowsConfiguration", {})
                config.setdefault("enableAutomaticUpdates", True)
            else:
                config = os_profile.setdefault("linuxConfiguration", {})
                config.setdefault("disablePasswordAuthentication", False)
            config.setdefault("provisionVMAgent", True)
        for disk in new_props["storageProfile"].get("dataDisks") or []:
            disk.setdefault("name", f"{name}_DataDisk_{disk['lun']}")
            disk.setdefault("createOption", "Empty")
            disk.setdefault("toBeDetached", False)  # recorded on every data disk
            managed = disk.setdefault("managedDisk", {})
            if not managed.get("id"):
                managed["id"] = (
                    f"/subscriptions/{subscription_id}/resourceGroups/{rg['name']}/providers/{DISK_TYPE}/{disk['name']}"
                )
            self._ensure_disk(managed["id"], location, disk)
        model["properties"] = new_props

        record_sim = copy.deepcopy(existing["sim"]) if existing else _default_sim(new_props)
        if existing is None:
            record_sim["createdTs"] = self.world.now()
            restored = self.restored.get(str((osdisk.get("managedDisk") or {}).get("id") or "").lower())
            if str(osdisk.get("createOption", "")).lower() == "attach" and restored is not None:
                self._boot_from_restored_disks(record_sim, restored)
        for field_name, value in (sim or {}).items():
            if field_name == "agent" and value not in AGENT_STATES:
                raise BadRequest("InvalidParameter", f"agent must be one of {', '.join(AGENT_STATES)}")
            if field_name == "power" and value not in POWER_STATES:
                raise BadRequest("InvalidParameter", f"power must be one of {', '.join(POWER_STATES)}")
            record_sim[field_name] = value
        record_sim["updated"] = self.world.now()
        op = operations(self.world).begin(
            "VirtualMachineWrite",
            resource_id=model["id"],
            on_done=(lambda: self._emit(model["id"], "write")) if emit else None,
        )
        record_sim["operation"] = op.id
        record_sim["pending"] = "Creating" if existing is None else "Updating"
        self.vms[key] = {"model": model, "sim": record_sim}
        return self.vms[key], existing is None

    def _check_attached_disks(self, key: str, disks: list[dict[str, Any]]) -> None:
        """Disks attached (createOption Attach) must exist and be free: a disk another VM uses is
        refused (409 OperationNotAllowed, Compute's answer for a disk in use). Who uses a disk is
        only looked up when the body attaches one (a scan of every VM: not for each VM created)."""
        attached = [
            disk
            for disk in disks
            if (disk.get("managedDisk") or {}).get("id")
            and str(disk.get("createOption", "")).lower() == "attach"
        ]
        owners = self.attachments() if attached else {}
        for disk in attached:
            disk_id = str(disk["managedDisk"]["id"])
            if disk_id.lower() not in self.disks:
                raise NotFound("NotFound", f"Disk '{disk_id}' was not found.")
            owner = owners.get(disk_id.lower())
            managed = self.disks[disk_id.lower()]
            if owner and owner.lower() != key and int(managed["properties"].get("maxShares", 1)) <= 1:
                raise Conflict("OperationNotAllowed", f"Disk {managed['name']} is attached to VM {owner}.")

    def _check_nics(self, resource_id: str, location: str, props: dict[str, Any]) -> None:
        """The NICs of the network profile must exist in the VM's region (400 InvalidResourceReference,
        Network's answer for a reference to a resource not there or in another region) and not be
        another VM's (400 NicInUse)."""
        from armsim.network.models import NetworkBackend, nic_in_use

        network = self.world.backend(NetworkBackend)
        for nic in (props.get("networkProfile") or {}).get("networkInterfaces") or []:
            nic_id = str((nic or {}).get("id") or "") if isinstance(nic, dict) else ""
            if not nic_id:
                raise BadRequest(
                    "InvalidParameter", "Each network interface of the network profile needs an 'id'."
                )
            record = network.find_nic(nic_id)
            if record is None or record["model"]["location"] != location:
                raise BadRequest(
                    "InvalidResourceReference",
                    f"Resource {nic_id} referenced by resource {resource_id} was not found. Please make sure "
                    "that the referenced resource exists, and that both resources are in the same region.",
                )
            owner = network.nic_owner(nic_id)
            if owner and owner.lower() != resource_id.lower():
                raise nic_in_use(nic_id, owner)

    def patch_vm(self, subscription_id: str, group: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        record = self.get_vm(subscription_id, group, name)
        tags = body.get("tags")
        if tags is not None:
            if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
                raise InvalidRequestContent("The 'tags' must be an object of string values.")
            record["model"]["tags"] = dict(tags)
        if isinstance(body.get("properties"), dict):
            for key, value in body["properties"].items():
                if key not in ("provisioningState", "vmId", "instanceView"):
                    record["model"]["properties"][key] = value
        self._emit(record["model"]["id"], "write")
        return record

    def delete_vm(self, subscription_id: str, group: str, name: str) -> str:
        record = self.get_vm(subscription_id, group, name)
        resource_id = record["model"]["id"]
        del self.vms[resource_id.lower()]
        op = operations(self.world).begin(
            "VirtualMachineDelete", resource_id=resource_id, on_done=lambda: self._emit(resource_id, "delete")
        )
        return op.id

    def set_power(self, record: dict[str, Any], power: str) -> str:
        record["sim"]["power"] = power
        op = operations(self.world).begin("VirtualMachinePower", resource_id=record["model"]["id"])
        return op.id

    def delete_in_group(self, subscription_id: str, group: str) -> None:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{group}/".lower()
        for key in [k for k in self.vms if k.startswith(prefix)]:
            resource_id = self.vms.pop(key)["model"]["id"]
            self._emit(resource_id, "delete")
        for key in [k for k in self.disks if k.startswith(prefix)]:
            del self.disks[key]
            self.restored.pop(key, None)

    def provisioning_state(self, record: dict[str, Any]) -> str:
        op = operations(self.world).get(record["sim"].get("operation", ""))
        if op is not None and not op.finished(self.world.now()):
            return str(record["sim"].get("pending", "Updating"))
        return str(record["sim"].get("provisioningState", "Succeeded"))

    def view(self, record: dict[str, Any], instance_view: bool = False) -> dict[str, Any]:
        model = copy.deepcopy(record["model"])
        model["properties"]["provisioningState"] = self.provisioning_state(record)
        if instance_view:
            model["properties"]["instanceView"] = self.instance_view(record)
        return model

    def instance_view(self, record: dict[str, Any]) -> dict[str, Any]:
        sim = record["sim"]
        props = record["model"]["properties"]
        now = iso(self.world.clock.now())
        state = self.provisioning_state(record)
        security = str((props.get("securityProfile") or {}).get("securityType", "")).lower()
        view: dict[str, Any] = {
            "platformUpdateDomain": 0,
            "platformFaultDomain": 0,
            "computerName": (props.get("osProfile") or {}).get("computerName", record["model"]["name"]),
            "osName": sim.get("osName", ""),
            "osVersion": sim.get("osVersion", ""),
            "hyperVGeneration": "V2" if security in ("trustedlaunch", "confidentialvm") else "V1",
            "isVMInStandbyPool": False,
            "disks": [
                {
                    "name": d.get("name"),
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded",
                            "level": "Info",
                            "displayStatus": "Provisioning succeeded",
                            "time": now,
                        }
                    ],
                }
                for d in [
                    props["storageProfile"]["osDisk"],
                    *(props["storageProfile"].get("dataDisks") or []),
                ]
            ],
            "statuses": [
                {
                    "code": f"ProvisioningState/{state.lower()}",
                    "level": "Error" if state == "Failed" else "Info",
                    "displayStatus": f"Provisioning {state.lower()}",
                    "time": now,
                },
                {
                    "code": f"PowerState/{sim['power']}",
                    "level": "Info",
                    "displayStatus": POWER_STATES[sim["power"]],
                },
            ],
        }
        if sim["agent"] == "Ready" and self.world.now() < sim.get("agentReadyAt", 0.0):
            view["vmAgent"] = {
                "vmAgentVersion": "Unknown",
                "statuses": [
                    {
                        "code": "ProvisioningState/Unavailable",
                        "level": "Warning",
                        "displayStatus": "Not Ready",
                        "message": "VM status blob is found but not yet populated.",
                        "time": now,
                    }
                ],
            }
        elif sim["agent"] == "Ready":
            view["vmAgent"] = {
                "vmAgentVersion": sim.get("agentVersion", DEFAULT_AGENT_VERSION),
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "message": "Guest Agent is running",
                        "time": now,
                    }
                ],
            }
        elif sim["agent"] == "NotReady":
            view["vmAgent"] = {
                "vmAgentVersion": "Unknown",
                "statuses": [
                    {
                        "code": "ProvisioningState/Unavailable",
                        "level": "Warning",
                        "displayStatus": "Not Ready",
                        "message": "VM Agent is unresponsive.",
                        "time": now,
                    }
                ],
            }
        return view

    def list_vms(self, subscription_id: str, group: str | None = None) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/".lower()
        if group is not None:
            prefix += f"{group.lower()}/"
        return [record for key, record in sorted(self.vms.items()) if key.startswith(prefix)]

    def _emit(self, resource_id: str, kind: str) -> None:
        self.world.backend(EventGridBackend).resource_event(resource_id, kind, VM_TYPE)

    # -- disks -----------------------------------------------------------------------------
    def _ensure_disk(self, disk_id: str, location: str, data_disk: dict[str, Any]) -> None:
        if disk_id.lower() in self.disks:
            return
        name = disk_id.rsplit("/", 1)[-1]
        self.disks[disk_id.lower()] = {
            "id": disk_id,
            "name": name,
            "type": DISK_TYPE,
            "location": location,
            "sku": {"name": "Premium_LRS", "tier": "Premium"},
            "properties": {
                "creationData": {"createOption": "Empty"},
                "diskSizeGB": data_disk.get("diskSizeGB", 128),
                "maxShares": 1,
                "diskState": "Attached",
                "provisioningState": "Succeeded",
            },
        }

    def put_disk(
        self, subscription_id: str, group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("LocationRequired", "The location property is required for this definition.")
        disk_id = f"/subscriptions/{subscription_id}/resourceGroups/{rg['name']}/providers/{DISK_TYPE}/{name}"
        props = dict(body.get("properties") or {})
        props.setdefault("diskSizeGB", 128)
        props.setdefault("maxShares", 1)
        props.setdefault("creationData", {"createOption": "Empty"})
        props["provisioningState"] = "Succeeded"
        props.setdefault("diskState", "Unattached")
        created = disk_id.lower() not in self.disks
        self.disks[disk_id.lower()] = {
            "id": disk_id,
            "name": name,
            "type": DISK_TYPE,
            "location": normalize_location(location),
            "tags": body.get("tags") or {},
            "sku": body.get("sku") or {"name": "Premium_LRS", "tier": "Premium"},
            "properties": props,
        }
        return self.disks[disk_id.lower()], created

    def get_disk(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        disk_id = f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{DISK_TYPE}/{name}"
        disk = self.disks.get(disk_id.lower())
        if disk is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(DISK_TYPE, name, group)
        return disk

    def disk_view(self, disk: dict[str, Any], attached: dict[str, str] | None = None) -> dict[str, Any]:
        """A managed disk as Azure answers it: Attached with managedBy (the VM) while a VM uses it, else
        Unattached. `attached` maps lower disk ids to VM ids (computed once for a list)."""
        view = copy.deepcopy(disk)
        owner = (attached if attached is not None else self.attachments()).get(disk["id"].lower())
        view["properties"]["diskState"] = "Attached" if owner else "Unattached"
        if owner:
            view["managedBy"] = owner
        else:
            view.pop("managedBy", None)
        return view

    def attachments(self) -> dict[str, str]:
        """Lower disk id -> the id of the VM whose OS or data disk it is."""
        owners: dict[str, str] = {}
        for record in self.vms.values():
            storage = record["model"]["properties"]["storageProfile"]
            for disk in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]:
                disk_id = (disk.get("managedDisk") or {}).get("id")
                if disk_id:
                    owners[disk_id.lower()] = record["model"]["id"]
        return owners

    def delete_disk(self, subscription_id: str, group: str, name: str) -> str | None:
        """Delete a managed disk: the operation's id, or None when there was no such disk (Azure answers
        204). A disk a VM still uses is refused (409 OperationNotAllowed)."""
        self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        disk_id = f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{DISK_TYPE}/{name}"
        disk = self.disks.get(disk_id.lower())
        if disk is None:
            return None
        owner = self.attachments().get(disk_id.lower())
        if owner:
            raise Conflict(
                "OperationNotAllowed",
                f"Disk {disk['name']} is attached to VM {owner}.",
            )
        del self.disks[disk_id.lower()]
        self.restored.pop(disk_id.lower(), None)
        op = operations(self.world).begin(
            "DiskDelete", resource_id=disk["id"], extra={"location": disk["location"]}
        )
        return op.id

    def list_disks(self, subscription_id: str, group: str | None = None) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/".lower()
        if group is not None:
            prefix += f"{group.lower()}/"
        return [disk for key, disk in sorted(self.disks.items()) if key.startswith(prefix)]

    def add_restored_disk(self, disk: dict[str, Any], origin: dict[str, Any]) -> None:
        """A managed disk a restore made (armsim/backup/restore.py), and what it was made from."""
        self.disks[disk["id"].lower()] = disk
        self.restored[disk["id"].lower()] = origin

    def plan_boot(self, source: str | None, outcome: str, boot_seconds: float | None, count: int) -> int:
        """How the next `count` VMs made from restored disks (of `source`, or of any VM) boot."""
        if outcome not in ("Boots", "NeverBoots"):
            raise ValueError("outcome must be Boots or NeverBoots")
        if boot_seconds is not None and boot_seconds < 0:
            raise ValueError("bootSeconds must be 0 or more")
        if count < 1:
            raise ValueError("count must be 1 or more")
        plan = {"source": (source or "*").lower(), "outcome": outcome, "bootSeconds": boot_seconds}
        self.boot_plans.extend(dict(plan) for _ in range(count))
        return len(self.boot_plans)

    def _boot_from_restored_disks(self, sim: dict[str, Any], origin: dict[str, Any]) -> None:
        """A VM made from restored disks runs what the backed-up VM ran: its agent (if it had one)
        reports Ready once the guest has booted, bootSeconds after the VM's creation completes
        (compute/responses.py), or never when a plan says the guest does not boot."""
        sim["agent"] = "Ready" if origin.get("agent", "Ready") != "Missing" else "Missing"
        sim["restoredFrom"] = origin.get("sourceVm", "")
        boot = float(self.world.config["bootSeconds"])
        for index, plan in enumerate(self.boot_plans):
            if plan["source"] in ("*", str(origin.get("sourceVm", "")).lower()):
                del self.boot_plans[index]
                if plan["outcome"] == "NeverBoots":
                    sim["bootSeconds"] = None
                    return
                if plan["bootSeconds"] is not None:
                    boot = float(plan["bootSeconds"])
                break
        sim["bootSeconds"] = boot

    def shared_disk_luns(self, record: dict[str, Any]) -> list[int]:
        luns = []
        for disk in record["model"]["properties"]["storageProfile"].get("dataDisks") or []:
            managed = self.disks.get(((disk.get("managedDisk") or {}).get("id") or "").lower())
            if managed and int(managed["properties"].get("maxShares", 1)) > 1:
                luns.append(int(disk["lun"]))
        return luns

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"vms": self.vms, "disks": self.disks, "restored": self.restored, "bootPlans": self.boot_plans}

    def load(self, data: dict[str, Any]) -> None:
        self.vms = data.get("vms", {})
        self.disks = data.get("disks", {})
        self.restored = data.get("restored", {})
        self.boot_plans = data.get("bootPlans", [])


def _os_type(props: dict[str, Any]) -> str:
    storage = props.get("storageProfile") or {}
    declared = (storage.get("osDisk") or {}).get("osType")
    if declared:
        return str(declared)
    image = storage.get("imageReference") or {}
    text = " ".join(str(image.get(k, "")) for k in ("publisher", "offer", "sku")).lower()
    if "windows" in text:
        return "Windows"
    if (props.get("osProfile") or {}).get("windowsConfiguration"):
        return "Windows"
    return "Linux"


def _default_sim(props: dict[str, Any]) -> dict[str, Any]:
    """What Azure would make of a new VM: the agent is there if the image brings it and it is wanted."""
    os_profile = props.get("osProfile") or {}
    config = os_profile.get("windowsConfiguration") or os_profile.get("linuxConfiguration") or {}
    storage = props.get("storageProfile") or {}
    attached = (storage.get("osDisk") or {}).get("createOption", "").lower() == "attach"
    if config.get("provisionVMAgent") is False or (attached and not storage.get("imageReference")):
        agent = "Missing"
    else:
        agent = "Ready"
    os_type = _os_type(props)
    image = storage.get("imageReference") or {}
    return {
        "agent": agent,
        "agentVersion": DEFAULT_AGENT_VERSION,
        "power": "running",
        "osName": f"{image.get('offer', os_type)} {image.get('sku', '')}".strip(),
        "osVersion": str(image.get("version", "")),
        "provisioningState": "Succeeded",
    }
