"""The vault security posture rules of armsim/vaults/security.py, without a server: which soft delete
and immutability transitions Azure takes, which it refuses and with what, and the security level
Azure Business Continuity Center derives."""

from __future__ import annotations

from typing import Any

import pytest

from armsim.core.errors import ArmError
from armsim.vaults import security as posture


def fresh(**changes: Any) -> dict[str, Any]:
    return {**posture.DEFAULT_SECURITY, **changes}


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("Disabled", "Unlocked", True),
        ("Unlocked", "Disabled", True),
        ("Unlocked", "Locked", True),
        ("Disabled", "Locked", False),  # Locked only from Unlocked
        ("Locked", "Unlocked", False),  # irreversible
        ("Locked", "Disabled", False),
        ("Locked", "Locked", True),  # no change
    ],
)
def test_immutability_transitions(old: str, new: str, allowed: bool) -> None:
    security = fresh(immutability=old)
    if allowed:
        posture.change_immutability(security, new)
        assert security["immutability"] == new
    else:
        with pytest.raises(ArmError) as error:
            posture.change_immutability(security, new)
        assert (error.value.status, error.value.code) == (400, posture.IMMUTABILITY_CODE)
        assert security["immutability"] == old


def test_immutability_states_are_taken_without_case() -> None:
    security = fresh()
    posture.change_immutability(security, "unlocked")
    assert security["immutability"] == "Unlocked"


def test_a_new_vault_cannot_start_locked() -> None:
    with pytest.raises(ArmError) as error:
        posture.initial({"immutabilitySettings": {"state": "Locked"}})
    assert error.value.code == posture.IMMUTABILITY_CODE


@pytest.mark.parametrize("days", [14, 30, 180])
def test_retention_in_range_is_taken(days: int) -> None:
    security = fresh()
    posture.change_soft_delete(security, days=days)
    assert security["retentionDays"] == days


@pytest.mark.parametrize("days", [0, 13, 181, True, "30"])
def test_retention_out_of_range_or_not_a_number_is_refused(days: Any) -> None:
    with pytest.raises(ArmError) as error:
        posture.change_soft_delete(fresh(), days=days)
    assert error.value.code == "BMSUserErrorInvalidInput"


def test_always_on_is_irreversible() -> None:
    security = fresh()
    posture.change_soft_delete(security, state="AlwaysON")
    posture.change_soft_delete(security, state="alwayson", days=60)  # staying always-on is fine
    for state in ("Enabled", "Disabled"):
        with pytest.raises(ArmError) as error:
            posture.change_soft_delete(security, state=state)
        assert error.value.code == posture.ALWAYS_ON_CODE
    assert (security["softDeleteState"], security["retentionDays"]) == ("AlwaysON", 60)


@pytest.mark.parametrize(("state", "days"), [(None, 20), ("Disabled", None)])
def test_locked_immutability_refuses_a_weaker_soft_delete(state: str | None, days: int | None) -> None:
    security = fresh(immutability="Locked", retentionDays=30)
    with pytest.raises(ArmError) as error:
        posture.change_soft_delete(security, state=state, days=days)
    assert error.value.code == posture.IMMUTABLE_DENIED_CODE
    assert security == fresh(immutability="Locked", retentionDays=30)


def test_unlocked_immutability_lets_soft_delete_change() -> None:
    security = fresh(immutability="Unlocked", retentionDays=30)
    posture.change_soft_delete(security, state="Disabled", days=14)
    assert (security["softDeleteState"], security["retentionDays"]) == ("Disabled", 14)


@pytest.mark.parametrize(
    ("changes", "mua", "level"),
    [
        ({}, False, "Poor"),
        ({"softDeleteState": "Disabled"}, False, "Poor"),
        ({"immutability": "Unlocked"}, False, "Poor"),
        ({}, True, "Fair"),
        ({"softDeleteState": "AlwaysON"}, False, "Good"),
        ({"immutability": "Locked"}, False, "Good"),
        ({"immutability": "Locked"}, True, "Excellent"),
        ({"softDeleteState": "AlwaysON"}, True, "Excellent"),
    ],
)
def test_security_level(changes: dict[str, Any], mua: bool, level: str) -> None:
    assert posture.level(fresh(**changes), mua) == level


def test_views_carry_the_posture() -> None:
    security = fresh(softDeleteState="AlwaysON", retentionDays=45, immutability="Unlocked")
    view = posture.settings_view(security, True, {"sourceScanConfiguration": {"state": "Enabled"}})
    assert view == {
        "sourceScanConfiguration": {"state": "Enabled"},
        "softDeleteSettings": {
            "softDeleteState": "AlwaysON",
            "softDeleteRetentionPeriodInDays": 45,
            "enhancedSecurityState": "Enabled",
        },
        "immutabilitySettings": {"state": "Unlocked"},
        "multiUserAuthorization": "Enabled",
    }
    config = posture.vault_config_view(
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/v", security
    )
    assert config["properties"] == {
        "enhancedSecurityState": "Enabled",
        "softDeleteFeatureState": "AlwaysON",
        "isSoftDeleteFeatureStateEditable": False,
    }
