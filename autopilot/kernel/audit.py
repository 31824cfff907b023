"""The audit table: every change the product makes on Azure, with the VM, the reason and the outcome.

Rows live in Azure Table storage (Azurite locally): PartitionKey is the UTC day, RowKey sorts newest
first. The same record goes to the log with structured fields. A day's partition is deleted whole
once it is older than AUTOPILOT_AUDIT_RETENTION_DAYS (autopilot/retention.py, docs/STATE.md).

Refused requests are not changes: `refusal` counts them per UTC hour and kind in one counter row
each, and keeps the first few of each hour and kind as ordinary audit rows (samples), so that a
client that keeps sending bad requests cannot grow the table without bound.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from autopilot.kernel.state import TableOwner

if TYPE_CHECKING:
    from azure.data.tables import TableClient

log = logging.getLogger("autopilot.kernel.audit")

_MAX_TICKS = 10**19
REFUSAL_SAMPLES_PER_HOUR = 10  # audit rows kept per UTC hour, action and kind of refusal
COUNTERS = "~refusals|"  # RowKey prefix of the counters: after every audit row of the day ("0"-"9")
_COUNTERS_END = "~refusals}"  # the first RowKey after the counters ("}" follows "|")
_COUNT_ATTEMPTS = 8
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9._:@ -]")


def _key_part(text: str) -> str:
    """Text for a RowKey: no '/', '\\', '#', '?', '|' or control characters, at most 100 characters."""
    return _UNSAFE_KEY.sub("_", text)[:100] or "-"


class AuditLog(TableOwner):
    def __init__(
        self,
        table: TableClient,
        clock: Callable[[], dt.datetime] | None = None,
        refusal_samples: int = REFUSAL_SAMPLES_PER_HOUR,
    ) -> None:
        super().__init__(table, clock)
        self.refusal_samples = refusal_samples
        # Refusals not yet added to their counter: one thread of the process updates a counter at a
        # time and adds those the others left here; what other instances kept changing the counter
        # from under it waits here for the counter's next update.
        self._uncounted: Counter[tuple[str, str]] = Counter()
        self._updating: set[tuple[str, str]] = set()
        self._in_flight: Counter[tuple[str, str]] = Counter()  # being added by the updating thread
        self._known: dict[tuple[str, str], int] = {}  # each counter's count as last written here
        self._uncounted_lock = threading.Lock()

    def record(
        self,
        *,
        vm_id: str,
        action: str,
        reason: str,
        outcome: str,
        source: str,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write one audit row; raises if the row cannot be written (an action must never go unaudited)."""
        now = self._now()
        entity: dict[str, Any] = {
            "PartitionKey": now.strftime("%Y-%m-%d"),
            "RowKey": f"{_MAX_TICKS - int(now.timestamp() * 1_000_000):019d}-{uuid.uuid4().hex[:8]}",
            "VmId": vm_id,
            "Action": action,
            "Reason": reason[:4000],
            "Outcome": outcome[:4000],
            "Source": source,
            "Time": now,
        }
        for key, value in (details or {}).items():
            if isinstance(value, str | int | float | bool):
                entity[key[:1].upper() + key[1:]] = value
        log.info(
            "audit %s %s: %s (%s)",
            action,
            vm_id,
            outcome,
            reason,
            extra={"vm_id": vm_id, "action": action, "outcome": outcome, "source": source},
        )
        self._ensure_table()
        try:
            self._table.create_entity(entity)
        except AzureError:
            log.exception("could not write the audit row for %s %s", action, vm_id)
            raise
        return entity

    # -- refusals ---------------------------------------------------------------------------------
    def refusal(
        self,
        *,
        kind: str,
        vm_id: str,
        action: str,
        reason: str,
        outcome: str,
        source: str,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Account for a refused request: count it in the counter of its UTC hour, `action` and
        `kind` (a short code, e.g. the problem type 'signature-expired'), and keep it as an ordinary
        audit row (the arguments as for `record`) only if it is among the first `refusal_samples` of
        that counter (as far as this instance knows, when several instances refuse at the same
        moment). Returns True when the row was kept. A refusal changes nothing on Azure, so a storage
        failure is logged, never raised: it must not turn a 4xx answer into a 500."""
        now = self._now()
        try:
            count = self._count(now, action, kind, source)
        except AzureError:
            log.exception("could not count the refusal %s %s", action, kind)
            return False
        if count is None or count > self.refusal_samples:
            log.info(
                "refusal %s %s: %s (%s); counted%s, not stored",
                action,
                vm_id,
                outcome,
                kind,
                "" if count is None else f" ({count} this hour)",
                extra={"vm_id": vm_id, "action": action, "outcome": outcome, "source": source},
            )
            return False
        try:
            self.record(
                vm_id=vm_id,
                action=action,
                reason=reason,
                outcome=outcome,
                source=source,
                details={**(details or {}), "refusalKind": kind},
            )
        except AzureError:
            return False  # logged by record
        return True

    def _count(self, now: dt.datetime, action: str, kind: str, source: str) -> int | None:
        """Add this refusal to its counter; its place in the counter's count (for the thread that
        updates the counter, the count once it holds it; for a refusal left to that thread, the
        place as far as this process knows), or None when the counter could not be updated now
        (other instances kept changing it: the refusal is added with its next update)."""
        self._ensure_table()
        day = now.strftime("%Y-%m-%d")
        hour = now.replace(minute=0, second=0, microsecond=0)
        row = f"{COUNTERS}{hour:%H}|{_key_part(action)}|{_key_part(kind)}"
        key = (day, row)
        with self._uncounted_lock:
            self._uncounted[key] += 1
            if key in self._updating:  # the thread updating the counter adds this one too
                return self._known.get(key, 0) + self._in_flight[key] + self._uncounted[key]
            self._updating.add(key)
            if key not in self._known:  # a new hour: forget the counters of other days
                self._known = {k: n for k, n in self._known.items() if k[0] == day}
        count: int | None = None
        adding = 0
        try:
            while True:
                with self._uncounted_lock:
                    adding = self._uncounted.pop(key, 0)
                    if not adding:
                        self._updating.discard(key)
                        return count
                    self._in_flight[key] = adding
                total = self._add(day, row, hour, adding, now, action, kind, source)
                with self._uncounted_lock:
                    del self._in_flight[key]
                    if total is None:
                        self._uncounted[key] += adding
                        self._updating.discard(key)
                    else:
                        self._known[key] = total
                if total is None:
                    log.warning("the refusal counter %s %s is busy: counted with its next update", day, row)
                    return count
                adding = 0
                count = total if count is None else count
        except BaseException:
            with self._uncounted_lock:
                self._in_flight.pop(key, None)
                self._uncounted[key] += adding
                self._updating.discard(key)
            raise

    def _add(
        self,
        day: str,
        row: str,
        hour: dt.datetime,
        adding: int,
        now: dt.datetime,
        action: str,
        kind: str,
        source: str,
    ) -> int | None:
        """Add `adding` to the counter (optimistic concurrency: read, then write if unchanged); the
        count after it, or None when other writers kept changing it."""
        for attempt in range(_COUNT_ATTEMPTS):
            try:
                current = self._table.get_entity(day, row)
            except ResourceNotFoundError:
                try:
                    self._table.create_entity(
                        {
                            "PartitionKey": day,
                            "RowKey": row,
                            "VmId": "-",
                            "Action": action,
                            "Reason": f"refused requests of kind {kind} in the hour from {hour:%H:%M} UTC",
                            "Outcome": "refused (counted)",
                            "Source": source,
                            "RefusalKind": kind,
                            "Hour": hour,
                            "Count": adding,
                            "Time": now,
                        }
                    )
                    return adding
                except ResourceExistsError:
                    continue
            count = int(current.get("Count", 0)) + adding
            try:
                self._table.update_entity(
                    {"PartitionKey": day, "RowKey": row, "Count": count, "Time": now},
                    mode=UpdateMode.MERGE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return count
            except (ResourceModifiedError, ResourceNotFoundError):
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))
        return None

    def refusal_counts(self, day: dt.date | None = None) -> list[dict[str, Any]]:
        """One day's refusal counters: {hour, action, kind, count} per UTC hour, action and kind."""
        self._ensure_table()
        day = day or self._now().date()
        rows = self._table.query_entities(
            "PartitionKey eq @day and RowKey ge @first and RowKey lt @end",
            parameters={"day": day.isoformat(), "first": COUNTERS, "end": _COUNTERS_END},
        )
        return [
            {
                "hour": row["Hour"],
                "action": row.get("Action", ""),
                "kind": row.get("RefusalKind", ""),
                "count": int(row.get("Count", 0)),
            }
            for row in rows
        ]

    def entries(self, day: dt.date | None = None) -> list[dict[str, Any]]:
        """One day's rows, newest first (for reports and tests); the refusal counters are left out
        (`refusal_counts`)."""
        self._ensure_table()
        day = day or self._now().date()
        rows = self._table.query_entities(
            "PartitionKey eq @day and RowKey lt @counters",
            parameters={"day": day.isoformat(), "counters": COUNTERS},
        )
        return [dict(row) for row in rows]
