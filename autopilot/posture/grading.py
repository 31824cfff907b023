"""Vault security posture: what the rules ask of every vault (the `posture` section), how a vault is
graded, and which controls it lacks, each with its remedy. Pure: no Azure calls (the sweep's side is
autopilot/posture/vaults.py).

The grade is Azure Business Continuity Center's security level of a vault
(https://learn.microsoft.com/azure/business-continuity-center/security-levels-concept):

- Excellent: an irreversible protection (immutability Locked, or soft delete always-on) and
  multi-user authorization (a Resource Guard associated with the vault);
- Good: the irreversible protection alone;
- Fair: multi-user authorization alone;
- Poor: neither. Reversible settings (soft delete Enabled, immutability Unlocked) count for nothing:
  Azure's own GETVault example shows soft delete Enabled with bcdrSecurityLevel 'Poor'.

The autopilot may turn soft delete on, lengthen its retention and make immutability Unlocked, where
the rules allow it. It never locks immutability nor makes soft delete always-on: both are
irreversible, a person's decision; the finding says how.
"""

from __future__ import annotations

from dataclasses import dataclass

from autopilot.rules.posture import (
    CONTROLS,
    LEVELS,
    PostureRules,
)

# The findings of the posture check: kinds, their events, and what the report says of each.
LEVEL_KIND = "vault-security-level"
SOFT_DELETE_KIND = "vault-soft-delete-off"
CONTROL_KIND = "vault-security-control"


@dataclass(frozen=True)
class VaultPosture:
    """A vault's security settings as Azure answers them (autopilot/posture/vaults.py reads them)."""

    vault_id: str
    soft_delete: str  # Enabled, Disabled, AlwaysON ("" unknown)
    retention_days: int | None
    enhanced_security: str
    immutability: str  # Disabled, Unlocked, Locked
    multi_user_authorization: bool
    resource_guards: tuple[str, ...]
    cross_region_restore: bool
    public_network_access: str  # Enabled, Disabled
    redundancy: str  # GeoRedundant, LocallyRedundant, ZoneRedundant
    azure_level: str = ""  # bcdrSecurityLevel as Azure computes it

    @property
    def soft_delete_on(self) -> bool:
        return self.soft_delete.lower() in ("enabled", "alwayson")

    @property
    def irreversible(self) -> bool:
        return self.immutability.lower() == "locked" or self.soft_delete.lower() == "alwayson"


@dataclass(frozen=True)
class Gap:
    """A control the rules require that the vault lacks: its name, why it matters, what to do, and the
    fix the sweep may make for it (empty: a person acts)."""

    control: str
    reason: str
    remedy: str
    fix: str = ""


def grade(posture: VaultPosture) -> str:
    """The vault's security level, by Business Continuity Center's criteria (see the module's doc)."""
    if posture.irreversible and posture.multi_user_authorization:
        return "Excellent"
    if posture.irreversible:
        return "Good"
    return "Fair" if posture.multi_user_authorization else "Poor"


def below(level: str, minimum: str) -> bool:
    return LEVELS.index(level) < LEVELS.index(minimum)


def _names(vault_id: str) -> tuple[str, str]:
    parts = vault_id.split("/")
    group = parts[4] if len(parts) > 4 else "<resource-group>"
    return group, parts[-1]


def _cli(vault_id: str, command: str) -> str:
    group, name = _names(vault_id)
    return f"az backup vault {command} --resource-group {group} --name {name}"


def lock_remedy(posture: VaultPosture) -> str:
    """How a person locks immutability (the sweep never does)."""
    first = (
        ""
        if posture.immutability.lower() == "unlocked"
        else f"make it Unlocked first ({_cli(posture.vault_id, 'update')} --immutability-state Unlocked), then "
    )
    return (
        "Locking is irreversible and a person's decision: check that the policies' retention is what you "
        f"want (a Locked vault never lets it be shortened), {first}lock it in the portal (vault > Properties > "
        f"Immutable vault > Lock) or with {_cli(posture.vault_id, 'update')} --immutability-state Locked."
    )


def always_on_remedy(posture: VaultPosture) -> str:
    return (
        "Always-on soft delete is irreversible and a person's decision: in the portal (vault > Properties > "
        "Security settings > Soft delete > Enable always-on) or with "
        f"{_cli(posture.vault_id, 'backup-properties set')} --soft-delete-feature-state AlwaysON."
    )


def mua_remedy(posture: VaultPosture) -> str:
    return (
        "Associate a Resource Guard owned by another team (ideally in another subscription or tenant, in the "
        f"vault's region): {_cli(posture.vault_id, 'resource-guard-mapping update')} --resource-guard-id "
        "<guard id>; the autopilot never does it (multi-user authorization is meant to need a second person)."
    )


def level_remedy(posture: VaultPosture, minimum: str) -> str:
    """What reaches the minimum level from where the vault is."""
    steps = []
    if minimum in ("Good", "Excellent") and not posture.irreversible:
        steps.append(
            "make a protection irreversible: lock immutability ("
            + lock_remedy(posture)
            + ") or make soft delete always-on ("
            + always_on_remedy(posture)
            + ")"
        )
    if minimum in ("Fair", "Excellent") and not posture.multi_user_authorization:
        steps.append("enable multi-user authorization (" + mua_remedy(posture) + ")")
    return "To reach " + minimum + ": " + "; and ".join(steps) + "."


def gaps(rules: PostureRules, posture: VaultPosture, expected_redundancy: str = "") -> list[Gap]:
    """Every control the rules require that the vault lacks, in the order of CONTROLS (then retention and
    redundancy), each with its remedy and, where the rules allow it, the sweep's fix."""
    found = [gap for control in _required(rules) if (gap := _gap(rules, posture, control)) is not None]
    days = posture.retention_days
    if posture.soft_delete_on and days is not None and days < rules.soft_delete_retention_days:
        found.append(
            Gap(
                "softDeleteRetention",
                f"soft delete keeps deleted backup data {days} days; the rules want at least "
                f"{rules.soft_delete_retention_days}",
                f"Lengthen it: {_cli(posture.vault_id, 'backup-properties set')} --soft-delete-duration "
                f"{rules.soft_delete_retention_days} (days beyond 14 are billed).",
                "softDeleteRetention" if "softDeleteRetention" in rules.fix else "",
            )
        )
    accepted = rules.storage_redundancy
    if accepted and posture.redundancy and posture.redundancy not in accepted:
        found.append(
            Gap(
                "storageRedundancy",
                f"the vault stores backups {posture.redundancy}; the rules accept {', '.join(accepted)}"
                + (f" (this vault's entry says {expected_redundancy})" if expected_redundancy else ""),
                "Azure locks a vault's redundancy once it holds items: create a vault with an accepted "
                "redundancy and move protection to it, or change the rules.",
            )
        )
    return found


def _required(rules: PostureRules) -> list[str]:
    """The required controls with what they imply (Locked needs immutability on; always-on needs soft
    delete on), in the order of CONTROLS: the reversible step is a gap of its own, which the sweep may
    fix while the irreversible one stays a person's."""
    wanted = set(rules.require)
    if "immutabilityLocked" in wanted:
        wanted.add("immutability")
    if "softDeleteAlwaysOn" in wanted:
        wanted.add("softDelete")
    return [control for control in CONTROLS if control in wanted]


def _gap(rules: PostureRules, posture: VaultPosture, control: str) -> Gap | None:
    state = posture.soft_delete or "unknown"
    if control == "softDelete" and not posture.soft_delete_on:
        return Gap(
            control,
            f"soft delete is {state}: the data of a deleted backup item is lost at once (no 14-day undelete)",
            f"Turn it on: {_cli(posture.vault_id, 'backup-properties set')} --soft-delete-feature-state Enable "
            f"--soft-delete-duration {rules.soft_delete_retention_days}, or let the sweep do it (posture.fix: "
            "softDelete).",
            "softDelete" if "softDelete" in rules.fix else "",
        )
    if control == "softDeleteAlwaysOn" and posture.soft_delete.lower() != "alwayson":
        return Gap(control, f"soft delete is {state}, not always-on", always_on_remedy(posture))
    if control == "immutability" and posture.immutability.lower() not in ("unlocked", "locked"):
        return Gap(
            control,
            f"immutability is {posture.immutability or 'unknown'}: recovery points can be deleted before they "
            "expire and retention can be shortened",
            f"Enable it: {_cli(posture.vault_id, 'update')} --immutability-state Unlocked, or let the sweep do "
            "it (posture.fix: immutability). The sweep never locks it.",
            "immutability" if "immutability" in rules.fix else "",
        )
    if control == "immutabilityLocked" and posture.immutability.lower() != "locked":
        return Gap(
            control, f"immutability is {posture.immutability or 'unknown'}, not Locked", lock_remedy(posture)
        )
    if control == "multiUserAuthorization" and not posture.multi_user_authorization:
        return Gap(
            control,
            "no Resource Guard protects the vault's critical operations (multi-user authorization is off)",
            mua_remedy(posture),
        )
    if control == "crossRegionRestore" and not posture.cross_region_restore:
        geo = posture.redundancy == "GeoRedundant"
        return Gap(
            control,
            "cross-region restore is off: the backups cannot be restored in the paired region",
            f"Turn it on: {_cli(posture.vault_id, 'backup-properties set')} --cross-region-restore-flag True."
            if geo
            else f"It needs geo-redundant storage and the vault is {posture.redundancy}: Azure locks the "
            "redundancy once the vault holds items, so use a geo-redundant vault.",
        )
    if control == "publicNetworkAccessDisabled" and posture.public_network_access.lower() != "disabled":
        return Gap(
            control,
            f"public network access is {posture.public_network_access or 'Enabled'}",
            "Create private endpoints for the vault, then "
            f"{_cli(posture.vault_id, 'update')} --public-network-access Disable.",
        )
    return None


def new_vault_settings(rules: PostureRules | None) -> dict[str, object]:
    """What the Bicep gives a new vault (infra/modules/vaults.bicep, through rules.generated.json): soft
    delete on with the rules' retention, immutability Unlocked when the rules require `immutability`
    (left out otherwise: a redeployment must never try to undo a person's lock, and Azure refuses a
    vault created Locked), cross-region restore and closed public access when required. Never Locked,
    never always-on; multi-user authorization needs a Resource Guard, which is a person's."""
    rules = rules or PostureRules(require=())
    return {
        "softDeleteState": "Enabled",
        "softDeleteRetentionPeriodInDays": rules.soft_delete_retention_days,
        "immutabilityState": "Unlocked" if "immutability" in rules.require else "",
        "crossRegionRestore": "Enabled" if "crossRegionRestore" in rules.require else "Disabled",
        "publicNetworkAccess": "Disabled" if "publicNetworkAccessDisabled" in rules.require else "Enabled",
    }
