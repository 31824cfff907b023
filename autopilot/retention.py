"""State with a lifetime: how long each kind of row of the state and audit tables lives, and the
pruning (a daily timer, PRUNE_SCHEDULE) that deletes what has expired.

docs/STATE.md has the table: each kind, what it is for, who writes and reads it, and why it lives as
long as it does. The pruning:

- selects expired rows with table filters (the kind's PartitionKey and its time property; the audit
  table's day partitions by PartitionKey), a page at a time;
- keeps a row that is still needed even when its time is up: a claim that is held (its lease runs),
  a pending change whose claim is held (in flight), a backup-now record whose job still runs, an
  on-demand ledger row whose backup-now request has not yet found its job;
- deletes a row only if it is unchanged since it was read (etag), in transactions of up to 100
  rows of one partition, so that a row the app writes again in between is kept, and two runs at the
  same time never delete, or count, a row twice;
- audits nothing (deleting the app's own bookkeeping is no change to Azure) and logs its counts per
  kind;
- stops within its time budget (below the function timeout); what is left is deleted the next run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from autopilot.azure.failures import TransientError
from autopilot.azure.pacing import low_priority
from autopilot.kernel.state import WRITTEN, TableOwner
from autopilot.protect.policies import EDIT_WINDOW  # the window of the policy-edit budget

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.settings import Settings

log = logging.getLogger("autopilot.retention")

# Lifetimes that follow from the product's own windows (tests/unit/test_retention.py checks them
# against those windows).
CLAIM_GRACE = dt.timedelta(hours=1)  # after a claim's lease ran out (its holder died)
SIGNATURE_KEEP = dt.timedelta(hours=1)  # a signature is refused anyway 10 minutes after it was seen
# The ledger: longer than the UTC day + ABANDONED_AFTER, Event Grid's 24 h and the sweep's look-back.
LEDGER_KEEP = dt.timedelta(days=3)
PENDING_KEEP = dt.timedelta(days=7)  # a change interrupted and never finished: the VM is gone
ANNOUNCED_KEEP = dt.timedelta(days=30)  # a problem still there is announced again (a reminder)
# A drill and a VM's last drill: longer than the longest rotation period the rules allow (366 days),
# which the report and the rotation read back.
DRILL_KEEP = dt.timedelta(days=367)
PRUNE_BUDGET_SECONDS = 480.0  # host.json's functionTimeout is 10 minutes
PAGE_SIZE = 1000  # Table storage's largest page


class PruneRun:
    """One run of the pruning: the app, its time, and what its guards look up once per run."""

    def __init__(self, autopilot: Autopilot, now: dt.datetime) -> None:
        self.autopilot = autopilot
        self.now = now
        self._triggering: set[str] | None = None

    def triggering_requests(self) -> set[str]:
        """The request ids of backup-now records still "Triggering" without their job (one query)."""
        if self._triggering is None:
            from autopilot.backup_now.request import KIND

            self._triggering = {
                str(row.get("RequestId", ""))
                for row in self.autopilot.state.rows(KIND, "Status eq 'Triggering'")
                if not row.get("JobId")
            }
        return self._triggering


Guard = Callable[[PruneRun, dict[str, Any]], "str | None"]


@dataclass(frozen=True)
class Lifetime:
    """How long the rows of one kind (PartitionKey) of the state table live: `keep` after the time in
    their property `age` (WRITTEN: when the row was last written; the table's Timestamp for rows
    written before StateStore stamped it). `guard` names why an expired row is still needed."""

    kind: str
    age: str
    keep: Callable[[Settings], dt.timedelta]
    guard: Guard | None = None


def _days(name: str) -> Callable[[Settings], dt.timedelta]:
    return lambda settings: dt.timedelta(days=int(getattr(settings, name)))


def _fixed(span: dt.timedelta) -> Callable[[Settings], dt.timedelta]:
    return lambda settings: span


# -- why an expired row may still be needed ---------------------------------------------------------
def _claim_held(run: PruneRun, row: dict[str, Any]) -> str | None:
    expires = row.get("Expires")
    return "held" if isinstance(expires, dt.datetime) and expires > run.now else None


def _change_in_flight(run: PruneRun, row: dict[str, Any]) -> str | None:
    """A pending marker is written before a protection change and deleted after it, under the VM's
    claim (autopilot/protect/carry_out.py): while the claim is held, the change is in flight."""
    held = run.autopilot.state.claim_held(f"protect:{row.get('Key', '')}")
    return "its change is in flight" if held else None


def _request_without_its_job(run: PruneRun, row: dict[str, Any]) -> str | None:
    """A backup-now request left "Triggering" finds its job through its ledger row (on_demand.job_of)."""
    from autopilot.backup_now.start import PURPOSE

    if row.get("Purpose") != PURPOSE:
        return None
    request_id = str(row.get("Key", "")).removeprefix(f"{PURPOSE}:")
    if request_id in run.triggering_requests():
        return "its backup-now request has not found its job yet"
    return None


def _drill_in_flight(run: PruneRun, row: dict[str, Any]) -> str | None:
    """A drill that has not ended: whoever carries it on reads its record."""
    from autopilot.drills.engine import FINAL

    return None if row.get("Status") in FINAL else "drill in flight"


def _backup_running(run: PruneRun, row: dict[str, Any]) -> str | None:
    """A backup-now record whose job may still run: its status is not final as written down (a record
    without a callback is not updated when its job ends), so the job is read from Azure."""
    from autopilot.azure.failures import error_code
    from autopilot.backup_now.status import FINAL_STATUSES

    autopilot = run.autopilot

    if row.get("Status") in FINAL_STATUSES and row.get("CallbackStatus") != "pending":
        return None
    job_id = str(row.get("JobId") or row.get("WaitingFor") or "")
    if not job_id:
        return None  # nothing started, or the start was abandoned long ago (ABANDONED_AFTER)
    vault = autopilot.rules.vault_by_id(str(row.get("Vault", "")))
    if vault is None:
        return None  # the rules no longer name its vault: the app can follow it no more
    try:
        with low_priority():  # after the protection of new VMs when ARM's tokens are short
            job = autopilot.azure.get_job(vault, job_id)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        if error.status_code == 404:
            return None
        return f"its job could not be read ({error_code(error)})"
    except (AzureError, TransientError):
        return "its job could not be read"
    return None if job.status in FINAL_STATUSES else f"its job is {job.status}"


# -- the table ---------------------------------------------------------------------------------------
SWEEP_DAYS = _days("sweep_retention_days")
STATE_LIFETIMES: tuple[Lifetime, ...] = (
    Lifetime("claim", "Expires", _fixed(CLAIM_GRACE), _claim_held),
    Lifetime("signature", "Seen", _fixed(SIGNATURE_KEEP)),
    Lifetime("on-demand", "Started", _fixed(LEDGER_KEEP), _request_without_its_job),
    Lifetime("backup", "Created", _days("backup_record_retention_days"), _backup_running),
    Lifetime("policy-edit", "At", _fixed(EDIT_WINDOW)),
    Lifetime("pending", WRITTEN, _fixed(PENDING_KEEP), _change_in_flight),
    Lifetime("announced", WRITTEN, _fixed(ANNOUNCED_KEEP)),
    Lifetime("sweep-run", "Started", SWEEP_DAYS),
    Lifetime("sweep-finished", "At", SWEEP_DAYS),
    Lifetime("sweep-fix", WRITTEN, SWEEP_DAYS),
    Lifetime("sweep-history", "At", SWEEP_DAYS),
    Lifetime("sweep-cursor", "Since", SWEEP_DAYS),
    Lifetime("job-alert", WRITTEN, SWEEP_DAYS),
    Lifetime("drill", "Created", _fixed(DRILL_KEEP), _drill_in_flight),
    Lifetime("drill-vm", WRITTEN, _fixed(DRILL_KEEP)),
)
# Kinds the pruning leaves alone: their writer deletes a row when it stops being true, or it lives
# as long as the deployment.
NOT_PRUNED = {
    "finding": "a finding lives while the problem does: the sweep deletes it when a complete run no longer finds it",
    "secret": "the deployment's key of backup-now operation ids: deleting it would change every id",
    "drill-active": "the drill in flight of a VM: the drill deletes it when it ends",
    "drill-slot": "a vault's place for a drill in flight: the drill deletes it when it ends",
    "drill-round": "two rows: the schedule's last round and since when drills run",
}
AUDIT = "audit"  # the audit table's rows, in the results


# -- the pruning ---------------------------------------------------------------------------------------
@dataclass
class KindResult:
    table: str
    kind: str
    deleted: int = 0
    kept: Counter[str] = field(default_factory=Counter)  # expired rows still needed, by reason
    changed: int = 0  # written again since read: kept
    gone: int = 0  # deleted by someone else (another run) in between
    error: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        kept = sum(self.kept.values()) + self.changed
        text = f"{self.table} {self.kind}: {self.deleted} deleted in {self.seconds:.1f} s"
        if kept:
            reasons = [f"{n} {reason}" for reason, n in sorted(self.kept.items())]
            if self.changed:
                reasons.append(f"{self.changed} written again")
            text += f", {kept} kept ({'; '.join(reasons)})"
        if self.gone:
            text += f", {self.gone} already gone"
        if self.error:
            text += f", failed: {self.error}"
        return text


@dataclass
class PruneResult:
    now: dt.datetime
    kinds: list[KindResult] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True  # False: the time budget ran out; the next run goes on

    @property
    def deleted(self) -> int:
        return sum(k.deleted for k in self.kinds)

    def deleted_by_kind(self) -> dict[str, int]:
        return {k.kind: k.deleted for k in self.kinds}

    def summary(self) -> str:
        state = "" if self.complete else " (time budget used up: the next run goes on)"
        return f"{self.deleted} expired row(s) deleted in {self.seconds:.1f} s{state}: " + "; ".join(
            k.line() for k in self.kinds if k.deleted or k.kept or k.changed or k.gone or k.error
        )


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    @property
    def over(self) -> bool:
        return time.monotonic() > self.deadline


def cutoffs(settings: Settings, now: dt.datetime) -> dict[str, dt.datetime]:
    """Per kind of the state table: rows whose time is before this have expired."""
    return {lifetime.kind: now - lifetime.keep(settings) for lifetime in STATE_LIFETIMES}


def audit_cutoff(settings: Settings, now: dt.datetime) -> dt.date:
    """The first UTC day of the audit table that is kept: every row of an earlier day is older than
    AUTOPILOT_AUDIT_RETENTION_DAYS."""
    return (now - dt.timedelta(days=settings.audit_retention_days)).date()


def prune(
    autopilot: Autopilot,
    now: dt.datetime | None = None,
    budget_seconds: float = PRUNE_BUDGET_SECONDS,
    page_size: int = PAGE_SIZE,
) -> PruneResult:
    """Delete the expired rows of the state and audit tables; the counts per kind. Raises at the end
    if a kind could not be pruned (after pruning the others), so the run shows as failed."""
    now = now or dt.datetime.now(dt.UTC)
    started = time.monotonic()
    budget = _Budget(budget_seconds)
    result = PruneResult(now)
    run = PruneRun(autopilot, now)
    for lifetime in STATE_LIFETIMES:
        kind = KindResult("state", lifetime.kind)
        result.kinds.append(kind)
        with _failures(kind):
            result.complete = _prune_kind(run, lifetime, kind, budget, page_size)
        if not result.complete:
            break
    if result.complete:
        kind = KindResult("audit", AUDIT)
        result.kinds.append(kind)
        with _failures(kind):
            result.complete = _prune_audit(autopilot, now, kind, budget, page_size)
    result.seconds = time.monotonic() - started
    for kind in result.kinds:
        log.info(
            "prune %s",
            kind.line(),
            extra={
                "table": kind.table,
                "kind": kind.kind,
                "deleted": kind.deleted,
                "kept": sum(kind.kept.values()),
            },
        )
    log.info("prune: %s", result.summary(), extra={"deleted": result.deleted, "seconds": result.seconds})
    failed = [k for k in result.kinds if k.error]
    if failed:
        raise RuntimeError("pruning failed for " + ", ".join(f"{k.kind} ({k.error})" for k in failed))
    return result


@contextlib.contextmanager
def _failures(kind: KindResult) -> Iterator[None]:
    """A storage failure ends the kind's pruning, not the run's: noted, and raised at the end. The
    kind's time is measured here too."""
    started = time.monotonic()
    try:
        yield
    except AzureError as error:
        log.exception("prune %s %s failed", kind.table, kind.kind)
        first = str(error).splitlines()[0][:200] if str(error) else ""
        kind.error = f"{type(error).__name__}: {first}"
    finally:
        kind.seconds = time.monotonic() - started


def _prune_kind(run: PruneRun, lifetime: Lifetime, kind: KindResult, budget: _Budget, page_size: int) -> bool:
    """Prune one kind; False if the time budget ran out first."""
    state = run.autopilot.state
    cutoff = run.now - lifetime.keep(run.autopilot.settings)
    parameters = {"kind": lifetime.kind, "cutoff": cutoff}
    queries = [f"PartitionKey eq @kind and {lifetime.age} lt @cutoff"]
    if lifetime.age == WRITTEN:  # rows from before StateStore stamped them: the table's own time
        queries.append("PartitionKey eq @kind and Timestamp lt @cutoff")
    for number, query in enumerate(queries):
        for page in state.pages(query, parameters, page_size):
            expired = []
            for row in page:
                if number > 0 and WRITTEN in row:
                    continue  # judged by its Written above
                reason = lifetime.guard(run, row) if lifetime.guard else None
                if reason:
                    kind.kept[reason] += 1
                else:
                    expired.append(row)
            _delete(state, expired, kind)
            if budget.over:
                return False
    return True


def _prune_audit(
    autopilot: Autopilot, now: dt.datetime, kind: KindResult, budget: _Budget, page_size: int
) -> bool:
    first_kept = audit_cutoff(autopilot.settings, now).isoformat()
    audit = autopilot.audit
    for page in audit.pages(
        "PartitionKey lt @day", {"day": first_kept}, page_size, select=["PartitionKey", "RowKey"]
    ):
        _delete(audit, page, kind)
        if budget.over:
            return False
    return True


def _delete(table: TableOwner, rows: list[dict[str, Any]], kind: KindResult) -> None:
    if not rows:
        return
    done = table.delete_rows(rows)
    kind.deleted += done.deleted
    kind.changed += done.changed
    kind.gone += done.gone
