"""Bad inputs: each gets the HTTP status and ARM error code Azure gives (see docs/research/arm-error-codes.md),
the real SDK raises its typed exception, and a refused write leaves nothing half-created. One behaviour a
test, in both modes."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from armsim.core.auth import make_token
from tests.armsim_support import FixedToken, Sandbox
from tests.bodies import daily_policy_body, vm_body

RG = "rg-bad"
LOCATION = "westeurope"


def vault_id(arm: Sandbox, name: str, group: str = RG) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{group}/providers/Microsoft.RecoveryServices/vaults/{name}"


def vm_id(arm: Sandbox, name: str, group: str = RG) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def names(vm: str, group: str = RG) -> tuple[str, str]:
    container = f"iaasvmcontainerv2;{group};{vm}"
    return f"IaasVMContainer;{container}", f"VM;{container}"


def protect_body(arm: Sandbox, vm: str, vault: str, policy: str = "daily") -> dict[str, Any]:
    return {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm_id(arm, vm),
            "policyId": f"{vault_id(arm, vault)}/backupPolicies/{policy}",
        }
    }


def arm_error(response: HttpResponse) -> HttpResponseError:
    """The SDK's typed error for a raw response, with the ARM error body parsed as ARM clients parse it."""
    return HttpResponseError(response=response, error_format=ARMErrorFormat)


def seed_estate(
    arm: Sandbox,
    *,
    vaults: list[tuple[str, str]],
    vms: list[tuple[str, str]],
    protect: dict[str, str] | None = None,
) -> None:
    """Vaults and VMs (name, region) in RG, a 'daily' policy in every vault, and the protections given."""
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": n, "location": r}
            for n, r in vaults
        ],
        policies=[
            {"vaultId": vault_id(arm, n), "name": "daily", "properties": daily_policy_body()["properties"]}
            for n, _ in vaults
        ],
        vms=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": n, "location": r}
            for n, r in vms
        ],
        protections=[
            {"vmId": vm_id(arm, vm), "vaultId": vault_id(arm, v), "policy": "daily"}
            for vm, v in (protect or {}).items()
        ],
    )
    for name, _ in vaults:  # discovery, so that only the rule under test can refuse protection
        requests.post(
            f"{arm.url}{vault_id(arm, name)}/backupFabrics/Azure/refreshContainers",
            params={"api-version": "2025-08-01"},
            headers={
                "Authorization": f"Bearer {arm.credential().get_token('https://management.azure.com/.default').token}"
            },
            verify=str(arm.ca_path),
            timeout=10,
        ).raise_for_status()


# -- vault names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["a", "1vault", "my_vault"], ids=["too-short", "starts-with-digit", "underscore"]
)
def test_invalid_vault_name_is_refused(arm: Sandbox, sdk: dict[str, Any], name: str) -> None:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": LOCATION}])
    with pytest.raises(HttpResponseError) as err:
        sdk["vaults"].vaults.begin_create_or_update(
            RG, name, {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {}}
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidRestApiParameter"
    assert list(sdk["vaults"].vaults.list_by_resource_group(RG)) == []


# -- policies ------------------------------------------------------------------------------------
def test_policy_with_six_day_instant_restore_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[])
    backup = sdk["backup"]
    with pytest.raises(HttpResponseError) as err:
        backup.protection_policies.create_or_update("rsv-weu", RG, "daily", daily_policy_body(instant_days=6))
    assert err.value.status_code == 400
    assert err.value.error.code == "BMSUserErrorInvalidPolicyInput"
    unchanged = backup.protection_policies.get("rsv-weu", RG, "daily")
    assert unchanged.properties.instant_rp_retention_range_in_days == 2


def test_policy_scheduled_at_quarter_past_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[])
    backup = sdk["backup"]
    with pytest.raises(HttpResponseError) as err:
        backup.protection_policies.create_or_update(
            "rsv-weu", RG, "nightly", daily_policy_body(time_of_day="22:15")
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "BMSUserErrorInvalidPolicyInput"
    assert "22:15" in str(err.value)  # armsim names the reason in the error's details
    assert [p.name for p in backup.backup_policies.list("rsv-weu", RG)] == ["daily"]


# -- protection ----------------------------------------------------------------------------------
def test_protection_into_a_vault_in_another_region_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[("vm-neu", "northeurope")])
    backup = sdk["backup"]
    container, item = names("vm-neu")
    with pytest.raises(HttpResponseError) as err:
        backup.protected_items.begin_create_or_update(
            "rsv-weu", RG, "Azure", container, item, protect_body(arm, "vm-neu", "rsv-weu")
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "BMSUserErrorInvalidConfigureProtectionRequest"
    assert list(backup.backup_protected_items.list("rsv-weu", RG)) == []
    status = backup.backup_status.get(
        "northeurope", {"resourceId": vm_id(arm, "vm-neu"), "resourceType": "VM"}
    )
    assert status.protection_status == "NotProtected"


def test_vm_protected_in_another_vault_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(
        arm,
        vaults=[("rsv-a", LOCATION), ("rsv-b", LOCATION)],
        vms=[("vm-1", LOCATION)],
        protect={"vm-1": "rsv-a"},
    )
    backup = sdk["backup"]
    container, item = names("vm-1")
    with pytest.raises(HttpResponseError) as err:
        backup.protected_items.begin_create_or_update(
            "rsv-b", RG, "Azure", container, item, protect_body(arm, "vm-1", "rsv-b")
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "BMSUserErrorInvalidConfigureProtectionRequest"
    assert list(backup.backup_protected_items.list("rsv-b", RG)) == []
    status = backup.backup_status.get(LOCATION, {"resourceId": vm_id(arm, "vm-1"), "resourceType": "VM"})
    assert status.vault_id.lower() == vault_id(arm, "rsv-a").lower()


# -- storage redundancy --------------------------------------------------------------------------
def test_vault_patch_of_redundancy_with_items_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[("vm-1", LOCATION)], protect={"vm-1": "rsv-weu"})
    with pytest.raises(HttpResponseError) as err:
        sdk["vaults"].vaults.begin_update(
            RG,
            "rsv-weu",
            {"properties": {"redundancySettings": {"standardTierStorageRedundancy": "LocallyRedundant"}}},
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "StorageModelModifyError"
    vault = sdk["vaults"].vaults.get(RG, "rsv-weu")
    assert vault.properties.redundancy_settings.standard_tier_storage_redundancy == "GeoRedundant"


def test_storage_config_patch_with_items_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[("vm-1", LOCATION)], protect={"vm-1": "rsv-weu"})
    configs = sdk["backup"].backup_resource_storage_configs_non_crr
    with pytest.raises(HttpResponseError) as err:
        configs.patch("rsv-weu", RG, {"properties": {"storageType": "LocallyRedundant"}})
    assert err.value.status_code == 400
    assert err.value.error.code == "StorageModelModifyError"
    config = configs.get("rsv-weu", RG).properties
    assert (config.storage_type, config.storage_type_state) == ("GeoRedundant", "Locked")


# -- backups -------------------------------------------------------------------------------------
def test_backup_of_an_item_never_protected_is_not_found(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[("vm-1", LOCATION)])
    backup = sdk["backup"]
    container, item = names("vm-1")
    with pytest.raises(ResourceNotFoundError) as err:
        backup.backups.trigger(
            "rsv-weu", RG, "Azure", container, item, {"properties": {"objectType": "IaasVMBackupRequest"}}
        )
    assert err.value.status_code == 404
    assert err.value.error.code == "BMSUserErrorDataSourceObjectNotFound"
    assert list(backup.backup_jobs.list("rsv-weu", RG)) == []


def test_backup_of_an_item_with_protection_stopped_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed_estate(arm, vaults=[("rsv-weu", LOCATION)], vms=[("vm-1", LOCATION)])
    arm.seed(
        protections=[
            {
                "vmId": vm_id(arm, "vm-1"),
                "vaultId": vault_id(arm, "rsv-weu"),
                "policy": "daily",
                "state": "ProtectionStopped",
            }
        ]
    )
    backup = sdk["backup"]
    container, item = names("vm-1")
    jobs_before = len(list(backup.backup_jobs.list("rsv-weu", RG)))
    with pytest.raises(HttpResponseError) as err:
        backup.backups.trigger(
            "rsv-weu", RG, "Azure", container, item, {"properties": {"objectType": "IaasVMBackupRequest"}}
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "BMSUserErrorInvalidInput"
    assert len(list(backup.backup_jobs.list("rsv-weu", RG))) == jobs_before
    state = AzureIaaSComputeVMProtectedItem(
        backup.protected_items.get("rsv-weu", RG, "Azure", container, item).properties
    )
    assert state.protection_state == "ProtectionStopped"


# -- api-versions --------------------------------------------------------------------------------
def test_unknown_api_version_is_refused(arm: Sandbox) -> None:
    backup = RecoveryServicesBackupClient(
        arm.credential(), arm.subscription, **arm.arm_kwargs(retry_total=0, api_version="2099-01-01")
    )
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": "rsv-weu", "location": LOCATION}
        ]
    )
    with pytest.raises(HttpResponseError) as err:
        list(backup.backup_jobs.list("rsv-weu", RG))
    assert err.value.status_code == 400
    assert err.value.error.code == "NoRegisteredProviderFound"
    assert "2099-01-01" in err.value.error.message


def test_malformed_api_version_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    with pytest.raises(HttpResponseError) as err:
        list(sdk["compute"].virtual_machines.list_all(api_version="latest"))
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidApiVersionParameter"


def test_missing_api_version_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    request = HttpRequest(
        "GET", f"/subscriptions/{arm.subscription}/providers/Microsoft.Compute/virtualMachines"
    )
    response = sdk["compute"].send_request(request)
    error = arm_error(response)
    assert error.status_code == 400
    assert error.error is not None and error.error.code == "MissingApiVersionParameter"


# -- request bodies ------------------------------------------------------------------------------
def test_malformed_json_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": LOCATION}])
    request = HttpRequest(
        "PUT",
        f"{vault_id(arm, 'rsv-weu')}?api-version=2025-08-01",
        content=b'{"location": "westeurope", "sku": {"name": "Standard"',
        headers={"Content-Type": "application/json"},
    )
    response = sdk["vaults"].send_request(request)
    error = arm_error(response)
    assert error.status_code == 400
    assert error.error is not None and error.error.code == "InvalidRequestContent"
    assert list(sdk["vaults"].vaults.list_by_resource_group(RG)) == []


# -- authentication ------------------------------------------------------------------------------
def test_missing_token_is_refused(arm: Sandbox) -> None:
    response = requests.get(
        f"{arm.url}/subscriptions/{arm.subscription}/resourcegroups",
        params={"api-version": "2024-11-01"},
        verify=str(arm.ca_path),
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer authorization_uri="https://login.windows.net/"'
    )


def test_expired_token_is_refused(arm: Sandbox) -> None:
    expired = FixedToken(make_token("https://management.azure.com/", time.time() - 60))
    compute = ComputeManagementClient(expired, arm.subscription, **arm.arm_kwargs(retry_total=0))
    with pytest.raises(ClientAuthenticationError) as err:
        list(compute.virtual_machines.list_all())
    assert err.value.status_code == 401
    assert err.value.error.code == "ExpiredAuthenticationToken"


def test_token_for_another_audience_is_refused(arm: Sandbox) -> None:
    misdirected = FixedToken(make_token("https://vault.azure.net", time.time() + 3600))
    compute = ComputeManagementClient(misdirected, arm.subscription, **arm.arm_kwargs(retry_total=0))
    with pytest.raises(ClientAuthenticationError) as err:
        list(compute.virtual_machines.list_all())
    assert err.value.status_code == 401
    assert err.value.error.code == "InvalidAuthenticationTokenAudience"


# -- where resources live ------------------------------------------------------------------------
def test_vm_in_a_missing_resource_group_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        sdk["compute"].virtual_machines.begin_create_or_update(
            "rg-missing", "vm-1", vm_body("vm-1", LOCATION)
        )
    assert err.value.status_code == 404
    assert err.value.error.code == "ResourceGroupNotFound"
    assert list(sdk["compute"].virtual_machines.list_all()) == []


def test_missing_subscription_is_not_found(arm: Sandbox) -> None:
    compute = ComputeManagementClient(
        arm.credential(), "11111111-1111-1111-1111-111111111111", **arm.arm_kwargs(retry_total=0)
    )
    with pytest.raises(ResourceNotFoundError) as err:
        list(compute.virtual_machines.list_all())
    assert err.value.status_code == 404
    assert err.value.error.code == "SubscriptionNotFound"


def test_unknown_route_answers_501_with_an_arm_error(arm: Sandbox, sdk: dict[str, Any]) -> None:
    request = HttpRequest(
        "GET",
        f"/subscriptions/{arm.subscription}/providers/Microsoft.Network/virtualNetworks?api-version=2024-05-01",
    )
    error = arm_error(sdk["compute"].send_request(request))
    assert error.status_code == 501
    assert error.error is not None and error.error.code == "NotImplemented"
    assert "SUPPORTED_OPERATIONS.md" in error.error.message
