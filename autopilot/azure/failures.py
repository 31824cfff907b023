"""What a failed call to Azure means: the one classification every boundary (HTTP, event, queue,
timer, CLI) uses (transient, a busy item, or permanent, with the remedy), the error code of any
error, and the errors the adapters raise (TransientError, ProtectionRefused)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from azure.core.exceptions import AzureError, HttpResponseError

from autopilot.azure.clients import OutboundHostError
from autopilot.azure.errorcodes import classify


class TransientError(RuntimeError):
    """Azure or storage was busy or unreachable; the trigger should be retried (Event Grid, queue)."""


# Error codes the Backup service answers while another operation runs on the same item.
BUSY_CODES = {
    "BMSUserErrorObjectLocked",
    "UserErrorBackupOperationInProgress",
    "BMSUserErrorConflictingProtectionOperation",
}


class ProtectionRefused(HttpResponseError):
    """Azure refused a protection change: its PUT answered 4xx, or its operation ended Failed (a VM
    protected by another vault, a full vault, ...). Nothing was changed. A poll of the operation
    that failed is not this: the change may have been made."""


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # throttling, a server error, a lost connection: try again later
    CONFLICT = "conflict"  # the item is busy with another operation: clears by itself
    PERMANENT = "permanent"  # Azure refused: trying again changes nothing; a person must act


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    code: str
    remedy: str


def classify_failure(error: BaseException) -> Failure:
    """What a failed call to Azure means, whatever the SDK raised: the one classification every
    boundary (HTTP, event, queue, timer, CLI) uses, by status and error code."""
    code = error_code(error)
    if isinstance(error, TransientError):
        return Failure(FailureKind.TRANSIENT, code, "Retry later.")
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        status = error.status_code
        if status in (408, 429) or status >= 500:
            return Failure(FailureKind.TRANSIENT, code, "Azure is busy or throttling; retry later.")
        if code in BUSY_CODES:
            return Failure(
                FailureKind.CONFLICT, code, "Another operation runs on the item; retry when it ends."
            )
        return Failure(FailureKind.PERMANENT, code, classify(code).remedy)
    if isinstance(error, OutboundHostError):
        return Failure(
            FailureKind.PERMANENT, code, "A request was for a host no setting names; check the endpoints."
        )
    if isinstance(error, AzureError):  # no answer at all: the connection was lost or never made
        return Failure(FailureKind.TRANSIENT, code, "The connection to Azure failed; retry later.")
    return Failure(FailureKind.PERMANENT, code, "An unexpected error; see the app's log.")


def is_transient(error: BaseException) -> bool:
    """Worth retrying later: throttling, server errors, lost connections, and busy items."""
    return classify_failure(error).kind is not FailureKind.PERMANENT


def error_code(error: BaseException) -> str:
    if isinstance(error, HttpResponseError) and error.error is not None and error.error.code:
        return str(error.error.code)
    return type(error).__name__
