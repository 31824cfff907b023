"""The functions of the app: loading and checking them, and running one invocation."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.decorators.core import Binding, BindingDirection
from azure.functions.decorators.function_app import FunctionRegister

from .config import HostError, parse_timespan
from .workers import WorkerPool

__all__ = ["FunctionSpec", "Invoker", "discover", "import_app"]

log = logging.getLogger("devhost")

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, TIMER_TRIGGER, QUEUE_TRIGGER, EVENT_GRID_TRIGGER)
HTTP_OUTPUT = "http"
QUEUE_OUTPUT = "queue"
RETURN = "$return"

T = TypeVar("T")


@dataclass(frozen=True)
class Converted:
    """A trigger value the Python worker's converter makes from the host's data when the invocation
    starts (an Event Grid event from its JSON): a converter error fails that invocation, logged as
    the host logs a failed one, and not the others of its batch."""

    convert: Callable[[], Any]


@dataclass(frozen=True)
class RetryPolicy:
    """``@app.retry``: the host applies it to timer triggers (of those devhost runs)."""

    strategy: str  # "fixed_delay" or "exponential_backoff"
    max_retry_count: int  # -1: retry until it succeeds
    delay: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        if self.strategy == "fixed_delay":
            return self.delay
        return min(self.maximum, self.minimum * 2 ** (retry - 1))

    def allows(self, retry: int) -> bool:
        return self.max_retry_count < 0 or retry <= self.max_retry_count


@dataclass(frozen=True)
class FunctionSpec:
    """One function as devhost runs it."""

    name: str
    trigger: Binding
    outputs: tuple[Binding, ...]  # output bindings (http, queue), "$return" included
    user_function: Callable[..., Any]
    wants_context: bool
    disabled: bool
    directory: str
    retry: RetryPolicy | None = None

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.type)

    def attribute(self, name: str, default: Any = None) -> Any:
        """A trigger-specific attribute (route, schedule, queue_name, ...)."""
        return getattr(self.trigger, name, default)


def import_app(app_dir: Path) -> tuple[ModuleType, FunctionRegister]:
    """Import ``function_app`` from ``app_dir`` (which goes first on sys.path) and find its app."""
    path = app_dir / "function_app.py"
    if not path.exists():
        raise HostError(f"{path} not found: the Python v2 programming model needs function_app.py")
    spec = importlib.util.spec_from_file_location("function_app", path)
    if spec is None or spec.loader is None:
        raise HostError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        log.exception("importing %s failed", path)
        raise HostError(
            f"importing {path} failed: {type(error).__name__}: {error} (the Functions host would load no "
            "function at all; see the traceback above)"
        ) from error
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise HostError(f"{path} must define exactly one FunctionApp (found {len(apps)})")
    return module, apps[0]


def discover(
    app: FunctionRegister, app_dir: Path, environ: Mapping[str, str] = os.environ
) -> list[FunctionSpec]:
    """Every function of the app, checked; all problems are reported together in one HostError."""
    try:
        functions = app.get_functions()  # may be called once per app object: it remembers the names
    except ValueError as error:
        raise HostError(f"indexing the app failed: {error}") from error
    problems: list[str] = []
    specs: list[FunctionSpec] = []
    for function in functions:
        name = str(function.get_function_name())
        trigger = function.get_trigger()
        if trigger is None:
            problems.append(f"function {name!r} has no trigger")
            continue
        trigger_type = str(trigger.type)
        if trigger_type not in SUPPORTED_TRIGGERS:
            problems.append(
                f"function {name!r}: devhost does not support trigger type {trigger_type!r} "
                f"(supported: {', '.join(SUPPORTED_TRIGGERS)})"
            )
        outputs: list[Binding] = []
        for binding in function.get_bindings():
            if binding is trigger:
                continue
            binding_type = str(binding.type)
            supported = binding_type == QUEUE_OUTPUT or (
                binding_type == HTTP_OUTPUT and trigger_type == HTTP_TRIGGER
            )
            if not supported or binding.direction != BindingDirection.OUT.value:
                problems.append(
                    f"function {name!r}: devhost does not support binding type {binding_type!r} "
                    f"(binding {binding.name!r}); it supports queue output bindings and the HTTP response"
                )
            outputs.append(binding)
        user_function = function.get_user_function()
        parameters = list(inspect.signature(user_function).parameters)
        binding_names = [b.name for b in function.get_bindings() if b.name != RETURN]
        wants_context = "context" in parameters and "context" not in binding_names
        if sorted(p for p in parameters if not (wants_context and p == "context")) != sorted(binding_names):
            problems.append(
                f"function {name!r}: its parameters ({', '.join(parameters) or 'none'}) are not its "
                f"bindings' names ({', '.join(binding_names)}); the Functions host would silently drop "
                "every function of the app. Make each parameter name equal a binding's arg_name."
            )
        disabled = environ.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")
        try:
            retry = _retry_policy(name, trigger_type, function.get_settings_dict("retry_policy"))
        except HostError as error:
            problems.append(str(error))
            retry = None
        specs.append(
            FunctionSpec(
                name, trigger, tuple(outputs), user_function, wants_context, disabled, str(app_dir), retry
            )
        )
    if problems:
        raise HostError("devhost cannot load the app:\n  - " + "\n  - ".join(problems))
    return specs


def _retry_policy(name: str, trigger_type: str, setting: dict[str, Any] | None) -> RetryPolicy | None:
    if setting is None:
        return None
    if trigger_type != TIMER_TRIGGER:
        log.warning("function %s: the host applies @app.retry to timer triggers only; ignored", name)
        return None
    strategy = str(setting.get("strategy", "")).lower()

    def interval(key: str) -> float:
        try:
            return parse_timespan(setting.get(key))
        except ValueError as error:
            raise HostError(f"function {name!r}: @app.retry {key}: {error}") from None

    try:
        count = int(setting.get("max_retry_count", ""))
    except ValueError:
        raise HostError(f"function {name!r}: @app.retry max_retry_count must be a whole number") from None
    if strategy == "fixed_delay":
        return RetryPolicy(strategy, count, delay=interval("delay_interval"))
    if strategy == "exponential_backoff":
        return RetryPolicy(
            strategy, count, minimum=interval("minimum_interval"), maximum=interval("maximum_interval")
        )
    raise HostError(f"function {name!r}: @app.retry strategy must be fixed_delay or exponential_backoff")


class Out(func.Out[T], Generic[T]):
    """What a function sets on an output binding parameter."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]  # None until set, as in the worker


class _TraceContext(func_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> func_abc.RpcException:
        raise AttributeError("devhost does not keep the exception of the previous attempt")


class _Context(func_abc.Context):
    """The ``context`` parameter a function may take."""

    def __init__(self, invocation_id: str, spec: FunctionSpec, retry_count: int) -> None:
        self._invocation_id = invocation_id
        self._spec = spec
        self._retry_count = retry_count

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return threading.local  # the worker's is a per-thread object; nothing in devhost reads it

    @property
    def function_name(self) -> str:
        return self._spec.name

    @property
    def function_directory(self) -> str:
        return self._spec.directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func_abc.RetryContext:
        max_retry_count = self._spec.retry.max_retry_count if self._spec.retry else 0
        return _RetryContext(self._retry_count, max_retry_count)


OutputWriter = Callable[[FunctionSpec, Binding, Any], None]


@dataclass
class Invoker:
    """Runs invocations: binds parameters, logs like the host, runs the function on the language
    workers (``pool``; None: in the calling thread), writes output bindings."""

    write_output: OutputWriter  # for queue output bindings
    pool: WorkerPool | None = None
    _running: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def invoke(
        self, spec: FunctionSpec, trigger_value: Any, reason: str, retry_count: int = 0
    ) -> dict[str, Any]:
        """Run ``spec`` once; returns the output values by binding name ("$return" for the result).

        An exception from the function (or from writing its outputs) is logged and raised again.
        """
        invocation_id = str(uuid.uuid4())
        with self._tracked():
            log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
            started = time.monotonic()
            try:
                outputs = self._call(spec, trigger_value, invocation_id, retry_count)
                for binding in spec.outputs:
                    if binding.type == QUEUE_OUTPUT:
                        self.write_output(spec, binding, outputs.get(binding.name))
            except Exception:
                log.exception(
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                    spec.name,
                    invocation_id,
                    (time.monotonic() - started) * 1000,
                )
                raise
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
                spec.name,
                invocation_id,
                (time.monotonic() - started) * 1000,
            )
            return outputs

    def _call(
        self, spec: FunctionSpec, trigger_value: Any, invocation_id: str, retry_count: int
    ) -> dict[str, Any]:
        if isinstance(trigger_value, Converted):  # the worker's converter runs in the invocation
            trigger_value = trigger_value.convert()
        outs: dict[str, Out[Any]] = {b.name: Out() for b in spec.outputs if b.name != RETURN}
        arguments: dict[str, Any] = {spec.trigger.name: trigger_value, **outs}
        if spec.wants_context:
            arguments["context"] = _Context(invocation_id, spec, retry_count)
        if self.pool is not None:
            result = self.pool.call(spec.user_function, arguments)
        else:
            result = spec.user_function(**arguments)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
        values: dict[str, Any] = {name: out.get() for name, out in outs.items()}
        values[RETURN] = result
        return values

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        with self._idle:
            self._running += 1
        try:
            yield
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation runs; False if some still run after ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)
