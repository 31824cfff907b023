"""Ensure policies: every policy the rules name exists in every vault, with the rules' settings.

Create or update; idempotent (a second run writes nothing). A policy whose type differs (standard
against enhanced) is reported, not overwritten: Azure does not change a policy's type in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autopilot.azure.failures import TransientError
from autopilot.rules import VaultSpec
from autopilot.rules.policyspec import PolicySpec, policy_differences

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.protect.policies")


@dataclass(frozen=True)
class PolicyResult:
    vault: str
    policy: str
    action: str  # created, updated, unchanged, drift-reported, type-mismatch, deferred
    differences: tuple[str, ...] = ()
    until: dt.datetime | None = None  # deferred: when the vault's edit budget allows the edit


EDIT_KIND = "policy-edit"  # state rows: one per policy create or update, for the 24-hour budget
EDIT_WINDOW = dt.timedelta(hours=24)
_ABSENT: Any = object()


def edits_in_window(autopilot: Autopilot, vault: VaultSpec, now: dt.datetime) -> list[dt.datetime]:
    """When the autopilot created or updated a policy of the vault in the last 24 hours."""
    rows = autopilot.state.rows(
        EDIT_KIND,
        "Vault eq @vault and At ge @since",
        {"vault": vault.resource_id.lower(), "since": now - EDIT_WINDOW},
    )
    return sorted(row["At"] for row in rows)


def ensure_policy(
    autopilot: Autopilot,
    vault: VaultSpec,
    spec: PolicySpec,
    source: str,
    fix_drift: bool = True,
    current: dict[str, Any] | None = _ABSENT,
    dry_run: bool = False,
) -> PolicyResult:
    """Create the policy, or update it when it drifted and `fix_drift`, within the vault's budget of
    policy edits: Azure allows 50 creates or updates of a vault's policies in 24 hours, and the
    autopilot makes at most AUTOPILOT_POLICY_EDITS_PER_DAY of them; an edit over the budget is not
    made and the result says when it can be. `current` is the policy as read (None: absent), when
    the caller has already read it. A dry run decides the same and writes nothing: what would be
    made is "would-create" or "would-update". The one place where the autopilot writes a policy."""
    if current is _ABSENT:
        current = autopilot.azure.get_policy(vault, spec.name)
    differences = (
        ("the policy does not exist in the vault",)
        if current is None
        else tuple(policy_differences(spec, current))
    )
    if not differences:
        return PolicyResult(vault.name, spec.name, "unchanged")
    if current is not None and str(current.get("policyType") or "V1").upper() != spec.policy_type:
        return PolicyResult(vault.name, spec.name, "type-mismatch", differences)
    if current is not None and not fix_drift:
        return PolicyResult(vault.name, spec.name, "drift-reported", differences)
    now = dt.datetime.now(dt.UTC)
    edits = edits_in_window(autopilot, vault, now)
    budget = autopilot.settings.policy_edits_per_day
    if len(edits) >= budget:
        until = edits[len(edits) - budget] + EDIT_WINDOW
        log.warning("policy %s in vault %s: edit budget used up until %s", spec.name, vault.name, until)
        return PolicyResult(vault.name, spec.name, "deferred", differences, until)
    if dry_run:
        return PolicyResult(
            vault.name, spec.name, "would-create" if current is None else "would-update", differences
        )
    action = "create-policy" if current is None else "update-policy"
    autopilot.state.put(
        EDIT_KIND, f"{vault.resource_id}|{uuid.uuid4()}", {"Vault": vault.resource_id.lower(), "At": now}
    )
    autopilot.azure.put_policy(vault, spec.name, spec.to_arm_properties())
    autopilot.audit.record(
        vm_id=vault.resource_id,
        action=action,
        reason=f"the rules name policy {spec.name}" if current is None else "; ".join(differences),
        outcome=spec.describe() if current is None else f"policy {spec.name} now matches the rules",
        source=source,
    )
    return PolicyResult(vault.name, spec.name, "created" if current is None else "updated", differences)


def ensure_policies(autopilot: Autopilot, source: str, dry_run: bool = False) -> list[PolicyResult]:
    """Every policy of the rules in every vault of the rules."""
    fix = autopilot.rules.actions.on_policy_drift == "fix"
    return [
        ensure_policy(autopilot, vault, spec, source, fix_drift=fix, dry_run=dry_run)
        for vault in autopilot.rules.vaults
        for spec in autopilot.rules.policies
    ]


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
            if result.action == "deferred" and result.differences == (
                "the policy does not exist in the vault",
            ):
                raise TransientError(
                    f"policy {spec.name} cannot be created in vault {vault.name} before {result.until:%Y-%m-%d %H:%M} UTC:"
                    " the vault's policy edits of the last 24 hours are used up"
                )
            if result.action == "type-mismatch":
                log.warning(
                    "policy %s in vault %s differs in type from the rules: %s",
                    spec.name,
                    vault.name,
                    result.differences,
                )
            if result.action != "deferred":
                self._done.add(key)
