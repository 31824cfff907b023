"""Long-running operations: accepted at once, finished `lroSeconds` of simulated time later.

A provider changes its state when it accepts a request (so nothing is half-done), records an
Operation, and answers 201/202 with the headers Azure gives. Clients then poll the operation's
status or result URL until it is finished. Callbacks (e.g. an Event Grid event at the end of a VM
write) run when the operation finishes.
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from armsim.core.clock import iso
from armsim.core.world import Provider, World


@dataclass
class Operation:
    id: str
    kind: str
    started: float
    done_at: float
    error: dict[str, Any] | None = None  # {"code", "message"} when it fails
    resource_id: str = ""
    job_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def finished(self, now: float) -> bool:
        return now >= self.done_at

    def status(self, now: float) -> str:
        if not self.finished(now):
            return "InProgress"
        return "Failed" if self.error else "Succeeded"

    def retry_after(self, now: float) -> str:
        return str(max(0, min(60, math.ceil(self.done_at - now))))

    def status_body(self, now: float, include_times: bool = True) -> dict[str, Any]:
        import datetime as dt

        body: dict[str, Any] = {"id": self.id, "name": self.id, "status": self.status(now)}
        if include_times:
            body["startTime"] = iso(dt.datetime.fromtimestamp(self.started, dt.UTC))
            if self.finished(now):
                body["endTime"] = iso(dt.datetime.fromtimestamp(self.done_at, dt.UTC))
        if self.error and self.finished(now):
            body["error"] = dict(self.error)
        return body


class Operations(Provider):
    name = "operations"

    def reset(self) -> None:
        self.items: dict[str, Operation] = {}
        self._callbacks: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def register(self, router: Any) -> None:
        """Operations are served by the providers that own them."""

    def start(self) -> None:
        """Nothing runs in the background; finished callbacks run on tick."""

    def begin(
        self,
        kind: str,
        *,
        resource_id: str = "",
        job_id: str = "",
        error: dict[str, Any] | None = None,
        on_done: Callable[[], None] | None = None,
        seconds: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Operation:
        now = self.world.now()
        delay = float(self.world.config["lroSeconds"] if seconds is None else seconds)
        op = Operation(
            id=str(uuid.uuid4()),
            kind=kind,
            started=now,
            done_at=now + delay,
            error=error,
            resource_id=resource_id,
            job_id=job_id,
            extra=extra or {},
        )
        self.items[op.id] = op
        if on_done is not None:
            if delay <= 0:
                on_done()
            else:
                self._seq += 1
                heapq.heappush(self._callbacks, (op.done_at, self._seq, on_done))
        return op

    def get(self, operation_id: str) -> Operation | None:
        return self.items.get(operation_id.lower()) or self.items.get(operation_id)

    def tick(self, now: float) -> None:
        while self._callbacks and self._callbacks[0][0] <= now:
            _, _, callback = heapq.heappop(self._callbacks)
            callback()

    def to_dict(self) -> dict[str, Any]:
        return {"items": [asdict(op) for op in self.items.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.items = {d["id"]: Operation(**d) for d in data.get("items", [])}


def operations(world: World) -> Operations:
    return world.backend(Operations)
