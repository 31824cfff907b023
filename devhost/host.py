"""``Host``: load a Functions app and run its triggers, as the Functions host does locally."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType

from .config import HostError, HostOptions, load_host_json, load_local_settings, resolve_setting_names
from .endpoints import EVENT_GRID_PATH, Endpoints, Keys
from .functions import (
    EVENT_GRID_TRIGGER,
    HTTP_TRIGGER,
    QUEUE_OUTPUT,
    QUEUE_TRIGGER,
    TIMER_TRIGGER,
    FunctionSpec,
    Invoker,
    discover,
    import_app,
)
from .ncrontab import CronError, parse
from .queues import QueueListener, QueueStore
from .server import HttpServer
from .timers import TimerRunner
from .workers import WorkerPool, worker_settings

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_PORT", "Host"]

log = logging.getLogger("devhost")

DEFAULT_PORT = 7071
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's limit
MASTER_KEY_SETTING = "DEVHOST_MASTER_KEY"
FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
EVENTGRID_KEY_SETTING = "DEVHOST_EVENTGRID_KEY"


class Host:
    """A local Functions host for the app in ``app_dir``.

    ``port``: 0 for a free port, None for local.settings.json ``Host.LocalHttpPort`` or 7071.
    ``settings``: app settings that win over the environment and local.settings.json.
    ``start()`` returns once every trigger runs; ``stop()`` undoes what start() did to the process
    (environment, sys.path, sys.modules["function_app"]). Usable as a context manager.
    """

    def __init__(
        self,
        app_dir: str | Path,
        *,
        port: int | None = 0,
        host: str = "127.0.0.1",
        settings: Mapping[str, str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        stop_timeout: float = 30.0,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self._port = port
        self._bind = host
        self._settings = dict(settings or {})
        self._max_body_bytes = max_body_bytes
        self._stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._saved_environ: dict[str, str | None] = {}
        self._saved_module: ModuleType | None = None
        self._imported = False
        self._added_path = False
        self._server: HttpServer | None = None
        self._runners: list[TimerRunner | QueueListener] = []
        self._endpoints: Endpoints | None = None
        self._store: QueueStore | None = None
        self._invoker: Invoker | None = None
        self._pool: WorkerPool | None = None
        self.functions: list[FunctionSpec] = []
        self.options = HostOptions()
        self.keys = Keys("", "", None)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the host is not started")
        return self._server.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, once started."""
        return f"http://{self._bind}:{self.port}"

    def start(self) -> Host:
        """Load the app, check it, serve it and start its triggers; HostError says what is wrong."""
        try:
            self._start()
        except BaseException:
            if self._store is not None:
                self._store.close()
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            self._undo_process_changes()
            raise
        return self

    def _start(self) -> None:
        self._stop = threading.Event()
        local = load_local_settings(self.app_dir)
        self.options = load_host_json(self.app_dir)
        for name, value in local.values.items():  # as the host: the environment wins
            if name not in os.environ:
                self._set_environ(name, value)
        for name, value in self._settings.items():
            self._set_environ(name, value)
        self.keys = Keys(
            master=self._key(MASTER_KEY_SETTING, "master"),
            function=self._key(FUNCTION_KEY_SETTING, "function"),
            eventgrid=os.environ.get(EVENTGRID_KEY_SETTING) or None,
        )
        if str(self.app_dir) not in sys.path:
            sys.path.insert(0, str(self.app_dir))
            self._added_path = True
        self._saved_module = sys.modules.get("function_app")
        self._imported = True
        _, app = import_app(self.app_dir)
        self.functions = discover(app, self.app_dir)
        if not self.functions:
            log.warning(
                "No job functions found in %s: does function_app.py register its blueprints?", self.app_dir
            )

        threads, processes = worker_settings()
        self._pool = WorkerPool(threads, processes)
        log.info("language workers: %s", self._pool.describe())
        self._store = store = QueueStore(self.options.queues)
        invoker = Invoker(write_output=store.write_output, pool=self._pool)
        self._runners = self._triggers(store, invoker)
        self._invoker = invoker
        self._endpoints = Endpoints(self.functions, invoker, self.keys, self.options.route_prefix)
        port = self._port if self._port is not None else (local.http_port or DEFAULT_PORT)
        try:
            self._server = HttpServer(self._bind, port, self._endpoints.handle, self._max_body_bytes)
        except OSError as error:
            raise HostError(f"cannot listen on {self._bind}:{port}: {error}") from None
        self._server.start()
        for runner in self._runners:
            runner.start()
        log.info("%d functions, listening on %s", len(self.functions), self.url)

    def _triggers(self, store: QueueStore, invoker: Invoker) -> list[TimerRunner | QueueListener]:
        """Resolve and check timer schedules and queues; all problems are reported together."""
        runners: list[TimerRunner | QueueListener] = []
        problems: list[str] = []
        for spec in self.functions:
            if spec.disabled:
                log.info("function %s is disabled (AzureWebJobs.%s.Disabled)", spec.name, spec.name)
                continue
            try:
                for binding in spec.outputs:
                    if binding.type == QUEUE_OUTPUT:
                        store.register(spec, binding)
                if spec.trigger_type == TIMER_TRIGGER:
                    expression = resolve_setting_names(
                        str(spec.attribute("schedule", "")), f"function {spec.name!r}: schedule"
                    )
                    try:
                        schedule = parse(expression)
                    except CronError as error:
                        raise HostError(f"function {spec.name!r}: {error}") from None
                    startup = bool(spec.attribute("run_on_startup"))
                    runners.append(
                        TimerRunner(
                            spec, schedule, run_on_startup=startup, invoke=invoker.invoke, stop=self._stop
                        )
                    )
                elif spec.trigger_type == QUEUE_TRIGGER:
                    client = store.register(spec, spec.trigger)
                    runners.append(QueueListener(spec, store, client, invoker.invoke, self._stop))
            except HostError as error:
                problems.append(str(error))
        if problems:
            raise HostError("devhost cannot start the triggers:\n  - " + "\n  - ".join(problems))
        return runners

    @property
    def workers(self) -> WorkerPool:
        """The language workers' capacity (threads x processes), once started."""
        if self._pool is None:
            raise RuntimeError("the host is not started")
        return self._pool

    def describe(self) -> str:
        """The functions and where they are served, as Core Tools prints them at start-up."""
        http_urls = self._endpoints.http_urls(self.url) if self._endpoints else {}
        lines = ["Functions:", ""]
        for spec in self.functions:
            if spec.disabled:
                detail = f"{spec.trigger_type} (disabled)"
            elif spec.trigger_type == HTTP_TRIGGER:
                methods = spec.attribute("methods")
                verbs = ",".join(str(getattr(m, "value", m)) for m in methods) if methods else "all methods"
                detail = f"[{verbs}] {http_urls.get(spec.name, '')}"
            elif spec.trigger_type == EVENT_GRID_TRIGGER:
                detail = f"eventGridTrigger: POST {self.url}{EVENT_GRID_PATH}?functionName={spec.name}"
            else:
                detail = spec.trigger_type
                for runner in self._runners:
                    if runner.spec is spec and isinstance(runner, TimerRunner):
                        detail += f" ({runner.schedule.expression}, UTC)"
                    elif runner.spec is spec and isinstance(runner, QueueListener):
                        detail += f" (queue {runner.queue_name})"
            lines.append(f"        {spec.name}: {detail}")
        return "\n".join(lines)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server, timers and queue listeners; wait for running invocations (up to timeout)."""
        if self._server is None:
            return
        deadline = time.monotonic() + (self._stop_timeout if timeout is None else timeout)

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self._stop.set()
        self._server.stop_accepting()
        for runner in self._runners:
            runner.join(remaining())
        if self._endpoints is not None:
            self._endpoints.wait_background(remaining())
        idle = self._invoker is None or self._invoker.wait_idle(remaining())
        if not self._server.close(remaining()) or not idle:
            log.warning("stopping with invocations still running")
        self._server = None
        if self._store is not None:
            self._store.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._undo_process_changes()
        log.info("stopped")

    def __enter__(self) -> Host:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _key(self, setting: str, kind: str) -> str:
        key = os.environ.get(setting)
        if key:
            return key
        key = secrets.token_urlsafe(24)
        self._set_environ(setting, key)
        log.warning("%s is not set: the %s key of this run is %s", setting, kind, key)
        return key

    def _set_environ(self, name: str, value: str) -> None:
        self._saved_environ.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _undo_process_changes(self) -> None:
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ.clear()
        if self._added_path:
            sys.path.remove(str(self.app_dir))
            self._added_path = False
        if self._imported:
            if self._saved_module is not None:
                sys.modules["function_app"] = self._saved_module
            else:
                sys.modules.pop("function_app", None)
            self._imported = False
