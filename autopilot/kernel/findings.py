"""Findings: what the sweep (and the drills and the posture check it runs) reports about the estate.

Every kind of finding is declared once, here: its severity, what it means (the report's legend and
glossary) and the CloudEvents type it is announced with. A new kind is one line of KINDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


@dataclass(frozen=True)
class FindingKind:
    name: str
    severity: Severity
    meaning: str  # what the report says it means
    event: str  # the CloudEvents type it is announced with


KINDS: dict[str, FindingKind] = {
    kind.name: kind
    for kind in (
        FindingKind(
            "unprotected",
            "critical",
            "The rules select the VM and it has no backup.",
            "BackupAutopilot.VM.Unprotected",
        ),
        FindingKind(
            "protection-stopped",
            "critical",
            "The VM was protected, and its protection is stopped or soft-deleted.",
            "BackupAutopilot.VM.ProtectionStopped",
        ),
        FindingKind(
            "rpo-breach",
            "critical",
            "The last recovery point is older than the policy promises (plus the grace).",
            "BackupAutopilot.VM.RpoBreach",
        ),
        FindingKind(
            "job-failed", "critical", "The VM's latest backup job failed.", "BackupAutopilot.Job.Failed"
        ),
        FindingKind(
            "missing-vault",
            "critical",
            "A vault the rules expect (in a subscription and region) does not exist.",
            "BackupAutopilot.Vault.Missing",
        ),
        FindingKind(
            "no-access",
            "critical",
            "The app's identity could not read part of the estate.",
            "BackupAutopilot.Scope.NoAccess",
        ),
        FindingKind(
            "vault-set-full",
            "critical",
            "Every vault of the region's set is full: the VM cannot be protected.",
            "BackupAutopilot.VaultSet.Full",
        ),
        FindingKind(
            "needs-attention",
            "warning",
            "The VM cannot be protected as the rules say without a person.",
            "BackupAutopilot.VM.NeedsAttention",
        ),
        FindingKind(
            "agent-problem",
            "warning",
            "The VM agent is missing or not ready: backups will fail.",
            "BackupAutopilot.VM.AgentProblem",
        ),
        FindingKind(
            "wrong-policy",
            "warning",
            "The VM is protected under another policy than the rules select.",
            "BackupAutopilot.VM.WrongPolicy",
        ),
        FindingKind(
            "job-completed-with-warnings",
            "warning",
            "The latest backup completed with warnings.",
            "BackupAutopilot.Job.CompletedWithWarnings",
        ),
        FindingKind(
            "orphaned-item",
            "warning",
            "A backup item remains whose VM no longer exists.",
            "BackupAutopilot.Item.Orphaned",
        ),
        FindingKind(
            "policy-drift",
            "warning",
            "A vault's backup policy differs from the rules.",
            "BackupAutopilot.Vault.PolicyDrift",
        ),
        FindingKind(
            "redundancy-mismatch",
            "warning",
            "A vault stores backups with another redundancy than the rules say.",
            "BackupAutopilot.Vault.RedundancyMismatch",
        ),
        FindingKind(
            "dst-change-ahead",
            "info",
            "Daylight saving time changes soon; Azure does not move backup times.",
            "BackupAutopilot.Policy.DaylightSavingChange",
        ),
        FindingKind(
            "vault-soft-delete-off",
            "critical",
            "Soft delete is off on a vault: the data of a deleted backup item is lost at once.",
            "BackupAutopilot.Vault.SoftDeleteOff",
        ),
        FindingKind(
            "vault-security-level",
            "warning",
            "A vault's security level (Business Continuity Center's grade) is below the rules' minimum.",
            "BackupAutopilot.Vault.SecurityLevelBelowMinimum",
        ),
        FindingKind(
            "vault-security-control",
            "warning",
            "A vault lacks a security control the rules require.",
            "BackupAutopilot.Vault.SecurityControlMissing",
        ),
        FindingKind(
            "drill-restore-failed",
            "critical",
            "A restore drill's restore failed: the VM's backup could not be restored.",
            "BackupAutopilot.Drill.RestoreFailed",
        ),
        FindingKind(
            "drill-verify-failed",
            "critical",
            "A restore drill restored the VM's disks, and they were not as backed up.",
            "BackupAutopilot.Drill.VerifyFailed",
        ),
        FindingKind(
            "drill-boot-failed",
            "critical",
            "A restore drill (verify: boot) restored the VM's disks, and a VM made from them did not boot: its "
            "VM agent did not report Ready within the policy's bootTimeout.",
            "BackupAutopilot.Drill.BootFailed",
        ),
        FindingKind(
            "drill-no-recovery-point",
            "critical",
            "A restore drill found no recovery point of the rules' tier to restore.",
            "BackupAutopilot.Drill.NoRecoveryPoint",
        ),
        FindingKind(
            "drill-slow-restore",
            "warning",
            "A restore drill's restore took longer than the policy's restore-time objective.",
            "BackupAutopilot.Drill.SlowRestore",
        ),
        FindingKind(
            "drill-overdue",
            "warning",
            "The VM has not been proven by a restore drill within the rotation period.",
            "BackupAutopilot.Drill.Overdue",
        ),
    )
}
# A kind not declared above (a bug) is still reported and announced, as a warning.
UNKNOWN = FindingKind("", "warning", "", "BackupAutopilot.Sweep.Finding")


def kind_of(name: str) -> FindingKind:
    return KINDS.get(name, UNKNOWN)


@dataclass(frozen=True)
class Finding:
    """One thing found about one target: what it is (`kind`), why, what to do, what the run did."""

    kind: str
    target: str  # the VM, item, vault or policy it is about
    reason: str
    remedy: str
    action: str  # fixed, would-fix, fix-failed, retried, would-retry, reported
    region: str = ""
    vault: str = ""
    policy: str = ""
    detail: str = ""  # part of the key: e.g. the error code of a failed job

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.target.lower()}|{self.detail}"
