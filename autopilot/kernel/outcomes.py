"""Outcomes: what the product did or found for one VM, with the reason and the remedy.

Outcomes go out as CloudEvents (events.py) and into the audit table (audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    PROTECTED = "protected"
    POLICY_UPDATED = "policy-updated"
    RESUMED = "resumed"
    ALREADY_PROTECTED = "already-protected"
    NOT_SELECTED = "not-selected"
    OPTED_OUT = "opted-out"
    PROTECTION_STOPPED = "protection-stopped"
    NEEDS_ATTENTION = "needs-attention"
    PROTECTION_FAILED = "protection-failed"
    VM_GONE = "vm-gone"


# The CloudEvents `type` of each outcome that is worth telling ticketing and chat tools about.
EVENT_TYPES: dict[Kind, str] = {
    Kind.PROTECTED: "BackupAutopilot.VM.Protected",
    Kind.POLICY_UPDATED: "BackupAutopilot.VM.PolicyUpdated",
    Kind.RESUMED: "BackupAutopilot.VM.ProtectionResumed",
    Kind.PROTECTION_STOPPED: "BackupAutopilot.VM.ProtectionStopped",
    Kind.NEEDS_ATTENTION: "BackupAutopilot.VM.NeedsAttention",
    Kind.PROTECTION_FAILED: "BackupAutopilot.VM.ProtectionFailed",
}


@dataclass(frozen=True)
class Outcome:
    vm_id: str
    kind: Kind
    reason: str
    remedy: str = ""
    vault: str = ""
    policy: str = ""
    actions: tuple[str, ...] = ()  # the changes made on Azure, e.g. ("enable-protection", "backup-now")
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "vmId": self.vm_id,
            "outcome": self.kind.value,
            "reason": self.reason,
            "remedy": self.remedy,
            "vault": self.vault,
            "policy": self.policy,
            "actions": list(self.actions),
            **({"details": self.details} if self.details else {}),
        }
