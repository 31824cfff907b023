"""Small shared state in Azure Table storage: claims that keep two instances (or two deliveries of
one event) from acting on the same VM at once, and markers of what was already done."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

if TYPE_CHECKING:
    from azure.data.tables import TableClient

log = logging.getLogger("autopilot.state")


def row_key(key: str) -> str:
    """Table RowKeys cannot hold '/', '#', '?' or '\\': resource ids are hashed (case-insensitively)."""
    return hashlib.sha256(key.lower().encode()).hexdigest()


class TableOwner:
    """Owns one table, created on first use (no I/O when the app is loaded)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_table(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._table.create_table()
                self._ready = True


class StateStore(TableOwner):
    # -- claims ----------------------------------------------------------------------------
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
            current["Expires"] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
            self._table.update_entity(
                current, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
        except AzureError:
            log.warning("could not renew the claim on %s", key)

    def _claim(self, key: str, seconds: float) -> str | None:
        self._ensure_table()
        owner = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
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

    # -- markers ---------------------------------------------------------------------------
    def put_once(self, kind: str, key: str, data: dict[str, Any]) -> bool:
        """Record that `kind` happened for `key`; False if it was already recorded (nothing written)."""
        self._ensure_table()
        try:
            self._table.create_entity({"PartitionKey": kind, "RowKey": row_key(key), "Key": key, **data})
            return True
        except ResourceExistsError:
            return False

    def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        self._ensure_table()
        self._table.upsert_entity({"PartitionKey": kind, "RowKey": row_key(key), "Key": key, **data})

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
        entity.update({"PartitionKey": kind, "RowKey": row})
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
