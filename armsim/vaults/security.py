"""A vault's security posture: soft delete, immutability, multi-user authorization and the security
level Azure derives from them, with the transitions Azure refuses.

Kept per vault as {"softDeleteState", "retentionDays", "enhancedSecurityState", "immutability"}; the
vault's `securitySettings` and the Backup service's `backupconfig/vaultconfig` are two views of it.
Evidence and confidence per rule: armsim/SUPPORTED_OPERATIONS.md, "Vault security posture".
"""

from __future__ import annotations

from typing import Any

from armsim.core.errors import BadRequest, InvalidBackupInput

SOFT_DELETE_STATES = ("Enabled", "Disabled", "AlwaysON")
ENHANCED_SECURITY_STATES = ("Enabled", "Disabled", "AlwaysON")
IMMUTABILITY_STATES = ("Disabled", "Unlocked", "Locked")
RETENTION_DAYS = (14, 180)  # "The retention range value is between 14 days to 180 days" (Azure Backup docs)
# A new vault: soft delete on for 14 days, immutability off (GETVault example, Azure's defaults).
DEFAULT_SECURITY: dict[str, Any] = {
    "softDeleteState": "Enabled",
    "retentionDays": 14,
    "enhancedSecurityState": "Enabled",
    "immutability": "Disabled",
}

# Captured verbatim (az backup vault create --immutability-state Locked, azure-cli#27785 and
# azure-rest-api-specs#26598, 2023): Azure's answer to a vault made Locked without passing Unlocked.
IMMUTABILITY_CODE = "UserErrorUnsupportedVaultImmutabilityStateChange"
IMMUTABILITY_MESSAGE = (
    "The immutable vault property for this vault is locked, hence, this setting cannot be disabled. The "
    "vault has its immutable vault property enabled and locked, and it can no longer be reverted to a "
    "non-immutable vault. Refer to the documentation to learn more: https://aka.ms/AB-ImmutableVaults-States "
)
# Captured verbatim (azure-rest-api-specs#32688, azure-powershell#24298; "Bakcup" as Azure spells it):
# an operation an immutable vault does not allow.
IMMUTABLE_DENIED_CODE = "UserErrorOperationDeniedOnImmutableItem"
IMMUTABLE_DENIED_MESSAGE = (
    "The Vault and Bakcup Item is in Immutable state where destructive operations are not supported. The "
    "Vault and Backup Item is immutable, hence operation is denied. Refer to the documentation to learn "
    "more: https://aka.ms/AB-ImmutableVaults-States "
)
# Chosen (no capture found): by analogy with the immutability code above.
ALWAYS_ON_CODE = "UserErrorUnsupportedSoftDeleteStateChange"


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    for option in allowed:
        if isinstance(value, str) and value.lower() == option.lower():
            return option
    raise InvalidBackupInput(
        f"Input provided for the call is invalid. '{value}' is not a valid {name}; use one of "
        f"{', '.join(allowed)}."
    )


def initial(settings: Any) -> dict[str, Any]:
    """The posture of a new vault from its PUT's `securitySettings` (Azure's defaults where absent). A
    new vault cannot start Locked: it must be made Unlocked first (captured)."""
    security = dict(DEFAULT_SECURITY)
    settings = settings if isinstance(settings, dict) else {}
    soft = settings.get("softDeleteSettings")
    if isinstance(soft, dict):
        change_soft_delete(
            security,
            state=soft.get("softDeleteState"),
            days=soft.get("softDeleteRetentionPeriodInDays"),
            enhanced=soft.get("enhancedSecurityState"),
        )
    immutability = settings.get("immutabilitySettings")
    if isinstance(immutability, dict) and immutability.get("state") is not None:
        change_immutability(security, immutability["state"])
    return security


def change_soft_delete(
    security: dict[str, Any], *, state: Any = None, days: Any = None, enhanced: Any = None
) -> None:
    """Soft delete's state, retention and enhanced security, as Azure takes them: always-on is
    irreversible; the retention is 14 to 180 days; under Locked immutability soft delete may not be
    weakened (chosen: never kinder than Azure)."""
    new_state = (
        security["softDeleteState"]
        if state is None
        else _choice(state, SOFT_DELETE_STATES, "soft delete state")
    )
    new_enhanced = (
        security["enhancedSecurityState"]
        if enhanced is None
        else _choice(enhanced, ENHANCED_SECURITY_STATES, "enhanced security state")
    )
    new_days = security["retentionDays"]
    if days is not None:
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not RETENTION_DAYS[0] <= days <= RETENTION_DAYS[1]
        ):
            raise InvalidBackupInput(
                f"Input provided for the call is invalid. Soft delete retention must be between {RETENTION_DAYS[0]} "
                f"and {RETENTION_DAYS[1]} days (asked: {days})."
            )
        new_days = days
    if security["softDeleteState"] == "AlwaysON" and new_state != "AlwaysON":
        raise BadRequest(
            ALWAYS_ON_CODE,
            "Soft delete is always-on for this vault and cannot be disabled or made reversible: the always-on "
            "state is irreversible.",
        )
    weakened = new_days < security["retentionDays"] or (
        new_state == "Disabled" and security["softDeleteState"] != "Disabled"
    )
    if security["immutability"] == "Locked" and weakened:
        raise BadRequest(IMMUTABLE_DENIED_CODE, IMMUTABLE_DENIED_MESSAGE)
    security.update(softDeleteState=new_state, retentionDays=new_days, enhancedSecurityState=new_enhanced)


def change_immutability(security: dict[str, Any], state: Any) -> None:
    """Disabled and Unlocked are reversible; Locked is reached from Unlocked only and never left."""
    new = _choice(state, IMMUTABILITY_STATES, "immutability state")
    old = security["immutability"]
    if new == old:
        return
    if old == "Locked" or (new == "Locked" and old != "Unlocked"):
        raise BadRequest(IMMUTABILITY_CODE, IMMUTABILITY_MESSAGE)
    security["immutability"] = new


def immutable(security: dict[str, Any]) -> bool:
    """Immutability is on (Unlocked or Locked): operations that lose recovery points are refused."""
    return security["immutability"] in ("Unlocked", "Locked")


def soft_delete_on(security: dict[str, Any]) -> bool:
    return security["softDeleteState"] != "Disabled"


def level(security: dict[str, Any], mua: bool) -> str:
    """bcdrSecurityLevel as Azure Business Continuity Center defines it: Excellent with an irreversible
    protection (immutability Locked or soft delete always-on) and multi-user authorization; Good with the
    irreversible protection alone; Fair with multi-user authorization alone; Poor otherwise (reversible
    settings count for nothing: GETVault shows soft delete Enabled and 'Poor')."""
    irreversible = security["immutability"] == "Locked" or security["softDeleteState"] == "AlwaysON"
    if irreversible and mua:
        return "Excellent"
    if irreversible:
        return "Good"
    return "Fair" if mua else "Poor"


def settings_view(security: dict[str, Any], mua: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The vault's `securitySettings` (GETVault's shape); `extra` keeps what else a PUT gave (e.g.
    sourceScanConfiguration), as written."""
    return {
        **(extra or {}),
        "softDeleteSettings": {
            "softDeleteState": security["softDeleteState"],
            "softDeleteRetentionPeriodInDays": security["retentionDays"],
            "enhancedSecurityState": security["enhancedSecurityState"],
        },
        "immutabilitySettings": {"state": security["immutability"]},
        "multiUserAuthorization": "Enabled" if mua else "Disabled",
    }


def vault_config_view(vault_id: str, security: dict[str, Any]) -> dict[str, Any]:
    """backupconfig/vaultconfig as recorded (test_backup_softdelete #108, test_backup_vault #6): the soft
    delete feature state, enhanced security, and isSoftDeleteFeatureStateEditable (recorded true; false
    once always-on, armsim's reading of a flag the SDK calls 'no longer in use')."""
    return {
        "id": f"{vault_id}/backupconfig/vaultconfig",
        "name": "vaultconfig",
        "type": "Microsoft.RecoveryServices/vaults/backupconfig",
        "properties": {
            "enhancedSecurityState": security["enhancedSecurityState"],
            "softDeleteFeatureState": security["softDeleteState"],
            "isSoftDeleteFeatureStateEditable": security["softDeleteState"] != "AlwaysON",
        },
    }
