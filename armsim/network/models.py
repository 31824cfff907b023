"""Microsoft.Network virtual networks (with their subnets) and network interfaces: state and rules.

The minimum a restore drill's isolated network needs: a VNet with subnets, NICs with a private address
in one of them, and Azure's refusals around them (a subnet in use, a NIC in use, a reference to a
subnet that is not there or in another region). Evidence per field and refusal:
armsim/SUPPORTED_OPERATIONS.md, "Microsoft.Network".
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import uuid
from typing import Any

from armsim.core.errors import (
    BadRequest,
    InvalidRequestContent,
    NotImplementedOnArmsim,
    resource_not_found,
)
from armsim.core.http import Router
from armsim.core.operations import operations
from armsim.core.world import Provider
from armsim.resources.models import ResourcesBackend, normalize_location

VNET_TYPE = "Microsoft.Network/virtualNetworks"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
IPCONFIG_TYPE = "Microsoft.Network/networkInterfaces/ipConfigurations"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
FIRST_HOST = 4  # Azure keeps the first four addresses of every subnet (.0 to .3)


def resource_id(subscription_id: str, group: str, kind: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{kind}/{name}"


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _tags(body: dict[str, Any]) -> dict[str, str]:
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise InvalidRequestContent("The 'tags' must be an object of string values.")
    if len(tags) > 50:
        raise BadRequest("InvalidTagCount", "The number of tags exceeds the limit of 50.")
    return dict(tags)


def _location(body: dict[str, Any]) -> str:
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise BadRequest("LocationRequired", "The location property is required for this definition.")
    return normalize_location(location)


def _reference_not_found(referenced: str, referrer: str) -> BadRequest:
    """Network's refusal of a reference to a resource that is not there, or not in the region."""
    return BadRequest(
        "InvalidResourceReference",
        f"Resource {referenced} referenced by resource {referrer} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
    )


class NetworkBackend(Provider):
    name = "network"

    def reset(self) -> None:
        # lower-case id -> {"model": ARM JSON as stored, "operation": id of its last write}
        self.vnets: dict[str, dict[str, Any]] = {}
        self.nics: dict[str, dict[str, Any]] = {}

    def register(self, router: Router) -> None:
        from armsim.network.responses import ROUTES, NetworkResponses

        router.mount(NetworkResponses(self), ROUTES)

    # -- virtual networks -----------------------------------------------------------------------
    def put_vnet(
        self, subscription_id: str, group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        location, tags = _location(body), _tags(body)
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRequestContent("The 'properties' of a virtual network must be an object.")
        vnet_id = resource_id(subscription_id, rg["name"], VNET_TYPE, name)
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        networks = [_network(p, "addressSpace.addressPrefixes") for p in prefixes]
        existing = self.vnets.get(vnet_id.lower())
        if existing is not None and existing["model"]["location"] != location:
            raise BadRequest("InvalidRequestFormat", "Changing property 'location' is not allowed.")
        subnets = []
        for subnet in props.get("subnets") or []:
            subnets.append(self._subnet(vnet_id, subnet, networks))
        kept = {s["name"].lower() for s in subnets}
        for old in (existing or {}).get("model", {}).get("properties", {}).get("subnets", []):
            users = self.subnet_users(old["id"])
            if old["name"].lower() not in kept and users:
                raise _subnet_in_use(old["name"], users[0])
        model = {
            "name": name,
            "id": vnet_id,
            "type": VNET_TYPE,
            "location": location,
            "tags": tags,
            "properties": {
                "resourceGuid": (existing or {}).get("model", {}).get("properties", {}).get("resourceGuid")
                or str(uuid.uuid4()),
                "addressSpace": {"addressPrefixes": [str(n) for n in networks]},
                "subnets": subnets,
                "virtualNetworkPeerings": [],
            },
        }
        op = operations(self.world).begin("NetworkWrite", resource_id=vnet_id, extra={"location": location})
        self.vnets[vnet_id.lower()] = {"model": model, "operation": op.id, "etag": _etag()}
        return self.vnets[vnet_id.lower()], existing is None

    def _subnet(self, vnet_id: str, subnet: Any, networks: list[ipaddress.IPv4Network]) -> dict[str, Any]:
        if not isinstance(subnet, dict) or not isinstance(subnet.get("name"), str) or not subnet["name"]:
            raise InvalidRequestContent("Each subnet needs a 'name'.")
        prefix = (subnet.get("properties") or {}).get("addressPrefix")
        if not isinstance(prefix, str):
            raise BadRequest(
                "InvalidRequestFormat", f"Subnet {subnet['name']} needs properties.addressPrefix."
            )
        network = _network(prefix, "addressPrefix")
        if not any(network.subnet_of(n) for n in networks):
            raise BadRequest(
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{subnet['name']}' is not valid because its IP address range is outside the IP "
                f"address range of virtual network '{vnet_id.rsplit('/', 1)[-1]}'.",
            )
        return {
            "name": subnet["name"],
            "id": f"{vnet_id}/subnets/{subnet['name']}",
            "type": SUBNET_TYPE,
            "properties": {"addressPrefix": str(network)},
        }

    def get_vnet(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        record = self.vnets.get(resource_id(subscription_id, group, VNET_TYPE, name).lower())
        if record is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(VNET_TYPE, name, group)
        return record

    def delete_vnet(self, subscription_id: str, group: str, name: str) -> tuple[str, str] | None:
        """(operation id, location), or None when there is no such VNet (Azure answers 204). A VNet one
        of whose subnets a NIC still uses is refused (400 InUseSubnetCannotBeDeleted)."""
        self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        key = resource_id(subscription_id, group, VNET_TYPE, name).lower()
        record = self.vnets.get(key)
        if record is None:
            return None
        for subnet in record["model"]["properties"]["subnets"]:
            users = self.subnet_users(subnet["id"])
            if users:
                raise _subnet_in_use(subnet["name"], users[0])
        del self.vnets[key]
        location = record["model"]["location"]
        op = operations(self.world).begin(
            "NetworkDelete", resource_id=record["model"]["id"], extra={"location": location}
        )
        return op.id, location

    def find_subnet(self, subnet_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(the VNet's record, the subnet) of a subnet id, or None."""
        vnet_id, _, subnet_name = subnet_id.partition("/subnets/")
        record = self.vnets.get(vnet_id.lower())
        if record is None:
            return None
        for subnet in record["model"]["properties"]["subnets"]:
            if subnet["name"].lower() == subnet_name.lower():
                return record, subnet
        return None

    def subnet_users(self, subnet_id: str) -> list[str]:
        """The ids of the NIC IP configurations in a subnet."""
        users = []
        for nic in self.nics.values():
            for config in nic["model"]["properties"]["ipConfigurations"]:
                if str(config["properties"]["subnet"]["id"]).lower() == subnet_id.lower():
                    users.append(config["id"])
        return users

    def _view(self, record: dict[str, Any], children: str) -> dict[str, Any]:
        """A resource and its child resources (subnets, IP configurations) as Network answers them:
        each with the etag and the provisioningState; no tags when there are none."""
        view = copy.deepcopy(record["model"])
        view["etag"] = record["etag"]
        state = self._state(record)
        view["properties"] = {"provisioningState": state, **view["properties"]}
        if not view["tags"]:
            del view["tags"]
        for child in view["properties"][children]:
            child["etag"] = record["etag"]
            child["properties"] = {"provisioningState": state, **child["properties"]}
        return view

    def vnet_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The VNet as Azure answers it: provisioningState, each subnet's and the IP configurations
        that use it (as the VirtualNetworkGet example)."""
        view = self._view(record, "subnets")
        for subnet in view["properties"]["subnets"]:
            users = self.subnet_users(subnet["id"])
            if users:
                subnet["properties"]["ipConfigurations"] = [{"id": u} for u in users]
        return view

    # -- network interfaces ---------------------------------------------------------------------
    def put_nic(
        self, subscription_id: str, group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        location, tags = _location(body), _tags(body)
        props = body.get("properties") or {}
        configs = props.get("ipConfigurations") if isinstance(props, dict) else None
        if not isinstance(configs, list) or not configs:
            raise BadRequest(
                "InvalidRequestFormat", "A network interface needs at least one IP configuration."
            )
        nic_id = resource_id(subscription_id, rg["name"], NIC_TYPE, name)
        existing = self.nics.get(nic_id.lower())
        if existing is not None and existing["model"]["location"] != location:
            raise BadRequest("InvalidRequestFormat", "Changing property 'location' is not allowed.")
        old_configs = {
            c["name"].lower(): c
            for c in (existing or {}).get("model", {}).get("properties", {}).get("ipConfigurations", [])
        }
        new_configs = []
        for index, config in enumerate(configs):
            new_configs.append(self._ip_config(nic_id, location, index, config, old_configs))
        model: dict[str, Any] = {
            "name": name,
            "id": nic_id,
            "type": NIC_TYPE,
            "location": location,
            "tags": tags,
            "properties": {
                "resourceGuid": (existing or {}).get("model", {}).get("properties", {}).get("resourceGuid")
                or str(uuid.uuid4()),
                "ipConfigurations": new_configs,
                "dnsSettings": {
                    "dnsServers": [],
                    "appliedDnsServers": [],
                    "internalDomainNameSuffix": _dns_suffix(subscription_id, rg["name"]),
                },
                "enableAcceleratedNetworking": bool(props.get("enableAcceleratedNetworking", False)),
                "enableIPForwarding": bool(props.get("enableIPForwarding", False)),
                "vnetEncryptionSupported": False,
            },
        }
        if "disableTcpStateTracking" in props:
            model["properties"]["disableTcpStateTracking"] = bool(props["disableTcpStateTracking"])
        mac = (existing or {}).get("mac") or _mac(nic_id)
        op = operations(self.world).begin("NetworkWrite", resource_id=nic_id, extra={"location": location})
        self.nics[nic_id.lower()] = {"model": model, "operation": op.id, "etag": _etag(), "mac": mac}
        return self.nics[nic_id.lower()], existing is None

    def _ip_config(
        self,
        nic_id: str,
        location: str,
        index: int,
        config: Any,
        old: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        if not isinstance(config, dict) or not isinstance(config.get("name"), str) or not config["name"]:
            raise InvalidRequestContent("Each IP configuration needs a 'name'.")
        props = config.get("properties") or {}
        if props.get("publicIPAddress"):
            raise NotImplementedOnArmsim(
                "armsim does not simulate public IP addresses (Microsoft.Network/publicIPAddresses)."
            )
        subnet_id = (props.get("subnet") or {}).get("id")
        if not isinstance(subnet_id, str) or not subnet_id:
            raise BadRequest(
                "InvalidRequestFormat",
                f"Value for reference id is missing. Path properties.ipConfigurations[{index}].properties.subnet.",
            )
        found = self.find_subnet(subnet_id)
        if found is None or found[0]["model"]["location"] != location:
            raise _reference_not_found(subnet_id, nic_id)
        _, subnet = found
        method = str(props.get("privateIPAllocationMethod") or "Dynamic")
        previous = old.get(config["name"].lower())
        if method.lower() == "static" and props.get("privateIPAddress"):
            address = str(props["privateIPAddress"])
        elif previous and previous["properties"]["subnet"]["id"].lower() == subnet["id"].lower():
            address = previous["properties"]["privateIPAddress"]
        else:
            address = self._free_address(subnet)
        return {
            "name": config["name"],
            "id": f"{nic_id}/ipConfigurations/{config['name']}",
            "type": IPCONFIG_TYPE,
            "properties": {
                "privateIPAddress": address,
                "privateIPAllocationMethod": "Static" if method.lower() == "static" else "Dynamic",
                "subnet": {"id": subnet["id"]},
                "primary": bool(props.get("primary", index == 0)),
                "privateIPAddressVersion": "IPv4",
            },
        }

    def _free_address(self, subnet: dict[str, Any]) -> str:
        network = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        taken = set()
        for nic in self.nics.values():
            for config in nic["model"]["properties"]["ipConfigurations"]:
                if config["properties"]["subnet"]["id"].lower() == subnet["id"].lower():
                    taken.add(config["properties"]["privateIPAddress"])
        for offset in range(FIRST_HOST, network.num_addresses - 1):
            address = str(network.network_address + offset)
            if address not in taken:
                return address
        raise BadRequest(
            "SubnetIsFull", f"Subnet {subnet['name']} has no free IP address for another IP configuration."
        )

    def get_nic(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        record = self.nics.get(resource_id(subscription_id, group, NIC_TYPE, name).lower())
        if record is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(NIC_TYPE, name, group)
        return record

    def find_nic(self, nic_id: str) -> dict[str, Any] | None:
        return self.nics.get(nic_id.lower())

    def delete_nic(self, subscription_id: str, group: str, name: str) -> tuple[str, str] | None:
        """(operation id, location), or None when there is no such NIC (Azure answers 204). A NIC a VM
        uses is refused (400 NicInUse)."""
        self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        key = resource_id(subscription_id, group, NIC_TYPE, name).lower()
        record = self.nics.get(key)
        if record is None:
            return None
        owner = self.nic_owner(record["model"]["id"])
        if owner:
            raise nic_in_use(record["model"]["id"], owner)
        del self.nics[key]
        location = record["model"]["location"]
        op = operations(self.world).begin(
            "NetworkDelete", resource_id=record["model"]["id"], extra={"location": location}
        )
        return op.id, location

    def nic_owner(self, nic_id: str) -> str:
        """The id of the VM whose network profile names the NIC, or ''."""
        from armsim.compute.models import ComputeBackend

        for record in self.world.backend(ComputeBackend).vms.values():
            profile = record["model"]["properties"].get("networkProfile") or {}
            for nic in profile.get("networkInterfaces") or []:
                if str((nic or {}).get("id", "")).lower() == nic_id.lower():
                    return str(record["model"]["id"])
        return ""

    def nic_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The NIC as Azure answers it; attached to a VM it has its MAC address, `primary` and
        `virtualMachine` (the NetworkInterfaceGet example, and the recorded NIC of a VM)."""
        view = self._view(record, "ipConfigurations")
        owner = self.nic_owner(view["id"])
        if owner:
            view["properties"]["macAddress"] = record["mac"]
            view["properties"]["primary"] = True
            view["properties"]["virtualMachine"] = {"id": owner}
        return view

    # -- shared -----------------------------------------------------------------------------------
    def _state(self, record: dict[str, Any]) -> str:
        op = operations(self.world).get(record.get("operation", ""))
        if op is not None and not op.finished(self.world.now()):
            return "Updating"
        return "Succeeded"

    def delete_in_group(self, subscription_id: str, group: str) -> None:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{group}/".lower()
        for table in (self.nics, self.vnets):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]

    def to_dict(self) -> dict[str, Any]:
        return {"vnets": self.vnets, "nics": self.nics}

    def load(self, data: dict[str, Any]) -> None:
        self.vnets = data.get("vnets", {})
        self.nics = data.get("nics", {})


def nic_in_use(nic_id: str, vm_id: str) -> BadRequest:
    return BadRequest(
        "NicInUse",
        f"Network Interface {nic_id} is used by existing resource {vm_id}. In order to delete the network "
        "interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
    )


def _subnet_in_use(name: str, user: str) -> BadRequest:
    return BadRequest(
        "InUseSubnetCannotBeDeleted",
        f"Subnet {name} is in use by {user} and cannot be deleted. In order to delete the subnet, delete all "
        "the resources within the subnet. See aka.ms/deletesubnet.",
    )


def _network(prefix: Any, field_name: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(str(prefix), strict=True)
    except ValueError:
        raise BadRequest(
            "InvalidAddressPrefixFormat",
            f"Address prefix {prefix} of {field_name} is not a valid IPv4 prefix.",
        ) from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise NotImplementedOnArmsim("armsim simulates IPv4 address spaces only.")
    return network


def _mac(nic_id: str) -> str:
    digest = hashlib.sha256(nic_id.lower().encode()).hexdigest()[:6].upper()
    return "00-0D-3A-" + "-".join(digest[i : i + 2] for i in range(0, 6, 2))


def _dns_suffix(subscription_id: str, group: str) -> str:
    digest = hashlib.sha256(f"{subscription_id}/{group}".lower().encode()).hexdigest()[:26]
    return f"{digest}.ax.internal.cloudapp.net"
