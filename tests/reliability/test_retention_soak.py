"""Scenario 8, state with a lifetime: the state and audit tables stay bounded.

A simulated month (35 days) of the rows the app writes, of every kind, is written through the real
StateStore and AuditLog (with a clock set to each row's time) into the stack's Azurite: signed
backup-now requests (a signature, a request record, a ledger row and audit rows each), first backups,
policy edits, four sweeps a day (run, finished, history, leftover fixes, cursors, job alerts), VMs
announced, changes and claims that crashes left behind, and each day an hour in which a client keeps
sending bad signatures (counted and sampled). Then the pruning timer runs as the host runs it (the
admin API of devhost, in the app's own process) and the test checks, row by row against the
lifetimes of docs/STATE.md, that exactly what expired is gone: what is younger stays, and so do a
claim held at that moment, a pending change of that VM (in flight) and a 40-day-old backup-now
record whose job still runs at Azure (armsim). Two runs at once then delete a second batch of
expired rows, each row once, and a last run finds nothing to delete. The sizes before and after are in
the table's row.

Lifetimes shortened so that a month shows each of them at work: audit 14 days, backup-now records 21
days, sweep 7 days (defaults 400, 90 and 30).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azure.data.tables import TableClient

from autopilot.kernel.audit import AuditLog
from autopilot.kernel.state import StateStore, row_key
from tests.armsim_support import sandbox_vault_policies
from tests.reliability.soak import record, sized
from tests.reliability.support import NEVER, SUB, WEU_VAULT, RelStack, vm_id, wait_for

DAYS = 35
AUDIT_DAYS, BACKUP_DAYS, SWEEP_DAYS = 14, 21, 7
REQUESTS = sized(10, 200)  # signed backup-now requests a day
FIRST_BACKUPS = sized(5, 100)  # VMs protected (and backed up once) a day
SWEEP_FIXES = sized(10, 300)  # changes the sweep makes a day (audit rows)
POLICY_EDITS = sized(2, 20)
REFUSALS = sized(40, 500)  # bad signatures in one hour a day
ALERTS = sized(2, 20)  # new failed-backup alerts a day
STALE_STATUS = 0.3  # share of request records without a callback: their status stays InProgress
WRITERS = 16  # threads writing the month (each table client has a connection pool as large)
GROUP = "rg-soak"
HELD_VM = vm_id(GROUP, "vm-held")

# The lifetimes as docs/STATE.md gives them: kind -> (the time property, how long).
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
LIFETIMES: dict[str, tuple[str, dt.timedelta] | None] = {
    "claim": ("Expires", HOUR),
    "signature": ("Seen", HOUR),
    "on-demand": ("Started", 3 * DAY),
    "backup": ("Created", BACKUP_DAYS * DAY),
    "policy-edit": ("At", DAY),
    "pending": ("Written", 7 * DAY),
    "announced": ("Written", 30 * DAY),
    "sweep-run": ("Started", SWEEP_DAYS * DAY),
    "sweep-finished": ("At", SWEEP_DAYS * DAY),
    "sweep-fix": ("Written", SWEEP_DAYS * DAY),
    "sweep-history": ("At", SWEEP_DAYS * DAY),
    "sweep-cursor": ("Since", SWEEP_DAYS * DAY),
    "job-alert": ("Written", SWEEP_DAYS * DAY),
    "finding": None,  # the sweep's to delete
    "secret": None,  # the deployment's
}
EXECUTED = re.compile(
    r"Executed 'Functions\.prune_timer' \((Succeeded|Failed), Id=[0-9a-f-]+, Duration=(\d+)ms\)"
)
SUMMARY = re.compile(r"prune: (\d+) expired row\(s\) deleted in ([\d.]+) s.*")
GONE = re.compile(r"(\d+) already gone")
KIND_LINE = re.compile(r"prune (?:state|audit) ([a-z-]+): \d+ deleted in ([\d.]+) s")


def table(stack: RelStack, name: str) -> TableClient:
    """A table client with a connection for each writer thread."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=WRITERS * 2)
    session.mount("http://", adapter)
    return TableClient.from_connection_string(
        stack.connection_string, name, transport=RequestsTransport(session=session, session_owner=False)
    )


class ThreadClock:
    """Each writer thread's own simulated time."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self) -> dt.datetime:
        return getattr(self.local, "at", None) or dt.datetime.now(dt.UTC)


class Month:
    """The app's tables, written as the app writes them, at the times the test says."""

    def __init__(self, stack: RelStack, now: dt.datetime) -> None:
        self.clock = ThreadClock()
        self.state_table = table(stack, "autopilotstate")
        self.audit_table = table(stack, "autopilotaudit")
        self.state = StateStore(self.state_table, clock=self.clock)
        self.audit = AuditLog(self.audit_table, clock=self.clock)
        self.now = now
        self.rng = random.Random(8)
        self.writes: list[tuple[dt.datetime, Callable[[], object]]] = []

    def at(self, when: dt.datetime, write: Callable[[], object]) -> None:
        self.writes.append((when, write))

    def flush(self) -> int:
        writes, self.writes = self.writes, []

        def run(item: tuple[dt.datetime, Callable[[], object]]) -> None:
            self.clock.local.at = item[0]
            item[1]()

        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(run, writes))
        return len(writes)

    # -- what each part of the app writes ------------------------------------------------------
    def backup_request(self, t: dt.datetime, n: int, running_job: str | None = None) -> None:
        request_id = f"CHG{n:07d}"
        vm = vm_id(GROUP, f"vm-{n % 500:04d}")
        signature = f"sha256={uuid.uuid4().hex}"
        callback = self.rng.random() > STALE_STATUS
        status = "InProgress" if not callback or running_job else self.rng.choice(("Completed", "Failed"))
        job = running_job or str(uuid.uuid4())
        record = {
            "RequestId": request_id,
            "BodyHash": uuid.uuid4().hex,
            "VmId": vm,
            "RetainUntil": t + 30 * DAY,
            "Reason": "change window",
            "CallbackUrl": "https://itsm.example.com/hook" if callback else "",
            "CallbackStatus": "sent" if callback and not running_job else "none",
            "CallbackAttempts": 1 if callback else 0,
            "Status": status,
            "Created": t,
            "Updated": t + dt.timedelta(minutes=40),
            "JobId": job,
            "Vault": WEU_VAULT,
        }
        self.at(t, lambda: self.state.put_once("signature", signature, {"Seen": t}))
        self.at(t, lambda: self.state.put_once("backup", f"backup-request:{request_id}", record))
        self.at(t, lambda: self.ledger(t, "backup-now", request_id, vm, job))
        for outcome in ("starting", f"started job {job}"):
            self.at(
                t,
                lambda o=outcome: self.audit.record(
                    vm_id=vm, action="backup-now", reason=request_id, outcome=o, source="http"
                ),
            )
        if callback:
            later = t + dt.timedelta(minutes=45)
            self.at(
                later,
                lambda: self.audit.record(
                    vm_id=vm, action="backup-callback", reason=job, outcome="sent (attempt 1)", source="timer"
                ),
            )

    def ledger(self, t: dt.datetime, purpose: str, ref: str, vm: str, job: str) -> None:
        self.state.put(
            "on-demand",
            f"{purpose}:{ref}",
            {
                "VmKey": vm.lower(),
                "VmId": vm,
                "Vault": WEU_VAULT,
                "Purpose": purpose,
                "RetainUntil": t + 30 * DAY,
                "Started": t,
                "OperationId": uuid.uuid4().hex,
                "JobId": job,
            },
        )

    def first_backup(self, t: dt.datetime, n: int) -> None:
        vm = vm_id(GROUP, f"new-{n:06d}")
        for action, outcome in (
            ("enable-protection", "starting"),
            ("enable-protection", "done: vault rsv-autopilot-weu"),
            ("first-backup", "requested"),
        ):
            self.at(
                t,
                lambda a=action, o=outcome: self.audit.record(
                    vm_id=vm, action=a, reason="tag backup-policy=gold", outcome=o, source="event"
                ),
            )
        self.at(t, lambda: self.ledger(t, "first-backup", vm, vm, str(uuid.uuid4())))

    def day(self, start: dt.datetime, index: int) -> None:
        rng = self.rng
        end = min(start + DAY, self.now - dt.timedelta(minutes=1))  # today: until now

        def when() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))

        for i in range(REQUESTS):
            self.backup_request(when(), index * REQUESTS + i)
        for i in range(FIRST_BACKUPS):
            self.first_backup(when(), index * FIRST_BACKUPS + i)
        for _ in range(POLICY_EDITS):
            t = when()
            self.at(
                t,
                lambda t=t: self.state.put(
                    "policy-edit", f"{WEU_VAULT}|{uuid.uuid4()}", {"Vault": WEU_VAULT.lower(), "At": t}
                ),
            )
            self.at(
                t,
                lambda: self.audit.record(
                    vm_id=WEU_VAULT,
                    action="update-policy",
                    reason="drift",
                    outcome="policy gold now matches the rules",
                    source="sweep",
                ),
            )
        for run in range(4):
            t = start + dt.timedelta(hours=6 * run, minutes=1)
            if t > end:
                break
            run_id = t.strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
            self.at(
                t,
                lambda t=t, r=run_id: self.state.put(
                    "sweep-run", r, {"Units": f'["{SUB}"]', "DryRun": False, "Started": t}
                ),
            )
            self.at(t, lambda t=t, r=run_id: self.state.put_once("sweep-finished", r, {"At": t}))
            self.at(
                t,
                lambda t=t, r=run_id: self.state.put(
                    "sweep-history", r, {"RunId": r, "Selected": 900, "Compliant": 880, "At": t}
                ),
            )
            if run == 0:  # a run that never finished left its fixes
                self.at(
                    t,
                    lambda r=run_id: self.state.put(
                        "sweep-fix", f"{r}|{HELD_VM}", {"RunId": r, "Unit": SUB, "Finding": "{}"}
                    ),
                )
        for _ in range(SWEEP_FIXES):
            t, vm = when(), vm_id(GROUP, f"vm-{rng.randrange(500):04d}")
            self.at(
                t,
                lambda t=t, vm=vm: self.audit.record(
                    vm_id=vm, action="change-policy", reason="wrong policy", outcome="done", source="sweep"
                ),
            )
        for i in range(ALERTS):
            self.at(
                when(),
                lambda i=i: self.state.put(
                    "job-alert",
                    f"{WEU_VAULT}|iaasvmcontainerv2;{GROUP};gone-{index}-{i}",
                    {"Vault": WEU_VAULT, "JobId": str(uuid.uuid4()), "Target": "x", "Finding": "{}"},
                ),
            )
        self.at(
            when(),
            lambda: self.state.put(
                "announced",
                vm_id(GROUP, f"attention-{index}"),
                {"Signature": "needs-attention|['VmAgentNotReady']"},
            ),
        )
        self.at(
            when(),
            lambda: self.state.put(
                "pending",
                vm_id(GROUP, f"crashed-{index}"),
                {"Action": "enable-protection", "Reason": "r", "FirstBackup": True, "Kind": "protected"},
            ),
        )
        self.at(
            when(), lambda: self.state._claim(f"protect:{vm_id(GROUP, f'crashed-{index}')}", 30)
        )  # its holder died
        if index % 10 == 0:  # a vault removed from the rules leaves its cursor
            self.at(
                when(),
                lambda: self.state.put("sweep-cursor", f"jobs:{WEU_VAULT}-old-{index}", {"Since": start}),
            )
        flood = when().replace(minute=0, second=0, microsecond=0)
        for _ in range(REFUSALS):
            t = min(flood + dt.timedelta(seconds=rng.uniform(0, 3599)), end)
            self.at(
                t,
                lambda: self.audit.refusal(
                    kind="signature-expired",
                    vm_id="-",
                    action="backup-now",
                    reason="The timestamp is more than 5 minutes away from now",
                    outcome="refused 401",
                    source="http",
                ),
            )

    def month(self) -> int:
        first = (self.now - DAYS * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
        for index in range(DAYS + 1):
            start = first + index * DAY
            self.day(start, index)
        # Written again and again: the live vaults' cursors, a VM whose backups keep failing, findings.
        for vault in (WEU_VAULT, WEU_VAULT.replace("weu", "eus")):
            self.at(
                self.now - dt.timedelta(hours=5),
                lambda v=vault: self.state.put(
                    "sweep-cursor", f"jobs:{v}", {"Since": self.now - dt.timedelta(hours=5)}
                ),
            )
        self.at(
            self.now - dt.timedelta(hours=5),
            lambda: self.state.put(
                "job-alert",
                f"{WEU_VAULT}|failing",
                {"Vault": WEU_VAULT, "JobId": "j", "Target": "x", "Finding": "{}"},
            ),
        )
        for n in range(5):
            self.at(
                self.now - 30 * DAY,
                lambda n=n: self.state.put_once(
                    "finding",
                    f"unprotected|vm-{n}|",
                    {"Kind": "unprotected", "Target": f"vm-{n}", "Since": self.now - 30 * DAY},
                ),
            )
        self.at(
            self.now - DAYS * DAY,
            lambda: self.state.put_once("secret", "operation-ids", {"Value": uuid.uuid4().hex}),
        )
        # In use when the pruning runs: a change in flight (claimed by the test) written 10 days ago.
        self.at(
            self.now - 10 * DAY, lambda: self.state.put("pending", HELD_VM, {"Action": "enable-protection"})
        )
        return self.flush()


def rows(table: TableClient) -> list[dict[str, Any]]:
    return [dict(e) for e in table.list_entities()]


def sizes(state: list[dict[str, Any]], audit: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    return Counter(r["PartitionKey"] for r in state), len(audit)


def start_running_backup(stack: RelStack) -> str:
    """A backup job that runs for an hour at armsim (the test's own ARM requests): its id."""
    stack.seed(policies=sandbox_vault_policies())
    stack.seed(
        vms=[
            {
                "subscriptionId": SUB,
                "resourceGroup": GROUP,
                "name": "vm-held",
                "location": "westeurope",
                "tags": {"backup-policy": "gold"},
            }
        ],
        protections=[{"vmId": HELD_VM, "vaultId": WEU_VAULT, "policy": "gold", "state": "Protected"}],
    )
    item = f"{WEU_VAULT}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;{GROUP};vm-held/protectedItems/VM;iaasvmcontainerv2;{GROUP};vm-held"
    expiry = (dt.datetime.now(dt.UTC) + 30 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    stack.arm(
        "POST",
        f"{item}/backup",
        {"properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": expiry}},
        api_version="2025-02-01",
    )
    jobs = stack.arm("GET", f"{WEU_VAULT}/backupJobs", api_version="2025-02-01")["value"]
    running = [
        j
        for j in jobs
        if j["properties"].get("status") == "InProgress"
        and j["properties"].get("entityFriendlyName", "").lower() == "vm-held"
    ]
    assert running, jobs
    return str(running[0]["name"])


def run_prune(stack: RelStack, times: int = 1, timeout: float = 600) -> list[tuple[int, int, int]]:
    """Run the pruning timer `times` at once through the admin API, as the host would; per run (rows
    deleted, rows found already deleted by another run, its duration in ms) from the host's log."""
    before = len(EXECUTED.findall(stack.host_log()))
    summaries_before = len(SUMMARY.findall(stack.host_log()))
    for _ in range(times):
        stack.run_function("prune_timer")
    assert wait_for(
        lambda: len(EXECUTED.findall(stack.host_log())) >= before + times, timeout=timeout, interval=0.5
    )
    executed = EXECUTED.findall(stack.host_log())[before:]
    assert all(status == "Succeeded" for status, _ in executed), stack.host_log()[-3000:]
    summaries = [m for m in SUMMARY.finditer(stack.host_log())][summaries_before:]
    assert len(summaries) == times
    return [
        (int(m[1]), sum(int(n) for n in GONE.findall(m[0])), int(ms))
        for m, (_, ms) in zip(summaries, executed, strict=True)
    ]


def keyed(stack_rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["PartitionKey"], r["RowKey"]): r for r in stack_rows}


def expired(row: dict[str, Any], now: dt.datetime) -> bool | None:
    """Whether the row's lifetime is over at `now` (None: a kind the pruning leaves alone)."""
    life = LIFETIMES[row["PartitionKey"]]
    if life is None:
        return None
    prop, keep = life
    return bool(row[prop] < now - keep)


def test_a_simulated_month_of_state_is_pruned_to_what_its_lifetimes_keep(workdir: Path) -> None:
    started = time.monotonic()
    settings = {
        "PRUNE_SCHEDULE": NEVER,
        "AUTOPILOT_AUDIT_RETENTION_DAYS": str(AUDIT_DAYS),
        "AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS": str(BACKUP_DAYS),
        "AUTOPILOT_SWEEP_RETENTION_DAYS": str(SWEEP_DAYS),
    }
    config = {"snapshotSeconds": 1800, "transferSeconds": 1800}
    with RelStack(workdir / "stack", settings=settings, armsim_config=config) as stack:
        job = start_running_backup(stack)
        month = Month(stack, dt.datetime.now(dt.UTC))
        written = month.month()
        # A 40-day-old request whose job still runs at Azure.
        month.backup_request(month.now - 40 * DAY, 9_999_999, running_job=job)
        written += month.flush()
        write_seconds = time.monotonic() - started
        # In use while the pruning runs: the VM's claim, held (and renewed) by this test.
        with StateStore(month.state_table).claimed(f"protect:{HELD_VM}", 30) as held:
            assert held
            state_before, audit_before = rows(month.state_table), rows(month.audit_table)
            t0 = dt.datetime.now(dt.UTC)
            reads_before = len(stack.request_log())
            ((deleted, _, ms),) = run_prune(stack)
            t1 = dt.datetime.now(dt.UTC)
            state_after, audit_after = rows(month.state_table), rows(month.audit_table)
            job_reads = sum(
                1 for e in stack.request_log()[reads_before:] if e["operation"] == "JobDetails_Get"
            )
            kind_seconds = {k: float(t) for k, t in KIND_LINE.findall(stack.host_log())}

        # A second batch of expired rows, pruned by two runs at once; then a run with nothing to do.
        extra = sized(2000, 5000)
        for n in range(extra):
            t = t1 - 2 * HOUR
            month.at(t, lambda n=n, t=t: month.state.put_once("signature", f"sha256=extra-{n}", {"Seen": t}))
        month.flush()
        before_two = keyed([*rows(month.state_table), *rows(month.audit_table)])
        t2 = dt.datetime.now(dt.UTC)
        concurrent = run_prune(stack, times=2)
        before_last = keyed([*rows(month.state_table), *rows(month.audit_table)])
        last = run_prune(stack)
        t3 = dt.datetime.now(dt.UTC)
        after_last = keyed([*rows(month.state_table), *rows(month.audit_table)])
        extra_left = [r for r in after_last.values() if str(r.get("Key", "")).startswith("sha256=extra-")]
    deleted_by_two = set(before_two) - set(before_last)
    # The last run finds only what expired after the two runs began (a signature's hour ran out).
    deleted_by_last = [before_last[k] for k in set(before_last) - set(after_last)]
    late = [
        r for r in deleted_by_last if r["PartitionKey"] in LIFETIMES and not expired(r, t2) and expired(r, t3)
    ]

    # -- the checks, row by row ----------------------------------------------------------------------
    after_keys = {(r["PartitionKey"], r["RowKey"]) for r in state_after}
    in_use = {
        ("claim", row_key(f"protect:{HELD_VM}")),
        ("pending", row_key(HELD_VM)),
        ("backup", row_key("backup-request:CHG9999999")),
    }
    left_expired = [
        (r["PartitionKey"], r.get("Key"))
        for r in state_after
        if expired(r, t0) and (r["PartitionKey"], r["RowKey"]) not in in_use
    ]
    deleted_young = [
        (r["PartitionKey"], r.get("Key"))
        for r in state_before
        if expired(r, t1) is not True and (r["PartitionKey"], r["RowKey"]) not in after_keys
    ]

    def first_kept(now: dt.datetime) -> str:
        return (now - AUDIT_DAYS * DAY).date().isoformat()

    audit_left_old = [r for r in audit_after if r["PartitionKey"] < first_kept(t0)]
    kept_days = Counter(r["PartitionKey"] for r in audit_before if r["PartitionKey"] >= first_kept(t1))
    audit_lost_young = kept_days - Counter(r["PartitionKey"] for r in audit_after)
    state_kinds_before, audit_n_before = sizes(state_before, audit_before)
    state_kinds_after, audit_n_after = sizes(state_after, audit_after)
    counters = [r for r in audit_before if str(r["RowKey"]).startswith("~refusals|")]
    samples = [r for r in audit_before if r.get("RefusalKind") and not str(r["RowKey"]).startswith("~")]
    # Refusals a counter was too busy to take (other instances kept changing it) wait in the
    # writer's memory for that counter's next update.
    refusals_counted = sum(int(r["Count"]) for r in counters) + sum(month.audit._uncounted.values())
    per_kind = ", ".join(
        f"{kind} {state_kinds_before[kind]:,}→{state_kinds_after[kind]:,}"
        for kind in sorted(state_kinds_before)
    )
    lost = len(left_expired) + len(deleted_young) + len(audit_left_old) + sum(audit_lost_young.values())
    lost += len(in_use - after_keys) + len(extra_left) + len(deleted_by_last) - len(late)
    record(
        "8 state with a lifetime",
        f"{DAYS + 1} days of rows of every kind ({written:,} writes through StateStore/AuditLog: {REQUESTS} signed "
        f"backup-now requests, {FIRST_BACKUPS} first backups, 4 sweeps, an hour of {REFUSALS} bad signatures a day); "
        f"audit {AUDIT_DAYS} d, backup records {BACKUP_DAYS} d, sweep {SWEEP_DAYS} d",
        "a claim held, its VM's change in flight and a 40-day-old backup whose job runs at armsim, during the pruning; "
        "two prunes at once",
        f"state {len(state_before):,} → {len(state_after):,} rows ({per_kind}); audit {audit_n_before:,} → "
        f"{audit_n_after:,} rows ({refusals_counted:,} refusals: {len(samples):,} samples, {len(counters)} counters); "
        f"prune: {deleted:,} rows deleted in {ms / 1000:.1f} s (backup-now records {kind_seconds.get('backup', 0):.1f} s "
        f"with {job_reads} job reads at Azure, audit {kind_seconds.get('audit', 0):.1f} s); two at once: {concurrent[0][0]:,} + {concurrent[1][0]:,} "
        f"deleted of {extra:,} (+ what expired meanwhile), {concurrent[0][1] + concurrent[1][1]:,} found already deleted by the other; "
        f"a third run: {last[0][0]} (expired since); expired left {len(left_expired)}, young deleted {len(deleted_young)}; "
        f"writing the month {write_seconds:.0f} s",
        lost,
        0,
        time.monotonic() - started,
    )
    assert left_expired == [], left_expired[:20]
    assert deleted_young == [], [
        (
            r["PartitionKey"],
            {
                k: v
                for k, v in r.items()
                if k in ("Key", "Written", "Started", "At", "Seen", "Created", "Expires", "Since")
            },
        )
        for r in state_before
        if (r["PartitionKey"], r.get("Key")) in deleted_young
    ][:10]
    assert audit_left_old == [] and not audit_lost_young, (len(audit_left_old), audit_lost_young)
    assert in_use <= after_keys, in_use - after_keys
    assert deleted == len(state_before) + len(audit_before) - len(state_after) - len(audit_after)
    assert refusals_counted == REFUSALS * (DAYS + 1)
    assert len(samples) <= 10 * (DAYS + 1)
    # Bounded: what remains is at most the lifetime's worth of each kind.
    assert state_kinds_after["signature"] <= REQUESTS  # the last hour's at most
    assert state_kinds_after["on-demand"] <= 4 * (REQUESTS + FIRST_BACKUPS)
    assert state_kinds_after["sweep-run"] <= 4 * (SWEEP_DAYS + 1)
    assert state_kinds_after["backup"] <= REQUESTS * (BACKUP_DAYS + 1) + 1
    assert len({r["PartitionKey"] for r in audit_after}) <= AUDIT_DAYS + 1
    # The two runs deleted the second batch (and what expired meanwhile), each row once.
    assert sum(n for n, _, _ in concurrent) == len(deleted_by_two) >= extra
    assert extra_left == []
    # A third run deleted nothing but what expired after the two began.
    assert last[0][0] == len(deleted_by_last) == len(late), deleted_by_last[:5]
