"""A drill's boot step (rules: `verify: boot`): a VM made from the restored disks, in an isolated network
of the staging group, must boot and report its VM agent Ready within the policy's `bootTimeout`.

    network -> vm -> wait        (the record's BootPhase; each phase is idempotent and resumable)

network: a VNet with one subnet and a NIC with a private address only (no public IP, no peering, no
route out), both named and tagged after the drill. vm: the VM, its OS disk the restored OS disk attached
(createOption Attach) and the restored data disks attached at their LUNs. wait: its instance view until
the agent reports Ready (the time from the VM's creation to then is the boot time), its provisioning
fails, or the bound passes. Clean-up (`clean_up`, before the disks are deleted): the VM, then the NIC,
then the VNet; every name is the drill's, so whoever carries on a drill cut off half way deletes them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.models import VirtualMachine
from azure.mgmt.network.models import NetworkInterface, VirtualNetwork

from autopilot.names import split_id

if TYPE_CHECKING:
    from autopilot.app import Autopilot

TAG = "autopilot-drill"  # every resource the boot step makes carries the drill's id under this tag
ADDRESS_SPACE = "10.213.0.0/24"  # the drill's own network: peered with nothing, so any range will do
DEFAULT_SIZE = "Standard_D2s_v5"  # when the source VM is gone and its size unknown
REMEDY = (
    "Restore the VM from the same recovery point by hand into an isolated network and look at its boot "
    "diagnostics and serial console: a guest that does not start (broken OS disk or boot configuration, "
    "a missing driver, a full system disk) or a VM agent that does not run leaves the backup unproven. "
    "Fix the source VM (its boot configuration, its VM agent) and drill it again; raise bootTimeout in "
    "the rules' drills policies only if the guest is known to boot slowly."
)


def names(record: dict[str, Any]) -> dict[str, str]:
    """The drill's VM, NIC and VNet names (from its id: the same for whoever carries it on)."""
    base = f"drill-{record['Id']}"
    return {"vm": base, "nic": f"{base}-nic", "vnet": f"{base}-vnet"}


def _place(autopilot: Autopilot, record: dict[str, Any]) -> tuple[str, str, str]:
    """(subscription, staging group, region) the drill's boot step works in."""
    disks = json.loads(record.get("Disks") or "[]")
    subscription, group, _ = split_id(str(disks[0]["id"]))
    vault = autopilot.rules.vault_by_id(str(record["Vault"]))
    region = vault.region if vault is not None else str(record.get("BootRegion") or "")
    return subscription, group, region


def make_network(autopilot: Autopilot, record: dict[str, Any]) -> str:
    """The VNet (one subnet) and the NIC (a private address only); the NIC's id."""
    subscription, group, region = _place(autopilot, record)
    network = autopilot.clients.network(subscription)
    tags = {TAG: str(record["Id"])}
    n = names(record)
    poll = autopilot.settings.polling_interval
    vnet_body = VirtualNetwork(
        {
            "location": region,
            "tags": tags,
            "properties": {
                "addressSpace": {"addressPrefixes": [ADDRESS_SPACE]},
                "subnets": [{"name": "drill", "properties": {"addressPrefix": ADDRESS_SPACE}}],
            },
        }
    )
    vnet = network.virtual_networks.begin_create_or_update(
        group, n["vnet"], vnet_body, polling_interval=poll
    ).result()
    config = {
        "name": "drill",
        "properties": {"privateIPAllocationMethod": "Dynamic", "subnet": {"id": f"{vnet.id}/subnets/drill"}},
    }
    nic_body = NetworkInterface(
        {"location": region, "tags": tags, "properties": {"ipConfigurations": [config]}}
    )
    nic = network.network_interfaces.begin_create_or_update(
        group, n["nic"], nic_body, polling_interval=poll
    ).result()
    return str(nic.id)


def create_vm(autopilot: Autopilot, record: dict[str, Any], nic_id: str) -> None:
    """Send the VM's PUT (not waiting for it: the wait phase reads its instance view)."""
    subscription, group, region = _place(autopilot, record)
    compute = autopilot.clients.compute(subscription)
    disks = json.loads(record.get("Disks") or "[]")
    os_disk = next(d for d in disks if d["os_disk"])
    _, os_group, os_name = split_id(str(os_disk["id"]))
    restored = compute.disks.get(os_group, os_name)
    os_type = (
        str(restored.properties.os_type) if restored.properties and restored.properties.os_type else "Linux"
    )
    body = {
        "location": region,
        "tags": {TAG: str(record["Id"])},
        "properties": {
            "hardwareProfile": {"vmSize": _source_size(autopilot, str(record["VmId"]))},
            "storageProfile": {
                "osDisk": {"osType": os_type, "createOption": "Attach", "managedDisk": {"id": os_disk["id"]}},
                "dataDisks": _data_disks([d for d in disks if not d["os_disk"]]),
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
        },
    }
    compute.virtual_machines.begin_create_or_update(
        group, names(record)["vm"], VirtualMachine(body), polling=False
    )


def _data_disks(disks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The restored data disks at their LUNs (from their names); a disk whose LUN its name does not
    say takes the next LUN free."""
    taken = {int(d["lun"]) for d in disks if d.get("lun") is not None}
    free = (lun for lun in range(64) if lun not in taken)
    return [
        {
            "lun": int(d["lun"]) if d.get("lun") is not None else next(free),
            "createOption": "Attach",
            "managedDisk": {"id": d["id"]},
        }
        for d in disks
    ]


def _source_size(autopilot: Autopilot, vm_id: str) -> str:
    subscription, group, name = split_id(vm_id)
    try:
        vm = autopilot.clients.compute(subscription).virtual_machines.get(group, name)
    except ResourceNotFoundError:
        return DEFAULT_SIZE
    hardware = vm.properties.hardware_profile if vm.properties else None
    return str(hardware.vm_size) if hardware and hardware.vm_size else DEFAULT_SIZE


def boot_state(autopilot: Autopilot, record: dict[str, Any]) -> tuple[str, str]:
    """('ready' | 'failed' | 'booting', what the instance view says)."""
    subscription, group, _ = _place(autopilot, record)
    view = autopilot.clients.compute(subscription).virtual_machines.instance_view(group, names(record)["vm"])
    codes = [str(s.code or "") for s in view.statuses or []]
    if any(code.lower() == "provisioningstate/failed" for code in codes):
        return "failed", "the VM's provisioning failed"
    agent = view.vm_agent.statuses[0] if view.vm_agent and view.vm_agent.statuses else None
    if agent is None:
        return "booting", "no VM agent status yet"
    shown = f"agent {agent.display_status}" + (f": {agent.message}" if agent.message else "")
    return ("ready" if agent.display_status == "Ready" else "booting"), shown


def clean_up(autopilot: Autopilot, record: dict[str, Any]) -> int:
    """Delete the drill's VM (waiting: its disks and NIC stay in use until it is gone), its NIC and its
    VNet; what is already gone is fine. The count of deletes sent."""
    subscription, group, _ = _place(autopilot, record)
    n = names(record)
    poll = autopilot.settings.polling_interval
    compute = autopilot.clients.compute(subscription)
    network = autopilot.clients.network(subscription)
    with contextlib.suppress(ResourceNotFoundError):
        compute.virtual_machines.begin_delete(group, n["vm"], polling_interval=poll).result()
    with contextlib.suppress(ResourceNotFoundError):
        network.network_interfaces.begin_delete(group, n["nic"], polling_interval=poll).result()
    with contextlib.suppress(ResourceNotFoundError):
        network.virtual_networks.begin_delete(group, n["vnet"], polling_interval=poll).result()
    return 3


def elapsed(since: object) -> float:
    if not isinstance(since, dt.datetime):
        return 0.0
    return round((dt.datetime.now(dt.UTC) - since).total_seconds(), 1)
