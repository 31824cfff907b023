"""What a unit of a sweep found and did: its findings, fixes and counts (read by the run and the report)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autopilot.kernel.findings import Finding


@dataclass
class UnitResult:
    run_id: str
    unit: str
    dry_run: bool
    started: str
    finished: str = ""
    vms: int = 0
    selected: int = 0
    compliant: int = 0  # selected VMs protected as the rules say
    by_region: dict[str, dict[str, int]] = field(default_factory=dict)
    by_policy: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    error: str = ""
    inventory: str = "arm"  # where the unit's estate was read: arm or resourcegraph
    vm_rows: list[list[str]] = field(default_factory=list)  # every VM (report.VM_COLUMNS), for the CSV
    posture: list[dict[str, Any]] = field(default_factory=list)  # each vault's security posture

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitResult:
        result = cls(**{k: v for k, v in data.items() if k != "findings"})
        result.findings = [Finding(**f) for f in data.get("findings", [])]
        return result


def count(table: dict[str, dict[str, int]], key: str, name: str) -> None:
    row = table.setdefault(key or "-", {})
    row[name] = row.get(name, 0) + 1
