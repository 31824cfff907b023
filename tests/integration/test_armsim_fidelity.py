"""Fidelity: every official REST example in azure-rest-examples/ that armsim covers, replayed against
armsim (both modes) with a raw authenticated HTTPS request, and its answer compared with the example's.

The examples are vendored in tests/fixtures/azure-rest-examples/ (SOURCES.md there); a missing one
fails the test. For each example the test sets up the state the example needs,
sends the example's request (method, path with its parameters, its api-version, its body), and checks
that armsim answers one of the example's status codes with a body of the same shape: the same field
names and JSON types, recursively. Values may differ. Fields armsim adds are allowed and reported
(.run/armsim-fidelity/). Fields the example has and armsim lacks fail the test unless MISSING_ALLOWED
names them with a reason; an allow-list entry that is no longer needed fails too, so the list only
shrinks. Examples armsim does not replay are in NOT_REPLAYED with the reason, and a test checks that
every file in the folder is either replayed or listed.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.armsim_support import ARM_SCOPE, REPO, Sandbox, Webhook
from tests.bodies import v1_policy, v2_policy, vm_body
from tests.examples_support import EXAMPLES, example_path

REPORT_DIR = REPO / ".run" / "armsim-fidelity"
S0 = "00000000-0000-0000-0000-000000000000"
REGION = "westus"
PACIFIC = "Pacific Standard Time"  # the examples' policies' time zone

# -- the REST operations the examples exercise (paths as in the specs and the generated SDKs) -------
SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
VM = RG + "/providers/Microsoft.Compute/virtualMachines/{vmName}"
VAULT = RG + "/providers/Microsoft.RecoveryServices/vaults/{vaultName}"
FABRIC = VAULT + "/backupFabrics/{fabricName}"
ITEM = FABRIC + "/protectionContainers/{containerName}/protectedItems/{protectedItemName}"
POLICY = VAULT + "/backupPolicies/{policyName}"
VNET = RG + "/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}"
NIC = RG + "/providers/Microsoft.Network/networkInterfaces/{networkInterfaceName}"
NETWORK_API = "2024-07-01"
OPERATIONS: dict[str, tuple[str, str]] = {
    "VirtualMachines_CreateOrUpdate": ("PUT", VM),
    "VirtualMachines_Get": ("GET", VM),
    "VirtualMachines_InstanceView": ("GET", VM + "/instanceView"),
    "VirtualMachines_ListAll": ("GET", SUB + "/providers/Microsoft.Compute/virtualMachines"),
    "Vaults_CreateOrUpdate": ("PUT", VAULT),
    "Vaults_Get": ("GET", VAULT),
    "Vaults_Update": ("PATCH", VAULT),
    "Vaults_ListByResourceGroup": ("GET", RG + "/providers/Microsoft.RecoveryServices/vaults"),
    "Vaults_ListBySubscriptionId": ("GET", SUB + "/providers/Microsoft.RecoveryServices/vaults"),
    "BackupResourceStorageConfigsNonCRR_Get": ("GET", VAULT + "/backupstorageconfig/vaultstorageconfig"),
    "BackupResourceStorageConfigsNonCRR_Update": ("PUT", VAULT + "/backupstorageconfig/vaultstorageconfig"),
    "BackupResourceStorageConfigsNonCRR_Patch": ("PATCH", VAULT + "/backupstorageconfig/vaultstorageconfig"),
    "BackupProtectableItems_List": ("GET", VAULT + "/backupProtectableItems"),
    "BackupProtectedItems_List": ("GET", VAULT + "/backupProtectedItems"),
    "ProtectedItems_Get": ("GET", ITEM),
    "ProtectedItems_CreateOrUpdate": ("PUT", ITEM),
    "ProtectedItemOperationResults_Get": ("GET", ITEM + "/operationResults/{operationId}"),
    "ProtectedItemOperationStatuses_Get": ("GET", ITEM + "/operationsStatus/{operationId}"),
    "Backups_Trigger": ("POST", ITEM + "/backup"),
    "BackupOperationResults_Get": ("GET", VAULT + "/backupOperationResults/{operationId}"),
    "BackupOperationStatuses_Get": ("GET", VAULT + "/backupOperations/{operationId}"),
    "BackupStatus_Get": (
        "POST",
        SUB + "/providers/Microsoft.RecoveryServices/locations/{azureRegion}/backupStatus",
    ),
    "JobDetails_Get": ("GET", VAULT + "/backupJobs/{jobName}"),
    "BackupJobs_List": ("GET", VAULT + "/backupJobs"),
    "ProtectionPolicies_CreateOrUpdate": ("PUT", POLICY),
    "ProtectionPolicies_Get": ("GET", POLICY),
    "BackupPolicies_List": ("GET", VAULT + "/backupPolicies"),
    "ProtectionPolicyOperationResults_Get": ("GET", POLICY + "/operationResults/{operationId}"),
    "ProtectionPolicyOperationStatuses_Get": ("GET", POLICY + "/operations/{operationId}"),
    "ProtectionContainers_Refresh": ("POST", FABRIC + "/refreshContainers"),
    "ProtectionContainerRefreshOperationResults_Get": ("GET", FABRIC + "/operationResults/{operationId}"),
    "ProtectionContainerRefreshOperationStatuses_Get": ("GET", FABRIC + "/operationsStatus/{operationId}"),
    "Restores_Trigger": ("POST", ITEM + "/recoveryPoints/{recoveryPointId}/restore"),
    "BackupResourceVaultConfigs_Get": ("GET", VAULT + "/backupconfig/vaultconfig"),
    "BackupResourceVaultConfigs_Update": ("PATCH", VAULT + "/backupconfig/vaultconfig"),
    "ResourceGuardProxies_Get": ("GET", VAULT + "/backupResourceGuardProxies"),
    "ResourceGuardProxy_Get": ("GET", VAULT + "/backupResourceGuardProxies/{resourceGuardProxyName}"),
    "ResourceGuardProxy_Put": ("PUT", VAULT + "/backupResourceGuardProxies/{resourceGuardProxyName}"),
    "Disks_Delete": ("DELETE", RG + "/providers/Microsoft.Compute/disks/{diskName}"),
    "StorageAccounts_GetProperties": (
        "GET",
        RG + "/providers/Microsoft.Storage/storageAccounts/{accountName}",
    ),
    "VirtualNetworks_CreateOrUpdate": ("PUT", VNET),
    "VirtualNetworks_Get": ("GET", VNET),
    "VirtualNetworks_Delete": ("DELETE", VNET),
    "NetworkInterfaces_Get": ("GET", NIC),
    "NetworkInterfaces_Delete": ("DELETE", NIC),
}
# Two older examples carry no operationId; SOURCES.md names their operations.
OPERATION_OF_FILE = {
    "compute/VirtualMachine_Get_InstanceView.json": "VirtualMachines_InstanceView",
    "compute/VirtualMachine_ListAll_MinimumSet_Gen.json": "VirtualMachines_ListAll",
    "compute/Disk_Delete.json": "Disks_Delete",
    # The network examples carry no operationId either (SOURCES.md, "Added for the drills' boot step").
    "network/VirtualNetworkCreateSubnet.json": "VirtualNetworks_CreateOrUpdate",
    "network/VirtualNetworkGet.json": "VirtualNetworks_Get",
    "network/VirtualNetworkDelete.json": "VirtualNetworks_Delete",
    "network/NetworkInterfaceGet.json": "NetworkInterfaces_Get",
    "network/NetworkInterfaceDelete.json": "NetworkInterfaces_Delete",
}

# -- examples armsim does not replay, and why ---------------------------------------------------
NOT_REPLAYED: dict[str, str] = {
    "network/NetworkInterfaceCreate.json": (
        "A NIC with a public IP address and a second IP configuration sized by privateIPAddressPrefixLength: "
        "armsim has no public IPs and answers 501 NotImplemented for one (test_armsim_network.py::"
        "test_a_nic_with_a_public_ip_is_not_simulated); the answer's shape is the NetworkInterfaceGet "
        "example's, which is replayed."
    ),
    "recoveryservicesbackup/IaaS_v2_hourly.json": (
        "An enhanced policy with an Hourly schedule: armsim simulates Daily and Weekly schedules only and "
        "answers 501 NotImplemented (checked by test_unreplayed_requests_answer_501)."
    ),
    "recoveryservicesbackup/TriggerRestore_RestoreDisks_IaasVMRestoreWithRehydrationRequest.json": (
        "A restore that rehydrates a point from the archive tier: armsim has no archive tier, so every point is "
        "in the snapshot or the vault tier and the request is refused (400 BMSUserErrorInvalidInput; "
        "test_armsim_restore.py::test_a_rehydration_request_for_a_point_not_archived_is_refused)."
    ),
    "eventgrid/cloud-events-schema/resource_write_success.json": (
        "A system-topic event in the CloudEvents 1.0 schema: armsim delivers resource events to webhook "
        "subscriptions in the Event Grid schema only (the two Event Grid schema examples are replayed)."
    ),
}

# -- fields an example has that armsim lacks, each with the reason it is acceptable ---------------
# Keys are (example, path); a path names a field ("properties.etag") and array elements as "[]". A
# missing object is reported once, at its own path.
_VM_EXTENSIONS = "VM extensions are not simulated (no extension resources, handlers or statuses)."
_USER_CLAIMS_REASON = (
    "A claim of an interactive user's token (name, UPN, MFA, device, groups); armsim's caller is a "
    "service principal / managed identity, whose tokens do not carry it."
)
USER_CLAIMS = (
    "_claim_names",
    "_claim_sources",
    "e_exp",
    "ipaddr",
    "name",
    "onprem_sid",
    "puid",
    "http://schemas.microsoft.com/claims/authnclassreference",
    "http://schemas.microsoft.com/claims/authnmethodsreferences",
    "http://schemas.microsoft.com/2012/01/devicecontext/claims/identifier",
    "http://schemas.microsoft.com/identity/claims/scope",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
)
MISSING_ALLOWED: dict[tuple[str, str], str] = {
    ("compute/VirtualMachine_Create_WithPasswordAuthentication.json", "properties.securityProfile"): (
        "armsim does not fill in Azure's default securityProfile ({securityType: Standard}) on create; a VM "
        "without one is treated as Standard."
    ),
    ("compute/VirtualMachine_Get.json", "etag"): "VM etags (If-Match concurrency) are not simulated.",
    ("compute/VirtualMachine_Get.json", "resources"): _VM_EXTENSIONS,
    ("compute/VirtualMachine_Get.json", "managedBy"): "Scale-set membership (managedBy) is not simulated.",
    ("compute/VirtualMachine_ListAll_MaximumSet_Gen.json", "value[].plan"): (
        "Marketplace purchase plans are not kept on VMs (not used by backup)."
    ),
    ("compute/VirtualMachine_ListAll_MaximumSet_Gen.json", "value[].identity"): (
        "Managed identities of VMs are not kept (not used by backup)."
    ),
    ("compute/VirtualMachine_ListAll_MaximumSet_Gen.json", "value[].extendedLocation"): (
        "Edge zones (extendedLocation) are not simulated."
    ),
    ("compute/VirtualMachine_ListAll_MaximumSet_Gen.json", "value[].resources"): _VM_EXTENSIONS,
    ("compute/VirtualMachine_Get_InstanceView.json", "vmAgent.extensionHandlers"): _VM_EXTENSIONS,
    ("compute/VirtualMachine_Get_InstanceView.json", "extensions"): _VM_EXTENSIONS,
    (
        "compute/VirtualMachine_Get_InstanceView.json",
        "bootDiagnostics",
    ): "Boot diagnostics are not simulated.",
    ("compute/VirtualMachine_Get_InstanceView.json", "patchStatus"): "Guest patching is not simulated.",
    ("recoveryservices/GETVault.json", "properties.privateEndpointConnections"): (
        "Private endpoints are not simulated."
    ),
    ("recoveryservicesbackup/PutResourceGuardProxy.json", "properties.description"): (
        "The description is the Resource Guard's own (Microsoft.DataProtection, not simulated); armsim keeps "
        "one a PUT gives, and this PUT gives none."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.geoReplicationStats"): (
        "Geo-replication statistics are answered only with $expand=geoReplicationStats in Azure; armsim does "
        "not simulate replication."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.networkAcls.resourceAccessRules"): (
        "Resource access rules (trusted Azure resources) are not simulated."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.primaryEndpoints.internetEndpoints"): (
        "Routing preferences (Microsoft / internet routing endpoints) are not simulated."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.primaryEndpoints.microsoftEndpoints"): (
        "Routing preferences (Microsoft / internet routing endpoints) are not simulated."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.routingPreference"): (
        "Routing preferences are not simulated."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.geoPriorityReplicationStatus"): (
        "Geo priority replication is not simulated."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.secondaryLocation"): (
        "armsim names the secondary region of a geo-redundant account for the region pairs it knows; the "
        "example's 'eastus2(stage)' is a staging region with no pair."
    ),
    ("storage/StorageAccountGetProperties.json", "properties.statusOfSecondary"): (
        "Only with a secondary region (see secondaryLocation)."
    ),
    ("recoveryservices/GETVault.json", "properties.secureScore"): (
        "Azure's computed secure score of a vault is not simulated."
    ),
    ("recoveryservicesbackup/ProtectionPolicyOperationStatuses_Get.json", "properties"): (
        "armsim writes policies synchronously (200), so no policy operation has jobs to report in "
        "OperationStatusJobsExtendedInfo."
    ),
    ("network/NetworkInterfaceGet.json", "properties.ipConfigurations[].properties.publicIPAddress"): (
        "Public IP addresses are not simulated (a drill's NIC has a private address only)."
    ),
    (
        "network/NetworkInterfaceGet.json",
        "properties.ipConfigurations[].properties.privateIPAddressPrefixLength",
    ): ("IP configurations sized by a prefix length are not simulated; each has one private address."),
    ("network/NetworkInterfaceGet.json", "properties.networkSecurityGroup"): (
        "Network security groups are not simulated (a drill's network has none: no route in or out)."
    ),
    (
        "network/NetworkInterfaceGet.json",
        "properties.dscpConfiguration",
    ): "DSCP configurations are not simulated.",
}
for _claim in USER_CLAIMS:
    MISSING_ALLOWED["eventgrid/event-grid-schema/resource_write_success.json", f"data.claims.{_claim}"] = (
        _USER_CLAIMS_REASON
    )
    MISSING_ALLOWED[
        "eventgrid/docs-subscription-source/ResourceWriteSuccess_EventGridSchema.json",
        f"[].data.claims.{_claim}",
    ] = _USER_CLAIMS_REASON
# Map-valued fields whose keys are user data, not schema: compared by type only.
OPAQUE_MAPS = ("tags",)


# -- shape comparison ----------------------------------------------------------------------------
def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass
class Shape:
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def compare_shape(expected: Any, actual: Any, path: str = "", result: Shape | None = None) -> Shape:
    """Where `actual` lacks a field of `expected`, has another JSON type, or has more fields.

    A null in the example matches anything (the field is optional there). Array elements are compared
    pairwise; an empty example array says nothing about its elements.
    """
    result = result if result is not None else Shape()
    if expected is None:
        return result
    if json_type(expected) != json_type(actual):
        result.mismatched.append(
            f"{path or '<body>'}: example {json_type(expected)}, armsim {json_type(actual)}"
        )
        return result
    if isinstance(expected, dict):
        if path.rsplit(".", 1)[-1] in OPAQUE_MAPS:
            return result
        for key, value in expected.items():
            child = f"{path}.{key}" if path else key
            if key not in actual:
                if value is not None:
                    result.missing.append(child)
                continue
            compare_shape(value, actual[key], child, result)
        for key in actual:
            if key not in expected:
                result.extra.append(f"{path}.{key}" if path else key)
    elif isinstance(expected, list) and expected:
        child = f"{path}[]"
        if not actual:
            result.missing.append(child)
        elif len(actual) < len(expected):
            result.missing.append(f"{child} (example has {len(expected)} elements, armsim {len(actual)})")
        for want, got in zip(expected, actual, strict=False):
            compare_shape(want, got, child, result)
        result.missing[:] = list(dict.fromkeys(result.missing))
        result.mismatched[:] = list(dict.fromkeys(result.mismatched))
        result.extra[:] = list(dict.fromkeys(result.extra))
    return result


def allowed(name: str, path: str) -> str | None:
    """The allow-list pattern that excuses `path` of example `name`, if any."""
    for example, pattern in MISSING_ALLOWED:
        if example == name and (path == pattern or path.startswith((pattern + ".", pattern + "[]"))):
            return pattern
    return None


# -- talking to armsim ---------------------------------------------------------------------------
_TOKENS: dict[str, str] = {}


def token(arm: Sandbox) -> str:
    if arm.url not in _TOKENS:
        _TOKENS[arm.url] = arm.credential().get_token(ARM_SCOPE).token
    return _TOKENS[arm.url]


def fill(template: str, params: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(str(params[m.group(1)]), safe=";,="), template)


@dataclass
class Ctx:
    """What a setup needs: the sandbox and raw ARM calls with the example's api-versions."""

    arm: Sandbox
    name: str
    example: dict[str, Any]

    def call(
        self,
        method: str,
        path: str,
        api_version: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> requests.Response:
        response = requests.request(
            method,
            self.arm.url + path,
            params={"api-version": api_version, **(query or {})},
            json=body,
            headers={"Authorization": f"Bearer {token(self.arm)}"},
            verify=str(self.arm.ca_path),
            timeout=30,
        )
        assert response.status_code in ok, f"setup {method} {path}: {response.status_code} {response.text}"
        return response

    # -- resources the examples name ------------------------------------------------------------
    def subscription(self, subscription: str) -> None:
        self.arm.seed(subscriptions=[subscription])

    def group(self, subscription: str, group: str, location: str = REGION) -> None:
        self.arm.seed(resourceGroups=[{"subscriptionId": subscription, "name": group, "location": location}])

    def vault(self, subscription: str, group: str, name: str, location: str = REGION, **body: Any) -> str:
        self.group(subscription, group, location)
        vault_body = {"location": location, "sku": {"name": "Standard"}, **body}
        path = fill(VAULT, {"subscriptionId": subscription, "resourceGroupName": group, "vaultName": name})
        self.call("PUT", path, "2026-02-01", vault_body)
        return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.RecoveryServices/vaults/{name}"

    def vm(self, subscription: str, group: str, name: str, location: str = REGION, **spec: Any) -> str:
        self.arm.seed(
            vms=[
                {
                    "subscriptionId": subscription,
                    "resourceGroup": group,
                    "name": name,
                    "location": location,
                    **spec,
                }
            ]
        )
        return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"

    def put_vm(self, subscription: str, group: str, name: str, body: dict[str, Any]) -> None:
        self.group(subscription, group, normalize(body["location"]))
        self.nics_for(subscription, group, name, body)
        path = fill(VM, {"subscriptionId": subscription, "resourceGroupName": group, "vmName": name})
        self.call("PUT", path, "2025-11-01", body)

    def network(self, subscription: str, group: str, vnet: str, subnet: str, location: str) -> str:
        """A VNet with one subnet (10.0.0.0/16, the subnet 10.0.1.0/24); the subnet's id."""
        ids = {"subscriptionId": subscription, "resourceGroupName": group, "virtualNetworkName": vnet}
        body = {
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": subnet, "properties": {"addressPrefix": "10.0.1.0/24"}}],
            },
        }
        self.call("PUT", fill(VNET, ids), NETWORK_API, body)
        return fill(VNET, ids) + f"/subnets/{subnet}"

    def nic(
        self, subscription: str, group: str, name: str, location: str, configs: int = 1, **properties: Any
    ) -> str:
        """A NIC with private addresses (`configs` IP configurations) in a VNet of the group (armsim
        checks a VM's NICs)."""
        subnet = self.network(subscription, group, f"vnet-fidelity-{location}", "default", location)
        ip_configs = [
            {"name": f"ipconfig{n}", "properties": {"subnet": {"id": subnet}}} for n in range(1, configs + 1)
        ]
        body = {"location": location, "properties": {"ipConfigurations": ip_configs, **properties}}
        path = fill(
            NIC, {"subscriptionId": subscription, "resourceGroupName": group, "networkInterfaceName": name}
        )
        self.call("PUT", path, NETWORK_API, body)
        return path

    def nics_for(self, subscription: str, group: str, vm: str, body: dict[str, Any]) -> None:
        """The example's NIC ids name placeholders or resources of its own estate: each becomes a NIC
        of the VM made for it."""
        profile = body.get("properties", {}).get("networkProfile") or {}
        for index, nic in enumerate(profile.get("networkInterfaces") or []):
            nic["id"] = self.nic(subscription, group, f"nic-{vm}-{index}", normalize(body["location"]))

    def policy(self, vault_id: str, name: str, properties: dict[str, Any]) -> str:
        properties = {k: v for k, v in copy.deepcopy(properties).items() if k != "protectedItemsCount"}
        self.arm.seed(policies=[{"vaultId": vault_id, "name": name, "properties": properties}])
        return f"{vault_id}/backupPolicies/{name}"

    def protect(
        self, vm_id: str, vault_id: str, policy: str, jobs: list[dict[str, Any]] | None = None
    ) -> None:
        self.arm.seed(
            protections=[{"vmId": vm_id, "vaultId": vault_id, "policy": policy}],
            jobs=[{"vmId": vm_id, **job} for job in jobs or []],
        )

    def refresh(self, vault_id: str) -> str:
        response = self.call("POST", f"{vault_id}/backupFabrics/Azure/refreshContainers", "2026-11-01")
        return operation_id(response.headers["Location"])


def normalize(location: str) -> str:
    return location.replace(" ", "").lower()


def operation_id(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def item_names(vm_id: str) -> tuple[str, str]:
    parts = vm_id.split("/")
    container = f"iaasvmcontainerv2;{parts[4]};{parts[-1]}"
    return f"IaasVMContainer;{container}", f"VM;{container}"


def response_body(ctx: Ctx, status: str = "200") -> Any:
    return copy.deepcopy(ctx.example["responses"][status]["body"])


# -- setups: the state each example needs; they answer parameter overrides -----------------------
Setup = Callable[[Ctx, dict[str, Any]], dict[str, Any]]


def _vm_writable(model: dict[str, Any]) -> dict[str, Any]:
    """A VM body built from an example's GET answer: its writable part."""
    body = {k: copy.deepcopy(v) for k, v in model.items() if k in ("location", "tags", "zones", "properties")}
    for read_only in ("vmId", "provisioningState", "timeCreated", "instanceView"):
        body["properties"].pop(read_only, None)
    return body


def setup_vm_create(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.group(p["subscriptionId"], p["resourceGroupName"], "westus")
    body = copy.deepcopy(p["parameters"])
    ctx.nics_for(p["subscriptionId"], p["resourceGroupName"], p["vmName"], body)
    return {"parameters": body}


# -- Microsoft.Network ------------------------------------------------------------------------------
def setup_vnet_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.group(p["subscriptionId"], p["resourceGroupName"], normalize(p["parameters"]["location"]))
    return {}


def setup_vnet(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The example's VNet, with a NIC in its subnet when the example shows the subnet's users."""
    model = response_body(ctx) if "body" in ctx.example["responses"].get("200", {}) else {"location": REGION}
    location = normalize(model["location"])
    sub, group = p["subscriptionId"], p["resourceGroupName"]
    ctx.group(sub, group, location)
    subnets = (model.get("properties") or {}).get("subnets") or [{"name": "default"}]
    subnet = ctx.network(sub, group, p["virtualNetworkName"], subnets[0]["name"], location)
    if subnets[0].get("properties", {}).get("ipConfigurations"):
        config = {"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}
        path = fill(
            NIC, {"subscriptionId": sub, "resourceGroupName": group, "networkInterfaceName": "nic-user"}
        )
        ctx.call(
            "PUT", path, NETWORK_API, {"location": location, "properties": {"ipConfigurations": [config]}}
        )
    return {}


def setup_nic(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The example's NIC; attached to a VM when the example shows one (macAddress, primary,
    virtualMachine), with the accelerated networking and TCP state tracking the example's NIC has."""
    model = response_body(ctx) if "body" in ctx.example["responses"].get("200", {}) else {"location": REGION}
    location = normalize(model["location"])
    sub, group = p["subscriptionId"], p["resourceGroupName"]
    ctx.group(sub, group, location)
    flags = {
        k: v
        for k, v in (model.get("properties") or {}).items()
        if k in ("enableAcceleratedNetworking", "disableTcpStateTracking")
    }
    configs = len((model.get("properties") or {}).get("ipConfigurations") or [None])
    nic_id = ctx.nic(sub, group, p["networkInterfaceName"], location, configs, **flags)
    if (model.get("properties") or {}).get("virtualMachine"):
        vm = vm_body("vm1", location, {"backup": "daily"})
        vm["properties"]["networkProfile"] = {"networkInterfaces": [{"id": nic_id}]}
        path = fill(VM, {"subscriptionId": sub, "resourceGroupName": group, "vmName": "vm1"})
        ctx.call("PUT", path, "2025-11-01", vm)
    return {}


def setup_vm_get(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    body = _vm_writable(response_body(ctx))
    sub, group = p["subscriptionId"], p["resourceGroupName"]
    ctx.group(sub, group, "westus")
    for disk in body["properties"]["storageProfile"]["dataDisks"]:
        if disk["createOption"] == "Attach":  # an attached disk must exist first
            disk_path = fill(
                RG + "/providers/Microsoft.Compute/disks/{diskName}",
                {"subscriptionId": sub, "resourceGroupName": group, "diskName": disk["name"]},
            )
            ctx.call(
                "PUT", disk_path, "2025-01-02", {"location": "westus", "properties": {"diskSizeGB": 100}}
            )
        disk["managedDisk"]["id"] = disk["managedDisk"]["id"].replace("{subscription-id}", sub)
    ctx.put_vm(sub, group, p["vmName"], body)
    return {}


def setup_vm_instance_view(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.vm(p["subscriptionId"], p["resourceGroupName"], p["vmName"], osType="Windows", dataDisks=[{"lun": 0}])
    return {}


def setup_vm_list_min(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.vm(p["subscriptionId"], "rg-list", "vm-1", "eastus")
    ctx.vm(p["subscriptionId"], "rg-list", "vm-2", "eastus")
    return {}


def setup_vm_list_max(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    # Three VMs made from the example's models, two to a page, so that the first page has a nextLink.
    models = response_body(ctx)["value"]
    for index, model in enumerate([*models, models[0]], start=1):
        ctx.put_vm(p["subscriptionId"], "rg-max", f"vm-max-{index}", _vm_writable(model))
    ctx.arm.configure(pageSize={"virtualMachines": len(models)})
    return {}


def setup_vault_group(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.group(p["subscriptionId"], p["resourceGroupName"])
    return {}


def setup_vault_get(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    model = response_body(ctx)
    writable = (
        "publicNetworkAccess",
        "monitoringSettings",
        "costManagementSettings",
        "redundancySettings",
        "securitySettings",
    )
    ctx.vault(
        p["subscriptionId"],
        p["resourceGroupName"],
        p["vaultName"],
        identity={"type": "SystemAssigned"},
        tags=model["tags"],
        properties={k: v for k, v in model["properties"].items() if k in writable},
    )
    return {}


def setup_vault_existing(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.vault(
        p["subscriptionId"],
        p["resourceGroupName"],
        p["vaultName"],
        properties={"publicNetworkAccess": "Enabled"},
    )
    return {}


def setup_vault_lists(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    for model in response_body(ctx)["value"]:
        group = model["id"].split("/resourceGroups/")[1].split("/")[0]
        ctx.vault(p["subscriptionId"], group, model["name"], tags=model["tags"])
    return {}


def _backup_vault(ctx: Ctx, p: dict[str, Any], location: str = REGION) -> str:
    return ctx.vault(p["subscriptionId"], p["resourceGroupName"], p["vaultName"], location)


def setup_backup_vault(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    _backup_vault(ctx, p)
    return {}


def setup_storage_config_get(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], "iaasvm-rg", "iaasvm-1")
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "DefaultPolicy")  # the example's vault is Locked: it holds an item
    return {}


def setup_protectable(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    ctx.vm(p["subscriptionId"], "iaasvm-rg", "iaasvm-1")
    ctx.refresh(vault_id)
    return {}


def setup_protected_vm(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """A VM protected with an enhanced policy and one completed backup (the examples' item)."""
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], "iaasvm-rg", "iaasvm-1")
    ctx.policy(vault_id, "testPolicy1", v2_policy("10:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "testPolicy1", jobs=[{"outcome": "Completed", "hoursAgo": 3}])
    return {}


def _configure_target(ctx: Ctx, p: dict[str, Any], vm_name: str, vm_group: str) -> tuple[str, str]:
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], vm_group, vm_name)
    ctx.refresh(vault_id)
    return vault_id, vm_id


def setup_configure(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id, _ = _configure_target(ctx, p, "netvmtestv2vm1", "netsdktestrg")
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    return {}


def setup_item_operation(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """Enable protection through ARM; the example reads that operation."""
    vault_id, vm_id = _configure_target(ctx, p, "netvmtestv2vm1", "netsdktestrg")
    policy_id = ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    container, item = item_names(vm_id)
    response = ctx.call(
        "PUT",
        f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}",
        "2026-11-01",
        {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm_id,
                "policyId": policy_id,
            }
        },
    )
    return {"operationId": operation_id(response.headers["Location"])}


def setup_item_delete_operation(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], "iaasvm-rg", "iaasvm-1")
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "DefaultPolicy")
    container, item = item_names(vm_id)
    response = ctx.call(
        "DELETE",
        f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}",
        "2026-11-01",
    )
    return {"operationId": operation_id(response.headers["Location"])}


def setup_backup_status(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The example's VM (its id spells 'VirtualMachines'), protected by a vault in its region."""
    region, parts = p["azureRegion"], p["parameters"]["resourceId"].split("/")
    vault_id = ctx.vault(p["subscriptionId"], parts[4], "testVault", region)
    vm_id = ctx.vm(p["subscriptionId"], parts[4], parts[-1], region)
    ctx.policy(vault_id, "myPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "myPolicy")
    return {}


def setup_job_details(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], "rg-testvm", "testvm")
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(
        vm_id, vault_id, "DefaultPolicy", jobs=[{"outcome": "Completed", "hoursAgo": 0, "kind": "OnDemand"}]
    )
    jobs = ctx.call(
        "GET", f"{vault_id}/backupJobs", "2026-11-01", query={"$filter": "operation eq 'Backup'"}
    ).json()
    return {"jobName": jobs["value"][0]["name"]}


def setup_list_jobs(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """A ConfigureBackup job that completed, then a backup still running (the example's two jobs)."""
    vault_id, vm_id = _configure_target(ctx, p, "testvm", "rg-testvm")
    policy_id = ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    container, item = item_names(vm_id)
    item_path = f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"
    ctx.call(
        "PUT",
        item_path,
        "2026-11-01",
        {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm_id,
                "policyId": policy_id,
            }
        },
    )
    ctx.arm.clock(advanceSeconds=60)
    ctx.call(
        "POST", item_path + "/backup", "2026-11-01", {"properties": {"objectType": "IaasVMBackupRequest"}}
    )
    return {}


def setup_policy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    ctx.policy(vault_id, p["policyName"], response_body(ctx)["properties"])
    return {}


def setup_policy_list(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    for model in response_body(ctx)["value"]:
        properties = model["properties"]
        if properties["schedulePolicy"]["schedulePolicyType"] == "SimpleSchedulePolicyV2":
            properties.setdefault("policyType", "V2")  # as it was created; the list answer omits it
        ctx.policy(vault_id, model["name"], properties)
    return {}


def setup_policy_operation(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """armsim writes policies synchronously, so no operation is a policy's own: the vault's discovery
    operation stands in (the policy operation routes look the operation up by id)."""
    vault_id = _backup_vault(ctx, p)
    ctx.policy(vault_id, p["policyName"], v1_policy("02:00", time_zone=PACIFIC))
    return {"operationId": ctx.refresh(vault_id)}


def setup_refresh_operation(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    return {"operationId": ctx.refresh(vault_id)}


def setup_trigger(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    vault_id = _backup_vault(ctx, p)
    vm_id = ctx.vm(p["subscriptionId"], "testrg", "v1win2012r", osType="Windows")
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "DefaultPolicy")
    return {}


def setup_restore(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The example's VM protected and backed up, and its staging account ('testAccount' of the example's
    id: storage account names are lower case, ids compare without case)."""
    region = p["parameters"]["properties"]["region"]
    vault_id = ctx.vault(p["subscriptionId"], p["resourceGroupName"], p["vaultName"], region)
    vm_id = ctx.vm(p["subscriptionId"], p["resourceGroupName"], "netvmtestv2vm1", region)
    ctx.policy(vault_id, "DefaultPolicy", v1_policy("02:00", time_zone=PACIFIC))
    ctx.protect(vm_id, vault_id, "DefaultPolicy", jobs=[{"outcome": "Completed", "hoursAgo": 3}])
    account = p["parameters"]["properties"]["storageAccountId"].split("/")
    ctx.arm.seed(
        storageAccounts=[
            {
                "subscriptionId": account[2],
                "resourceGroup": account[4],
                "name": account[-1].lower(),
                "location": region,
            }
        ]
    )
    container, item = item_names(vm_id)
    points = ctx.call(
        "GET",
        f"{vault_id}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}/recoveryPoints",
        "2026-11-01",
    ).json()["value"]
    return {"recoveryPointId": points[0]["name"]}


def setup_guard_proxy(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    """The example's association, made with the description the examples show."""
    _backup_vault(ctx, p)
    proxy = load("recoveryservicesbackup/GetResourceGuardProxy.json")["responses"]["200"]["body"]
    path = fill(VAULT, p) + "/backupResourceGuardProxies/" + proxy["name"]
    properties = {k: proxy["properties"][k] for k in ("resourceGuardResourceId", "description")}
    ctx.call("PUT", path, "2026-11-01", {"properties": properties})
    return {}


def setup_disk(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    ctx.group(p["subscriptionId"], p["resourceGroupName"])
    path = fill(RG + "/providers/Microsoft.Compute/disks/{diskName}", p)
    ctx.call("PUT", path, p["api-version"], {"location": REGION, "properties": {"diskSizeGB": 64}})
    return {}


def setup_storage(ctx: Ctx, p: dict[str, Any]) -> dict[str, Any]:
    model = response_body(ctx)
    ctx.group(p["subscriptionId"], p["resourceGroupName"], normalize(model["location"]))
    path = fill(RG + "/providers/Microsoft.Storage/storageAccounts/{accountName}", p)
    body = {
        "location": model["location"],
        "sku": {"name": model["sku"]["name"]},
        "kind": model["kind"],
        "tags": model["tags"],
    }
    ctx.call("PUT", path, p["api-version"], body)
    return {}


REPLAYS: dict[str, Setup] = {
    "compute/VirtualMachine_Create_WithPasswordAuthentication.json": setup_vm_create,
    "compute/VirtualMachine_Get.json": setup_vm_get,
    "compute/VirtualMachine_Get_InstanceView.json": setup_vm_instance_view,
    "compute/VirtualMachine_ListAll_MaximumSet_Gen.json": setup_vm_list_max,
    "compute/VirtualMachine_ListAll_MinimumSet_Gen.json": setup_vm_list_min,
    "recoveryservices/GETVault.json": setup_vault_get,
    "recoveryservices/ListBySubscriptionIds.json": setup_vault_lists,
    "recoveryservices/ListResources.json": setup_vault_lists,
    "recoveryservices/PATCHVault.json": setup_vault_existing,
    "recoveryservices/PATCHVault_WithRedundancySettings.json": setup_vault_existing,
    "recoveryservices/PUTVault.json": setup_vault_group,
    "recoveryservices/PUTVault_WithRedundancySettings.json": setup_vault_group,
    "recoveryservicesbackup/BackupProtectableItems_List.json": setup_protectable,
    "recoveryservicesbackup/BackupProtectedItems_List.json": setup_protected_vm,
    "recoveryservicesbackup/BackupStorageConfig_Get.json": setup_storage_config_get,
    "recoveryservicesbackup/BackupStorageConfig_Patch.json": setup_backup_vault,
    "recoveryservicesbackup/BackupStorageConfig_Put.json": setup_backup_vault,
    "recoveryservicesbackup/Compute_ProtectedItem_Get.json": setup_protected_vm,
    "recoveryservicesbackup/ConfigureProtection.json": setup_configure,
    "recoveryservicesbackup/GetBackupStatus.json": setup_backup_status,
    "recoveryservicesbackup/GetJobDetails.json": setup_job_details,
    "recoveryservicesbackup/IaaS_v2_daily.json": setup_backup_vault,
    "recoveryservicesbackup/ListJobs.json": setup_list_jobs,
    "recoveryservicesbackup/ProtectedItemOperationResults.json": setup_item_operation,
    "recoveryservicesbackup/ProtectedItemOperationStatus.json": setup_item_operation,
    "recoveryservicesbackup/ProtectedItem_Delete_OperationResult.json": setup_item_delete_operation,
    "recoveryservicesbackup/ProtectedItem_Delete_OperationStatus.json": setup_item_delete_operation,
    "recoveryservicesbackup/ProtectionPolicies_CreateOrUpdate_Complex.json": setup_backup_vault,
    "recoveryservicesbackup/ProtectionPolicies_CreateOrUpdate_Simple.json": setup_backup_vault,
    "recoveryservicesbackup/ProtectionPolicies_Get.json": setup_policy,
    "recoveryservicesbackup/ProtectionPolicyOperationResults_Get.json": setup_policy_operation,
    "recoveryservicesbackup/ProtectionPolicyOperationStatuses_Get.json": setup_policy_operation,
    "recoveryservicesbackup/RefreshContainers.json": setup_backup_vault,
    "recoveryservicesbackup/RefreshContainers_OperationResults.json": setup_refresh_operation,
    "recoveryservicesbackup/RefreshContainers_OperationStatus.json": setup_refresh_operation,
    "recoveryservicesbackup/TriggerBackup_Post.json": setup_trigger,
    "recoveryservicesbackup/v2-Get-Policy.json": setup_policy,
    "recoveryservicesbackup/v2-List-Policies.json": setup_policy_list,
    "recoveryservicesbackup/TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json": setup_restore,
    "recoveryservicesbackup/BackupResourceVaultConfigs_Get.json": setup_backup_vault,
    "recoveryservicesbackup/BackupResourceVaultConfigs_Patch.json": setup_backup_vault,
    "recoveryservicesbackup/GetResourceGuardProxy.json": setup_guard_proxy,
    "recoveryservicesbackup/ListResourceGuardProxy.json": setup_guard_proxy,
    "recoveryservicesbackup/PutResourceGuardProxy.json": setup_backup_vault,
    "compute/Disk_Delete.json": setup_disk,
    "storage/StorageAccountGetProperties.json": setup_storage,
    "network/VirtualNetworkCreateSubnet.json": setup_vnet_group,
    "network/VirtualNetworkGet.json": setup_vnet,
    "network/VirtualNetworkDelete.json": setup_vnet,
    "network/NetworkInterfaceGet.json": setup_nic,
    "network/NetworkInterfaceDelete.json": setup_nic,
}
EVENT_REPLAYS = (
    "eventgrid/event-grid-schema/resource_write_success.json",
    "eventgrid/docs-subscription-source/ResourceWriteSuccess_EventGridSchema.json",
)

# Example parameters armsim cannot take as they are, with what is sent instead and why.
PARAMETER_OVERRIDES: dict[str, dict[str, tuple[str | None, str]]] = {
    "compute/VirtualMachine_ListAll_MaximumSet_Gen.json": {
        "$filter": (
            None,
            "a generated placeholder ('aaaa…'), not an OData filter; armsim answers 501 for $filter on VM "
            "lists, so the request is sent without it",
        ),
    },
}


def example_files() -> list[str]:
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(example_path(name).read_text())
    return data


def report(name: str, arm: Sandbox, content: dict[str, Any]) -> None:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    target = REPORT_DIR / f"{name.replace('/', '__')}.{arm.mode}.json"
    target.write_text(json.dumps(content, indent=2, sort_keys=True))


def check_shape(name: str, expected: Any, actual: Any, record: Callable[[str, object], None]) -> Shape:
    shape = compare_shape(expected, actual)
    unexcused = [path for path in shape.missing if allowed(name, path) is None]
    used = {allowed(name, path) for path in shape.missing}
    stale = [pattern for (example, pattern) in MISSING_ALLOWED if example == name and pattern not in used]
    record("armsim_extra_fields", shape.extra)
    record("allowed_missing_fields", [p for p in shape.missing if p not in unexcused])
    assert not shape.mismatched, f"{name}: JSON types differ: {shape.mismatched}"
    assert not unexcused, f"{name}: fields of the example that armsim lacks: {unexcused}"
    assert not stale, f"{name}: allow-list entries no longer needed (remove them): {stale}"
    return shape


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_example_replays(name: str, arm: Sandbox, record_property: Callable[[str, object], None]) -> None:
    example = load(name)
    operation = example.get("operationId") or OPERATION_OF_FILE[name]
    method, template = OPERATIONS[operation]
    params = dict(example["parameters"])
    if params.get("subscriptionId", "").startswith("{"):
        params["subscriptionId"] = arm.subscription
    ctx = Ctx(arm, name, example)
    if params["subscriptionId"] != arm.subscription:
        ctx.subscription(params["subscriptionId"])
    arm.clock(speed=0)  # jobs and operations stand still between the setup and the request
    params.update(REPLAYS[name](ctx, params))
    for key, (value, _reason) in PARAMETER_OVERRIDES.get(name, {}).items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    placeholders = set(re.findall(r"\{(\w+)\}", template))
    body = next((v for k, v in params.items() if isinstance(v, dict) and k not in placeholders), None)
    query = {
        k: str(v)
        for k, v in params.items()
        if k not in placeholders and not isinstance(v, dict) and k != "api-version"
    }
    response = requests.request(
        method,
        arm.url + fill(template, params),
        params={"api-version": params["api-version"], **query},
        json=body,
        headers={"Authorization": f"Bearer {token(arm)}"},
        verify=str(arm.ca_path),
        timeout=30,
    )
    statuses = sorted(example["responses"])
    assert str(response.status_code) in statuses, (
        f"{method} {template}: armsim answered {response.status_code} {response.text[:500]}; "
        f"the example answers {statuses}"
    )
    answer = example["responses"][str(response.status_code)]
    missing_headers = [
        h
        for h in (answer.get("headers") or {})
        if h.lower() not in {k.lower() for k in response.headers} and allowed(name, f"headers.{h}") is None
    ]
    assert not missing_headers, f"{name}: headers of the example that armsim does not send: {missing_headers}"
    if "body" in answer:
        assert response.content, (
            f"{name}: the example has a body for {response.status_code}, armsim sent none"
        )
        shape = check_shape(name, answer["body"], response.json(), record_property)
    else:
        shape = Shape(extra=["<body>"] if response.content else [])
        stale = [pattern for (example_name, pattern) in MISSING_ALLOWED if example_name == name]
        assert not stale, f"{name}: allow-list entries no longer needed (remove them): {stale}"
    report(
        name,
        arm,
        {"status": response.status_code, "armsimExtraFields": shape.extra, "allowedMissing": shape.missing},
    )


@pytest.mark.parametrize("name", EVENT_REPLAYS)
def test_event_example_replays(
    name: str, arm: Sandbox, record_property: Callable[[str, object], None]
) -> None:
    """The Event Grid examples are events, not requests: a VM write through ARM must produce an event of
    the example's shape (the event armsim records, and the batch a webhook receives)."""
    from tests.bodies import vm_body

    example = load(name)
    ctx = Ctx(arm, name, example)
    ctx.group(arm.subscription, "rg-events")
    delivered: list[Any] = []
    with Webhook() as hook:
        arm.control("POST", "/eventgrid/subscriptions", {"name": "fidelity", "endpoint": hook.url})
        ctx.put_vm(arm.subscription, "rg-events", "vm-events", vm_body(tags={"backup": "daily"}))
        deadline = time.time() + 10
        while not hook.notifications() and time.time() < deadline:
            time.sleep(0.05)
        delivered = [body for _, body in hook.notifications()]
    assert delivered, "no ResourceWriteSuccess delivery reached the webhook"
    recorded = arm.events()["resourceEvents"][-1]
    actual = delivered[0] if isinstance(example, list) else recorded
    assert isinstance(actual, list) == isinstance(example, list)
    shape = check_shape(name, example, actual, record_property)
    report(name, arm, {"armsimExtraFields": shape.extra, "allowedMissing": shape.missing})


def test_every_example_is_replayed_or_listed() -> None:
    example_path()  # fails when the folder is missing
    files = example_files()
    assert files, f"no example in {EXAMPLES}"
    known = set(REPLAYS) | set(EVENT_REPLAYS) | set(NOT_REPLAYED)
    unaccounted = [f for f in files if f not in known]
    assert not unaccounted, (
        f"examples neither replayed nor listed in NOT_REPLAYED with a reason: {unaccounted}"
    )
    vanished = sorted(known - set(files))
    assert not vanished, f"replayed or listed examples that are no longer in {EXAMPLES}: {vanished}"
    assert not set(REPLAYS) & set(NOT_REPLAYED)
    assert all(reason.strip() for reason in [*NOT_REPLAYED.values(), *MISSING_ALLOWED.values()])


def test_unreplayed_requests_answer_501(arm: Sandbox) -> None:
    """An example armsim does not simulate is refused with 501 and an ARM error body, never a guess."""
    name = "recoveryservicesbackup/IaaS_v2_hourly.json"
    example = load(name)
    params = example["parameters"]
    ctx = Ctx(arm, name, example)
    ctx.subscription(S0)
    setup_backup_vault(ctx, params)
    response = ctx.call("PUT", fill(POLICY, params), params["api-version"], params["parameters"], ok=(501,))
    assert response.json()["error"]["code"] == "NotImplemented"
    listed = ctx.call("GET", fill(VAULT + "/backupPolicies", params), params["api-version"]).json()
    assert listed["value"] == []


def test_shape_comparison_finds_differences() -> None:
    """The comparison itself: it must see a missing field, a changed type and an extra field."""
    expected = {"a": {"b": 1, "c": [{"d": "x"}]}, "n": None, "tags": {"k": "v"}}
    same = compare_shape(expected, {"a": {"b": 2.5, "c": [{"d": "y"}, {"d": "z"}]}, "tags": {}})
    assert (same.missing, same.mismatched, same.extra) == ([], [], [])
    differs = compare_shape(expected, {"a": {"b": "1", "c": [{}]}, "n": 3, "tags": {}, "e": 1})
    assert differs.missing == ["a.c[].d"]
    assert differs.mismatched == ["a.b: example number, armsim string"]
    assert differs.extra == ["e"]
    assert compare_shape({"l": [1, 2]}, {"l": []}).missing == ["l[]"]
