"""Microsoft.Network in armsim through the pinned azure-mgmt-network client (both modes): virtual
networks with subnets and network interfaces created, read and deleted through their long-running
operations, the refusals that matter (a subnet in use, a NIC in use, a reference to a subnet or NIC not
there or in another region, a disk another VM uses), and a VM made from restored disks in an isolated
network, then everything deleted. Evidence: armsim/SUPPORTED_OPERATIONS.md, "Microsoft.Network"."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.armsim_support import Sandbox
from tests.integration.test_armsim_restore import LOCATION, STAGING, estate, restore, staging_disks

GROUP = "rg-net"


def vnet_body(location: str = LOCATION, **tags: str) -> dict[str, Any]:
    return {
        "location": location,
        "tags": tags,
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.42.0.0/24"]},
            "subnets": [{"name": "drill", "properties": {"addressPrefix": "10.42.0.0/26"}}],
        },
    }


def nic_body(
    arm: Sandbox, group: str = GROUP, vnet: str = "vnet-1", location: str = LOCATION
) -> dict[str, Any]:
    subnet = (
        f"/subscriptions/{arm.subscription}/resourceGroups/{group}/providers/Microsoft.Network/"
        f"virtualNetworks/{vnet}/subnets/drill"
    )
    return {
        "location": location,
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]},
    }


def network(arm: Sandbox, sdk: dict[str, Any], group: str = GROUP) -> tuple[Any, Any]:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": group, "location": LOCATION}])
    net = sdk["network"]
    vnet = net.virtual_networks.begin_create_or_update(group, "vnet-1", vnet_body(drill="d1")).result()
    nic = net.network_interfaces.begin_create_or_update(group, "nic-1", nic_body(arm, group)).result()
    return vnet, nic


def refused(error: pytest.ExceptionInfo[HttpResponseError], status: int, code: str) -> None:
    assert error.value.status_code == status
    assert error.value.error is not None and error.value.error.code == code, error.value.message


def test_a_vnet_and_a_nic_are_created_read_and_deleted(arm: Sandbox, sdk: dict[str, Any]) -> None:
    vnet, nic = network(arm, sdk)
    assert vnet.provisioning_state == "Succeeded" and vnet.tags == {"drill": "d1"}
    assert [s.name for s in vnet.subnets] == ["drill"] and vnet.subnets[0].address_prefix == "10.42.0.0/26"
    assert vnet.virtual_network_peerings == []
    config = nic.ip_configurations[0]
    assert (config.private_ip_address, config.private_ip_allocation_method) == ("10.42.0.4", "Dynamic")
    assert config.public_ip_address is None, "an isolated NIC has only a private address"
    assert config.subnet.id == vnet.subnets[0].id and nic.virtual_machine is None
    second = sdk["network"].network_interfaces.begin_create_or_update(GROUP, "nic-2", nic_body(arm)).result()
    assert second.ip_configurations[0].private_ip_address == "10.42.0.5"
    used = sdk["network"].virtual_networks.get(GROUP, "vnet-1").subnets[0].ip_configurations
    assert sorted(c.id.rsplit("/", 3)[1] for c in used) == ["nic-1", "nic-2"]
    for name in ("nic-1", "nic-2"):
        sdk["network"].network_interfaces.begin_delete(GROUP, name).result()
    sdk["network"].virtual_networks.begin_delete(GROUP, "vnet-1").result()
    with pytest.raises(ResourceNotFoundError):
        sdk["network"].virtual_networks.get(GROUP, "vnet-1")
    with pytest.raises(ResourceNotFoundError):
        sdk["network"].network_interfaces.get(GROUP, "nic-1")
    # Deleting what is not there is 204, as Azure answers: the SDK's delete ends quietly.
    sdk["network"].network_interfaces.begin_delete(GROUP, "nic-1").result()


def test_writes_and_deletes_are_long_running_on_the_simulated_clock(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    import requests

    arm.clock(speed=0)
    arm.configure(lroSeconds=30)
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": GROUP, "location": LOCATION}])
    path = f"/subscriptions/{arm.subscription}/resourceGroups/{GROUP}/providers/Microsoft.Network/virtualNetworks/vnet-1"
    headers = {
        "Authorization": f"Bearer {arm.credential().get_token('https://management.azure.com/.default').token}"
    }
    put = requests.put(
        arm.url + path, params={"api-version": "2026-03-01"}, json=vnet_body(), headers=headers,
        verify=str(arm.ca_path), timeout=30,
    )  # fmt: skip
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Updating"
    status_url = put.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Network/locations/westeurope/operations/" in status_url
    assert put.headers["Retry-After"] == "30"
    running = requests.get(status_url, headers=headers, verify=str(arm.ca_path), timeout=30)
    assert running.json() == {"status": "InProgress"}
    arm.clock(advanceSeconds=31)
    assert requests.get(status_url, headers=headers, verify=str(arm.ca_path), timeout=30).json() == {
        "status": "Succeeded"
    }
    delete = requests.delete(
        arm.url + path,
        params={"api-version": "2026-03-01"},
        headers=headers,
        verify=str(arm.ca_path),
        timeout=30,
    )
    assert delete.status_code == 202
    assert "/operationResults/" in delete.headers["Location"] and delete.headers["Azure-AsyncOperation"]
    result = requests.get(delete.headers["Location"], headers=headers, verify=str(arm.ca_path), timeout=30)
    assert result.status_code == 202
    arm.clock(advanceSeconds=31)
    done = requests.get(delete.headers["Location"], headers=headers, verify=str(arm.ca_path), timeout=30)
    assert done.status_code == 204


def test_a_vnet_whose_subnet_a_nic_uses_cannot_be_deleted(arm: Sandbox, sdk: dict[str, Any]) -> None:
    network(arm, sdk)
    with pytest.raises(HttpResponseError) as error:
        sdk["network"].virtual_networks.begin_delete(GROUP, "vnet-1").result()
    refused(error, 400, "InUseSubnetCannotBeDeleted")
    assert "nic-1/ipConfigurations/ipconfig1" in error.value.message
    assert sdk["network"].virtual_networks.get(GROUP, "vnet-1").provisioning_state == "Succeeded"


def test_a_nic_whose_subnet_is_not_there_or_in_another_region_is_refused(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    network(arm, sdk)
    with pytest.raises(HttpResponseError) as error:
        sdk["network"].network_interfaces.begin_create_or_update(
            GROUP, "nic-x", nic_body(arm, vnet="nope")
        ).result()
    refused(error, 400, "InvalidResourceReference")
    with pytest.raises(HttpResponseError) as error:
        body = nic_body(arm, location="northeurope")
        sdk["network"].network_interfaces.begin_create_or_update(GROUP, "nic-x", body).result()
    refused(error, 400, "InvalidResourceReference")
    assert "both resources are in the same region" in error.value.message


def test_a_nic_with_a_public_ip_is_not_simulated(arm: Sandbox, sdk: dict[str, Any]) -> None:
    network(arm, sdk)
    body = nic_body(arm)
    body["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {
        "id": "/x/publicIPAddresses/p"
    }
    with pytest.raises(HttpResponseError) as error:
        sdk["network"].network_interfaces.begin_create_or_update(GROUP, "nic-x", body).result()
    refused(error, 501, "NotImplemented")


def drill_vm(arm: Sandbox, sdk: dict[str, Any], name: str, nic: str, disks: list[Any] | None = None) -> Any:
    disks = disks if disks is not None else list(staging_disks(sdk).values())
    os_disk = next(d for d in disks if d.os_type)
    data = sorted((d for d in disks if not d.os_type), key=lambda d: d.name)
    body = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "osDisk": {"osType": "Windows", "createOption": "Attach", "managedDisk": {"id": os_disk.id}},
                "dataDisks": [
                    {"lun": i, "createOption": "Attach", "managedDisk": {"id": d.id}}
                    for i, d in enumerate(data)
                ],
            },
            "networkProfile": {
                "networkInterfaces": [
                    {
                        "id": f"/subscriptions/{arm.subscription}/resourceGroups/{STAGING}/providers/"
                        f"Microsoft.Network/networkInterfaces/{nic}"
                    }
                ]
            },
        },
    }
    return sdk["compute"].virtual_machines.begin_create_or_update(STAGING, name, body).result()


def test_a_vm_from_restored_disks_in_an_isolated_network_boots_and_is_cleaned_up(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    estate(arm)
    restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    network(arm, sdk, STAGING)
    vm = drill_vm(arm, sdk, "vm-boot", "nic-1")
    assert vm.provisioning_state == "Succeeded"
    nic = sdk["network"].network_interfaces.get(STAGING, "nic-1")
    assert nic.virtual_machine.id == vm.id and nic.primary is True and nic.mac_address
    # The NIC is the VM's: deleting it, or making another VM with it, is refused.
    with pytest.raises(HttpResponseError) as error:
        sdk["network"].network_interfaces.begin_delete(STAGING, "nic-1").result()
    refused(error, 400, "NicInUse")
    sdk["network"].network_interfaces.begin_create_or_update(
        STAGING, "nic-2", nic_body(arm, STAGING)
    ).result()
    with pytest.raises(ResourceExistsError) as conflict:
        drill_vm(arm, sdk, "vm-other", "nic-2")  # its disks are vm-boot's
    refused(conflict, 409, "OperationNotAllowed")
    arm.clock(advanceSeconds=121)
    view = sdk["compute"].virtual_machines.instance_view(STAGING, "vm-boot")
    assert view.vm_agent.statuses[0].display_status == "Ready"
    # Clean-up in Azure's order: the VM, its NIC and the other, the VNet, then the disks.
    sdk["compute"].virtual_machines.begin_delete(STAGING, "vm-boot").result()
    for name in ("nic-1", "nic-2"):
        sdk["network"].network_interfaces.begin_delete(STAGING, name).result()
    sdk["network"].virtual_networks.begin_delete(STAGING, "vnet-1").result()
    for name in staging_disks(sdk):
        sdk["compute"].disks.begin_delete(STAGING, name).result()
    assert staging_disks(sdk) == {}


def test_a_vm_whose_nic_is_not_there_or_in_another_region_is_refused(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    estate(arm)
    restore(arm, sdk)
    arm.clock(advanceSeconds=60)
    with pytest.raises(HttpResponseError) as error:
        drill_vm(arm, sdk, "vm-boot", "nic-missing")
    refused(error, 400, "InvalidResourceReference")
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": STAGING, "location": LOCATION}])
    net = sdk["network"]
    net.virtual_networks.begin_create_or_update(STAGING, "vnet-ne", vnet_body("northeurope")).result()
    body = nic_body(arm, STAGING, "vnet-ne", "northeurope")
    net.network_interfaces.begin_create_or_update(STAGING, "nic-ne", body).result()
    with pytest.raises(HttpResponseError) as error:
        drill_vm(arm, sdk, "vm-boot", "nic-ne")
    refused(error, 400, "InvalidResourceReference")
    assert "networkInterfaces/nic-ne referenced by resource" in error.value.message


def test_a_second_vm_with_a_nic_in_use_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    network(arm, sdk)
    profile = {
        "networkInterfaces": [
            {
                "id": f"/subscriptions/{arm.subscription}/resourceGroups/{GROUP}/providers/Microsoft.Network/networkInterfaces/nic-1"
            }
        ]
    }
    from tests.bodies import vm_body

    first = vm_body(tags={"backup": "daily"})
    first["properties"]["networkProfile"] = profile
    sdk["compute"].virtual_machines.begin_create_or_update(GROUP, "vm-a", first).result()
    with pytest.raises(HttpResponseError) as error:
        sdk["compute"].virtual_machines.begin_create_or_update(GROUP, "vm-b", first).result()
    refused(error, 400, "NicInUse")
    sdk["compute"].virtual_machines.begin_create_or_update(GROUP, "vm-a", first).result()  # its own NIC: fine
