"""Ensure policies: every policy the rules name exists in every vault, with the rules' settings.

Create or update; idempotent (a second run writes nothing). A policy whose type differs (standard
against enhanced) is reported, not overwritten: Azure does not change a policy's type in place.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autopilot.policyspec import PolicySpec, policy_differences
from autopilot.rules import VaultSpec

if TYPE_CHECKING:
    from autopilot.context import Autopilot

log = logging.getLogger("autopilot.policies")


@dataclass(frozen=True)
class PolicyResult:
    vault: str
    policy: str
    action: str  # created, updated, unchanged, drift-reported, type-mismatch
    differences: tuple[str, ...] = ()


def ensure_policy(
    autopilot: Autopilot, vault: VaultSpec, spec: PolicySpec, source: str, fix_drift: bool = True
) -> PolicyResult:
    current = autopilot.azure.get_policy(vault, spec.name)
    if current is None:
        autopilot.azure.put_policy(vault, spec.name, spec.to_arm_properties())
        autopilot.audit.record(
            vm_id=vault.resource_id,
            action="create-policy",
            reason=f"the rules name policy {spec.name}",
            outcome=spec.describe(),
            source=source,
        )
        return PolicyResult(vault.name, spec.name, "created")
    differences = tuple(policy_differences(spec, current))
    if not differences:
        return PolicyResult(vault.name, spec.name, "unchanged")
    if str(current.get("policyType") or "V1").upper() != spec.policy_type:
        return PolicyResult(vault.name, spec.name, "type-mismatch", differences)
    if not fix_drift:
        return PolicyResult(vault.name, spec.name, "drift-reported", differences)
    autopilot.azure.put_policy(vault, spec.name, spec.to_arm_properties())
    autopilot.audit.record(
        vm_id=vault.resource_id,
        action="update-policy",
        reason="; ".join(differences),
        outcome=f"policy {spec.name} now matches the rules",
        source=source,
    )
    return PolicyResult(vault.name, spec.name, "updated", differences)


def ensure_policies(autopilot: Autopilot, source: str, dry_run: bool = False) -> list[PolicyResult]:
    """Every policy of the rules in every vault of the rules."""
    results = []
    fix = autopilot.rules.actions.on_policy_drift == "fix" and not dry_run
    for vault in autopilot.rules.vaults:
        for spec in autopilot.rules.policies:
            if dry_run:
                current = autopilot.azure.get_policy(vault, spec.name)
                if current is None:
                    results.append(PolicyResult(vault.name, spec.name, "would-create"))
                    continue
                differences = tuple(policy_differences(spec, current))
                results.append(
                    PolicyResult(
                        vault.name, spec.name, "would-update" if differences else "unchanged", differences
                    )
                )
                continue
            results.append(ensure_policy(autopilot, vault, spec, source, fix_drift=fix))
    return results


class PolicyCache:
    """Remembers, per process, which (vault, policy) pairs were ensured, so that protecting a VM
    ensures its policy at most once per process instead of once per VM."""

    def __init__(self) -> None:
        self._done: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, autopilot: Autopilot, vault: VaultSpec, spec: PolicySpec, source: str) -> None:
        key = (vault.resource_id.lower(), spec.name.lower())
        if key in self._done:
            return
        with self._lock:
            if key in self._done:
                return
            result = ensure_policy(
                autopilot, vault, spec, source, fix_drift=autopilot.rules.actions.on_policy_drift == "fix"
            )
            if result.action == "type-mismatch":
                log.warning(
                    "policy %s in vault %s differs in type from the rules: %s",
                    spec.name,
                    vault.name,
                    result.differences,
                )
            self._done.add(key)
