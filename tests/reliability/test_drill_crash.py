"""Scenario 3, crash, for restore drills (issue 13: "a drill killed half way, kill -9 of the host, is
cleaned up by the next run"): the app's host is killed with SIGKILL while a drill is under way, then
started again, and the drill queue carries the drill to its end.

A protected, backed-up gold VM in westeurope per case; the drill is started over the HTTP API
(POST /api/drills, signed and keyed as a ticketing tool calls it) on the stack of separate processes,
with armsim's restore slow enough (restoreTransferSeconds) to be caught in flight. Three kill points:

- trigger: Restores_Trigger has reached Azure, the app waits on the operation's status for the job's
  id (held by a 503 with a long Retry-After, as test_crash.py holds its writes): the drill's record
  says Triggering, with no job id;
- restore: the restore job runs (the record says Restoring, with its job id);
- cleaning: a restored disk's delete has been sent, its operation's status is held: the record says
  Cleaning, the disk may be half gone, the restore's blob container is still there.

After the restart (a queue lease of a few seconds, as test_crash.py) the drill's message comes back
and carries it on. Checked per drill: it ends Passed (the restore itself never failed; what was cut
off was the app), exactly one restore was started for it (armsim's request log and the vault's
Restore jobs), nothing of it is left in the staging group (managed disks) or the staging account
(the restore's blob container), every audited step has one row, and the outcome event was
published once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from autopilot.kernel.signing import sign
from tests.reliability.soak import record
from tests.reliability.support import SUB, WEU_VAULT, Estate, RelStack, vm_id, wait_for

LEASE = 5  # seconds a received queue message stays invisible (devhost: 600)
HOLD = 20  # Retry-After of the 503 that holds the app where it is killed
TRANSFER = 15  # armsim's restore transfer, seconds: long enough to kill the host in it
GROUP = "rg-drill-crash"
STAGING = "rg-autopilot-drills-weu"
ACCOUNT = "stautopilotdrillweu"
SECRET = "drill-crash-hmac-secret"
ENDED = ("Passed", "Failed")
# Where each case kills the host: the operation held (None: none), the drill's status then.
CASES = {
    "trigger": ("ProtectedItemOperationStatuses_Get", "Triggering"),
    "restore": (None, "Restoring"),
    "cleaning": ("VirtualMachines_OperationStatus", "Cleaning"),
}


@dataclass
class Case:
    name: str
    vm: str
    drill_id: str = ""
    first: Any = None  # the answer to POST /api/drills
    killed_in: str = ""  # the drill's status at the kill
    at_kill: list[str] = field(default_factory=list)  # the restore's disks and containers then
    final: dict[str, Any] = field(default_factory=dict)
    restores_triggered: int = 0  # Restores_Trigger answered 202 for the VM
    restore_jobs: int = 0  # the vault's Restore jobs of the VM
    disks_left: list[str] = field(default_factory=list)
    containers_left: list[str] = field(default_factory=list)
    audit: list[str] = field(default_factory=list)  # the drill's audit outcomes
    events: int = 0
    back_after: float = 0.0  # seconds from the restart to the drill's next step
    seconds: float = 0.0

    def repeated_audit(self) -> list[str]:
        return [f"{n} x {o}" for o, n in Counter(self.audit).items() if n > 1]


def staging_accounts() -> list[dict[str, Any]]:
    """What `azd up` makes for drills in westeurope (devhost's stack seeds the same)."""
    return [
        {
            "subscriptionId": SUB,
            "resourceGroup": STAGING,
            "name": ACCOUNT,
            "location": "westeurope",
            "sku": "Standard_LRS",
            "kind": "StorageV2",
        }
    ]


def estate(names: list[str]) -> Estate:
    """Gold VMs in westeurope, protected, each with a backup two hours old (a point to drill)."""
    result = Estate()
    for name in names:
        vm = vm_id(GROUP, name)
        result.vms.append(
            {
                "subscriptionId": SUB,
                "resourceGroup": GROUP,
                "name": name,
                "location": "westeurope",
                "tags": {"backup-policy": "gold"},
            }
        )
        result.protections.append({"vmId": vm, "vaultId": WEU_VAULT, "policy": "gold", "state": "Protected"})
        result.jobs.append({"vmId": vm, "outcome": "Completed", "hoursAgo": 2})
    return result


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {"X-Autopilot-Timestamp": timestamp, "X-Autopilot-Signature": sign(SECRET, timestamp, body)}


def drill_row(stack: RelStack, drill_id: str) -> dict[str, Any]:
    return next((r for r in stack.state_rows("drill") if r.get("Id") == drill_id), {})


def _seen(stack: RelStack, operation: str, status: int) -> int:
    return sum(1 for e in stack.request_log() if e["operation"] == operation and e["status"] == status)


def staging_disks(stack: RelStack) -> list[str]:
    page = stack.arm(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/{STAGING}/providers/Microsoft.Compute/disks",
        api_version="2024-03-02",
    )
    return [str(d["name"]) for d in page.get("value", [])]


def staging_containers(stack: RelStack) -> list[str]:
    """The blob containers of the staging account (the data plane, with a storage token)."""
    token = stack._session.get(
        f"{stack.arm_url}/_armsim/identity/token",
        params={"api-version": "2019-08-01", "resource": "https://storage.azure.com/"},
        headers={"X-IDENTITY-HEADER": stack.identity_header},
        verify=str(stack.ca_path),
        timeout=30,
    ).json()["access_token"]
    response = stack._session.get(
        f"{stack.arm_url}/{ACCOUNT}.blob/?comp=list",
        headers={"Authorization": f"Bearer {token}", "x-ms-version": "2025-01-05"},
        verify=str(stack.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [part.split("</Name>")[0] for part in response.text.split("<Name>")[1:]]


def leftovers(stack: RelStack, vm: str) -> list[str]:
    """What a restore of the VM has in the staging group and account: its disks, its blob container."""
    name = vm.rsplit("/", 1)[-1].lower()
    disks = [f"disk {d}" for d in staging_disks(stack) if d.lower().startswith(f"{name}-")]
    token = name.replace("-", "")  # armsim names the container after the VM, letters and digits
    return disks + [f"container {c}" for c in staging_containers(stack) if c.startswith(token)]


def restore_jobs(stack: RelStack, vm: str) -> int:
    page = stack.arm(
        "GET", f"{WEU_VAULT}/backupJobs?$filter=operation eq 'Restore'", api_version="2025-02-01"
    )
    return sum(
        1
        for j in page.get("value", [])
        if str(j["properties"].get("entityFriendlyName", "")).lower() == vm.rsplit("/", 1)[-1].lower()
    )


def crash_a_drill(stack: RelStack, case: Case) -> None:
    """POST /api/drills, kill the host at the case's point, start it again, wait for the drill's end."""
    started = time.monotonic()
    held = CASES[case.name][0]
    if held:  # only the drill's step of the case polls this operation
        before = _seen(stack, held, 503)
        stack.faults(rate=1.0, kinds={"503": 1}, retryAfter=HOLD, operations=[held], seed=3)
    body = json.dumps({"vm": case.vm, "reason": f"drill crash test: {case.name}"}).encode()
    answer = stack.app("POST", "/api/drills", data=body, headers=signed(body))
    assert answer.status_code == 202, answer.text
    case.first = answer.json()
    case.drill_id = str(case.first["id"])
    if held:
        assert wait_for(lambda: _seen(stack, held, 503) > before, timeout=90, interval=0.05), (
            f"the drill did not reach {held}: {drill_row(stack, case.drill_id).get('Status')}"
        )
    else:
        assert wait_for(
            lambda: drill_row(stack, case.drill_id).get("JobStatus") == "InProgress",
            timeout=60,
            interval=0.05,
        ), f"the drill did not reach its restore: {drill_row(stack, case.drill_id)}"
    assert stack.host is not None
    stack.host.kill()
    stack.no_faults()
    case.killed_in = str(drill_row(stack, case.drill_id).get("Status"))
    case.at_kill = leftovers(stack, case.vm)
    killed_at = drill_row(stack, case.drill_id).get("Updated")
    restarted = time.monotonic()
    stack.start_host()
    assert wait_for(lambda: drill_row(stack, case.drill_id).get("Updated") != killed_at, timeout=120), (
        "the drill did not move after the restart"
    )
    case.back_after = time.monotonic() - restarted
    assert wait_for(lambda: drill_row(stack, case.drill_id).get("Status") in ENDED, timeout=180), (
        f"the drill did not end after the restart: {drill_row(stack, case.drill_id)}"
    )
    case.final = stack.app("GET", f"/api/drills/{case.drill_id}").json()
    # The drill's record ends first; its last audit row and its outcome event follow it.
    wait_for(lambda: outcome_events(stack, case.drill_id) and ended_audit(stack, case.drill_id), timeout=30)
    case.seconds = time.monotonic() - started


def outcome_events(stack: RelStack, drill_id: str) -> int:
    return sum(
        1
        for e in stack.topic_events()
        if str(e.get("eventType", e.get("type", ""))).startswith("BackupAutopilot.Drill.")
        and (e.get("data") or {}).get("id") == drill_id
    )


def audit_outcomes(stack: RelStack, drill_id: str) -> list[str]:
    rows = sorted(stack.audit_rows(), key=lambda r: str(r.get("Timestamp", "")))
    return [str(r.get("Outcome")) for r in rows if r.get("DrillId") == drill_id]


def ended_audit(stack: RelStack, drill_id: str) -> bool:
    return any(o.startswith(("drill passed", "drill failed")) for o in audit_outcomes(stack, drill_id))


def examine(stack: RelStack, case: Case) -> None:
    name = case.vm.rsplit("/", 1)[-1]
    case.restores_triggered = sum(
        1
        for e in stack.request_log()
        if e["operation"] == "Restores_Trigger"
        and e["status"] == 202
        and f"vm;iaasvmcontainerv2;{GROUP};{name}".lower() in e["path"].lower()
    )
    case.restore_jobs = restore_jobs(stack, case.vm)
    left = leftovers(stack, case.vm)
    case.disks_left = [x for x in left if x.startswith("disk ")]
    case.containers_left = [x for x in left if x.startswith("container ")]
    case.audit = audit_outcomes(stack, case.drill_id)
    case.events = outcome_events(stack, case.drill_id)


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Case]]:
    stack = RelStack(
        tmp_path_factory.mktemp("drill-crash"),
        lease_seconds=LEASE,
        armsim_config={"restoreTransferSeconds": TRANSFER, "restoreFinalizeSeconds": 1.0},
        settings={
            "AUTOPILOT_HMAC_SECRET": SECRET,
            "AUTOPILOT_DRILL_POLL_SECONDS": "1",
        },
    )
    cases = {name: Case(name, vm_id(GROUP, f"vm-drill-{name}")) for name in CASES}
    with stack:
        stack.seed(storageAccounts=staging_accounts())
        estate([c.vm.rsplit("/", 1)[-1] for c in cases.values()]).seed(stack)
        for case in cases.values():
            crash_a_drill(stack, case)
        for case in cases.values():  # after all: a late second step of an earlier drill would show
            examine(stack, case)
    for case in cases.values():
        wrong = (
            (case.final.get("status") != "Passed")
            + (case.restores_triggered != 1)
            + len(case.disks_left)
            + len(case.containers_left)
            + len(case.repeated_audit())
            + (case.events != 1)
        )
        record(
            f"3 crash: drill, {case.name}",
            "1 drill (POST /api/drills), restore of 16 s",
            f"SIGKILL of the host with the drill {case.killed_in}"
            + (f" ({CASES[case.name][0]} held by a 503)" if CASES[case.name][0] else ""),
            f"{case.final.get('status')} ({case.final.get('outcome')}) after the restart, next step "
            f"{case.back_after:.1f} s after it (lease {LEASE} s, the killed runner's claim 15 s); {case.restores_triggered} restore(s) "
            f"triggered, {case.restore_jobs} Restore job(s); at the kill {len(case.at_kill)} of its disks and "
            f"containers still there, left: {len(case.disks_left)} disk(s), "
            f"{len(case.containers_left)} container(s); {len(case.audit)} audit rows, "
            f"{len(case.repeated_audit())} repeated; {case.events} outcome event(s)",
            wrong,
            0 if case.first is not None else 1,
            case.seconds,
        )
    yield cases


@pytest.mark.parametrize("name", list(CASES))
def test_a_drill_killed_half_way_ends_and_leaves_nothing_behind(crashes: dict[str, Case], name: str) -> None:
    case = crashes[name]
    assert case.killed_in == CASES[name][1], f"the kill landed with the drill {case.killed_in}"
    assert case.final["status"] == "Passed", json.dumps(case.final, indent=1)
    assert case.final["cleanedUp"] is True
    assert case.restores_triggered == 1, f"{case.restores_triggered} restores started for one drill"
    assert case.restore_jobs == 1
    assert case.disks_left == [] and case.containers_left == []


def test_the_cleaning_crash_came_with_the_restore_still_in_staging(crashes: dict[str, Case]) -> None:
    """The kill landed where intended: what the restore made was there to clean up."""
    assert [x for x in crashes["cleaning"].at_kill if x.startswith("container ")], crashes["cleaning"].at_kill


@pytest.mark.parametrize("name", list(CASES))
def test_a_drill_killed_half_way_audits_each_step_once_and_announces_its_end_once(
    crashes: dict[str, Case], name: str
) -> None:
    case = crashes[name]
    assert case.repeated_audit() == [], case.audit
    assert sum(1 for o in case.audit if o.startswith("restore job ")) == 2, case.audit  # started/found, ended
    assert sum(1 for o in case.audit if o.startswith("drill passed")) == 1, case.audit
    assert case.events == 1, f"{case.events} outcome events"
