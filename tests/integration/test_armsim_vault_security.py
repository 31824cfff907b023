"""A vault's security posture in armsim, through the pinned SDK clients (both modes): soft delete
(state, always-on, retention 14-180 days) through backupconfig/vaultconfig, immutability (Disabled,
Unlocked, Locked) through the vault, multi-user authorization (Resource Guard proxies), public network
access, cross-region restore, the security level Azure derives (bcdrSecurityLevel), and each refusal
with its SDK exception and code. Evidence: armsim/SUPPORTED_OPERATIONS.md, "Vault security posture"."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.armsim_support import Sandbox
from tests.bodies import v1_policy

RG = "rg-sec"
VAULT = "rsv-sec"
LOCATION = "westeurope"
GUARD = (
    "/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg-guard/providers/"
    "Microsoft.DataProtection/resourceGuards/guard-1"
)


def vault_id(arm: Sandbox) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"


def make_vault(arm: Sandbox, **vault: Any) -> None:
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": VAULT,
                "location": LOCATION,
                **vault,
            }
        ]
    )


def settings(sdk: dict[str, Any]) -> Any:
    return sdk["vaults"].vaults.get(RG, VAULT).properties.security_settings


def level(sdk: dict[str, Any]) -> Any:
    """bcdrSecurityLevel (the SDK's str enum: compares equal to Azure's text)."""
    return sdk["vaults"].vaults.get(RG, VAULT).properties.bcdr_security_level


def patch_vault(sdk: dict[str, Any], properties: dict[str, Any]) -> Any:
    return sdk["vaults"].vaults.begin_update(RG, VAULT, {"properties": properties}).result()


def immutability(sdk: dict[str, Any], state: str) -> Any:
    return patch_vault(sdk, {"securitySettings": {"immutabilitySettings": {"state": state}}})


def vault_config(sdk: dict[str, Any], **properties: Any) -> Any:
    return sdk["backup"].backup_resource_vault_configs.update(VAULT, RG, {"properties": properties})


def refused(error: pytest.ExceptionInfo[HttpResponseError], status: int, code: str) -> None:
    assert error.value.status_code == status
    assert error.value.error is not None and error.value.error.code == code, error.value.message


# -- a new vault -------------------------------------------------------------------------------------
def test_a_new_vault_has_soft_delete_for_14_days_and_no_immutability(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    make_vault(arm)
    security = settings(sdk)
    assert security.soft_delete_settings.soft_delete_state == "Enabled"
    assert security.soft_delete_settings.soft_delete_retention_period_in_days == 14
    assert security.soft_delete_settings.enhanced_security_state == "Enabled"
    assert security.immutability_settings.state == "Disabled"
    assert security.multi_user_authorization == "Disabled"
    assert level(sdk) == "Poor"  # reversible settings count for nothing (GETVault: soft delete on, 'Poor')


def test_vault_config_reads_the_soft_delete_feature_state(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    config = sdk["backup"].backup_resource_vault_configs.get(VAULT, RG)
    assert config.name == "vaultconfig"
    assert config.type == "Microsoft.RecoveryServices/vaults/backupconfig"
    assert config.properties.soft_delete_feature_state == "Enabled"
    assert config.properties.enhanced_security_state == "Enabled"
    assert config.properties.is_soft_delete_feature_state_editable is True


def test_a_vault_created_with_its_security_settings_keeps_them(arm: Sandbox, sdk: dict[str, Any]) -> None:
    sdk["resources"].resource_groups.create_or_update(RG, {"location": LOCATION})
    sdk["vaults"].vaults.begin_create_or_update(
        RG,
        VAULT,
        {
            "location": LOCATION,
            "sku": {"name": "Standard"},
            "properties": {
                "publicNetworkAccess": "Disabled",
                "securitySettings": {
                    "softDeleteSettings": {
                        "softDeleteState": "AlwaysON",
                        "softDeleteRetentionPeriodInDays": 30,
                    },
                    "immutabilitySettings": {"state": "Unlocked"},
                },
            },
        },
    ).result()
    vault = sdk["vaults"].vaults.get(RG, VAULT)
    assert vault.properties.public_network_access == "Disabled"
    soft = vault.properties.security_settings.soft_delete_settings
    assert (soft.soft_delete_state, soft.soft_delete_retention_period_in_days) == ("AlwaysON", 30)
    assert vault.properties.security_settings.immutability_settings.state == "Unlocked"
    assert vault.properties.bcdr_security_level == "Good"  # always-on is irreversible


# -- soft delete -----------------------------------------------------------------------------------
def test_soft_delete_is_turned_off_through_vault_config(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """As recorded (test_backup_softdelete #109): PATCH {enhancedSecurityState, softDeleteFeatureState}."""
    make_vault(arm)
    answer = vault_config(sdk, enhancedSecurityState="Enabled", softDeleteFeatureState="Disabled")
    assert answer.properties.soft_delete_feature_state == "Disabled"
    assert settings(sdk).soft_delete_settings.soft_delete_state == "Disabled"


def test_soft_delete_retention_is_set_through_vault_config(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    vault_config(sdk, softDeleteFeatureState="Enabled", softDeleteRetentionPeriodInDays=45)
    assert settings(sdk).soft_delete_settings.soft_delete_retention_period_in_days == 45


def test_soft_delete_retention_keeps_a_deleted_item_that_long(arm: Sandbox, sdk: dict[str, Any]) -> None:
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": VAULT, "location": LOCATION}
        ],
        policies=[{"vaultId": vault_id(arm), "name": "daily", "properties": v1_policy()}],
        vms=[{"subscriptionId": arm.subscription, "resourceGroup": RG, "name": "vm-1", "location": LOCATION}],
    )
    vault_config(sdk, softDeleteRetentionPeriodInDays=30)
    vm = f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm-1"
    arm.seed(protections=[{"vmId": vm, "vaultId": vault_id(arm), "policy": "daily", "state": "SoftDeleted"}])
    container = f"iaasvmcontainerv2;{RG};vm-1"
    item = sdk["backup"].protected_items.get(
        VAULT, RG, "Azure", f"IaasVMContainer;{container}", f"VM;{container}"
    )
    assert item.properties.deferred_delete_time_remaining.startswith("29.23:59")


@pytest.mark.parametrize("days", [13, 181])
def test_soft_delete_retention_outside_14_to_180_days_is_refused(
    arm: Sandbox, sdk: dict[str, Any], days: int
) -> None:
    make_vault(arm)
    with pytest.raises(HttpResponseError) as error:
        vault_config(sdk, softDeleteRetentionPeriodInDays=days)
    refused(error, 400, "BMSUserErrorInvalidInput")
    assert settings(sdk).soft_delete_settings.soft_delete_retention_period_in_days == 14


def test_always_on_soft_delete_cannot_be_turned_off(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    assert (
        vault_config(sdk, softDeleteFeatureState="AlwaysON").properties.is_soft_delete_feature_state_editable
        is False
    )
    for state in ("Disabled", "Enabled"):
        with pytest.raises(HttpResponseError) as error:
            vault_config(sdk, softDeleteFeatureState=state)
        refused(error, 400, "UserErrorUnsupportedSoftDeleteStateChange")
    assert settings(sdk).soft_delete_settings.soft_delete_state == "AlwaysON"


def test_a_vault_write_leaves_soft_delete_as_it_was(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """Azure answers 200 and changes nothing (azure-rest-api-specs#34218, azure-sdk-for-python#38347):
    soft delete is changed through backupconfig/vaultconfig."""
    make_vault(arm)
    answer = patch_vault(
        sdk,
        {
            "securitySettings": {
                "softDeleteSettings": {"softDeleteState": "Disabled", "enhancedSecurityState": "Disabled"}
            }
        },
    )
    assert answer.properties.security_settings.soft_delete_settings.soft_delete_state == "Enabled"
    assert settings(sdk).soft_delete_settings.soft_delete_state == "Enabled"


def test_an_unknown_soft_delete_state_is_refused(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    with pytest.raises(HttpResponseError) as error:
        vault_config(sdk, softDeleteFeatureState="Sometimes")
    refused(error, 400, "BMSUserErrorInvalidInput")


# -- immutability ----------------------------------------------------------------------------------
def test_immutability_is_reversible_until_locked(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    assert (
        immutability(sdk, "Unlocked").properties.security_settings.immutability_settings.state == "Unlocked"
    )
    assert (
        immutability(sdk, "Disabled").properties.security_settings.immutability_settings.state == "Disabled"
    )
    immutability(sdk, "Unlocked")
    assert immutability(sdk, "Locked").properties.security_settings.immutability_settings.state == "Locked"
    assert level(sdk) == "Good"


@pytest.mark.parametrize("state", ["Unlocked", "Disabled"])
def test_locked_immutability_cannot_be_undone(arm: Sandbox, sdk: dict[str, Any], state: str) -> None:
    make_vault(arm, securitySettings={"immutabilitySettings": {"state": "Locked"}})
    with pytest.raises(HttpResponseError) as error:
        immutability(sdk, state)
    refused(error, 400, "UserErrorUnsupportedVaultImmutabilityStateChange")
    assert settings(sdk).immutability_settings.state == "Locked"


def test_immutability_is_locked_only_from_unlocked(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    with pytest.raises(HttpResponseError) as error:
        immutability(sdk, "Locked")
    refused(error, 400, "UserErrorUnsupportedVaultImmutabilityStateChange")
    assert settings(sdk).immutability_settings.state == "Disabled"


def test_a_vault_cannot_be_created_locked(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """Captured (azure-cli#27785): creating a vault with immutability Locked is refused."""
    sdk["resources"].resource_groups.create_or_update(RG, {"location": LOCATION})
    with pytest.raises(HttpResponseError) as error:
        sdk["vaults"].vaults.begin_create_or_update(
            RG,
            VAULT,
            {
                "location": LOCATION,
                "sku": {"name": "Standard"},
                "properties": {"securitySettings": {"immutabilitySettings": {"state": "Locked"}}},
            },
        ).result()
    refused(error, 400, "UserErrorUnsupportedVaultImmutabilityStateChange")
    with pytest.raises(ResourceNotFoundError):
        sdk["vaults"].vaults.get(RG, VAULT)


def test_locked_immutability_refuses_a_shorter_soft_delete_retention(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    make_vault(
        arm,
        securitySettings={
            "softDeleteSettings": {"softDeleteRetentionPeriodInDays": 60},
            "immutabilitySettings": {"state": "Locked"},
        },
    )
    with pytest.raises(HttpResponseError) as error:
        vault_config(sdk, softDeleteRetentionPeriodInDays=30)
    refused(error, 400, "UserErrorOperationDeniedOnImmutableItem")
    vault_config(sdk, softDeleteRetentionPeriodInDays=90)  # longer is allowed
    assert settings(sdk).soft_delete_settings.soft_delete_retention_period_in_days == 90


def test_locked_immutability_refuses_turning_soft_delete_off(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm, securitySettings={"immutabilitySettings": {"state": "Locked"}})
    with pytest.raises(HttpResponseError) as error:
        vault_config(sdk, softDeleteFeatureState="Disabled")
    refused(error, 400, "UserErrorOperationDeniedOnImmutableItem")


def test_an_immutable_vault_refuses_deleting_backup_data(arm: Sandbox, sdk: dict[str, Any]) -> None:
    """Restricted operation: 'Stop protection with delete data' (Azure Backup docs); code and message as
    captured (azure-rest-api-specs#32688)."""
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": VAULT,
                "location": LOCATION,
                "securitySettings": {"immutabilitySettings": {"state": "Unlocked"}},
            }
        ],
        policies=[{"vaultId": vault_id(arm), "name": "daily", "properties": v1_policy()}],
        vms=[{"subscriptionId": arm.subscription, "resourceGroup": RG, "name": "vm-1", "location": LOCATION}],
    )
    vm = f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm-1"
    arm.seed(
        protections=[{"vmId": vm, "vaultId": vault_id(arm), "policy": "daily"}],
        jobs=[{"vmId": vm, "outcome": "Completed", "hoursAgo": 2}],
    )
    container = f"iaasvmcontainerv2;{RG};vm-1"
    with pytest.raises(HttpResponseError) as error:
        sdk["backup"].protected_items.delete(
            VAULT, RG, "Azure", f"IaasVMContainer;{container}", f"VM;{container}"
        )
    refused(error, 400, "UserErrorOperationDeniedOnImmutableItem")


# -- multi-user authorization ----------------------------------------------------------------------
def test_a_resource_guard_proxy_enables_multi_user_authorization(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    assert list(sdk["backup"].resource_guard_proxies.get(VAULT, RG)) == []
    answer = sdk["backup"].resource_guard_proxy.put(
        VAULT, RG, "VaultProxy", {"properties": {"resourceGuardResourceId": GUARD}}
    )
    assert answer.properties.resource_guard_resource_id == GUARD
    operations = {d.vault_critical_operation for d in answer.properties.resource_guard_operation_details}
    assert "Microsoft.DataProtection/resourceGuards/disableSoftDeleteRequests" in operations
    listed = list(sdk["backup"].resource_guard_proxies.get(VAULT, RG))
    assert [p.name for p in listed] == ["VaultProxy"]
    got = sdk["backup"].resource_guard_proxy.get(VAULT, RG, "VaultProxy")
    assert got.type == "Microsoft.RecoveryServices/vaults/backupResourceGuardProxies"
    assert settings(sdk).multi_user_authorization == "Enabled"
    assert level(sdk) == "Fair"


def test_an_irreversible_vault_with_a_resource_guard_is_excellent(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm, securitySettings={"immutabilitySettings": {"state": "Locked"}}, resourceGuard=GUARD)
    assert level(sdk) == "Excellent"


def test_a_missing_resource_guard_proxy_is_not_found(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    with pytest.raises(ResourceNotFoundError) as error:
        sdk["backup"].resource_guard_proxy.get(VAULT, RG, "VaultProxy")
    assert error.value.status_code == 404


def test_a_resource_guard_proxy_needs_a_resource_guard_id(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    with pytest.raises(HttpResponseError) as error:
        sdk["backup"].resource_guard_proxy.put(
            VAULT, RG, "VaultProxy", {"properties": {"resourceGuardResourceId": "not-a-guard"}}
        )
    refused(error, 400, "BMSUserErrorInvalidInput")


# -- network access, cross-region restore --------------------------------------------------------
def test_public_network_access_is_changed_on_the_vault(arm: Sandbox, sdk: dict[str, Any]) -> None:
    make_vault(arm)
    assert (
        patch_vault(sdk, {"publicNetworkAccess": "Disabled"}).properties.public_network_access == "Disabled"
    )
    with pytest.raises(HttpResponseError) as error:
        patch_vault(sdk, {"publicNetworkAccess": "Sometimes"})
    refused(error, 400, "BMSUserErrorInvalidInput")


def test_cross_region_restore_is_read_from_the_vault_and_its_storage_config(
    arm: Sandbox, sdk: dict[str, Any]
) -> None:
    make_vault(arm)
    patch_vault(sdk, {"redundancySettings": {"crossRegionRestore": "Enabled"}})
    vault = sdk["vaults"].vaults.get(RG, VAULT)
    assert vault.properties.redundancy_settings.cross_region_restore == "Enabled"
    config = sdk["backup"].backup_resource_storage_configs_non_crr.get(VAULT, RG)
    assert config.properties.cross_region_restore_flag is True
