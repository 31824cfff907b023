"""Small shared state in Azure Table storage: claims that keep two instances (or two deliveries of
one event) from acting on the same VM at once, and markers of what was already done.

Every row of the state table is of a kind (its PartitionKey) with a documented lifetime
(docs/STATE.md); autopilot/retention.py deletes what has expired. Rows written through put, put_once
and replace_row carry `Written`, the time they were last written, for the kinds whose age is that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

if TYPE_CHECKING:
    from azure.data.tables import TableClient

log = logging.getLogger("autopilot.kernel.state")


def row_key(key: str) -> str:
    """Table RowKeys cannot hold '/', '#', '?' or '\\': resource ids are hashed (case-insensitively)."""
    return hashlib.sha256(key.lower().encode()).hexdigest()


WRITTEN = "Written"  # the property that holds when a row was last written through StateStore
BATCH = 100  # entities of one partition per transaction (Table storage's limit)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Deleted:
    """What a deletion of rows read earlier came to: `deleted` by this call, already `gone`
    (deleted by someone else in between), or `changed` since they were read (kept)."""

    deleted: int = 0
    gone: int = 0
    changed: int = 0

    def add(self, other: Deleted) -> None:
        self.deleted += other.deleted
        self.gone += other.gone
        self.changed += other.changed


@dataclass(frozen=True)
class Claim:
    held: bool
    waited: bool  # another holder had it first


class TableOwner:
    """Owns one table, created on first use (no I/O when the app is loaded). `clock` gives the
    time rows are stamped with (tests and the month soak write rows of other days with it)."""

    def __init__(self, table: TableClient, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._table = table
        self._ready = False
        self._lock = threading.Lock()
        self._now = clock or utc_now

    def _ensure_table(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._table.create_table()
                self._ready = True

    # -- going through a table in bounded steps (pruning) ------------------------------------------
    def pages(
        self,
        odata_filter: str,
        parameters: dict[str, Any] | None = None,
        page_size: int = 1000,
        select: list[str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The rows a filter selects (only the properties in `select`, if given), a page (at most
        `page_size`, Table storage's maximum being 1,000) at a time, each with its etag as `_etag`.
        The next page is read only when asked for, so a caller may delete a page's rows before
        reading on."""
        self._ensure_table()
        query = self._table.query_entities(
            odata_filter, parameters=parameters or {}, results_per_page=min(page_size, 1000), select=select
        )
        for page in query.by_page():
            yield [{**e, "_etag": e.metadata["etag"]} for e in page]

    def delete_rows(self, rows: Iterable[Mapping[str, Any]]) -> Deleted:
        """Delete rows read earlier, each only if unchanged since (its `_etag`): in transactions of
        up to 100 rows of one partition. A row someone changed in between is kept (`changed`); one
        someone deleted in between is counted `gone`, not deleted, so that two concurrent callers
        never both count a row."""
        self._ensure_table()
        result = Deleted()
        by_partition: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
        for members in by_partition.values():
            for start in range(0, len(members), BATCH):
                result.add(self._delete_batch(members[start : start + BATCH]))
        return result

    def _delete_batch(self, rows: list[Mapping[str, Any]]) -> Deleted:
        result = Deleted()
        pending = list(rows)
        for _ in range(3):  # a row that fails the transaction is taken out and the rest sent again
            if not pending:
                return result
            operations = [
                (
                    "delete",
                    {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]},
                    {"etag": r["_etag"], "match_condition": MatchConditions.IfNotModified},
                )
                for r in pending
            ]
            try:
                self._table.submit_transaction(operations)
            except TableTransactionError as error:
                index = error.index if 0 <= error.index < len(pending) else None
                if index is None or error.status_code not in (404, 412):
                    break  # not about one row: one at a time below
                if error.status_code == 404:
                    result.gone += 1
                else:
                    result.changed += 1
                del pending[index]
                continue
            result.deleted += len(pending)
            return result
        for row in pending:
            result.add(self._delete_one(row))
        return result

    def _delete_one(self, row: Mapping[str, Any]) -> Deleted:
        statuses: list[int] = []
        try:
            self._table.delete_entity(
                row["PartitionKey"],
                row["RowKey"],
                etag=row["_etag"],
                match_condition=MatchConditions.IfNotModified,
                raw_response_hook=lambda response: statuses.append(response.http_response.status_code),
            )
        except ResourceModifiedError:
            return Deleted(changed=1)
        except ResourceNotFoundError:
            return Deleted(gone=1)
        # The client treats 404 as success: the answer's status tells who deleted the row.
        return Deleted(gone=1) if statuses and statuses[-1] == 404 else Deleted(deleted=1)


class StateStore(TableOwner):
    # -- claims ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def claimed_within(self, key: str, wait: float, seconds: float = 30) -> Iterator[Claim]:
        """`claimed`, but waiting up to `wait` seconds for a holder to let go first (duplicate
        deliveries of one event, concurrent requests for one VM). The Claim says whether it is held
        and whether someone else held it first (then what they did is worth reading again)."""
        deadline = time.monotonic() + wait
        waited = False
        while True:
            with self.claimed(key, seconds) as mine:
                if mine or time.monotonic() >= deadline:
                    yield Claim(mine, waited)
                    return
            waited = True
            time.sleep(0.2)

    @contextlib.contextmanager
    def claimed(self, key: str, seconds: float = 30) -> Iterator[bool]:
        """Hold the claim on `key` for the block; yields False if someone else holds it. Each claim
        has its own owner, so two invocations in one process exclude each other as two instances
        do. The claim is a lease of `seconds`, renewed while the block runs: if the holder dies,
        the claim is free again within `seconds`."""
        owner = self._claim(key, seconds)
        if owner is None:
            yield False
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(seconds / 3):
                self._renew(key, owner, seconds)

        renewer = threading.Thread(target=renew, name=f"claim-{key[:40]}", daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join(timeout=5)
            self._release(key, owner)

    def _renew(self, key: str, owner: str, seconds: float) -> None:
        try:
            current = self._table.get_entity("claim", row_key(key))
            if current.get("Owner") != owner:
                return
            current["Expires"] = self._now() + dt.timedelta(seconds=seconds)
            self._table.update_entity(
                current, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except AzureError:
            log.warning("could not renew the claim on %s", key)

    def _claim(self, key: str, seconds: float) -> str | None:
        self._ensure_table()
        owner = uuid.uuid4().hex
        now = self._now()
        entity = {
            "PartitionKey": "claim",
            "RowKey": row_key(key),
            "Key": key,
            "Owner": owner,
            "Expires": now + dt.timedelta(seconds=seconds),
        }
        try:
            self._table.create_entity(entity)
            return owner
        except ResourceExistsError:
            pass
        try:
            current = self._table.get_entity("claim", row_key(key))
        except ResourceNotFoundError:
            return self._claim(key, seconds)
        if current["Expires"] > now:
            return None
        try:  # an expired claim (its holder died): take it over, unless someone else just did
            self._table.update_entity(
                entity, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
            return owner
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

    def _release(self, key: str, owner: str) -> None:
        try:
            current = self._table.get_entity("claim", row_key(key))
            if current.get("Owner") == owner:
                self._table.delete_entity(
                    "claim",
                    row_key(key),
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass

    def claim_held(self, key: str) -> bool:
        """Whether someone holds the claim on `key` now (its lease has not run out)."""
        row = self.get_row("claim", row_key(key))
        expires = row.get("Expires") if row else None
        return isinstance(expires, dt.datetime) and expires > self._now()

    # -- markers ---------------------------------------------------------------------------
    def put_once(self, kind: str, key: str, data: dict[str, Any]) -> bool:
        """Record that `kind` happened for `key`; False if it was already recorded (nothing written)."""
        self._ensure_table()
        entity = {"PartitionKey": kind, "RowKey": row_key(key), "Key": key, WRITTEN: self._now(), **data}
        try:
            self._table.create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """Write (merge) the row of `key`: its properties not in `data` stay."""
        self._ensure_table()
        self._table.upsert_entity(
            {"PartitionKey": kind, "RowKey": row_key(key), "Key": key, WRITTEN: self._now(), **data}
        )

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        self._ensure_table()
        try:
            return dict(self._table.get_entity(kind, row_key(key)))
        except ResourceNotFoundError:
            return None

    def get_row(self, kind: str, row: str) -> dict[str, Any] | None:
        """The entity with this RowKey (for ids that are already row keys), with its etag."""
        self._ensure_table()
        try:
            entity = self._table.get_entity(kind, row)
        except ResourceNotFoundError:
            return None
        return {**entity, "_etag": entity.metadata["etag"]}

    def replace_row(self, kind: str, row: str, data: dict[str, Any], etag: str) -> bool:
        """Replace an entity only if it is unchanged since it was read; False if someone changed it."""
        self._ensure_table()
        entity = {k: v for k, v in data.items() if not k.startswith("_")}
        entity.update({"PartitionKey": kind, "RowKey": row, WRITTEN: self._now()})
        try:
            self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            return True
        except (ResourceModifiedError, ResourceNotFoundError):
            return False

    def rows(
        self, kind: str, odata_filter: str = "", parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self._ensure_table()
        # The space before ")" keeps the client from reading "@name)" as a parameter called "name)".
        query = "PartitionKey eq @kind" + (f" and ({odata_filter} )" if odata_filter else "")
        return [
            {**e, "_etag": e.metadata["etag"]}
            for e in self._table.query_entities(query, parameters={"kind": kind, **(parameters or {})})
        ]

    def delete(self, kind: str, key: str) -> None:
        self._ensure_table()
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(kind, row_key(key))
