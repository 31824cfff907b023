"""Drill rounds: the timer looks often; when the rules' schedule has come round since the last round,
it picks the round's VMs (per sample, those drilled longest ago first: a rotation) and queues a drill
for each. Every look also takes over drills that stopped moving (their runner died: a host killed half
way), so that they end and what they restored is deleted."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autopilot.drills import engine
from autopilot.kernel.problems import Problem

if TYPE_CHECKING:
    from autopilot.app import Autopilot

log = logging.getLogger("autopilot.drills")
ROUND = "drill-round"  # the schedule's last round
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LIVE_STATES = ("Protected", "IRPending", "ProtectionStopped")


@dataclass
class Look:
    round_started: bool = False
    queued: list[str] = field(default_factory=list)  # drill ids
    taken_over: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "vm: why"


def look(
    autopilot: Autopilot, now: dt.datetime | None = None, force: bool = False
) -> tuple[Look, list[tuple[str, float]]]:
    """What the drill timer does: (what it did, the (drill id, delay) messages to queue)."""
    now = now or dt.datetime.now(dt.UTC)
    result = Look()
    messages = [(drill_id, 0.0) for drill_id in stalled(autopilot, now)]
    result.taken_over = [m[0] for m in messages]
    if autopilot.rules.drills is not None:
        # Since when drills run: a VM is late for its drill only once a whole rotation has passed.
        autopilot.state.put_once(ROUND, "programme", {"Since": now})
    if autopilot.rules.drills is not None and (force or _due(autopilot, now)):
        result.round_started = True
        for vm_id in plan_round(autopilot):
            try:
                from autopilot.drills.api import start

                record, created = start(autopilot, vm_id, source="timer", reason="scheduled drill round")
            except Problem as problem:
                result.skipped.append(f"{vm_id}: {problem.detail}")
                continue
            if created:
                result.queued.append(str(record["Id"]))
                messages.append((str(record["Id"]), 0.0))
    return result, messages


def _due(autopilot: Autopilot, now: dt.datetime) -> bool:
    """Whether the schedule has had an occurrence since the last round (written first, once)."""
    drills = autopilot.rules.drills
    assert drills is not None
    row = autopilot.state.get(ROUND, "schedule")
    if row is None:
        autopilot.state.put_once(ROUND, "schedule", {"Last": now, "Expression": drills.schedule.expression})
        return False
    last = row.get("Last")
    if not isinstance(last, dt.datetime):
        last = now
    following = drills.schedule.next_after(last)
    if following is None or following > now:
        return False
    # One instance starts the round: the row is replaced only if no one else changed it since.
    fresh = autopilot.state.get_row(ROUND, str(row["RowKey"]))
    if fresh is None or fresh.get("Last") != row.get("Last"):
        return False
    return autopilot.state.replace_row(ROUND, str(row["RowKey"]), {**fresh, "Last": now}, str(fresh["_etag"]))


def stalled(autopilot: Autopilot, now: dt.datetime) -> list[str]:
    """Drills not ended that have not moved for AUTOPILOT_DRILL_STALE_SECONDS."""
    cutoff = now - dt.timedelta(seconds=autopilot.settings.drill_stale_seconds)
    rows = autopilot.state.rows(engine.KIND, "Updated lt @cutoff", {"cutoff": cutoff})
    return [str(r["Id"]) for r in rows if r.get("Status") not in engine.FINAL]


def plan_round(autopilot: Autopilot) -> list[str]:
    """The VMs of this round: per sample of the rules, its share of the protected VMs it covers, those
    drilled longest ago (never drilled first), so that a VM waits at most its group's size / the
    sample's size rounds."""
    drills = autopilot.rules.drills
    assert drills is not None
    members = protected_vms(autopilot)
    last = {str(r.get("Key", "")).lower(): r for r in autopilot.state.rows(engine.LAST)}
    picked: list[str] = []
    for sample in drills.samples:
        group = [vm for vm, (policy, tags) in members.items() if drills.sample_of(policy, tags) is sample]
        group.sort(key=lambda vm: (_when(last.get(vm.lower())), vm.lower()))
        picked.extend(vm for vm in group[: sample.size(len(group))] if vm not in picked)
    return picked


def _when(row: dict[str, Any] | None) -> dt.datetime:
    value = (row or {}).get("LastDrillAt")
    return value if isinstance(value, dt.datetime) else NEVER


def protected_vms(autopilot: Autopilot) -> dict[str, tuple[str, dict[str, str]]]:
    """VM id -> (policy, tags) of every VM with a live backup item in the vaults in scope (item pages
    per vault; VM pages per subscription only when a sample selects by tag)."""
    drills = autopilot.rules.drills
    assert drills is not None
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for vault in autopilot.rules.vaults_for(autopilot.subscriptions()):
        for item in autopilot.azure.list_items(vault):
            if not item.soft_deleted and item.protection_state in LIVE_STATES and item.vm_id:
                out[item.vm_id] = (item.policy_name, {})
    if any(s.tag for s in drills.samples):
        for subscription in autopilot.subscriptions():
            for vm in autopilot.azure.list_vms(subscription):
                known = next((k for k in out if k.lower() == vm.id.lower()), None)
                if known:
                    out[known] = (out[known][0], vm.tags)
    return out
