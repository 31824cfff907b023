"""Scenario 1, ARM faults: a fifth of ARM requests fail (429 with Retry-After, 500, 503, 409
BMSUserErrorObjectLocked) while a sweep fixes an estate and protect-on-create handles new VMs.

Three stacks run side by side: the faulted run, its fault-free twin (the same estate and events, for
the request budget: faulted <= 1.5 x fault-free), and a slow-operations run (lroSeconds > 0, the
same faults) on a smaller load: every protection write then waits for its operation (the app polls
its status every few seconds), and the sweep fixes VMs one at a time.

The sweep runs first, then the new VMs' events arrive. A fix refused with a transient error is left
for the next sweep (a bug, see test_a_sweep_fix_refused_once_by_a_busy_item_is_retried_in_the_run),
so the faulted sweep runs again, as the schedule would, until every VM is fixed (at most 5 runs).

Checked from armsim's request log (`/_armsim/stats?log=1`), the host's log, Event Grid's delivery
record and the vaults' protected items:
- every selected VM ends protected under the rules' policy, with exactly one successful
  ProtectedItems_CreateOrUpdate if it needed one and none otherwise, and at most one backup trigger;
- every Event Grid event is answered 200 in the end (none dead-lettered), no sweep unit is poisoned,
  and no invocation failed with anything but a retry signal (TransientError, azure-core's errors);
- ARM requests of the faulted run <= 1.5 x those of the fault-free run;
- no request was sent again before the Retry-After of the 429 or 503 it followed had passed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.soak import record, sized
from tests.reliability.support import (
    SUB,
    Deliveries,
    Estate,
    RelStack,
    all_delivered,
    arm_requests,
    deliveries,
    failed_invocations,
    function_timeout_seconds,
    in_parallel,
    lro_waits,
    new_vms,
    retried_ids,
    retry_after_violations,
    running,
    sweep_estate,
    unaudited_writes,
    unexpected_failures,
    unprotected,
    vm_id,
    wait_for,
    writes_by_vm,
)

FAULTS = {"rate": 0.2, "kinds": {"429": 1, "500": 1, "503": 1, "409": 1}, "retryAfter": 1, "seed": 7}
FAULTS_TEXT = "20% of ARM requests: 429 (Retry-After 1 s), 500, 503 (Retry-After 1 s), 409 ObjectLocked"
VMS = sized(100, 1000)
FIXES = sized(10, None)  # VMs of the sweep that need a protection write (None: every 5th of them)
EVENTS = sized(20, 100)
SLOW_LRO_SECONDS = 2
SLOW_VMS = sized(20, 100)
SLOW_FIXES = sized(1, 20)  # each waits for its operation (the app polls every few seconds)
SLOW_EVENTS = sized(1, 20)
MAX_SWEEPS = 5  # the faulted sweep runs again, as the schedule would, until every VM is fixed
TIMEOUT = sized(300, 3600)


@dataclass
class Run:
    seconds: float
    report: dict[str, Any]
    log: list[dict[str, Any]]
    delivered: Deliveries
    host_log: str
    audit: list[dict[str, Any]]
    wrong: dict[str, str]
    poison: int
    sweep: Estate
    events: Estate
    first_pass: list[dict[str, Any]] = field(default_factory=list)  # requests of the first sweep + events
    wrong_after_first: dict[str, str] = field(default_factory=dict)
    sweeps: int = 1

    @property
    def needed(self) -> set[str]:
        return self.sweep.needs_write | self.events.needs_write

    @property
    def expected(self) -> dict[str, str]:
        return {**self.sweep.expected, **self.events.expected}


def run(stack: RelStack, faults: dict[str, Any] | None, sweep: Estate, events: Estate) -> Run:
    """Seed the estate; under the faults, run the sweep, then let the new VMs' events arrive; wait
    for both to finish; then read everything the checks need (with the faults off).

    The events come after the sweep's run so that the two never act on one VM at the same time:
    within one host they would both write it (test_two_deliveries_of_one_event_at_the_same_time_...)."""
    sweep.seed(stack)
    if faults:
        stack.faults(**faults)
    started = time.monotonic()
    report = stack.run_sweep(timeout=TIMEOUT)
    events.seed(stack, emit_events=True)
    expected_events = len(events.vms)
    wait_for(lambda: deliveries(stack).events >= expected_events and not deliveries(stack).pending, TIMEOUT)
    first_pass = stack.request_log()
    wrong_after_first = unprotected(stack, {**sweep.expected, **events.expected})
    reports = [report]
    wrong = wrong_after_first
    while wrong and len(reports) < MAX_SWEEPS:
        # What the next scheduled sweeps do (under the same faults): the product leaves VMs whose fix
        # failed for them (see test_a_sweep_fix_refused_once_by_a_busy_item_is_retried_in_the_run).
        reports.append(stack.run_sweep(timeout=TIMEOUT))
        wrong = unprotected(stack, {**sweep.expected, **events.expected})
    stack.no_faults()
    return Run(
        seconds=time.monotonic() - started,
        report=report,
        log=stack.request_log(),
        first_pass=first_pass,
        wrong_after_first=wrong_after_first,
        sweeps=len(reports),
        delivered=deliveries(stack),
        host_log=stack.host_log(),
        audit=stack.audit_rows(),
        wrong=unprotected(stack, {**sweep.expected, **events.expected}),
        poison=len(stack.queue_messages("autopilot-sweep-poison")),
        sweep=sweep,
        events=events,
    )


def exactly_once(result: Run) -> list[str]:
    """Problems with 'one protection write per VM that needed one, none for the others, at most one
    backup per VM'."""
    problems = []
    puts = writes_by_vm(result.log, "ProtectedItems_CreateOrUpdate")
    for key in sorted(result.needed):
        if puts[key] != 1:
            problems.append(f"{key}: {puts[key]} protection writes, expected 1")
    for key in sorted(set(puts) - result.needed):
        problems.append(f"{key}: {puts[key]} protection writes, expected none")
    triggers = writes_by_vm(result.log, "Backups_Trigger")
    problems += [f"{k}: {n} backups started" for k, n in sorted(triggers.items()) if n > 1]
    return problems


def missing_first_backups(result: Run) -> list[str]:
    """VMs this run enabled (the rules ask for a first backup) that never got one."""
    triggers = writes_by_vm(result.log, "Backups_Trigger")
    return sorted(k for k in result.sweep.needs_enable | result.events.needs_enable if not triggers[k])


def summary(result: Run, baseline: Run | None) -> tuple[str, int, int]:
    arm = arm_requests(result.log)
    statuses = Counter(e["status"] for e in arm)
    puts = sum(writes_by_vm(result.log, "ProtectedItems_CreateOrUpdate").values())
    triggers = sum(writes_by_vm(result.log, "Backups_Trigger").values())
    failed = Counter(f"{e}" for _, e in failed_invocations(result.host_log))
    selected = len(result.expected)
    parts = [
        f"{selected - len(result.wrong_after_first)}/{selected} selected VMs protected after sweep 1"
        + (
            f", {selected - len(result.wrong)}/{selected} after sweep {result.sweeps}"
            if result.sweeps > 1
            else ""
        ),
        f"{puts} protection writes for {len(result.needed)} VMs needing one ({len(exactly_once(result))} off)",
        f"{triggers} backups (max 1/VM)",
    ]
    if baseline is not None:
        first, base = len(arm_requests(result.first_pass)), len(arm_requests(baseline.first_pass))
        parts.append(f"ARM requests {first} = {first / base:.2f}x fault-free {base}")
    parts += [
        f"{statuses[429]} x 429, {statuses[503]} x 503, {len(retry_after_violations(result.log, 1))} sent before Retry-After",
        f"{retried_ids(arm)} requests retried by azure-core",
        f"{result.delivered.retried} Event Grid deliveries retried, {result.delivered.dead_letters} dead-lettered",
        "failed invocations retried: " + (", ".join(f"{n} {e}" for e, n in failed.items()) or "none"),
        f"sweep 1 report: {result.report['summary'].get('byAction', {}).get('fixed', 0)} fixed",
        f"{len(missing_first_backups(result))} enabled VMs without a first backup",
        f"{len(unaudited_writes(result.log, result.audit))} writes without an audit row",
    ]
    lost = (
        len(result.wrong)
        + len(result.delivered.pending)
        + result.poison
        + len(missing_first_backups(result))
        + len(unaudited_writes(result.log, result.audit))
    )
    return "; ".join(parts), lost, result.delivered.final_5xx


def test_arm_faults_sweep_and_protect_on_create(workdir: Path) -> None:
    faulted = RelStack(workdir / "faulted", name="faulted")
    clean = RelStack(workdir / "clean", name="fault-free")
    slow = RelStack(workdir / "slow", name="slow", armsim_config={"lroSeconds": SLOW_LRO_SECONDS})
    with running(faulted, clean, slow):
        result, baseline, slow_result = in_parallel(
            lambda: run(faulted, FAULTS, sweep_estate(VMS, fixes=FIXES), new_vms(EVENTS, "rg-new")),
            lambda: run(clean, None, sweep_estate(VMS, fixes=FIXES), new_vms(EVENTS, "rg-new")),
            lambda: run(
                slow,
                FAULTS,
                sweep_estate(SLOW_VMS, fixes=SLOW_FIXES),
                new_vms(SLOW_EVENTS, "rg-new", selected_only=True),
            ),
        )

    outcome, lost, five_xx = summary(result, baseline)
    load = f"sweep of {VMS} VMs ({len(result.sweep.needs_write)} to fix) + {EVENTS} VM-create events"
    record("1 ARM faults", load, FAULTS_TEXT, outcome, lost, five_xx, result.seconds)
    slow_outcome, slow_lost, slow_5xx = summary(slow_result, None)
    waits = sorted(lro_waits(slow_result.log))
    if waits:
        median = waits[len(waits) // 2]
        slow_outcome += (
            f"; protection writes waited {median:.0f} s (median), {waits[-1]:.0f} s (max) for their operation "
            f"(polled every few seconds when a status has no Retry-After): one sweep unit fits "
            f"~{function_timeout_seconds() / max(median, 1):.0f} such fixes in functionTimeout "
            f"{function_timeout_seconds():.0f} s"
        )
    record(
        "1 ARM faults, slow LROs",
        f"sweep of {len(slow_result.sweep.vms)} VMs ({len(slow_result.sweep.needs_write)} to fix) + {SLOW_EVENTS} VM-create events",
        f"the same + lroSeconds {SLOW_LRO_SECONDS}",
        slow_outcome,
        slow_lost,
        slow_5xx,
        slow_result.seconds,
    )

    for name, run_result in (("faulted", result), ("fault-free", baseline), ("slow", slow_result)):
        assert not run_result.report["summary"]["failedUnits"], (name, run_result.report["summary"])
        assert run_result.poison == 0, f"{name}: a sweep unit ended in the poison queue"
        assert not run_result.delivered.pending, f"{name}: events never answered 200: {run_result.delivered}"
        assert run_result.delivered.dead_letters == 0, f"{name}: {run_result.delivered}"
        assert run_result.wrong == {}, (
            f"{name}: selected VMs not protected as the rules say: {run_result.wrong}"
        )
        assert exactly_once(run_result) == [], f"{name}: {exactly_once(run_result)}"
        assert retry_after_violations(run_result.log, 1) == [], retry_after_violations(run_result.log, 1)[:5]
        assert unexpected_failures(run_result.host_log) == [], unexpected_failures(run_result.host_log)
    assert Counter(e["status"] for e in arm_requests(result.log))[429] > 0, "no 429 was injected"
    assert baseline.wrong_after_first == {}, baseline.wrong_after_first
    assert len(arm_requests(result.first_pass)) <= 1.5 * len(arm_requests(baseline.first_pass)), outcome


# -- the bugs the faulted run shows, each made deterministic -------------------------------------------
def one_vm_stack(workdir: Path, **settings: str) -> RelStack:
    return RelStack(workdir / "stack", settings=settings)


def test_a_sweep_fix_refused_once_by_a_busy_item_is_retried_in_the_run(workdir: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    autopilot/sweep/run.py _fix: a fix refused with a transient error (409 BMSUserErrorObjectLocked,
    throttling after azure-core's retries) becomes 'fix-failed' and is not retried in the run; the VM
    stays unprotected until the next scheduled sweep (6 h by default)
    """
    with one_vm_stack(workdir) as stack:
        estate = sweep_estate(20, fixes=1)
        estate.seed(stack)
        stack.fail_first("ProtectedItems_CreateOrUpdate")
        report = stack.run_sweep(timeout=120)
        stack.no_faults()
        actions = Counter(f["action"] for f in report["findings"])
        assert actions["fix-failed"] == 0, report["findings"]
        assert unprotected(stack, estate.expected) == {}


def test_a_first_backup_refused_once_is_started_on_the_retry(workdir: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    autopilot/protect/carry_out.py _first_backup/Decision.first_backup: the first backup is started only in the
    invocation that enables protection; when its trigger is refused with a transient error, the
    invocation raises, Event Grid redelivers, the VM is then already protected and no first backup is
    ever started
    """
    with one_vm_stack(workdir) as stack:
        vms = new_vms(1, "rg-new", selected_only=True)
        stack.fail_first("Backups_Trigger")
        vms.seed(stack, emit_events=True)
        assert wait_for(lambda: all_delivered(stack, 1), timeout=60), deliveries(stack)
        stack.no_faults()
        log = stack.request_log()
        assert sum(1 for e in log if e["operation"] == "Backups_Trigger" and e["status"] == 409) == 1
        assert writes_by_vm(log, "Backups_Trigger") == Counter(vms.needs_enable), (
            "the VM was protected but its first backup was never started"
        )


def test_two_deliveries_of_one_event_at_the_same_time_make_one_protection_write(workdir: Path) -> None:
    """Regression test: a bug this suite found (issue 7), fixed since:
    autopilot/kernel/state.py StateStore.claim: the claim's owner is the process (one uuid per StateStore), so
    a second invocation in the same host (a duplicate delivery, or the sweep) is granted the claim that
    another invocation holds, and both protect the VM: two protection writes, two audit rows
    """
    with one_vm_stack(workdir) as stack:
        vms = new_vms(1, "rg-new", selected_only=True)
        vms.seed(stack)  # no event from armsim: the test delivers it, twice
        vm = vm_id("rg-new", vms.vms[0]["name"])
        event = {
            "id": "dup-1",
            "subject": vm,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {"operationName": "Microsoft.Compute/virtualMachines/write", "resourceUri": vm},
            "dataVersion": "",
            "metadataVersion": "1",
            "topic": f"/subscriptions/{SUB}",
        }
        # The first delivery's protection write is throttled (503, Retry-After 2 s) while it holds the
        # claim; the second delivery arrives meanwhile.
        stack.faults(
            rate=0.5, kinds={"503": 1}, retryAfter=2, operations=["ProtectedItems_CreateOrUpdate"], seed=1
        )
        first = threading.Thread(target=lambda: stack.webhook(json.dumps([event])))
        first.start()
        time.sleep(0.7)
        stack.webhook(json.dumps([event]))
        first.join(timeout=60)
        stack.no_faults()
        puts = writes_by_vm(stack.request_log(), "ProtectedItems_CreateOrUpdate")
        assert puts == Counter(vms.needs_write), f"{puts} protection writes for one VM"


def test_a_first_backup_survives_409s_on_its_trigger_and_on_the_reads_that_follow(workdir: Path) -> None:
    """The open question of issue 12: an earlier full soak left two VMs enabled without a first backup
    after 409s on both the trigger and the next read of the item. Shown here deterministically: the
    trigger and every Backup read after it answer 409 (ObjectLocked) until the test sees both, then
    Azure recovers; the VM ends with exactly one first backup. (The path that lost it is gone: the
    first backup's intent is the on-demand ledger and the pending marker, a refused trigger keeps the
    marker, a delivery that reads the item again finishes it, and only a permanent failure, never a
    409 from a busy item, closes it.)"""
    with one_vm_stack(workdir) as stack:
        vms = new_vms(1, "rg-new", selected_only=True)
        stack.faults(
            rate=1.0,
            kinds={"409": 1},
            operations=["Backups_Trigger", "ProtectedItems_Get", "BackupStatus_Get"],
        )
        vms.seed(stack, emit_events=True)

        def refused(operation: str) -> bool:
            return any(e["operation"] == operation and e["status"] == 409 for e in stack.request_log())

        assert wait_for(lambda: refused("Backups_Trigger"), timeout=60)
        assert wait_for(lambda: refused("BackupStatus_Get") or refused("ProtectedItems_Get"), timeout=120)
        stack.no_faults()
        assert wait_for(lambda: all_delivered(stack, 1), timeout=180), deliveries(stack)
        log = stack.request_log()
    assert writes_by_vm(log, "Backups_Trigger") == Counter(vms.needs_enable), (
        "the VM was protected but its first backup was never started"
    )
    assert writes_by_vm(log, "ProtectedItems_CreateOrUpdate") == Counter(vms.needs_enable)
