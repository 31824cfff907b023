"""Scenario 2, events: Event Grid delivers every event three times, batches out of order
(faults eventDuplicates=3, eventShuffle=true). Two stacks run side by side on the same story, one
with the duplication and one without:

1. VMs are created (gold, silver, untagged, opted out, in a region without a vault);
2. once those events are handled, some VMs get another policy's tag and others an unrelated tag.

The duplicated run must end where the plain one ends: the same protected items (policy, state),
the same audit actions per VM, the same outcome events per VM, one enable per VM, at most one
first backup per VM, and no more protection writes than the plain run.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.reliability.soak import record, sized
from tests.reliability.support import (
    SUB,
    Estate,
    RelStack,
    arm_requests,
    audit_target,
    change_rows,
    deliveries,
    in_parallel,
    key_of_id,
    new_vms,
    protected_items,
    running,
    unaudited_writes,
    unexpected_failures,
    vm_id,
    wait_for,
    writes_by_vm,
)

GROUP = "rg-events"
VMS = sized(20, 100)
COPIES = 3


@dataclass
class Story:
    seconds: float
    items: dict[str, tuple[str, str]]
    audit: Counter[tuple[str, str]]
    outcomes: Counter[tuple[str, str]]
    puts: Counter[str]
    triggers: Counter[str]
    log: list[dict[str, Any]]
    audit_rows: list[dict[str, Any]]
    attempts: int
    out_of_order: int
    pending: int
    final_5xx: int
    host_log: str


def copies_delivered(stack: RelStack, copies: int) -> bool:
    """Every resource event was answered 200 at least `copies` times."""
    data = stack.events()
    ids = {e["id"] for e in data["resourceEvents"] if f"/resourcegroups/{GROUP}/" in e["subject"].lower()}
    done: Counter[str] = Counter()
    for delivery in data["deliveries"]:
        if delivery["status"] == 200:
            done.update(delivery["eventIds"])
    return bool(ids) and all(done[i] >= copies for i in ids)


def out_of_order(stack: RelStack) -> int:
    """Deliveries whose event was emitted before the event of the delivery before them."""
    data = stack.events()
    order = {e["id"]: i for i, e in enumerate(data["resourceEvents"])}
    sequence = [
        order[d["eventIds"][0]]
        for d in sorted(data["deliveries"], key=lambda d: d["time"])
        if d["eventIds"] and d["eventIds"][0] in order
    ]
    return sum(1 for a, b in itertools.pairwise(sequence) if b < a)


def retag_plan(vms: Estate) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Tag changes of the second act: every fourth selected VM moves to the other policy, every
    fourth other one gets an unrelated tag (a write that changes nothing for the rules)."""
    selected = sorted(vms.expected)
    changes: dict[str, dict[str, str]] = {}
    expected = dict(vms.expected)
    for index, key in enumerate(selected):
        group, name = key.split(";")
        policy = vms.expected[key]
        if index % 4 == 0:
            other = "silver" if policy == "gold" else "gold"
            changes[vm_id(group, name)] = {"backup-policy": other}
            expected[key] = other
        elif index % 4 == 1:
            changes[vm_id(group, name)] = {"backup-policy": policy, "owner": "team-b"}
    return changes, expected


def story(stack: RelStack, duplicated: bool) -> Story:
    started = time.monotonic()
    vms = new_vms(VMS, GROUP)
    if duplicated:
        stack.faults(eventDuplicates=COPIES, eventShuffle=True, seed=11)
    copies = COPIES if duplicated else 1
    vms.seed(stack, emit_events=True)
    assert wait_for(lambda: copies_delivered(stack, copies), timeout=sized(120, 600)), deliveries(stack)
    changes, _ = retag_plan(vms)
    for vm, tags in changes.items():
        stack.set_tags(vm, tags)
    assert wait_for(lambda: copies_delivered(stack, copies), timeout=sized(120, 600)), deliveries(stack)
    stack.no_faults()
    log = stack.request_log()
    rows = stack.audit_rows()
    delivered = deliveries(stack)
    return Story(
        seconds=time.monotonic() - started,
        # The state compared is active or stopped: IRPending turns Protected when the first backup
        # ends, which is a matter of timing, not of the events.
        items={
            k: (policy, "stopped" if state == "ProtectionStopped" else "active")
            for k, (policy, state) in protected_items(stack).items()
            if k.startswith(GROUP)
        },
        audit=Counter((audit_target(r), str(r["Action"])) for r in change_rows(rows)),
        outcomes=Counter(
            (key_of_id(e["subject"]), e["type"])
            for e in stack.topic_events()
            if "/virtualmachines/" in str(e.get("subject", "")).lower()
        ),
        puts=writes_by_vm(log, "ProtectedItems_CreateOrUpdate"),
        triggers=writes_by_vm(log, "Backups_Trigger"),
        log=log,
        audit_rows=rows,
        attempts=delivered.attempts,
        out_of_order=out_of_order(stack),
        pending=len(delivered.pending),
        final_5xx=delivered.final_5xx,
        host_log=stack.host_log(),
    )


ATTENTION = "BackupAutopilot.VM.NeedsAttention"


def test_every_event_three_times_out_of_order_ends_as_once(workdir: Path) -> None:
    duplicated_stack = RelStack(workdir / "duplicated")
    plain_stack = RelStack(workdir / "plain")
    with running(duplicated_stack, plain_stack):
        duplicated, plain = in_parallel(
            lambda: story(duplicated_stack, True), lambda: story(plain_stack, False)
        )
    vms = new_vms(VMS, GROUP)
    _, expected = retag_plan(vms)
    enables = Counter(
        k for (k, action), n in duplicated.audit.items() if action == "enable-protection" for _ in range(n)
    )
    repeated = sum(n - 1 for (_, kind), n in duplicated.outcomes.items() if n > 1)
    differences = [
        name
        for name, a, b in (
            ("protected items", duplicated.items, plain.items),
            ("audit actions", duplicated.audit, plain.audit),
            ("outcome events", duplicated.outcomes, plain.outcomes),
            ("backups started", duplicated.triggers, plain.triggers),
        )
        if a != b
    ]
    wrong = {k: v for k, v in expected.items() if duplicated.items.get(k, ("", ""))[0] != v}
    outcome = (
        f"{len(expected) - len(wrong)}/{len(expected)} selected VMs end as the plain run; "
        f"{duplicated.attempts} deliveries ({plain.attempts} plain), {duplicated.out_of_order} out of order; "
        f"enables per VM max {max(enables.values(), default=0)}; first backups per VM max "
        f"{max(duplicated.triggers.values(), default=0)}; protection writes {sum(duplicated.puts.values())} "
        f"({sum(plain.puts.values())} plain); ARM requests {len(arm_requests(duplicated.log))} "
        f"({len(arm_requests(plain.log))} plain); differences: {', '.join(differences) or 'none'}"
        + (f" ({repeated} outcome events published again for a repeated delivery)" if repeated else "")
    )
    record(
        "2 events x3, shuffled",
        f"{VMS} VM creations + {sum(1 for _ in retag_plan(vms)[0])} tag changes",
        "eventDuplicates 3, eventShuffle",
        outcome,
        len(wrong) + duplicated.pending,
        duplicated.final_5xx,
        duplicated.seconds,
    )
    assert duplicated.out_of_order > 0, "the deliveries were not shuffled"
    assert duplicated.attempts >= COPIES * plain.attempts
    assert wrong == {}, wrong
    assert duplicated.items == plain.items
    assert set(enables) == set(vms.needs_enable) and max(enables.values()) == 1, enables
    assert max(duplicated.triggers.values()) == 1 and duplicated.triggers == plain.triggers
    assert duplicated.puts == plain.puts, (duplicated.puts - plain.puts, plain.puts - duplicated.puts)
    assert duplicated.audit == plain.audit, (duplicated.audit - plain.audit, plain.audit - duplicated.audit)
    assert duplicated.outcomes == plain.outcomes, (
        duplicated.outcomes - plain.outcomes,
        plain.outcomes - duplicated.outcomes,
    )
    assert duplicated.pending == 0 and duplicated.final_5xx == 0
    assert unexpected_failures(duplicated.host_log) == []
    assert unaudited_writes(duplicated.log, duplicated.audit_rows) == []


def test_needs_attention_is_announced_once_for_a_repeated_event(workdir: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    autopilot/protect/carry_out.py protect_vm publishes the outcome event of every invocation: a VM that needs
    attention (no vault in its region, no agent, Trusted Launch with a standard policy, ...) gets a
    NeedsAttention CloudEvent (a ticket) for each delivery of the same event and for each later write
    of the VM; the sweep announces a finding once (state 'finding'), protect-on-create does not
    """
    with RelStack(workdir / "stack") as stack:
        vm = {
            "subscriptionId": SUB,
            "resourceGroup": GROUP,
            "name": "no-vault-region",
            "location": "northeurope",
            "tags": {"backup-policy": "gold"},
        }
        stack.faults(eventDuplicates=COPIES, eventShuffle=True, seed=11)
        stack.seed(vms=[vm], emitEvents=True)
        assert wait_for(lambda: copies_delivered(stack, COPIES), timeout=60)
        kinds = Counter(e["type"] for e in stack.topic_events())
        assert kinds == Counter({ATTENTION: 1}), kinds
