"""The audit table: every change the product makes on Azure, with the VM, the reason and the outcome.

Rows live in Azure Table storage (Azurite locally): PartitionKey is the UTC day, RowKey sorts newest
first. The same record goes to the log with structured fields.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from azure.core.exceptions import AzureError

from autopilot.state import TableOwner

log = logging.getLogger("autopilot.audit")

_MAX_TICKS = 10**19


class AuditLog(TableOwner):
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
        now = dt.datetime.now(dt.UTC)
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

    def entries(self, day: dt.date | None = None) -> list[dict[str, Any]]:
        """One day's rows, newest first (for reports and tests)."""
        self._ensure_table()
        day = day or dt.datetime.now(dt.UTC).date()
        rows = self._table.query_entities("PartitionKey eq @day", parameters={"day": day.isoformat()})
        return [dict(row) for row in rows]
