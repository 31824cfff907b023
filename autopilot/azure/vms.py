"""What the product needs to know about a VM, read from the Compute API's model and instance view.

`VmFacts.from_model` is pure: it takes the SDK's VirtualMachine (read with $expand=instanceView, or
from a list with statusOnly=true) and never calls Azure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from azure.mgmt.core.tools import parse_resource_id

from autopilot.names import RESOURCE_GROUP, SUBSCRIPTION_ID, split_id, text

CONTAINER_PREFIX = "IaasVMContainer;"
ITEM_PREFIX = "VM;"


@dataclass(frozen=True, slots=True)
class DataDisk:
    lun: int
    name: str
    managed_disk_id: str | None


@dataclass(frozen=True, slots=True)  # slots: an estate holds 100,000 of them
class VmFacts:
    id: str
    subscription_id: str
    resource_group: str
    name: str
    location: str
    tags: dict[str, str]
    os_type: str  # Windows or Linux
    trusted_launch: bool
    agent_status: str  # Ready, NotReady, Missing, or Unknown when no instance view was read
    agent_version: str
    power_state: str  # running, stopped, deallocated, ... or unknown
    provisioning_state: str
    data_disks: tuple[DataDisk, ...] = ()
    time_created: dt.datetime | None = None
    image: dict[str, str] = field(default_factory=dict)

    @property
    def container_name(self) -> str:
        """The backup container name: IaasVMContainer;iaasvmcontainerv2;<rg>;<vm>."""
        return backup_names(self)[0]

    @property
    def item_name(self) -> str:
        """The protected item name: VM;iaasvmcontainerv2;<rg>;<vm>."""
        return backup_names(self)[1]

    @classmethod
    def from_model(cls, vm: Any) -> VmFacts:
        subscription, group, name = split_id(vm.id)
        props = vm.properties
        storage = props.storage_profile
        os_disk = storage.os_disk if storage else None
        os_type = text(os_disk.os_type) if os_disk and os_disk.os_type else _os_from_image(storage)
        security = props.security_profile
        view = props.instance_view
        agent_status, agent_version, power, provisioning = (
            "Unknown",
            "",
            "unknown",
            str(props.provisioning_state or ""),
        )
        if view is not None:
            agent_status, agent_version = _agent(view)
            for status in view.statuses or []:
                code = text(status.code)
                # Codes look like PowerState/running and ProvisioningState/failed/<ErrorCode>.
                if code.startswith("PowerState/"):
                    power = code.split("/")[1].lower()
                if code.startswith("ProvisioningState/"):
                    provisioning = code.split("/")[1].capitalize()
        disks = tuple(
            DataDisk(
                lun=int(d.lun),
                name=str(d.name or ""),
                managed_disk_id=d.managed_disk.id if d.managed_disk and d.managed_disk.id else None,
            )
            for d in (storage.data_disks or [] if storage else [])
        )
        image = storage.image_reference if storage else None
        return cls(
            id=vm.id,
            subscription_id=subscription,
            resource_group=group,
            name=name,
            location=str(vm.location).replace(" ", "").lower(),
            tags=dict(vm.tags or {}),
            os_type=os_type,
            trusted_launch=bool(security and text(security.security_type).lower() == "trustedlaunch"),
            agent_status=agent_status,
            agent_version=agent_version,
            power_state=power,
            provisioning_state=provisioning,
            data_disks=disks,
            time_created=props.time_created,
            image={k: text(v) for k, v in (image.as_dict() if image else {}).items() if isinstance(v, str)},
        )


def backup_names(vm: VmFacts | str) -> tuple[str, str]:
    """(container name, protected item name) of a VM given as facts or as its resource id:
    IaasVMContainer;iaasvmcontainerv2;<rg>;<vm> and VM;iaasvmcontainerv2;<rg>;<vm>."""
    group, name = split_id(vm)[1:] if isinstance(vm, str) else (vm.resource_group, vm.name)
    return (
        f"{CONTAINER_PREFIX}iaasvmcontainerv2;{group};{name}",
        f"{ITEM_PREFIX}iaasvmcontainerv2;{group};{name}",
    )


def _agent(view: Any) -> tuple[str, str]:
    agent = view.vm_agent
    if agent is None:
        return "Missing", ""
    version = text(agent.vm_agent_version)
    for status in agent.statuses or []:
        if text(status.display_status).lower() == "ready":
            return "Ready", version
    return "NotReady", version


def _os_from_image(storage: Any) -> str:
    image = storage.image_reference if storage else None
    text = f"{getattr(image, 'publisher', '')} {getattr(image, 'offer', '')}".lower()
    return "Windows" if "windows" in text else "Linux"


_VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # Azure: no leading '_', no trailing '.' or '-'


def vm_id_from_subject(subject: object) -> str | None:
    """The VM id named by `subject`, or None for anything else: other resource types, child
    resources such as extensions, malformed ids, and names Azure would not allow."""
    if not isinstance(subject, str) or len(subject) > 512:
        return None
    try:
        parts = parse_resource_id(subject)
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    subscription = str(parts.get("subscription") or "")
    group = str(parts.get("resource_group") or "")
    name = str(parts.get("name") or "")
    if (
        str(parts.get("namespace", "")).lower() != "microsoft.compute"
        or str(parts.get("type", "")).lower() != "virtualmachines"
        or parts.get("children")
        or not SUBSCRIPTION_ID.fullmatch(subscription)
        or not RESOURCE_GROUP.fullmatch(group)
        or group.endswith(".")
        or not _VM_NAME.fullmatch(name)
        or name.endswith((".", "-"))
    ):
        return None
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"
