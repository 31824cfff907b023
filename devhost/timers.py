"""Timer triggers: run a function on its NCRONTAB schedule, in UTC."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest

from .functions import FunctionSpec
from .ncrontab import CronSchedule

__all__ = ["TimerRunner"]

log = logging.getLogger("devhost")

Invoke = Callable[[FunctionSpec, Any, str, int], Any]
PAST_DUE_AFTER = timedelta(seconds=1)  # firing later than this after the occurrence: past_due


class TimerRunner:
    """One thread per timer function. Runs never overlap: a run that outlasts the interval
    makes the runner skip to the next occurrence after it ends (as the host's singleton timers)."""

    def __init__(
        self,
        spec: FunctionSpec,
        schedule: CronSchedule,
        *,
        run_on_startup: bool,
        invoke: Invoke,
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.spec = spec
        self.schedule = schedule
        self._run_on_startup = run_on_startup
        self._invoke = invoke
        self._stop = stop
        self._clock = clock
        self._last: datetime | None = None
        self._thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        if self._run_on_startup:
            self._fire(self._clock(), "Timer fired at startup", past_due=False)
        due = self.schedule.next_after(self._clock())
        log.info("timer %s: next run at %s UTC", self.spec.name, due.strftime("%Y-%m-%d %H:%M:%S"))
        while not self._stop.is_set():
            remaining = (due - self._clock()).total_seconds()
            if remaining > 0:
                self._stop.wait(remaining)
                continue
            now = self._clock()
            self._fire(due, f"Timer fired at {now.isoformat()}", past_due=now - due > PAST_DUE_AFTER)
            due = self.schedule.next_after(max(due, self._clock()))

    def _fire(self, occurrence: datetime, reason: str, past_due: bool) -> None:
        upcoming = self.schedule.next_after(max(occurrence, self._clock()))
        status = {
            "Last": (self._last or occurrence).isoformat(),
            "Next": upcoming.isoformat(),
            "LastUpdated": self._clock().isoformat(),
        }
        self._last = occurrence
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        retry = 0
        while True:
            try:
                self._invoke(self.spec, request, reason, retry)
                return
            except Exception:  # logged by the invoker; retried as @app.retry says, then the schedule goes on
                retry += 1
                policy = self.spec.retry
                if policy is None or not policy.allows(retry):
                    return
                delay = policy.delay_before(retry)
                log.info("function %s: retry %d in %.1f s (@app.retry)", self.spec.name, retry, delay)
                if self._stop.wait(delay):
                    return
                reason = f"Retry {retry} of {self.spec.name}"
