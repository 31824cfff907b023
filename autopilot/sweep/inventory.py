"""The estate in a few paged calls, from one of two sources (AUTOPILOT_INVENTORY):

- ARM pages (`arm`, the reference): every VM of each subscription in scope (with its instance view,
  statusOnly=true) joined with the protected items of every vault the rules name, and per vault its
  policies, storage configuration and jobs, read by the sweep.
- Azure Resource Graph (`resourcegraph`): the same facts for every subscription at once, 1,000 rows a
  page (autopilot/azure/resourcegraph.py); what Resource Graph does not hold is read from ARM where it matters.
- `auto`: Resource Graph when the identity may query it, else ARM pages; the report says which and why.

IDs are compared case-insensitively, as ARM may change their case. No per-VM call is made."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError

from autopilot.azure.facts import ItemFacts, JobFacts
from autopilot.azure.failures import error_code
from autopilot.azure.gateway import AzureGateway
from autopilot.azure.vms import DataDisk, VmFacts
from autopilot.names import split_id
from autopilot.protect.decide import Decision, decide
from autopilot.rules import Rules, SubscriptionFacts, VaultSpec

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.azure.resourcegraph import Estate

log = logging.getLogger("autopilot.sweep.inventory")
ARM, GRAPH = "arm", "resourcegraph"
MISSING = ("ResourceNotFound", "ResourceGroupNotFound")  # a vault the rules name that does not exist
EXCLUSION_GETS = 20  # more items than this whose exclusions matter in a vault: its items are listed


@dataclass
class Inventory:
    vms: list[VmFacts] = field(default_factory=list)
    items: dict[str, ItemFacts] = field(default_factory=dict)  # lower-case VM id -> its item in a rules vault
    orphans: list[ItemFacts] = field(default_factory=list)  # items whose VM no longer exists
    errors: dict[str, str] = field(default_factory=dict)  # what could not be read (e.g. 403), and why
    shared_disks: set[str] = field(default_factory=set)  # lower-case ids of shared managed disks
    missing_vaults: list[VaultSpec] = field(default_factory=list)  # vaults the rules name that do not exist
    source: str = ARM
    # Read by Resource Graph with the rest (None: the sweep reads them from ARM, vault by vault).
    policies: dict[str, dict[str, dict[str, Any]]] | None = None  # lower vault id -> lower name -> props
    storage: dict[str, tuple[str, str]] | None = None  # lower vault id -> (storage type, Locked/Unlocked)
    jobs: dict[str, list[JobFacts]] | None = None  # lower vault id -> latest jobs (see resourcegraph)
    # The run's job cursors and open job alerts, read once for every vault (None: read per vault).
    cursors: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] | None = None

    def item_of(self, vm: VmFacts) -> ItemFacts | None:
        return self.items.get(vm.id.lower())

    def shared_luns(self, vm: VmFacts) -> list[int]:
        return [
            d.lun
            for d in vm.data_disks
            if d.managed_disk_id and d.managed_disk_id.lower() in self.shared_disks
        ]


def read_inventory(
    azure: AzureGateway, rules: Rules, subscriptions: Iterable[str], workers: int = 8
) -> Inventory:
    inventory = Inventory()
    subscriptions = list(subscriptions)
    vaults: list[VaultSpec] = list(rules.vaults_for(subscriptions))

    def vms_of(subscription: str) -> tuple[str, list[VmFacts] | str]:
        try:
            return subscription, azure.list_vms(subscription)
        except HttpResponseError as error:
            return subscription, _unreadable(error)

    def items_of(vault: VaultSpec) -> tuple[VaultSpec, list[ItemFacts] | str]:
        try:
            return vault, azure.list_items(vault)
        except HttpResponseError as error:
            return vault, _unreadable(error)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        vm_results = list(pool.map(vms_of, subscriptions))
        item_results = list(pool.map(items_of, vaults))
    for subscription, vms in vm_results:
        if isinstance(vms, str):
            inventory.errors[f"/subscriptions/{subscription}"] = vms
        else:
            inventory.vms.extend(vms)
    # Shared disks (Azure Backup cannot back them up) are read in pages, only where VMs have data disks.
    with_disks = sorted({vm.subscription_id for vm in inventory.vms if vm.data_disks})
    for subscription in with_disks:
        try:
            inventory.shared_disks |= azure.shared_disks(subscription)
        except HttpResponseError as error:
            inventory.errors[f"/subscriptions/{subscription}/providers/Microsoft.Compute/disks"] = (
                _unreadable(error)
            )
    known = {vm.id.lower() for vm in inventory.vms}
    unlisted = {s.lower() for s, vms in vm_results if isinstance(vms, str)}
    for vault, items in item_results:
        if isinstance(items, str):
            if items.startswith(MISSING):
                inventory.missing_vaults.append(vault)
            else:
                inventory.errors[vault.resource_id] = items
            continue
        for item in items:
            if item.vm_id.lower() in known:
                inventory.items[item.vm_id.lower()] = item
            elif split_id(item.vm_id)[0].lower() not in unlisted:
                # An item is an orphan only when its VM's subscription was listed and the VM is not in it.
                inventory.orphans.append(item)
    inventory.vms.sort(key=lambda vm: vm.id.lower())
    return inventory


def dump_inventory(inventory: Inventory) -> dict[str, Any]:
    """An inventory as JSON data (a unit of work reads what the run's Resource Graph read saw)."""
    data = _plain(asdict(inventory))
    data["cursors"] = data["alerts"] = None  # the unit reads them afresh
    return data


def load_inventory(data: dict[str, Any]) -> Inventory:
    def vm(d: dict[str, Any]) -> VmFacts:
        return VmFacts(
            **{
                **d,
                "data_disks": tuple(DataDisk(**x) for x in d["data_disks"]),
                "time_created": _when(d["time_created"]),
            }
        )

    def item(d: dict[str, Any]) -> ItemFacts:
        return ItemFacts(
            **{
                **d,
                "last_backup_time": _when(d["last_backup_time"]),
                "last_recovery_point": _when(d["last_recovery_point"]),
                "excluded_luns": tuple(d["excluded_luns"]),
            }
        )

    def job(d: dict[str, Any]) -> JobFacts:
        return JobFacts(
            **{
                **d,
                "start": _when(d["start"]),
                "end": _when(d["end"]),
                "retain_until": _when(d["retain_until"]),
                "phases": tuple(tuple(p) for p in d["phases"]),
                "recommendations": tuple(d["recommendations"]),
            }
        )

    inventory = Inventory(
        vms=[vm(d) for d in data["vms"]],
        items={k: item(d) for k, d in data["items"].items()},
        orphans=[item(d) for d in data["orphans"]],
        errors=dict(data["errors"]),
        shared_disks=set(data["shared_disks"]),
        missing_vaults=[VaultSpec(**d) for d in data["missing_vaults"]],
        source=data["source"],
        policies=data["policies"],
        storage={k: (v[0], v[1]) for k, v in data["storage"].items()}
        if data["storage"] is not None
        else None,
        jobs={k: [job(d) for d in v] for k, v in data["jobs"].items()} if data["jobs"] is not None else None,
        cursors=None,
        alerts=None,
    )
    return inventory


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _unreadable(error: Exception) -> str:
    """What a refused read becomes: a finding for 401/403/404 (no role assignment, no such vault);
    anything else (throttling or server errors after azure-core's retries) is raised to be retried."""
    if isinstance(error, HttpResponseError) and error.status_code in (401, 403, 404):
        return f"{error_code(error)}: {error.message}"
    raise error


def plan(rules: Rules, inventory: Inventory) -> list[tuple[VmFacts, Decision]]:
    """What would be done to each VM, and why; changes nothing. (Shared disks and other vaults are
    checked when a VM is protected; the plan does not make per-VM calls.)"""
    return [(vm, decide(rules, vm, inventory.item_of(vm), inventory.shared_luns(vm))) for vm in inventory.vms]


# -- the source ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a run reads the estate, and why."""

    name: str  # arm or resourcegraph
    reason: str
    subscriptions: tuple[str, ...] = ()  # the scope, lower-case ids
    facts: dict[str, SubscriptionFacts] = field(default_factory=dict)


def _graph_scope(autopilot: Autopilot) -> Any:
    from autopilot.azure.resourcegraph import Scope

    settings = autopilot.settings
    if settings.management_groups:
        return Scope(management_groups=settings.management_groups)
    if settings.all_subscriptions:
        return Scope()
    return Scope(subscriptions=tuple(autopilot.subscriptions()))


def choose_source(autopilot: Autopilot) -> Source:
    """The inventory source of a run and the subscriptions in scope: AUTOPILOT_INVENTORY, and for
    `auto` whether Resource Graph answers the identity (its first query, which lists the subscriptions
    in scope, is the test)."""
    from autopilot.azure.resourcegraph import Graph, read_subscriptions

    settings = autopilot.settings
    setting = settings.inventory
    if setting == ARM:
        return Source(ARM, "AUTOPILOT_INVENTORY=arm", _arm_subscriptions(autopilot))
    graph = Graph(autopilot.clients.resource_graph())
    try:
        found = read_subscriptions(graph, _graph_scope(autopilot))
    except HttpResponseError as error:
        from autopilot.azure.resourcegraph import refused

        if setting == GRAPH or not refused(error):
            raise
        if settings.management_groups:
            raise
        reason = (
            f"AUTOPILOT_INVENTORY=auto: Resource Graph refused the app's identity ({error_code(error)}, HTTP "
            f"{error.status_code}), so the estate was read in ARM pages; grant "
            "Microsoft.ResourceGraph/resources/read (infra/rbac-subscription.bicep) to read it from Resource Graph"
        )
        log.warning("%s", reason)
        return Source(ARM, reason, _arm_subscriptions(autopilot))
    facts = {sub: SubscriptionFacts(name, groups) for sub, (name, groups) in found.items()}
    if settings.all_subscriptions or settings.management_groups:
        subscriptions = tuple(sorted(found))
    else:
        subscriptions = tuple(autopilot.subscriptions())
    reason = f"AUTOPILOT_INVENTORY={setting}" + (
        ": the identity may query Resource Graph" if setting == "auto" else ""
    )
    return Source(GRAPH, reason, subscriptions, facts)


def _arm_subscriptions(autopilot: Autopilot) -> tuple[str, ...]:
    """The subscriptions in scope by ARM: listed in the setting, every one the identity can see (`*`,
    GET /subscriptions), or those of the rules' vaults."""
    if not autopilot.settings.all_subscriptions:
        return tuple(autopilot.subscriptions())
    found: list[str] = []
    path: str | None = "/subscriptions?api-version=2022-12-01"
    while path:
        page = autopilot.clients.send_arm("GET", path)
        found += [
            str(s["subscriptionId"]).lower()
            for s in page.get("value", [])
            if s.get("state", "Enabled") == "Enabled"
        ]
        path = page.get("nextLink")
    return tuple(sorted(set(found)))


def read_estate(
    autopilot: Autopilot,
    subscriptions: Iterable[str] | None = None,
    complete: Callable[[Estate, str], None] | None = None,
) -> Estate:
    """Everything the sweep reads of the scope (or of these subscriptions), from Resource Graph;
    `complete(estate, subscription)` as each subscription's VMs are read (see resourcegraph)."""
    from autopilot.azure.resourcegraph import Graph, Scope
    from autopilot.azure.resourcegraph import read_estate as read

    scope = (
        Scope(subscriptions=tuple(subscriptions)) if subscriptions is not None else _graph_scope(autopilot)
    )
    now = dt.datetime.now(dt.UTC)
    cursor_rows = autopilot.state.rows("sweep-cursor")
    cursors = [row["Since"] for row in cursor_rows if row.get("Since")]
    since = min(cursors) if cursors else now - dt.timedelta(days=1)
    alerts = autopilot.state.rows("job-alert")
    open_entities = {
        f"{str(row.get('Vault', '')).lower()}|{str(row.get('Key', '')).rsplit(';', 1)[-1].lower()}"
        for row in alerts
    }
    from autopilot.azure.resourcegraph import Estate

    estate = Estate(read_at=now, cursors={str(row.get("Key", "")): row for row in cursor_rows}, alerts=alerts)

    def done(subscription: str) -> None:
        if complete is not None:
            complete(estate, subscription)

    graph = Graph(autopilot.clients.resource_graph())
    return read(graph, scope, autopilot.rules, since, open_entities, done if complete else None, estate)


def inventory_from_estate(autopilot: Autopilot, estate: Estate, subscription: str) -> Inventory:
    """One subscription's inventory from Resource Graph's estate, completed from ARM where Resource
    Graph holds too little: the disk exclusions of protected VMs with data disks."""
    sub = subscription.lower()
    rules = autopilot.rules
    vaults = list(rules.vaults_for([sub]))
    rules_vaults = {v.resource_id.lower() for v in vaults}
    inventory = Inventory(
        source=GRAPH, policies={}, storage={}, jobs={}, cursors=estate.cursors, alerts=estate.alerts
    )
    inventory.vms = list(estate.by_subscription.get(sub, []))
    for vm in inventory.vms:
        item = estate.items.get(vm.id.lower())
        if item is not None and item.vault_id.lower() in rules_vaults:
            inventory.items[vm.id.lower()] = item
    inventory.orphans = [
        o for o in estate.orphans_by_subscription.get(sub, []) if o.vault_id.lower() in rules_vaults
    ]
    inventory.shared_disks = estate.shared_disks
    for vault in vaults:
        key = vault.resource_id.lower()
        if key not in estate.vaults:
            inventory.missing_vaults.append(vault)
            continue
        assert inventory.policies is not None and inventory.storage is not None and inventory.jobs is not None
        inventory.policies[key] = estate.policies.get(key, {})
        locked = "Locked" if estate.vault_items.get(key, 0) else "Unlocked"
        inventory.storage[key] = (estate.vaults[key], locked)
        inventory.jobs[key] = [j for j in estate.jobs.get(key, [])]
    _exclusions_from_arm(autopilot.azure, inventory, vaults)
    inventory.vms.sort(key=lambda vm: vm.id.lower())
    return inventory


def _exclusions_from_arm(azure: AzureGateway, inventory: Inventory, vaults: list[VaultSpec]) -> None:
    """Resource Graph shows no disk exclusions of an item: those of VMs with data disks are read from
    ARM (one GET each, or the vault's item list when many are in one vault)."""
    by_vault: dict[str, list[VmFacts]] = {}
    for vm in inventory.vms:
        item = inventory.item_of(vm)
        if item is not None and vm.data_disks and not item.soft_deleted:
            by_vault.setdefault(item.vault_id.lower(), []).append(vm)
    for vault in vaults:
        vms = by_vault.get(vault.resource_id.lower(), [])
        if not vms:
            continue
        try:
            if len(vms) > EXCLUSION_GETS:
                for item in azure.list_items(vault):
                    if item.vm_id.lower() in inventory.items:
                        inventory.items[item.vm_id.lower()] = item
                continue
            for vm in vms:
                item = azure.get_item(vault, vm)
                if item is not None:
                    inventory.items[vm.id.lower()] = item
        except HttpResponseError as error:
            inventory.errors[vault.resource_id] = _unreadable(error)
