"""Azure Backup's per-vault limits (armsim/core/limits.py holds the settings): protected items per
vault, policies per vault, and policy creates and edits per vault in 24 hours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.backup.policy import POLICY_INPUT_MESSAGE
from armsim.core.errors import ArmError
from armsim.core.limits import active

if TYPE_CHECKING:
    from armsim.backup.models import BackupBackend

# The wording of CloudDosAbsoluteLimitReached in Azure's docs (SQL-in-VM and SAP HANA troubleshooting)
# and in a captured error (Azure/azure-content#5067).
DAILY_LIMIT_MESSAGE = (
    "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours."
)


def items_over_limit(backend: BackupBackend, vault: dict[str, Any]) -> dict[str, Any] | None:
    """The limit a new protected item of `vault` would break, or None. Every item of the vault holds
    a place: protected, IRPending, stopped with its data kept, and soft-deleted (until purged)."""
    limit = active(backend.world.config, "protectedItemsPerVault")
    if limit is None or backend.vault_item_count(vault["model"]["id"]) < limit["max"]:
        return None
    return limit


def quota_error(vault: dict[str, Any], limit: dict[str, Any]) -> dict[str, str]:
    """The error of enabling protection in a full vault, as the support article of
    UserErrorProtectionQuotaExceeded words it (the API's own message was never captured)."""
    return {
        "code": str(limit["code"]),
        "message": "We have identified that your backup operation failed because the VM protection quota has "
        f"exceeded for this vault. (Vault '{vault['model']['name']}' holds {limit['max']} protected items, "
        "the most Azure Backup allows per vault.) Please create new vault and enable VM protection in new vault.",
    }


def check_policy_count(backend: BackupBackend, vault: dict[str, Any], policy_id: str) -> None:
    """Refuse a new policy once the vault holds the most it may (200)."""
    limit = active(backend.world.config, "policiesPerVault")
    if limit is None or policy_id.lower() in backend.policies:
        return
    prefix = f"{vault['model']['id']}/backupPolicies/".lower()
    count = sum(1 for key in backend.policies if key.startswith(prefix))
    if count < limit["max"]:
        return
    reason = (
        f"The vault '{vault['model']['name']}' already has {count} backup policies; a vault can have up to "
        f"{limit['max']}. Delete a policy it no longer needs before creating another."
    )
    code = str(limit["code"])
    raise ArmError(
        int(limit["status"]),
        code,
        POLICY_INPUT_MESSAGE if code == "BMSUserErrorInvalidPolicyInput" else reason,
        details=[{"code": code, "message": reason}],
    )


def check_policy_writes(backend: BackupBackend, vault: dict[str, Any]) -> None:
    """Refuse a policy create or edit once the vault has had the most allowed (50) within the window
    (24 hours of simulated time, sliding)."""
    limit = active(backend.world.config, "policyWritesPerVault")
    if limit is None:
        return
    now = backend.world.now()
    key = vault["model"]["id"].lower()
    recent = [t for t in backend.policy_writes.get(key, []) if t > now - float(limit["windowSeconds"])]
    backend.policy_writes[key] = recent
    if len(recent) >= limit["max"]:
        code = str(limit["code"])
        raise ArmError(
            int(limit["status"]),
            code,
            DAILY_LIMIT_MESSAGE,
            details=[
                {
                    "code": code,
                    "message": f"Backup policies of vault '{vault['model']['name']}' were created or edited "
                    f"{len(recent)} times in the last {float(limit['windowSeconds']) / 3600:g} hours; Azure "
                    f"allows {limit['max']}.",
                }
            ],
        )


def record_policy_write(backend: BackupBackend, vault: dict[str, Any]) -> None:
    backend.policy_writes.setdefault(vault["model"]["id"].lower(), []).append(backend.world.now())
