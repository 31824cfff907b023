"""The pruning against Azurite, through the real StateStore and AuditLog: what expired goes, in pages
and transactions; what is young or still in use stays (a held claim, a change in flight, a running
backup); two runs at once delete each row once; a second run deletes nothing; refusals are counted
per hour and sampled."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from azure.data.tables import TableClient

from autopilot.kernel.audit import REFUSAL_SAMPLES_PER_HOUR, AuditLog
from autopilot.kernel.state import WRITTEN, StateStore, row_key
from autopilot.retention import STATE_LIFETIMES, prune
from autopilot.settings import Settings
from devhost.azurite import Azurite

pytestmark = pytest.mark.azurite

VAULT = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/rsv"
VM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-{}"


class Clock:
    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.at or dt.datetime.now(dt.UTC)


class Jobs:
    """Azure's backup jobs as the pruning reads them: job id -> status (absent: 404)."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.read: list[str] = []

    def get_job(self, vault: Any, job_id: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        self.read.append(job_id)
        if job_id not in self.status:
            raise ResourceNotFoundError("no such job")
        return SimpleNamespace(id=job_id, status=self.status[job_id])


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def app(azurite: Azurite) -> Any:
    """What the pruning needs of the Autopilot, on fresh tables: state and audit with a clock the
    test sets (rows of other days), settings, the rules' vaults and Azure's jobs."""
    suffix = uuid.uuid4().hex[:8]
    clock = Clock()
    state_table = TableClient.from_connection_string(azurite.connection_string, f"state{suffix}")
    audit_table = TableClient.from_connection_string(azurite.connection_string, f"audit{suffix}")
    rules = SimpleNamespace(vault_by_id=lambda v: SimpleNamespace(name="rsv") if v == VAULT else None)
    return SimpleNamespace(
        clock=clock,
        state=StateStore(state_table, clock=clock),
        audit=AuditLog(audit_table, clock=clock),
        settings=replace(
            Settings.from_env({}),
            audit_retention_days=10,
            backup_record_retention_days=20,
            sweep_retention_days=5,
        ),
        rules=rules,
        azure=Jobs(),
        tables=(state_table, audit_table),
    )


def ago(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(**delta)


def keys(table: TableClient, kind: str | None = None) -> set[str]:
    query = "PartitionKey eq @k" if kind else "PartitionKey ne ''"
    return {str(e.get("Key", e["RowKey"])) for e in table.query_entities(query, parameters={"k": kind or ""})}


def count(table: TableClient) -> int:
    return sum(1 for _ in table.list_entities(select=["PartitionKey"]))


def written(app: Any, at: dt.datetime, write: Any) -> None:
    app.clock.at = at
    try:
        write()
    finally:
        app.clock.at = None


# -- what expires and what stays ---------------------------------------------------------------------
def seed_every_kind(app: Any) -> dict[str, tuple[set[str], set[str]]]:
    """Per kind: (keys that must go, keys that must stay)."""
    state = app.state
    expect: dict[str, tuple[set[str], set[str]]] = {}

    def both(kind: str, old: list[str], young: list[str]) -> None:
        expect[kind] = (set(old), set(young))

    state.put("signature", "sha256=old", {"Seen": ago(hours=2)})
    state.put("signature", "sha256=new", {"Seen": ago(minutes=3)})
    both("signature", ["sha256=old"], ["sha256=new"])
    for key, started in (("retry:job-old", ago(days=4)), ("first-backup:" + VM.format(1), ago(hours=30))):
        state.put("on-demand", key, {"Purpose": key.split(":")[0], "Started": started, "VmKey": "x"})
    # A backup-now request still looking for its job keeps its ledger row.
    state.put("on-demand", "backup-now:CHG-T", {"Purpose": "backup-now", "Started": ago(days=5)})
    state.put(
        "backup",
        "backup-request:CHG-T",
        {"RequestId": "CHG-T", "Status": "Triggering", "Created": ago(days=5), "Vault": VAULT},
    )
    both("on-demand", ["retry:job-old"], ["first-backup:" + VM.format(1), "backup-now:CHG-T"])
    app.azure.status.update(
        {"job-running": "InProgress", "job-done": "Completed", "job-blocking": "InProgress"}
    )
    records = {
        "CHG-final": ({"Status": "Completed", "JobId": "job-x", "CallbackStatus": "sent"}, 30, False),
        "CHG-stale-status": ({"Status": "InProgress", "JobId": "job-done"}, 30, False),
        "CHG-gone-job": ({"Status": "InProgress", "JobId": "job-unknown"}, 30, False),
        "CHG-running": ({"Status": "InProgress", "JobId": "job-running"}, 30, True),
        "CHG-waiting": ({"Status": "Waiting", "WaitingFor": "job-blocking"}, 30, True),
        "CHG-young": ({"Status": "Completed", "JobId": "job-x"}, 10, True),
    }
    for request, (fields, days, _) in records.items():
        state.put(
            "backup", f"backup-request:{request}", {"Vault": VAULT, "Created": ago(days=days), **fields}
        )
    old = {f"backup-request:{r}" for r, (_, _, stays) in records.items() if not stays}
    young = {f"backup-request:{r}" for r, (_, _, stays) in records.items() if stays} | {
        "backup-request:CHG-T"
    }
    both("backup", sorted(old), sorted(young))
    state.put("policy-edit", f"{VAULT}|1", {"Vault": VAULT.lower(), "At": ago(hours=25)})
    state.put("policy-edit", f"{VAULT}|2", {"Vault": VAULT.lower(), "At": ago(hours=23)})
    both("policy-edit", [f"{VAULT}|1"], [f"{VAULT}|2"])
    # pending: a leftover of a week ago goes; one as old whose VM is claimed now (in flight) stays.
    written(app, ago(days=8), lambda: state.put("pending", VM.format(2), {"Action": "enable-protection"}))
    written(app, ago(days=8), lambda: state.put("pending", VM.format(3), {"Action": "enable-protection"}))
    state.put("pending", VM.format(4), {"Action": "enable-protection"})
    both("pending", [VM.format(2)], [VM.format(3), VM.format(4)])
    written(app, ago(days=31), lambda: state.put("announced", VM.format(5), {"Signature": "s"}))
    state.put("announced", VM.format(6), {"Signature": "s"})
    both("announced", [VM.format(5)], [VM.format(6)])
    state.put("sweep-run", "run-old", {"Started": ago(days=6)})
    state.put("sweep-run", "run-new", {"Started": ago(days=4)})
    both("sweep-run", ["run-old"], ["run-new"])
    state.put("sweep-finished", "run-old", {"At": ago(days=6)})
    state.put("sweep-finished", "run-new", {"At": ago(days=4)})
    both("sweep-finished", ["run-old"], ["run-new"])
    written(app, ago(days=6), lambda: state.put("sweep-fix", "run-old|vm", {"RunId": "run-old"}))
    state.put("sweep-fix", "run-new|vm", {"RunId": "run-new"})
    both("sweep-fix", ["run-old|vm"], ["run-new|vm"])
    state.put("sweep-history", "run-old", {"At": ago(days=6)})
    state.put("sweep-history", "run-new", {"At": ago(days=1)})
    both("sweep-history", ["run-old"], ["run-new"])
    state.put("sweep-cursor", "jobs:/old-vault", {"Since": ago(days=6)})
    state.put("sweep-cursor", f"jobs:{VAULT}", {"Since": ago(hours=6)})
    both("sweep-cursor", ["jobs:/old-vault"], [f"jobs:{VAULT}"])
    written(app, ago(days=6), lambda: state.put("job-alert", f"{VAULT}|gone", {"Vault": VAULT}))
    state.put("job-alert", f"{VAULT}|failing", {"Vault": VAULT})
    both("job-alert", [f"{VAULT}|gone"], [f"{VAULT}|failing"])
    # drills: one ended over a year ago goes; one as old still in flight and a recent one stay.
    state.put("drill", "drill-old", {"Status": "Passed", "Created": ago(days=368), "VmId": VM.format(7)})
    state.put("drill", "drill-stuck", {"Status": "Restoring", "Created": ago(days=368), "VmId": VM.format(8)})
    state.put("drill", "drill-new", {"Status": "Failed", "Created": ago(days=10), "VmId": VM.format(9)})
    both("drill", ["drill-old"], ["drill-stuck", "drill-new"])
    written(app, ago(days=368), lambda: state.put("drill-vm", VM.format(7), {"LastProven": ago(days=368)}))
    state.put("drill-vm", VM.format(9), {"LastProven": ago(days=10)})
    both("drill-vm", [VM.format(7)], [VM.format(9)])
    state.put_once("finding", "unprotected|vm|", {"Since": ago(days=300)})
    both("finding", [], ["unprotected|vm|"])
    # claims: one whose holder died long ago, one held now (renewed), one expired only just.
    table = app.tables[0]
    for key, expires in (("protect:dead", ago(hours=2)), ("protect:recent", ago(minutes=10))):
        table.create_entity({"PartitionKey": "claim", "RowKey": row_key(key), "Key": key, "Expires": expires})
    both("claim", ["protect:dead"], ["protect:recent"])
    return expect


def test_prune_deletes_what_expired_of_every_kind_and_keeps_what_is_young_or_in_use(app: Any) -> None:
    expect = seed_every_kind(app)
    assert {k for k in expect if k != "finding"} == {lifetime.kind for lifetime in STATE_LIFETIMES}
    with app.state.claimed(f"protect:{VM.format(3)}", 30) as mine, app.state.claimed("protect:held", 30):
        assert mine
        result = prune(app)
    state_table = app.tables[0]
    for kind, (gone, stay) in expect.items():
        left = keys(state_table, kind)
        assert not (gone & left), f"{kind}: expired rows left: {gone & left}"
        assert stay <= left, f"{kind}: rows deleted too early: {stay - left}"
    deleted = result.deleted_by_kind()
    assert {k: n for k, n in deleted.items() if n} == {k: len(g) for k, (g, _) in expect.items() if g}
    by_kind = {k.kind: k for k in result.kinds}
    assert by_kind["pending"].kept == {"its change is in flight": 1}
    assert by_kind["backup"].kept == {"its job is InProgress": 2}
    assert by_kind["on-demand"].kept == {"its backup-now request has not found its job yet": 1}
    assert result.complete
    # The jobs of records whose status says they ended were not read.
    assert sorted(app.azure.read) == ["job-blocking", "job-done", "job-running", "job-unknown"]
    # Nothing was audited.
    assert count(app.tables[1]) == 0


def test_a_second_run_deletes_nothing(app: Any) -> None:
    seed_every_kind(app)
    first = prune(app)
    second = prune(app)
    assert first.deleted > 0
    assert second.deleted == 0
    assert sum(sum(k.kept.values()) for k in second.kinds) >= 1  # the still-running backups


def test_a_row_written_again_after_it_was_read_is_kept(app: Any) -> None:
    """The app writes a row while the pruning holds its (expired) copy: the delete is conditional."""
    state = app.state
    written(app, ago(days=31), lambda: state.put("announced", VM.format(1), {"Signature": "old"}))
    rows = next(state.pages("PartitionKey eq 'announced'"))
    state.put("announced", VM.format(1), {"Signature": "new"})
    done = state.delete_rows(rows)
    assert (done.deleted, done.changed) == (0, 1)
    assert state.get("announced", VM.format(1))["Signature"] == "new"


def test_rows_written_before_they_carried_written_are_aged_by_the_tables_timestamp(app: Any) -> None:
    table = app.tables[0]
    app.state.put("pending", VM.format(7), {"Action": "x"})  # creates the table
    for n in (8, 9):
        table.upsert_entity({"PartitionKey": "pending", "RowKey": row_key(VM.format(n)), "Key": VM.format(n)})
    result = prune(app)  # the legacy rows are new: kept
    assert result.deleted_by_kind()["pending"] == 0
    later = prune(app, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    assert later.deleted_by_kind()["pending"] == 3
    assert keys(table, "pending") == set()


# -- pages, transactions, budget and concurrency -----------------------------------------------------
def many_expired(app: Any, n: int) -> None:
    """n expired signatures, in parallel (the test's own speed)."""
    from concurrent.futures import ThreadPoolExecutor

    def write(i: int) -> None:
        app.state.put("signature", f"sha256={i:06d}", {"Seen": ago(hours=3)})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(n)))


def test_prune_goes_through_a_kind_in_pages(app: Any) -> None:
    many_expired(app, 230)
    result = prune(app, page_size=50)
    assert result.deleted_by_kind()["signature"] == 230
    assert keys(app.tables[0], "signature") == set()


def test_a_run_out_of_time_stops_and_the_next_run_goes_on(app: Any) -> None:
    many_expired(app, 120)
    first = prune(app, budget_seconds=0, page_size=50)
    assert not first.complete
    assert first.deleted <= 120
    second = prune(app)
    assert second.complete
    assert first.deleted + second.deleted == 120


def test_two_runs_at_once_delete_every_expired_row_once(app: Any) -> None:
    many_expired(app, 1500)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(prune(app, page_size=200))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.deleted_by_kind()["signature"] for r in results) == 1500
    assert keys(app.tables[0], "signature") == set()


def test_claims_held_by_the_app_survive_a_prune_running_beside_it(app: Any) -> None:
    """Claims taken, renewed (2 s leases) and released while pruning runs again and again beside
    claims whose holders died: the dead ones go, a held one is never deleted."""
    table = app.tables[0]
    app.state.put("signature", "x", {"Seen": ago(minutes=1)})  # the table exists
    for n in range(50):
        key = f"protect:dead-{n}"
        table.create_entity(
            {"PartitionKey": "claim", "RowKey": row_key(key), "Key": key, "Expires": ago(hours=2)}
        )
    stop = threading.Event()
    lost: list[str] = []

    def hold(i: int) -> None:
        while not stop.is_set():
            with app.state.claimed(f"protect:{VM.format(i)}", 2) as mine:
                if mine and not app.state.claim_held(f"protect:{VM.format(i)}"):
                    lost.append(VM.format(i))

    holders = [threading.Thread(target=hold, args=(i,)) for i in range(6)]
    for thread in holders:
        thread.start()
    deleted = 0
    try:
        for _ in range(10):
            deleted += prune(app).deleted_by_kind()["claim"]
    finally:
        stop.set()
        for thread in holders:
            thread.join()
    assert lost == []
    assert deleted == 50
    assert not any(k.startswith("protect:dead") for k in keys(table, "claim"))


# -- the audit table -------------------------------------------------------------------------------
def test_audit_days_older_than_the_retention_are_deleted_whole(app: Any) -> None:
    audit = app.audit
    today = dt.datetime.now(dt.UTC).replace(hour=12)
    for days in (0, 5, 10, 11, 12, 40):
        written(
            app,
            today - dt.timedelta(days=days),
            lambda d=days: audit.record(
                vm_id=VM.format(d), action="enable-protection", reason="r", outcome="done", source="test"
            ),
        )
        written(
            app,
            today - dt.timedelta(days=days),
            lambda: audit.refusal(
                kind="signature-expired",
                vm_id="-",
                action="backup-now",
                reason="r",
                outcome="refused 401",
                source="http",
            ),
        )
    result = prune(app)
    left = {e["PartitionKey"] for e in app.tables[1].list_entities()}
    kept_days = {(today - dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in (0, 5, 10)}
    assert left == kept_days
    assert result.deleted_by_kind()["audit"] == 3 * 3  # a row, a sample and a counter per day


# -- refusals ----------------------------------------------------------------------------------------
def refuse(app: Any, kind: str = "signature-expired", action: str = "backup-now") -> bool:
    return bool(
        app.audit.refusal(
            kind=kind,
            vm_id="-",
            action=action,
            reason="The timestamp is more than 5 minutes away from now; sign the request again.",
            outcome="refused 401",
            source="http",
        )
    )


def test_refusals_are_counted_per_hour_and_kind_and_only_the_first_are_stored(app: Any) -> None:
    hour = dt.datetime.now(dt.UTC).replace(hour=10, minute=5, second=0, microsecond=0)
    app.clock.at = hour
    stored = [refuse(app) for _ in range(25)]
    stored += [refuse(app, kind="signature-invalid") for _ in range(3)]
    app.clock.at = hour + dt.timedelta(hours=1)
    stored += [refuse(app) for _ in range(2)]
    app.clock.at = None
    assert stored.count(True) == REFUSAL_SAMPLES_PER_HOUR + 3 + 2
    counts = sorted(
        ((c["hour"].hour, c["kind"], c["count"]) for c in app.audit.refusal_counts(hour.date())), key=str
    )
    assert counts == sorted(
        [
            (hour.hour, "signature-expired", 25),
            (hour.hour, "signature-invalid", 3),
            (hour.hour + 1, "signature-expired", 2),
        ],
        key=str,
    )
    samples = app.audit.entries(hour.date())
    assert len(samples) == REFUSAL_SAMPLES_PER_HOUR + 3 + 2  # the counters are not entries
    assert all(s["Outcome"] == "refused 401" and s["RefusalKind"] for s in samples)


def test_concurrent_refusals_are_all_counted(app: Any) -> None:
    app.clock.at = dt.datetime.now(dt.UTC).replace(minute=30)
    threads = [
        threading.Thread(target=lambda: [refuse(app, kind="burst") for _ in range(10)]) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refuse(app, kind="burst")  # carries whatever a contended update could not add
    app.clock.at = None
    (counter,) = [c for c in app.audit.refusal_counts(dt.datetime.now(dt.UTC).date()) if c["kind"] == "burst"]
    assert counter["count"] == 61
    # Threads of one process take turns at a counter: one updates it and adds the others' refusals;
    # the first ten of them all are kept.
    samples = [e for e in app.audit.entries() if e.get("RefusalKind") == "burst"]
    assert len(samples) == REFUSAL_SAMPLES_PER_HOUR


def test_a_refusal_never_raises_when_storage_fails(azurite: Azurite) -> None:
    table = TableClient.from_connection_string(
        azurite.connection_string.replace(str(azurite.table_port), "1"), "unreachable", retry_total=0
    )
    audit = AuditLog(table)
    assert (
        audit.refusal(
            kind="k", vm_id="-", action="backup-now", reason="r", outcome="refused 401", source="http"
        )
        is False
    )


# -- the Written stamp -------------------------------------------------------------------------------
def test_writes_through_the_state_store_carry_when_they_were_made(app: Any) -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    app.clock.at = at
    app.state.put("announced", "a", {"Signature": "s"})
    app.state.put_once("finding", "f", {"Kind": "k"})
    app.clock.at = None
    assert app.state.get("announced", "a")[WRITTEN] == at
    assert app.state.get("finding", "f")[WRITTEN] == at
    row = app.state.get_row("announced", row_key("a"))
    assert app.state.replace_row("announced", row_key("a"), row, row["_etag"])
    assert app.state.get("announced", "a")[WRITTEN] > at
