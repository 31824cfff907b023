"""Backup job error codes armsim can produce, with Azure's wording and recommendation (docs/AZURE_BACKUP_FACTS.md §3)."""

from __future__ import annotations

from typing import Any

JOB_ERRORS: dict[str, tuple[str, str]] = {
    "BackUpOperationFailed": (
        "Backup failed with an internal error.",
        "Retry the operation after some time.",
    ),
    "BackUpOperationFailedV2": (
        "Backup failed with an internal error.",
        "Retry the operation after some time.",
    ),
    "UserErrorBackupOperationInProgress": (
        "Another backup operation is in progress on this item.",
        "Wait until the running backup completes, then retry.",
    ),
    "BMSUserErrorObjectLocked": (
        "Another operation is in progress on the selected item.",
        "Wait until the previous operation is completed and then retry.",
    ),
    "CopyingVHDsFromBackUpVaultTakingLongTime": (
        "Copying backed-up data from the vault timed out.",
        "Retry the operation in a few minutes.",
    ),
    "CloudInternalError": ("Backup failed with an internal error.", "Retry the operation after some time."),
    "CloudDosTimeboudLimitReached": (
        "The operation was throttled; too many requests were made for this VM.",
        "Retry the operation after a few hours.",
    ),
    "UserErrorGuestAgentStatusUnavailable": (
        "VM Agent unable to communicate with Azure Backup.",
        "Ensure the VM agent is installed, running and up to date, and that the VM has network connectivity.",
    ),
    "ExtensionSnapshotFailedNoNetwork": (
        "Snapshot operation failed due to no network connectivity on the virtual machine.",
        "Allow outbound connectivity to Azure Backup from the VM.",
    ),
    "UserErrorVmProvisioningStateFailed": (
        "The VM is in a failed provisioning state.",
        "Restart the VM or fix its provisioning state, then retry the backup.",
    ),
    # The support article of this code (TheresaLui/SelfHelpContent_v2, 2020): a vault's protection
    # quota (1,000 Azure VMs) is full. armsim fails ConfigureBackup with it (limits.protectedItemsPerVault).
    "UserErrorProtectionQuotaExceeded": (
        "We have identified that your backup operation failed because the VM protection quota has exceeded "
        "for this vault.",
        "Please create new vault and enable VM protection in new vault.",
    ),
    "UserErrorRpCollectionLimitReached": (
        "The restore point collection maximum limit has been reached.",
        "Remove the lock on the restore point resource group and clean up old restore points.",
    ),
    "UserErrorKeyvaultPermissionsNotConfigured": (
        "Backup service does not have sufficient permissions to Key Vault for encrypted VMs.",
        "Give the Backup service access to the Key Vault keys and secrets.",
    ),
    "UserErrorUnsupportedDiskSize": (
        "The configured disk size(s) is currently not supported by Azure Backup.",
        "Check the supported disk sizes and exclude unsupported disks.",
    ),
    "UserErrorFsFreezeFailed": (
        "Failed to freeze one or more mount-points of the VM to take a file-system consistent snapshot.",
        "Unmount the devices whose file-system state was not cleaned, run a file system check, and retry.",
    ),
    "ExtensionFailedVssWriterInBadState": (
        "Snapshot operation failed because VSS writers were in a bad state.",
        "Restart the VSS writers that are in a bad state, then retry.",
    ),
    "ExtensionFailedVssServiceInBadState": (
        "Snapshot operation failed due to the VSS service being in a bad state.",
        "Restart the VSS (Volume Shadow Copy) service, then retry.",
    ),
    "UserErrorRequestDisallowedByPolicy": (
        "An Azure Policy prevents the snapshot operation.",
        "Change the Azure Policy that denies snapshot creation for this VM.",
    ),
    "AzureVmOffline": (
        "Installation of the backup extension failed: the VM agent is not present on the virtual machine.",
        "Install the latest VM agent on the VM, then retry.",
    ),
    "BCMV2VMNotFound": (
        "The virtual machine does not exist.",
        "Stop protection of the deleted VM, or restore it.",
    ),
    "UserErrorVmNotInDesirableState": (
        "The VM is not in a state that allows backups.",
        "Make sure the VM is running or stopped (not in a transitional state), then retry.",
    ),
    "GuestAgentSnapshotTaskStatusError": (
        "Could not communicate with the VM agent for snapshot status.",
        "Make sure the VM agent is running and healthy, then retry.",
    ),
    "ExtensionOperationFailedForManagedDisks": (
        "The snapshot operation failed for the managed disks.",
        "Retry; if it fails again, check the backup extension on the VM.",
    ),
}


# Restore job errors, with Azure's wording where it is documented (Azure Backup docs, "Troubleshoot
# backup errors with Azure VMs", Restore) or captured; the rest as JOB_ERRORS words them.
RESTORE_ERRORS: dict[str, tuple[str, str]] = {
    "UserErrorInstantRpNotFound": (
        "Restore failed because the snapshot of the VM was not found. The snapshot could have been deleted, "
        "please check.",
        "Restore the VM from a different restore point.",
    ),
    "CloudInternalError": (
        "Restore failed with a cloud internal error.",
        "Retry the operation after some time.",
    ),
    # Captured for a restore (azure-powershell#7823, Restore-AzureRmRecoveryServicesBackupItem, 2018).
    "CloudInvalidInputError": (
        'The current operation failed due to an internal service error "Invalid input error". Please retry the '
        "operation after some time.",
        "Retry the operation after some time.",
    ),
    "UserErrorStorageAccountNotFound": (
        "Operation failed as the specified storage account does not exist anymore.",
        "Check that the staging storage account exists, or give another one.",
    ),
    "UserErrorRestoreResourceGroupQuotaReached": (
        "The resource group quota has been reached.",
        "Delete some resource groups from the Azure portal or contact Azure Support to increase the limits.",
    ),
}


def error_details(code: str, operation: str = "Backup") -> list[dict[str, Any]]:
    known = RESTORE_ERRORS if operation == "Restore" and code in RESTORE_ERRORS else JOB_ERRORS
    fallback = ("The restore failed.", "Retry the operation.") if operation == "Restore" else None
    message, recommendation = known.get(code, fallback or ("The backup failed.", "Retry the operation."))
    return [
        {
            "errorCode": code,
            "errorString": message,
            "errorTitle": "",
            "recommendations": [recommendation],
        }
    ]
