"""The posture check's Azure calls (autopilot/posture/vaults.py) through the one client factory and the
real SDK clients over HTTPS against armsim, both modes: what it reads of a vault, the two fixes it
may make and the requests each costs, and that it never writes a lock."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from autopilot.azure.clients import Clients
from autopilot.posture.grading import grade
from autopilot.posture.vaults import read_posture, set_soft_delete, unlock_immutability
from autopilot.rules import VaultSpec
from autopilot.settings import Settings
from tests.armsim_support import Sandbox

RG = "rg-posture"
GUARD = (
    "/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg-guard/providers/"
    "Microsoft.DataProtection/resourceGuards/guard-1"
)


def vault(arm: Sandbox, name: str = "rsv-posture", **spec: Any) -> VaultSpec:
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": name,
                "location": "westeurope",
                **spec,
            }
        ]
    )
    return VaultSpec(arm.subscription, RG, name, "westeurope")


@pytest.fixture
def clients(arm: Sandbox) -> Clients:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": arm.url, "AUTOPILOT_RETRY_TOTAL": "0"})
    return Clients(settings, arm.credential())


def requests_by_operation(arm: Sandbox) -> dict[str, int]:
    return dict(arm.stats()["byOperation"])


def test_a_new_vault_is_read_in_two_requests(arm: Sandbox, clients: Clients) -> None:
    spec = vault(arm)
    arm.reset_stats()
    posture, note = read_posture(clients, spec)
    assert note == ""
    assert (posture.soft_delete, posture.retention_days, posture.immutability) == ("Enabled", 14, "Disabled")
    assert (posture.multi_user_authorization, posture.resource_guards) == (False, ())
    assert (posture.redundancy, posture.cross_region_restore, posture.public_network_access) == (
        "GeoRedundant",
        False,
        "Enabled",
    )
    assert grade(posture) == posture.azure_level == "Poor"
    assert requests_by_operation(arm) == {"Vaults_Get": 1, "ResourceGuardProxies_Get": 1}


def test_a_guarded_locked_vault_is_excellent_and_names_its_guard(arm: Sandbox, clients: Clients) -> None:
    spec = vault(
        arm,
        securitySettings={
            "softDeleteSettings": {"softDeleteState": "Enabled", "softDeleteRetentionPeriodInDays": 60},
            "immutabilitySettings": {"state": "Locked"},
        },
        resourceGuard=GUARD,
        redundancy="LocallyRedundant",
    )
    posture, _ = read_posture(clients, spec)
    assert posture.resource_guards == (GUARD,) and posture.multi_user_authorization
    assert (posture.immutability, posture.retention_days, posture.redundancy) == (
        "Locked",
        60,
        "LocallyRedundant",
    )
    assert grade(posture) == posture.azure_level == "Excellent"


def test_soft_delete_is_turned_on_with_the_rules_retention(arm: Sandbox, clients: Clients) -> None:
    spec = vault(arm, securitySettings={"softDeleteSettings": {"softDeleteState": "Disabled"}})
    before, _ = read_posture(clients, spec)
    assert before.soft_delete == "Disabled"
    arm.reset_stats()
    set_soft_delete(clients, spec, before, 30)
    assert requests_by_operation(arm) == {"BackupResourceVaultConfigs_Update": 1}
    after, _ = read_posture(clients, spec)
    assert (after.soft_delete, after.retention_days) == ("Enabled", 30)


def test_a_longer_retention_and_always_on_are_kept(arm: Sandbox, clients: Clients) -> None:
    spec = vault(
        arm,
        securitySettings={
            "softDeleteSettings": {"softDeleteState": "AlwaysON", "softDeleteRetentionPeriodInDays": 90}
        },
    )
    before, _ = read_posture(clients, spec)
    set_soft_delete(clients, spec, before, 30)  # armsim refuses leaving always-on: this must not try
    after, _ = read_posture(clients, spec)
    assert (after.soft_delete, after.retention_days) == ("AlwaysON", 90)


def test_immutability_is_made_unlocked_never_locked(arm: Sandbox, clients: Clients) -> None:
    spec = vault(arm)
    arm.reset_stats()
    unlock_immutability(clients, spec)
    assert requests_by_operation(arm) == {"Vaults_Update": 1}
    posture, _ = read_posture(clients, spec)
    assert posture.immutability == "Unlocked" and grade(posture) == "Poor"


def test_unlocking_a_locked_vault_is_refused_by_azure(arm: Sandbox, clients: Clients) -> None:
    """Locked is never left (Azure's code, captured): the sweep never asks this, as gaps() gives no
    immutability fix for a Locked vault; here the refusal reaches the caller as the SDK's error."""
    spec = vault(arm, securitySettings={"immutabilitySettings": {"state": "Locked"}})
    with pytest.raises(HttpResponseError) as error:
        unlock_immutability(clients, spec)
    assert error.value.error is not None
    assert error.value.error.code == "UserErrorUnsupportedVaultImmutabilityStateChange"


def test_unreadable_resource_guards_fall_back_to_the_vaults_word(arm: Sandbox, clients: Clients) -> None:
    spec = vault(arm, resourceGuard=GUARD)
    arm.faults(rate=1.0, kinds={"403": 1}, operations=["ResourceGuardProxies_Get"])
    try:
        posture, note = read_posture(clients, spec)
    finally:
        arm.faults(rate=0.0)
    assert "AuthorizationFailed" in note
    assert posture.multi_user_authorization and posture.resource_guards == ()
