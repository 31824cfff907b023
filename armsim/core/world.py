"""The world: all simulated state, its clock, tunables, fault injection and request statistics.

State is partitioned by subscription inside each provider's models, held in memory and, with a data
directory, saved to DIR/state.json so it survives a restart. One lock serialises changes.
"""

from __future__ import annotations

import collections
import json
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from armsim.core.clock import SimClock
from armsim.core.limits import DEFAULT_LIMITS, merge_limits
from armsim.core.throttling import DEFAULT_THROTTLING, Throttler, merge_settings
from armsim.resourcegraph.settings import DEFAULT_SETTINGS as RESOURCE_GRAPH_SETTINGS
from armsim.resourcegraph.settings import merge_settings as merge_graph_settings

if TYPE_CHECKING:
    from armsim.core.http import Router

DEFAULT_CONFIG: dict[str, Any] = {
    # Long-running operations: simulated seconds until an accepted operation finishes.
    "lroSeconds": 0.0,
    # Backup jobs: simulated seconds of each phase.
    "snapshotSeconds": 2.0,
    "transferSeconds": 4.0,
    # A new VM becomes discoverable by its vault after this long, or at once on refreshContainers.
    "discoverySeconds": 1800.0,
    # A VM created through ARM reports its agent Not Ready ("VM status blob is found but not yet
    # populated.") for this long after its creation completes: recorded right after creation (the
    # Azure CLI's recordings of 2019); how long it lasts is armsim's choice.
    "agentReadySeconds": 120.0,
    # Shares of backup jobs that fail (snapshot fails) or complete with warnings (transfer fails).
    "jobFailureRate": 0.0,
    "jobWarningRate": 0.0,
    # Azure's limit of on-demand backups per item per UTC day.
    "onDemandDailyLimit": 9,
    # Page sizes of paged lists.
    "pageSize": {
        "resourceGroups": 1000,
        "virtualMachines": 1000,
        "disks": 1000,
        "vaults": 1000,
        "protectedItems": 200,
        "protectableItems": 200,
        "jobs": 200,
        "policies": 200,
        "recoveryPoints": 200,
    },
    # Scheduled backups per policy on the simulated clock.
    "scheduledBackups": True,
    # At most this many missed schedule occurrences are caught up per item when the clock jumps.
    "scheduleCatchUp": 3,
    # Event Grid delivery: seconds between retries (Event Grid's own schedule is 10 s, 30 s, 1 min, ...).
    "eventRetrySeconds": [1, 2, 5, 10, 30],
    "eventMaxAttempts": 6,
    "eventBatchSize": 10,
    # Event Grid: deliveries (batches) in flight at once per event subscription. Event Grid does not
    # document its figure ("the highly parallelized nature of Event Grid's architecture"); see
    # docs/ARMSIM.md, "Event Grid".
    "eventConcurrency": 8,
    "seed": 1,
    # Azure's documented limits (armsim/core/limits.py).
    "limits": DEFAULT_LIMITS,
    # ARM's request throttling (armsim/core/throttling.py).
    "throttling": DEFAULT_THROTTLING,
    # Azure Resource Graph: its lag behind ARM, its user quota, its page size (armsim/resourcegraph).
    "resourceGraph": RESOURCE_GRAPH_SETTINGS,
}
# Settings that are objects of objects: merged by their own rules, not key by key.
_NESTED = {"limits": merge_limits, "throttling": merge_settings, "resourceGraph": merge_graph_settings}


class Stats:
    """Counts of ARM requests served (what Azure would throttle), per operation and status."""

    LOG_SIZE = 200_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_operation: collections.Counter[str] = collections.Counter()
            self.by_status: collections.Counter[int] = collections.Counter()
            self.throttled: collections.Counter[str] = collections.Counter()  # 429s of the buckets, by kind
            self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.LOG_SIZE)

    def record(self, entry: dict[str, Any], arm: bool) -> None:
        with self._lock:
            if arm:
                self.total += 1
                self.by_operation[entry["operation"]] += 1
                self.by_status[entry["status"]] += 1
                if entry.get("throttled"):
                    self.throttled[entry["throttled"]] += 1
            self.log.append(entry)

    def snapshot(self, include_log: bool = False) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {
                "total": self.total,
                "byOperation": dict(self.by_operation),
                "byStatus": {str(k): v for k, v in self.by_status.items()},
                # 429s answered because a token bucket was empty (injected 429 faults are not in it).
                "throttled": {"total": sum(self.throttled.values()), **dict(self.throttled)},
            }
            if include_log:
                data["log"] = list(self.log)
            return data


class Faults:
    """Fault injection: a share of ARM requests answers 429/500/503/409/403 instead of being served."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rate = 0.0
        self.kinds: dict[str, float] = {}
        self.retry_after = 1
        self.operations: list[str] = []  # operation names, or empty for all
        self.methods: list[str] = []
        self.event_duplicates = 1  # each event delivered this many times
        self.event_shuffle = False  # deliver batches out of order
        self.random = random.Random(7)

    def configure(self, data: dict[str, Any]) -> None:
        self.rate = float(data.get("rate", self.rate))
        if not 0 <= self.rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        kinds = data.get("kinds", self.kinds or {"429": 1, "500": 1, "503": 1, "409": 1})
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {', '.join(FAULT_KINDS)}")
        self.kinds = {k: float(v) for k, v in kinds.items()}
        self.retry_after = int(data.get("retryAfter", self.retry_after))
        self.operations = list(data.get("operations", self.operations))
        self.methods = [m.upper() for m in data.get("methods", self.methods)]
        self.event_duplicates = int(data.get("eventDuplicates", self.event_duplicates))
        self.event_shuffle = bool(data.get("eventShuffle", self.event_shuffle))
        if "seed" in data:
            self.random = random.Random(int(data["seed"]))

    def describe(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "kinds": self.kinds,
            "retryAfter": self.retry_after,
            "operations": self.operations,
            "methods": self.methods,
            "eventDuplicates": self.event_duplicates,
            "eventShuffle": self.event_shuffle,
        }

    def pick(self, operation: str, method: str) -> str | None:
        if self.rate <= 0 or not self.kinds:
            return None
        if self.operations and operation not in self.operations:
            return None
        if self.methods and method not in self.methods:
            return None
        if self.random.random() >= self.rate:
            return None
        kinds = dict(self.kinds)
        if not operation.startswith(("Protect", "Backup", "Backups", "Job", "RecoveryPoint", "BackupStatus")):
            kinds.pop("409", None)  # "another operation in progress" is a Backup service answer
        if not kinds:
            return None
        names = list(kinds)
        return self.random.choices(names, weights=[kinds[n] for n in names])[0]


# Fault kinds: an ARM answer (429, 500, 503, 409, 403) instead of the operation's, or "drop": the
# operation is carried out and the connection closed before its answer (a network failure the
# caller cannot tell from one before the request arrived).
FAULT_KINDS = ("429", "500", "503", "409", "403", "drop")


class Provider:
    """A simulated resource provider: its models, routes and share of the saved state."""

    name: ClassVar[str] = ""

    def __init__(self, world: World) -> None:
        self.world = world
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def register(self, router: Router) -> None:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Advance simulated processes to `now` (a timestamp on the simulated clock)."""


P = TypeVar("P", bound=Provider)


class World:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = SimClock()
        self.config: dict[str, Any] = json.loads(json.dumps(DEFAULT_CONFIG))
        self.stats = Stats()
        self.faults = Faults()
        self.throttle = Throttler(lambda: self.config["throttling"])
        self.random = random.Random(DEFAULT_CONFIG["seed"])
        self.data_dir = data_dir
        self.providers: dict[str, Provider] = {}
        self._dirty = False
        self.generation = 0  # counts changes (Azure Resource Graph re-indexes when it moved)

    def add(self, provider_type: type[P]) -> P:
        provider = provider_type(self)
        self.providers[provider.name] = provider
        return provider

    def backend(self, kind: type[P]) -> P:
        """The world's provider of type `kind`, typed: `world.backend(ComputeBackend).find_vm(...)`.
        (A module that `kind`'s own module imports takes it by a local import, to avoid the cycle.)"""
        provider = self.providers.get(kind.name)
        if not isinstance(provider, kind):
            raise LookupError(f"this world has no {kind.__name__}")
        return provider

    def now(self) -> float:
        return self.clock.now_ts()

    def tick(self) -> None:
        now = self.now()
        with self.lock:
            for provider in self.providers.values():
                provider.tick(now)

    def changed(self) -> None:
        self._dirty = True
        self.generation += 1

    def configure(self, data: dict[str, Any]) -> None:
        unknown = set(data) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
        with self.lock:
            for key, value in data.items():
                if key in _NESTED:
                    self.config[key] = _NESTED[key](self.config[key], value)
                    if key == "throttling":
                        self.throttle.reset()  # new figures: every bucket starts full with them
                elif key == "eventConcurrency" and (int(value) < 1 or isinstance(value, bool)):
                    raise ValueError("eventConcurrency must be a whole number of 1 or more")
                elif isinstance(DEFAULT_CONFIG[key], dict):
                    extra = set(value) - set(DEFAULT_CONFIG[key])
                    if extra:
                        raise ValueError(f"unknown {key} entries {sorted(extra)}")
                    self.config[key].update(value)
                else:
                    self.config[key] = (
                        type(DEFAULT_CONFIG[key])(value) if DEFAULT_CONFIG[key] is not None else value
                    )
            if "seed" in data:
                self.random = random.Random(int(data["seed"]))
            self.changed()

    def reset(self) -> None:
        with self.lock:
            self.config = json.loads(json.dumps(DEFAULT_CONFIG))
            self.random = random.Random(DEFAULT_CONFIG["seed"])
            self.clock = SimClock()
            self.faults.reset()
            self.stats.reset()
            self.throttle.reset()
            for provider in self.providers.values():
                provider.reset()
            self.changed()

    # -- persistence -------------------------------------------------------------------------
    def save(self, force: bool = False) -> None:
        if self.data_dir is None or not (self._dirty or force):
            return
        with self.lock:
            data = {
                "version": 1,
                "clock": self.clock.to_dict(),
                "config": self.config,
                "providers": {name: p.to_dict() for name, p in self.providers.items()},
            }
            self._dirty = False
            text = json.dumps(data, separators=(",", ":"))
        target = self.data_dir / "state.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)

    def load(self) -> bool:
        if self.data_dir is None:
            return False
        path = self.data_dir / "state.json"
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        with self.lock:
            self.clock.load(data.get("clock", {}))
            self.config.update(data.get("config", {}))
            for name, provider in self.providers.items():
                if name in data.get("providers", {}):
                    provider.load(data["providers"][name])
        return True
