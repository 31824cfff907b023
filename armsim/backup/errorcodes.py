"""Backup job error codes armsim can produce, with Azure's wording and recommendation (DESIGN §6)."""

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


def error_details(code: str) -> list[dict[str, Any]]:
    message, recommendation = JOB_ERRORS.get(code, ("The backup failed.", "Retry the operation."))
    return [
        {
            "errorCode": code,
            "errorString": message,
            "errorTitle": "",
            "recommendations": [recommendation],
        }
    ]
