"""The Python language workers' capacity: how many invocations run at once, as in Azure.

The Functions host starts ``FUNCTIONS_WORKER_PROCESS_COUNT`` Python worker processes (default 1, at
most 10) and hands each invocation to one of them. A worker runs a sync function on its thread pool
of ``PYTHON_THREADPOOL_THREAD_COUNT`` threads (unset: ``ThreadPoolExecutor(max_workers=None)``, that is
``min(32, os.cpu_count() + 4)`` threads) and an ``async def`` function on its one event loop. An
invocation waits while its worker's threads are all busy: that, not the number of HTTP requests or
queue messages the host accepts, bounds how many functions run at once.

devhost keeps that bound and the thread reuse, in one process: N "processes" are N thread pools and
N event loops in devhost's own process, so (unlike Azure) they share module state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import HostError

__all__ = ["PROCESS_COUNT_SETTING", "THREAD_COUNT_SETTING", "WorkerPool", "worker_settings"]

log = logging.getLogger("devhost")

THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
PROCESS_COUNT_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_PROCESSES = 10  # "You can increase the number of worker processes per host (up to 10)"


def default_thread_count() -> int:
    """What ThreadPoolExecutor(max_workers=None) makes: min(32, cpu + 4) (CPython 3.8+)."""
    return min(32, (os.cpu_count() or 1) + 4)


def worker_settings(environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """(threads per worker, worker processes) from the app settings, as the worker and host read them.

    A PYTHON_THREADPOOL_THREAD_COUNT that is not a whole number of 1 or more is ignored with a warning,
    as the Python worker does (it falls back to its default); a FUNCTIONS_WORKER_PROCESS_COUNT outside
    1-10 is refused (HostError), as devhost refuses what it cannot run faithfully.
    """
    threads = default_thread_count()
    text = environ.get(THREAD_COUNT_SETTING, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value >= 1:
            threads = value
        else:
            log.warning(
                "%s must be a whole number of 1 or more (got %r): using the default, %d",
                THREAD_COUNT_SETTING,
                text,
                threads,
            )
    processes = 1
    text = environ.get(PROCESS_COUNT_SETTING, "").strip()
    if text:
        try:
            processes = int(text)
        except ValueError:
            processes = 0
        if not 1 <= processes <= MAX_PROCESSES:
            raise HostError(
                f"{PROCESS_COUNT_SETTING} must be a whole number from 1 to {MAX_PROCESSES} (got {text!r})"
            )
    return threads, processes


@dataclass
class _Worker:
    """One simulated worker process: a thread pool for sync functions, an event loop for async ones."""

    index: int
    executor: concurrent.futures.ThreadPoolExecutor
    loop: asyncio.AbstractEventLoop
    loop_thread: threading.Thread


class WorkerPool:
    """Runs function calls on the workers, round robin, each call waiting for a free thread."""

    def __init__(self, threads: int, processes: int = 1) -> None:
        self.threads = threads
        self.processes = processes
        self._workers = [self._start(index) for index in range(processes)]
        self._next = itertools.cycle(self._workers)
        self._lock = threading.Lock()
        self.running = 0  # calls running on a worker now
        self.peak = 0  # the most that ever ran at once

    def _start(self, index: int) -> _Worker:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"devhost-worker-{index}-loop", daemon=True)
        thread.start()
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix=f"devhost-worker-{index}"
        )
        return _Worker(index, executor, loop, thread)

    def describe(self) -> str:
        return (
            f"{self.processes} worker process{'es' if self.processes != 1 else ''} x {self.threads} threads "
            f"({THREAD_COUNT_SETTING}, {PROCESS_COUNT_SETTING})"
        )

    def call(self, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        """``function(**arguments)`` on the next worker: an ``async def`` on its event loop, anything
        else on its thread pool (waiting for a thread). Returns its result or raises its exception."""
        with self._lock:
            worker = next(self._next)
        if inspect.iscoroutinefunction(function):
            return self._tracked_async(worker, function, arguments)
        return worker.executor.submit(self._tracked_sync, worker, function, arguments).result()

    def _tracked_sync(self, worker: _Worker, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        self._enter()
        try:
            result = function(**arguments)
            if inspect.iscoroutine(result):  # a sync callable handing back a coroutine: run it on the loop
                result = asyncio.run_coroutine_threadsafe(result, worker.loop).result()
            return result
        finally:
            self._leave()

    def _tracked_async(self, worker: _Worker, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        async def run() -> Any:
            self._enter()
            try:
                return await function(**arguments)
            finally:
                self._leave()

        return asyncio.run_coroutine_threadsafe(run(), worker.loop).result()

    def _enter(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def _leave(self) -> None:
        with self._lock:
            self.running -= 1

    def close(self) -> None:
        """Stop the workers (calls still running finish; none is waited for)."""
        for worker in self._workers:
            worker.executor.shutdown(wait=False, cancel_futures=True)
            worker.loop.call_soon_threadsafe(worker.loop.stop)
        for worker in self._workers:
            worker.loop_thread.join(timeout=1)
            if not worker.loop.is_running():
                worker.loop.close()
