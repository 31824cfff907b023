"""Backup job error codes: which are transient (a retry is the documented fix) and which need a
person, with the remedy from Azure's troubleshooting docs (docs/AZURE_BACKUP_FACTS.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    NEEDS_PERSON = "needs-a-person"
    EITHER = "transient-or-needs-a-person"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    error_class: ErrorClass
    remedy: str


_RETRY = "Retry the backup; Azure documents this error as transient."
TABLE: dict[str, ErrorInfo] = {
    info.code.lower(): info
    for info in (
        ErrorInfo("BackUpOperationFailed", ErrorClass.TRANSIENT, _RETRY),
        ErrorInfo("BackUpOperationFailedV2", ErrorClass.TRANSIENT, _RETRY),
        ErrorInfo(
            "UserErrorBackupOperationInProgress",
            ErrorClass.TRANSIENT,
            "Another backup of the VM was running; retry when it has finished.",
        ),
        ErrorInfo(
            "BMSUserErrorObjectLocked",
            ErrorClass.TRANSIENT,
            "Another operation was running on the item; retry when it has finished.",
        ),
        ErrorInfo("CopyingVHDsFromBackUpVaultTakingLongTime", ErrorClass.TRANSIENT, _RETRY),
        ErrorInfo("CloudInternalError", ErrorClass.TRANSIENT, _RETRY),
        ErrorInfo(
            "CloudDosTimeboudLimitReached",
            ErrorClass.TRANSIENT,
            "Too many operations on the VM; retry after a few hours.",
        ),
        ErrorInfo(
            "UserErrorGuestAgentStatusUnavailable",
            ErrorClass.NEEDS_PERSON,
            "The VM agent cannot talk to Azure Backup: make sure it is installed, running and up to date, and that the VM reaches 168.63.129.16.",
        ),
        ErrorInfo(
            "ExtensionSnapshotFailedNoNetwork",
            ErrorClass.NEEDS_PERSON,
            "The VM has no outbound network for the snapshot: allow outbound access to Azure Backup.",
        ),
        ErrorInfo(
            "UserErrorVmProvisioningStateFailed",
            ErrorClass.NEEDS_PERSON,
            "The VM is in a failed provisioning state: restart or redeploy it.",
        ),
        ErrorInfo(
            "UserErrorRpCollectionLimitReached",
            ErrorClass.NEEDS_PERSON,
            "The restore point collection is full, often because of a resource group lock: remove the lock and old restore points.",
        ),
        ErrorInfo(
            "UserErrorKeyvaultPermissionsNotConfigured",
            ErrorClass.NEEDS_PERSON,
            "Give the Backup service access to the Key Vault keys and secrets of the encrypted VM.",
        ),
        ErrorInfo(
            "UserErrorUnsupportedDiskSize",
            ErrorClass.NEEDS_PERSON,
            "A disk is larger than Azure Backup supports: exclude it or resize it.",
        ),
        ErrorInfo(
            "UserErrorFsFreezeFailed",
            ErrorClass.NEEDS_PERSON,
            "A file system could not be frozen: unmount the devices in a bad state, run a file system check, and retry.",
        ),
        ErrorInfo(
            "ExtensionFailedVssWriterInBadState",
            ErrorClass.NEEDS_PERSON,
            "Restart the VSS writers that are in a bad state (vssadmin list writers), then retry.",
        ),
        ErrorInfo(
            "ExtensionFailedVssServiceInBadState",
            ErrorClass.NEEDS_PERSON,
            "Restart the Volume Shadow Copy (VSS) service, then retry.",
        ),
        ErrorInfo(
            "UserErrorRequestDisallowedByPolicy",
            ErrorClass.NEEDS_PERSON,
            "An Azure Policy denies the snapshot: exempt the VM's restore point collection from it.",
        ),
        ErrorInfo(
            "AzureVmOffline",
            ErrorClass.NEEDS_PERSON,
            "The VM agent is missing: install the Azure VM agent, then retry.",
        ),
        ErrorInfo(
            "380008",
            ErrorClass.NEEDS_PERSON,
            "The VM agent is missing: install the Azure VM agent, then retry.",
        ),
        ErrorInfo(
            "BCMV2VMNotFound",
            ErrorClass.NEEDS_PERSON,
            "The VM was deleted: stop its protection (and keep or delete its backup data).",
        ),
        ErrorInfo(
            "320001",
            ErrorClass.NEEDS_PERSON,
            "The VM was deleted: stop its protection (and keep or delete its backup data).",
        ),
        ErrorInfo(
            "UserErrorVmNotInDesirableState",
            ErrorClass.EITHER,
            "The VM was in a transitional state: retry; if it persists, check the VM's state.",
        ),
        ErrorInfo(
            "GuestAgentSnapshotTaskStatusError",
            ErrorClass.EITHER,
            "The agent did not report the snapshot: retry; if it persists, repair the VM agent.",
        ),
        ErrorInfo(
            "ExtensionOperationFailedForManagedDisks",
            ErrorClass.EITHER,
            "Retry; if it persists, reinstall the backup extension (VMSnapshot) on the VM.",
        ),
        # Restore jobs (restore drills): "Troubleshoot backup errors with Azure VMs", Restore.
        ErrorInfo(
            "UserErrorInstantRpNotFound",
            ErrorClass.NEEDS_PERSON,
            "The recovery point's snapshot is gone: restore from another point (one held in the vault tier).",
        ),
    )
}

COMPLETED_WITH_WARNINGS = (
    "The snapshot was taken (an instant-restore point exists), but copying it to the vault failed, so there "
    "is no vault recovery point from this job. The next backup copies the changes again; if it keeps "
    "happening, follow the remedy of the error code."
)


def classify(code: str | int | None, recommendations: tuple[str, ...] = ()) -> ErrorInfo:
    """The class and remedy of a job's error code; for a code the table does not know, Azure's own
    recommendations when the job gave some (docs/AZURE_BACKUP_FACTS.md §3)."""
    text = str(code or "")
    info = TABLE.get(text.lower())
    if info is not None:
        return info
    advice = " ".join(r.strip() for r in recommendations if r and r.strip())
    return ErrorInfo(
        text,
        ErrorClass.UNKNOWN,
        f"Azure recommends: {advice}"
        if advice
        else "Look the error code up in the Azure Backup troubleshooting guide.",
    )
