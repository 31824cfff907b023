"""Azure Resource Graph over the simulated estate: its tables, its lag behind ARM, its user quota.

ARG is an asynchronous index of ARM's resources ("near real-time ... eventual consistent ... lags behind
the source of truth by a brief period, occasionally longer", Microsoft's "Choose a query strategy"). armsim
models it as a snapshot of the world that is taken again once it is older than `lagSeconds` (wall time,
30 by default: "95% of all changes to be present in resource graph under 30s", azure-dev#540) and the world
has changed since. A seed is history, not a change: it is indexed at once. `POST
/_armsim/resourcegraph/refresh` indexes the world now.

Tables (columns and the `properties` of each type: armsim/SUPPORTED_OPERATIONS.md, "Azure Resource Graph"):

- `Resources`: virtual machines (with `properties.extended.instanceView`), managed disks, Recovery
  Services vaults;
- `RecoveryServicesResources`: protected items, backup policies and backup jobs of the last 14 days;
- `ResourceContainers`: subscriptions (with their management group chain) and resource groups.

Types are lower case, as ARG writes them; `resourceGroup` is lower case too. Every query counts against a
per-user quota of 15 queries in a window of 5 seconds (wall time), each page included.
"""

from __future__ import annotations

import collections
import copy
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.backup.models import BackupBackend
from armsim.compute.models import ComputeBackend
from armsim.core.clock import iso
from armsim.core.errors import BadRequest
from armsim.core.world import Provider
from armsim.resources.models import ResourcesBackend
from armsim.vaults.models import VaultsBackend

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from armsim.core.http import Router

TABLES = ("Resources", "RecoveryServicesResources", "ResourceContainers")
#: The columns every table has, in ARG's order; the dynamic ones hold JSON.
COLUMNS = (
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
)
DYNAMIC = frozenset({"sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation"})
JOB_DAYS = 14  # "Backup/Restore jobs that are up to 14 days old are available in ARG for query."
POWER = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}
# The ARG-wide protection state of a Recovery Services item (the values of the Backup docs' sample
# query; which RP state maps to which is armsim's reading).
CURRENT_STATE = {
    "IRPending": "ConfiguringProtection",
    "Protected": "ProtectionConfigured",
    "ProtectionStopped": "ProtectionStopped",
    "ProtectionError": "ProtectionError",
}
# Item properties ARG shows (a Microsoft sample script that reads every property of ARG's protected
# items lists these, besides ARG's own dataSourceInfo, currentProtectionState and vaultId).
ITEM_KEYS = (
    "protectedItemType",
    "backupManagementType",
    "workloadType",
    "containerName",
    "sourceResourceId",
    "friendlyName",
    "policyId",
    "policyName",
    "protectionState",
    "protectionStatus",
    "lastBackupStatus",
    "lastBackupTime",
    "lastRecoveryPoint",
    "isScheduledForDeferredDelete",
    "deferredDeleteTimeInUTC",
    "deferredDeleteTimeRemaining",
)


@dataclass
class Tables:
    """The rows of each table, column by column (dynamic values as JSON text)."""

    taken_wall: float
    taken_sim: float
    generation: int
    columns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def add(self, table: str, row: dict[str, Any]) -> None:
        cols = self.columns.setdefault(table, {c: [] for c in COLUMNS})
        for name in COLUMNS:
            value = row.get(name)
            if name in DYNAMIC:
                cols[name].append(None if value is None else json.dumps(value, separators=(",", ":")))
            else:
                cols[name].append("" if value is None else str(value))

    def rows(self, table: str) -> int:
        return len(self.columns.get(table, {}).get("id", []))


@dataclass
class Snapshot:
    tables: Tables
    connection: DuckDBPyConnection
    lock: threading.Lock = field(default_factory=threading.Lock)
    scopes: dict[str, str] = field(default_factory=dict)  # scope key -> catalog of its views


@dataclass
class CachedResult:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    created: float
    scope: str


class UserQuota:
    """ARG's per-user quota: `quota` queries in a window of `window` seconds, from the first query of
    the window (wall time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def take(self, principal: str, quota: int, window: float) -> tuple[bool, int, float]:
        """(allowed, remaining after this query, seconds until the window resets)."""
        with self._lock:
            now = time.monotonic()
            start, used = self._windows.get(principal, (now, 0))
            if now - start >= window:
                start, used = now, 0
            resets = max(0.0, start + window - now)
            if used >= quota:
                self._windows[principal] = (start, used)
                return False, 0, resets
            used += 1
            self._windows[principal] = (start, used)
            return True, quota - used, resets


def hhmmss(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ResourceGraphBackend(Provider):
    name = "resourcegraph"

    def reset(self) -> None:
        # management group name (lower) -> {"name", "displayName", "subscriptions": [lower ids]}
        self.management_groups: dict[str, dict[str, Any]] = {}
        self.quota = UserQuota()
        self._snapshot: Snapshot | None = None
        self._snapshot_lock = threading.Lock()
        self._seeded = 0  # bumped by a seed: seeded resources are indexed at once
        self._indexed_seed = -1
        self.results: collections.OrderedDict[str, CachedResult] = collections.OrderedDict()
        self._results_lock = threading.Lock()
        self.queries = 0

    def register(self, router: Router) -> None:
        from armsim.resourcegraph.responses import ROUTES, ResourceGraphResponses

        router.mount(ResourceGraphResponses(self), ROUTES)

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.world.config["resourceGraph"]
        return settings

    # -- management groups ----------------------------------------------------------------------
    def add_management_group(self, data: dict[str, Any]) -> dict[str, Any]:
        name = str(data.get("name", "")).strip()
        if not name or len(name) > 90:
            raise ValueError("a management group needs a name of 1 to 90 characters")
        subscriptions = data.get("subscriptions", [])
        if not isinstance(subscriptions, list) or not all(isinstance(s, str) for s in subscriptions):
            raise ValueError("subscriptions must be a list of subscription ids")
        for subscription in subscriptions:
            self.world.backend(ResourcesBackend).require_subscription(subscription)
        record = {
            "name": name,
            "displayName": str(data.get("displayName") or name),
            "subscriptions": sorted({s.lower() for s in subscriptions}),
        }
        self.management_groups[name.lower()] = record
        self.world.changed()
        self.seeded()  # set up by the control API, as a seed: indexed at once
        return dict(record)

    def subscriptions_of(self, groups: list[str]) -> set[str]:
        found: set[str] = set()
        for group in groups:
            record = self.management_groups.get(group.lower())
            if record is None:
                raise BadRequest(
                    "BadRequest",
                    "Please provide below info when asking for support: timestamp = "
                    f"{iso(self.world.clock.now())}, correlationId = {uuid.uuid4()}.",
                    details=[
                        {
                            "code": "InvalidManagementGroup",
                            "message": f"The management group '{group}' was not found or is not accessible.",
                        }
                    ],
                )
            found |= set(record["subscriptions"])
        return found

    def groups_of(self, subscription: str) -> list[dict[str, str]]:
        return [
            {"name": g["name"], "displayName": g["displayName"]}
            for g in self.management_groups.values()
            if subscription.lower() in g["subscriptions"]
        ]

    # -- the index ------------------------------------------------------------------------------
    def seeded(self) -> None:
        """A seed happened: what it made is indexed by the next query, whatever the lag."""
        self._seeded += 1

    def refresh(self) -> Snapshot:
        """Index the world now."""
        with self._snapshot_lock:
            return self._build()

    def snapshot(self) -> Snapshot:
        """The index a query sees: taken again once older than the lag, if the world has changed."""
        with self._snapshot_lock:
            current = self._snapshot
            lag = float(self.settings()["lagSeconds"])
            if current is not None and self._indexed_seed == self._seeded:
                age = time.monotonic() - current.tables.taken_wall
                unchanged = (
                    current.tables.generation == self.world.generation
                    and current.tables.taken_sim == self.world.now()
                )
                if unchanged or age < lag:
                    return current
            return self._build()

    def _build(self) -> Snapshot:
        from armsim.resourcegraph.engine import load

        with self.world.lock:
            self._indexed_seed = self._seeded
            tables = self._tables()
        old = self._snapshot
        self._snapshot = Snapshot(tables, load(tables))
        if old is not None:
            with old.lock:
                old.connection.close()
        return self._snapshot

    def _tables(self) -> Tables:
        """Every row of every table, from the world as it is now. Call with the world lock held."""
        now = self.world.now()
        tables = Tables(time.monotonic(), now, self.world.generation)
        tenant = "72f988bf-0000-4000-8000-00000000a7e5"
        resources = self.world.backend(ResourcesBackend)
        vaults = self.world.backend(VaultsBackend)
        for key, sub in sorted(resources.subscriptions.items()):
            tables.add(
                "ResourceContainers",
                {
                    "id": sub["id"],
                    "name": sub["displayName"],
                    "type": "microsoft.resources/subscriptions",
                    "tenantId": sub.get("tenantId", tenant),
                    "subscriptionId": sub["subscriptionId"],
                    "properties": {
                        "state": sub.get("state", "Enabled"),
                        "subscriptionPolicies": sub.get("subscriptionPolicies", {}),
                        "managementGroupAncestorsChain": self.groups_of(key),
                    },
                    "tags": {},
                },
            )
        for _key, group in sorted(resources.groups.items()):
            tables.add(
                "ResourceContainers",
                {
                    "id": group["id"],
                    "name": group["name"],
                    "type": "microsoft.resources/subscriptions/resourcegroups",
                    "tenantId": tenant,
                    "location": group["location"],
                    "resourceGroup": group["name"].lower(),
                    "subscriptionId": group["id"].split("/")[2],
                    "properties": {"provisioningState": "Succeeded"},
                    "tags": group.get("tags") or {},
                },
            )
        compute = self.world.backend(ComputeBackend)
        for record in compute.vms.values():
            model = record["model"]
            tables.add("Resources", _resource(model, tenant, properties=self._vm_properties(record)))
        for disk in compute.disks.values():
            tables.add("Resources", _resource(disk, tenant))
        for record in vaults.vaults.values():
            tables.add("Resources", _resource(vaults.view(record), tenant))
        backup = self.world.backend(BackupBackend)
        for item in backup.items.values():
            vault = vaults.find(item["vault"])
            location = str(vault["model"]["location"]) if vault else ""
            view = backup.item_view(item)
            tables.add("RecoveryServicesResources", _item_row(view, item, location, tenant))
        for policy in backup.policies.values():
            tables.add("RecoveryServicesResources", _child_row(policy, tenant))
        oldest = now - JOB_DAYS * 86400
        for jobs in backup.jobs.values():
            for job in jobs.values():
                if job["start"] > now or job["start"] < oldest:
                    continue
                view = backup.job_view(job, detailed=False)
                tables.add("RecoveryServicesResources", _child_row(view, tenant))
        return tables

    def _vm_properties(self, record: dict[str, Any]) -> dict[str, Any]:
        """A VM's properties as ARG holds them: the model's, with its provisioning state, and
        `extended.instanceView` with the keys ARG shows (computer name, OS, Hyper-V generation, power
        state; no VM agent)."""
        props = record["model"]["properties"]
        sim = record["sim"]
        security = str((props.get("securityProfile") or {}).get("securityType", "")).lower()
        power = sim.get("power", "running")
        return {
            **props,
            "provisioningState": self.world.backend(ComputeBackend).provisioning_state(record),
            "extended": {
                "instanceView": {
                    "computerName": (props.get("osProfile") or {}).get(
                        "computerName", record["model"]["name"]
                    ),
                    "osName": sim.get("osName", ""),
                    "osVersion": sim.get("osVersion", ""),
                    "hyperVGeneration": "V2" if security in ("trustedlaunch", "confidentialvm") else "V1",
                    "powerState": {
                        "code": f"PowerState/{power}",
                        "level": "Info",
                        "displayStatus": POWER.get(power, power),
                    },
                }
            },
        }

    # -- results for paging ---------------------------------------------------------------------
    def keep(self, result: CachedResult) -> str:
        token_id = uuid.uuid4().hex
        with self._results_lock:
            self.results[token_id] = result
            cutoff = time.monotonic() - 900
            while self.results and (
                len(self.results) > 16 or next(iter(self.results.values())).created < cutoff
            ):
                self.results.popitem(last=False)
        return token_id

    def cached(self, token_id: str) -> CachedResult | None:
        with self._results_lock:
            return self.results.get(token_id)

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"managementGroups": self.management_groups}

    def load(self, data: dict[str, Any]) -> None:
        self.management_groups = data.get("managementGroups") or {}


def _resource(model: dict[str, Any], tenant: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    parts = model["id"].split("/")
    return {
        "id": model["id"],
        "name": model["name"],
        "type": model["type"].lower(),
        "tenantId": tenant,
        "kind": model.get("kind", ""),
        "location": model.get("location", ""),
        "resourceGroup": parts[4].lower(),
        "subscriptionId": parts[2],
        "managedBy": model.get("managedBy", ""),
        "sku": model.get("sku"),
        "plan": model.get("plan"),
        "properties": model.get("properties") if properties is None else properties,
        "tags": model.get("tags") or {},
        "identity": model.get("identity"),
        "zones": model.get("zones"),
        "extendedLocation": model.get("extendedLocation"),
    }


def _child_row(view: dict[str, Any], tenant: str) -> dict[str, Any]:
    parts = view["id"].split("/")
    return {
        "id": view["id"],
        "name": view["name"],
        "type": view["type"].lower(),
        "tenantId": tenant,
        "location": view.get("location", ""),
        "resourceGroup": parts[4].lower(),
        "subscriptionId": parts[2],
        "properties": view.get("properties") or {},
        "tags": view.get("tags") or {},
    }


def _item_row(view: dict[str, Any], item: dict[str, Any], location: str, tenant: str) -> dict[str, Any]:
    """A protected item: the RP's properties ARG shows (ITEM_KEYS; no extendedProperties, so no disk
    exclusion), and ARG's own vaultId, currentProtectionState and dataSourceInfo (the VM and its
    region: a VM is protected in a vault of its own region)."""
    source = view["properties"]
    props = {k: copy.copy(source[k]) for k in ITEM_KEYS if k in source}
    vm = str(source.get("sourceResourceId", ""))
    props["vaultId"] = view["id"].split("/backupFabrics/")[0]
    props["currentProtectionState"] = (
        "SoftDeleted" if item.get("softDeleted") else CURRENT_STATE.get(source.get("protectionState", ""), "")
    )
    props["dataSourceInfo"] = {
        "resourceID": vm,
        "resourceLocation": location,
        "resourceName": vm.rsplit("/", 1)[-1],
        "resourceType": "Microsoft.Compute/virtualMachines",
        "datasourceType": "Microsoft.Compute/virtualMachines",
    }
    return _child_row({**view, "properties": props}, tenant)
