"""The sweep's check of each vault's security posture (the rules' `posture` section).

Per vault: one GET of the vault (soft delete, immutability, multi-user authorization, cross-region
restore, public network access, redundancy and Azure's own bcdrSecurityLevel) and one list of its
Resource Guard proxies (which guard protects it); the Backup service's vault config only when the
vault's answer lacks soft delete. Then the grade and the gaps (autopilot/posture/grading.py), and the fixes
the rules allow: soft delete on and its retention (backupconfig/vaultconfig PATCH), immutability
Unlocked (vault PATCH). Never a lock, never always-on. Each change is audited and announced; Azure's
refusal of one is a finding with Azure's code and message, audited and announced too, and the sweep
goes on. A dry run reads and changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, HttpResponseError

from autopilot.azure.failures import classify_failure, error_code
from autopilot.names import text
from autopilot.posture.grading import (
    CONTROL_KIND,
    LEVEL_KIND,
    SOFT_DELETE_KIND,
    Gap,
    PostureRules,
    VaultPosture,
    below,
    gaps,
    grade,
    level_remedy,
)

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.azure.clients import Clients
    from autopilot.kernel.findings import Finding
    from autopilot.rules import VaultSpec

log = logging.getLogger("autopilot.posture.grading")

POSTURE_CHANGED = "BackupAutopilot.Vault.PostureChanged"
POSTURE_FIX_FAILED = "BackupAutopilot.Vault.PostureFixFailed"
ROLE_REMEDY = {
    "read": "Grant the app's identity Backup Contributor on the vault's resource group (vault reads) and the "
    "custom role 'Backup Autopilot VM protection' on its subscription (Resource Guard proxies: "
    "Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read; docs/DEPLOY.md).",
    "write": "Grant the app's identity Backup Contributor on the vault's resource group: it holds "
    "Microsoft.RecoveryServices/Vaults/write and Microsoft.RecoveryServices/Vaults/backupconfig/* "
    "(docs/DEPLOY.md).",
}


# -- reading ------------------------------------------------------------------------------------
def read_posture(clients: Clients, vault: VaultSpec) -> tuple[VaultPosture, str]:
    """The vault's posture, and a note of what could not be read (empty when all was read)."""
    found = clients.vaults(vault.subscription_id).vaults.get(vault.resource_group, vault.name)
    props = found.properties
    security = props.security_settings if props is not None else None
    soft = security.soft_delete_settings if security is not None else None
    immutability = security.immutability_settings if security is not None else None
    redundancy = props.redundancy_settings if props is not None else None
    state, days, enhanced = (
        (
            text(soft.soft_delete_state),
            soft.soft_delete_retention_period_in_days,
            text(soft.enhanced_security_state),
        )
        if soft is not None and soft.soft_delete_state
        else _vault_config(clients, vault)
    )
    mua = text(security.multi_user_authorization if security is not None else None).lower() == "enabled"
    note = ""
    try:
        proxies = clients.backup(vault.subscription_id).resource_guard_proxies.get(
            vault.name, vault.resource_group
        )
        guards = tuple(
            text(p.properties.resource_guard_resource_id) for p in proxies if p.properties is not None
        )
        mua = mua or bool(guards)
    except HttpResponseError as error:
        guards = ()
        note = f"its Resource Guard proxies could not be read ({error_code(error)})"
    return (
        VaultPosture(
            vault_id=vault.resource_id,
            soft_delete=state,
            retention_days=days,
            enhanced_security=enhanced,
            immutability=text(immutability.state if immutability is not None else None) or "Disabled",
            multi_user_authorization=mua,
            resource_guards=guards,
            cross_region_restore=text(
                redundancy.cross_region_restore if redundancy is not None else None
            ).lower()
            == "enabled",
            public_network_access=text(props.public_network_access if props is not None else None)
            or "Enabled",
            redundancy=text(redundancy.standard_tier_storage_redundancy if redundancy is not None else None),
            azure_level=text(props.bcdr_security_level if props is not None else None),
        ),
        note,
    )


def _vault_config(clients: Clients, vault: VaultSpec) -> tuple[str, int | None, str]:
    """Soft delete from the Backup service (backupconfig/vaultconfig), for a vault whose GET lacks it."""
    config = clients.backup(vault.subscription_id).backup_resource_vault_configs.get(
        vault.name, vault.resource_group
    )
    props = config.properties
    if props is None:
        return "", None, ""
    return (
        text(props.soft_delete_feature_state),
        props.soft_delete_retention_period_in_days,
        text(props.enhanced_security_state),
    )


# -- fixing -------------------------------------------------------------------------------------
def set_soft_delete(clients: Clients, vault: VaultSpec, posture: VaultPosture, days: int) -> None:
    """Soft delete on (Enabled; always-on stays as it is) with at least `days` of retention, through the
    Backup service's vault config (a vault PATCH leaves soft delete as it was: azure-rest-api-specs#34218)."""
    from azure.mgmt.recoveryservicesbackup.models import BackupResourceVaultConfigResource

    properties: dict[str, Any] = {
        "softDeleteFeatureState": "AlwaysON" if posture.soft_delete.lower() == "alwayson" else "Enabled",
        "softDeleteRetentionPeriodInDays": max(days, posture.retention_days or 0),
    }
    if posture.enhanced_security:
        properties["enhancedSecurityState"] = posture.enhanced_security
    clients.backup(vault.subscription_id).backup_resource_vault_configs.update(
        vault.name, vault.resource_group, BackupResourceVaultConfigResource({"properties": properties})
    )


def unlock_immutability(clients: Clients, vault: VaultSpec) -> None:
    """Immutability Unlocked (reversible). The one immutability state this code ever writes."""
    from azure.mgmt.recoveryservices.models import PatchVault

    body = PatchVault({"properties": {"securitySettings": {"immutabilitySettings": {"state": "Unlocked"}}}})
    clients.vaults(vault.subscription_id).vaults.begin_update(vault.resource_group, vault.name, body).result()


# -- the check ----------------------------------------------------------------------------------
def check_vault(
    autopilot: Autopilot, rules: PostureRules, vault: VaultSpec, dry_run: bool
) -> tuple[list[Finding], dict[str, Any]]:
    """The vault's posture findings and its row in the report's posture table."""
    try:
        posture, note = read_posture(autopilot.clients, vault)
    except AzureError as error:
        return [_unreadable(vault, error)], _row(vault, None, rules, [], f"unreadable: {error_code(error)}")
    findings: list[Finding] = []
    found = gaps(rules, posture, vault.storage_redundancy)
    fixes_done: list[str] = []
    for gap in found:
        action, reason, remedy = "reported", gap.reason, gap.remedy
        if gap.fix:
            action, reason, remedy = _fix(autopilot, rules, vault, posture, gap, dry_run)
            if action == "fixed":
                fixes_done.append(gap.fix)
        findings.append(_finding(vault, gap.control, reason, remedy, action))
    level = grade(posture)
    if below(level, rules.minimum_level):
        findings.append(
            _finding(
                vault,
                "level",
                f"vault {vault.name} is at security level {level} (Business Continuity Center's criteria"
                f"{'; Azure says ' + posture.azure_level if posture.azure_level and posture.azure_level != level else ''});"
                f" the rules want at least {rules.minimum_level}",
                level_remedy(posture, rules.minimum_level),
                "reported",
            )
        )
    if note:
        findings.append(_unreadable(vault, note))
    return findings, _row(vault, posture, rules, found, note, fixes_done)


def _fix(
    autopilot: Autopilot,
    rules: PostureRules,
    vault: VaultSpec,
    posture: VaultPosture,
    gap: Gap,
    dry_run: bool,
) -> tuple[str, str, str]:
    change = (
        "make immutability Unlocked"
        if gap.fix == "immutability"
        else f"turn soft delete on with {max(rules.soft_delete_retention_days, posture.retention_days or 0)} days of retention"
        if gap.fix == "softDelete"
        else f"lengthen soft delete's retention to {rules.soft_delete_retention_days} days"
    )
    if dry_run:
        return "would-fix", f"{gap.reason}; the sweep would {change}", gap.remedy
    try:
        if gap.fix == "immutability":
            unlock_immutability(autopilot.clients, vault)
        else:
            set_soft_delete(autopilot.clients, vault, posture, rules.soft_delete_retention_days)
    except AzureError as error:
        failure = classify_failure(error)
        message = error.message if isinstance(error, HttpResponseError) else str(error)
        outcome = f"refused: {failure.code}: {message}"[:1000]
        autopilot.audit.record(
            vm_id=vault.resource_id,
            action=f"posture-{gap.fix}",
            reason=gap.reason,
            outcome=outcome,
            source="sweep",
        )
        autopilot.events.publish(
            POSTURE_FIX_FAILED,
            vault.resource_id,
            {
                "vaultId": vault.resource_id,
                "control": gap.control,
                "change": change,
                "reason": gap.reason,
                "outcome": outcome,
            },
        )
        remedy = ROLE_REMEDY["write"] if failure.code == "AuthorizationFailed" else gap.remedy
        return "fix-failed", f"{gap.reason}; the sweep tried to {change} and Azure {outcome}", remedy
    outcome = f"done: {change}"
    autopilot.audit.record(
        vm_id=vault.resource_id,
        action=f"posture-{gap.fix}",
        reason=gap.reason,
        outcome=outcome,
        source="sweep",
    )
    autopilot.events.publish(
        POSTURE_CHANGED,
        vault.resource_id,
        {
            "vaultId": vault.resource_id,
            "control": gap.control,
            "change": change,
            "reason": gap.reason,
            "outcome": outcome,
        },
    )
    return "fixed", f"{gap.reason}; the sweep did {change}", gap.remedy


def _finding(vault: VaultSpec, control: str, reason: str, remedy: str, action: str) -> Finding:
    from autopilot.kernel.findings import Finding

    kind = LEVEL_KIND if control == "level" else SOFT_DELETE_KIND if control == "softDelete" else CONTROL_KIND
    return Finding(
        kind,
        vault.resource_id,
        reason if control == "level" else f"vault {vault.name}: {control}: {reason}",
        remedy,
        action,
        region=vault.region,
        vault=vault.resource_id,
        detail=control,
    )


def _unreadable(vault: VaultSpec, error: AzureError | str) -> Finding:
    from autopilot.kernel.findings import Finding

    why = error if isinstance(error, str) else f"its settings could not be read ({error_code(error)})"
    return Finding(
        "no-access",
        vault.resource_id,
        f"vault {vault.name}: the posture check is incomplete: {why}",
        ROLE_REMEDY["read"],
        "reported",
        region=vault.region,
        vault=vault.resource_id,
        detail="posture",
    )


def _row(
    vault: VaultSpec,
    posture: VaultPosture | None,
    rules: PostureRules,
    found: list[Gap],
    note: str,
    fixed: list[str] | None = None,
) -> dict[str, Any]:
    """The vault's line in the report's posture table."""
    row: dict[str, Any] = {
        "vaultId": vault.resource_id,
        "vault": vault.name,
        "resourceGroup": vault.resource_group,
        "subscription": vault.subscription_id,
        "region": vault.region,
        "minimumLevel": rules.minimum_level,
        "missing": [g.control for g in found if g.fix not in (fixed or [])],
        "fixed": list(fixed or []),
        "note": note,
    }
    if posture is None:
        return {**row, "level": "", "belowMinimum": True}
    level = grade(posture)
    return {
        **row,
        "level": level,
        "azureLevel": posture.azure_level,
        "belowMinimum": below(level, rules.minimum_level),
        "softDelete": posture.soft_delete,
        "softDeleteRetentionDays": posture.retention_days,
        "immutability": posture.immutability,
        "multiUserAuthorization": posture.multi_user_authorization,
        "resourceGuards": list(posture.resource_guards),
        "crossRegionRestore": posture.cross_region_restore,
        "publicNetworkAccess": posture.public_network_access,
        "redundancy": posture.redundancy,
        "redundancyAsRules": posture.redundancy.lower() == vault.storage_redundancy.lower(),
    }
