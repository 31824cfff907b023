"""The estate from Azure Resource Graph: a few KQL queries over every subscription in scope, 1,000 rows a
page, instead of ARM lists per subscription and per vault.

What the queries read (and what Resource Graph does not hold):

- VMs (`Resources`) with their protected item, if any (`RecoveryServicesResources`, joined on the VM
  id): tags, location, storage and security profile, provisioning state, the power state of
  `properties.extended.instanceView`. Resource Graph shows no VM agent: a VM read here has agent status
  `Unknown`, and no agent check is made on it until the protect path reads it from ARM.
- Protected items whose VM is gone (orphans), the rules' policies in every vault, the vaults (with their
  storage redundancy), shared managed disks, and the latest backup job per VM since the sweep's cursor
  that did not complete (and that of VMs with an open job alert).
- Resource Graph shows no `extendedProperties` of a protected item, so no disk exclusion: the items of
  VMs whose exclusions matter (data disks, and an exclusion the rules ask for) are read from ARM.

Resource Graph trails ARM by seconds to minutes: every write is preceded by the ARM read the protect
path makes (and the sweep re-reads a policy or a vault's storage before changing it). Queries are paced
by the caller's quota (`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`): at 0 the next query
waits until the window resets.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from autopilot.azure.facts import ItemFacts, JobFacts, real_time
from autopilot.azure.vms import DataDisk, VmFacts
from autopilot.names import split_id

if TYPE_CHECKING:
    from azure.mgmt.resourcegraph import ResourceGraphClient

    from autopilot.rules import Rules, VaultSpec

log = logging.getLogger("autopilot.azure.resourcegraph")

VM_TYPE = "microsoft.compute/virtualmachines"
ITEM_TYPE = "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"
OPEN_ALERTS_IN_QUERY = 300  # more open job alerts than this: every VM's latest job is read


class GraphQuota(HTTPPolicy[Any, Any]):
    """Waits for Resource Graph's user quota: after an answer that says no query is left (or a 429),
    the next query waits until the window resets (x-ms-user-quota-resets-after, hh:mm:ss)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.waited = 0.0

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        with self._lock:
            wait = self._not_before - time.monotonic()
        if wait > 0:
            self.waited += wait
            time.sleep(wait)
        response = self.next.send(request)
        headers = response.http_response.headers
        remaining = headers.get("x-ms-user-quota-remaining")
        resets = _seconds(headers.get("x-ms-user-quota-resets-after", ""))
        if response.http_response.status_code == 429 or (remaining is not None and remaining.strip() == "0"):
            with self._lock:
                self._not_before = max(self._not_before, time.monotonic() + (resets if resets else 5.0))
        return response


def _seconds(text: str) -> float:
    try:
        hours, minutes, seconds = (float(p) for p in text.strip().split(":"))
    except ValueError:
        return 0.0
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class Scope:
    """Where queries look: these subscriptions, these management groups, or (both empty) every
    subscription the identity can read."""

    subscriptions: tuple[str, ...] = ()
    management_groups: tuple[str, ...] = ()

    def request(self) -> dict[str, Any]:
        if self.subscriptions:
            return {"subscriptions": list(self.subscriptions)}
        if self.management_groups:
            return {"management_groups": list(self.management_groups)}
        return {}


class Graph:
    """Paged queries through the pinned ResourceGraphClient; counts queries and pages."""

    def __init__(self, client: ResourceGraphClient) -> None:
        self.client = client
        self.queries = 0
        self.pages = 0
        self.rows = 0

    def query(self, kql: str, scope: Scope) -> list[dict[str, Any]]:
        return [row for page in self.pages_of(kql, scope) for row in page]

    def pages_of(self, kql: str, scope: Scope) -> Iterator[list[dict[str, Any]]]:
        """The query's rows page by page (a page is let go once read: 100,000 rows are never held)."""
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        self.queries += 1
        token: str | None = None
        while True:
            options = QueryRequestOptions(result_format="objectArray", skip_token=token)
            answer = self.client.resources(QueryRequest(query=kql, options=options, **scope.request()))
            self.pages += 1
            data: Any = answer.data or []
            page = data if isinstance(data, list) else []
            self.rows += len(page)
            yield page
            token = answer.skip_token
            if not token:
                break


# -- what rows become -------------------------------------------------------------------------------
def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def vm_facts(row: dict[str, Any]) -> VmFacts:
    """A VM from its Resource Graph row (VMS: id, location, tags and the properties it projects)."""
    subscription, group, name = split_id(str(row["id"]))
    image = row.get("image") or {}
    os_type = str(row.get("osType") or "")
    if not os_type:
        text = f"{image.get('publisher', '')} {image.get('offer', '')}".lower()
        os_type = "Windows" if "windows" in text else "Linux"
    security = str(row.get("security") or "").lower()
    code = str(row.get("power") or "")
    power = code.split("/", 1)[1].lower() if code.startswith("PowerState/") else "unknown"
    disks = tuple(
        DataDisk(
            lun=int(d.get("lun", 0)),
            name=str(d.get("name") or ""),
            managed_disk_id=(d.get("managedDisk") or {}).get("id") or None,
        )
        for d in row.get("dataDisks") or []
        if isinstance(d, dict)
    )
    return VmFacts(
        id=str(row["id"]),
        subscription_id=subscription,
        resource_group=group,
        name=name,
        location=str(row.get("location") or "").replace(" ", "").lower(),
        tags={str(k): str(v) for k, v in (row.get("tags") or {}).items()},
        os_type=os_type,
        trusted_launch=security == "trustedlaunch",
        agent_status="Unknown",  # Resource Graph shows no VM agent
        agent_version="",
        power_state=power,
        provisioning_state=str(row.get("provisioning") or ""),
        data_disks=disks,
        time_created=_time(row.get("created")),
        image={},  # not kept: nothing reads it, and 100,000 VMs' image references cost memory
    )


def item_facts(item_id: str, props: dict[str, Any]) -> ItemFacts:
    """A protected item from Resource Graph (no extendedProperties: its exclusions are unknown)."""
    soft = (
        bool(props.get("isScheduledForDeferredDelete"))
        or props.get("currentProtectionState") == "SoftDeleted"
    )
    return ItemFacts(
        id=item_id,
        vault_id=item_id.split("/backupFabrics/", maxsplit=1)[0],
        policy_id=str(props.get("policyId") or ""),
        protection_state=str(props.get("protectionState") or ""),
        soft_deleted=soft,
        last_backup_status=str(props.get("lastBackupStatus") or ""),
        last_backup_time=real_time(_time(props.get("lastBackupTime"))),
        last_recovery_point=real_time(_time(props.get("lastRecoveryPoint"))),
        health=str(props.get("healthStatus") or ""),
        vm_id=str(
            props.get("sourceResourceId") or (props.get("dataSourceInfo") or {}).get("resourceID") or ""
        ),
    )


def job_facts(row: dict[str, Any]) -> JobFacts:
    props = row.get("properties") or {}
    errors = props.get("errorDetails") or []
    first = errors[0] if errors else {}
    return JobFacts(
        id=str(row.get("name") or str(row["id"]).rsplit("/", 1)[-1]),
        vault_id=str(row["id"]).split("/backupJobs/")[0],
        operation=str(props.get("operation") or ""),
        status=str(props.get("status") or ""),
        start=_time(props.get("startTime")),
        end=_time(props.get("endTime")),
        vm_name=str(props.get("entityFriendlyName") or ""),
        phases=(),
        error_code=str(first.get("errorCode") or ""),
        error_message=str(first.get("errorString") or ""),
        recommendations=tuple(first.get("recommendations") or []),
        container=str(props.get("containerName") or ""),
    )


# -- the queries ------------------------------------------------------------------------------------
def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# Only what the sweep reads is projected: 100,000 VMs' whole properties would cost memory for nothing.
VMS = f"""Resources
| where type =~ '{VM_TYPE}'
| project id, name, location, tags, vmKey = tolower(id),
    osType = tostring(properties.storageProfile.osDisk.osType),
    image = properties.storageProfile.imageReference,
    dataDisks = properties.storageProfile.dataDisks,
    security = tostring(properties.securityProfile.securityType),
    provisioning = tostring(properties.provisioningState),
    created = tostring(properties.timeCreated),
    power = tostring(properties.extended.instanceView.powerState.code)
| join kind=leftouter (
    RecoveryServicesResources
    | where type =~ '{ITEM_TYPE}'
    | where properties.backupManagementType =~ 'AzureIaasVM'
    | project itemId = id, vmKey = tolower(tostring(properties.sourceResourceId)),
        item = pack('policyId', properties.policyId, 'protectionState', properties.protectionState,
            'currentProtectionState', properties.currentProtectionState,
            'isScheduledForDeferredDelete', properties.isScheduledForDeferredDelete,
            'lastBackupStatus', properties.lastBackupStatus, 'lastBackupTime', properties.lastBackupTime,
            'lastRecoveryPoint', properties.lastRecoveryPoint, 'sourceResourceId', properties.sourceResourceId)
  ) on vmKey
| project id, name, location, tags, osType, image, dataDisks, security, provisioning, created, power, itemId, item
| order by id asc"""

ORPHANS = f"""RecoveryServicesResources
| where type =~ '{ITEM_TYPE}'
| where properties.backupManagementType =~ 'AzureIaasVM'
| extend vmKey = tolower(tostring(properties.sourceResourceId))
| join kind=leftanti (Resources | where type =~ '{VM_TYPE}' | project vmKey = tolower(id)) on vmKey
| project id, properties
| order by id asc"""

VAULTS = """Resources
| where type =~ 'microsoft.recoveryservices/vaults'
| project id, location, redundancy = tostring(properties.redundancySettings.standardTierStorageRedundancy)
| order by id asc"""

SHARED_DISKS = """Resources
| where type =~ 'microsoft.compute/disks'
| where toint(properties.maxShares) > 1
| project id
| order by id asc"""

SUBSCRIPTIONS = """ResourceContainers
| where type =~ 'microsoft.resources/subscriptions'
| project subscriptionId, name, groups = properties.managementGroupAncestorsChain
| order by subscriptionId asc"""


def policies_query(names: Iterable[str]) -> str:
    return f"""RecoveryServicesResources
| where type =~ 'microsoft.recoveryservices/vaults/backuppolicies'
| where tolower(name) in ({_quoted(sorted({n.lower() for n in names}))})
| project id, name, properties
| order by id asc"""


def jobs_query(since: dt.datetime, open_entities: Iterable[str] | None) -> str:
    """The latest finished backup job per vault and VM name since `since` that did not complete (and
    of `open_entities`, 'vault|vm name' in lower case, whatever its status; None: of every VM)."""
    keep = ""
    if open_entities is not None:
        entities = sorted(open_entities)
        keep = "| where status != 'Completed'" + (
            f" or strcat(vault, '|', entity) in ({_quoted(entities)})" if entities else ""
        )
    stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""RecoveryServicesResources
| where type =~ 'microsoft.recoveryservices/vaults/backupjobs'
| where properties.operation =~ 'Backup' and properties.backupManagementType =~ 'AzureIaasVM'
| extend started = todatetime(properties.startTime), status = tostring(properties.status)
| extend vault = tolower(tostring(split(id, '/backupJobs/')[0])), entity = tolower(tostring(properties.entityFriendlyName))
| where started >= datetime({stamp})
| where status !in ('InProgress', 'Cancelling')
| summarize arg_max(started, id, name, properties, status) by vault, entity
{keep}
| project id, name, properties
| order by id asc"""


# -- the estate -------------------------------------------------------------------------------------
@dataclass
class Estate:
    """What Resource Graph holds of the scope, as read once."""

    read_at: dt.datetime
    vm_count: int = 0
    last_vm: str = ""
    items: dict[str, ItemFacts] = field(default_factory=dict)  # lower VM id -> its item (any vault)
    orphans: list[ItemFacts] = field(default_factory=list)
    vaults: dict[str, str] = field(default_factory=dict)  # lower vault id -> storage redundancy
    vault_items: dict[str, int] = field(default_factory=dict)  # lower vault id -> items it holds
    policies: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # vault -> name -> props
    shared_disks: set[str] = field(default_factory=set)
    jobs: dict[str, list[JobFacts]] = field(default_factory=dict)  # lower vault id -> latest jobs
    jobs_since: dt.datetime | None = None
    subscriptions: dict[str, tuple[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # id -> (name, groups)
    by_subscription: dict[str, list[VmFacts]] = field(default_factory=dict)  # lower id -> its VMs
    # (a subscription's VMs and items may be let go once it is swept: forget())
    orphans_by_subscription: dict[str, list[ItemFacts]] = field(default_factory=dict)
    cursors: dict[str, Any] | None = None  # the state's job cursors and open alerts, read with it
    alerts: list[dict[str, Any]] | None = None
    queries: int = 0
    pages: int = 0
    rows: int = 0


def forget(estate: Estate, subscription: str) -> None:
    """Let a swept subscription's VMs and items go (100,000 VMs are not all held at once)."""
    for vm in estate.by_subscription.pop(subscription.lower(), []):
        estate.items.pop(vm.id.lower(), None)


def read_subscriptions(graph: Graph, scope: Scope) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The subscriptions the scope holds (that the identity can read): id -> (name, management groups)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in graph.query(SUBSCRIPTIONS, scope):
        groups = tuple(str(g.get("name", "")) for g in (row.get("groups") or []) if isinstance(g, dict))
        found[str(row["subscriptionId"]).lower()] = (str(row.get("name") or ""), groups)
    return found


def read_estate(
    graph: Graph,
    scope: Scope,
    rules: Rules,
    jobs_since: dt.datetime,
    open_entities: set[str] | None,
    complete: Callable[[str], None] | None = None,
    estate: Estate | None = None,
) -> Estate:
    """Everything the sweep reads, for the whole scope, in a handful of paged queries (into `estate`,
    if given); `complete` is called with each subscription (lower-case id) once its VMs are read."""
    if estate is None:
        estate = Estate(read_at=dt.datetime.now(dt.UTC))
    estate.jobs_since = jobs_since
    before = (graph.queries, graph.pages, graph.rows)
    # The small queries first; then the VMs, by id: a subscription's VMs are complete once the rows
    # move on to the next, and `complete` may sweep it while the next pages wait for the quota.
    for row in graph.query(ORPHANS, scope):
        item = item_facts(str(row["id"]), row.get("properties") or {})
        estate.orphans.append(item)
        estate.orphans_by_subscription.setdefault(split_id(item.vault_id)[0].lower(), []).append(item)
        estate.vault_items[item.vault_id.lower()] = estate.vault_items.get(item.vault_id.lower(), 0) + 1
    for row in graph.query(VAULTS, scope):
        estate.vaults[str(row["id"]).lower()] = str(row.get("redundancy") or "")
    names = [p.name for p in rules.policies]
    for row in graph.query(policies_query(names), scope):
        vault = str(row["id"]).split("/backupPolicies/")[0].lower()
        estate.policies.setdefault(vault, {})[str(row["name"]).lower()] = dict(row.get("properties") or {})
    estate.shared_disks = {str(row["id"]).lower() for row in graph.query(SHARED_DISKS, scope)}
    if open_entities is not None and len(open_entities) > OPEN_ALERTS_IN_QUERY:
        open_entities = None
    for row in graph.query(jobs_query(jobs_since, open_entities), scope):
        job = job_facts(row)
        estate.jobs.setdefault(job.vault_id.lower(), []).append(job)
    current = ""
    for page in graph.pages_of(VMS, scope):
        for row in page:
            vm = vm_facts(row)
            sub = vm.subscription_id.lower()
            if sub != current:
                if current and complete is not None:
                    complete(current)
                current = sub
            if estate.last_vm != vm.id:  # a VM with two items (one soft-deleted) has two rows
                estate.last_vm = vm.id
                estate.vm_count += 1
                estate.by_subscription.setdefault(sub, []).append(vm)
            if row.get("itemId") and isinstance(row.get("item"), dict):
                item = item_facts(str(row["itemId"]), row["item"])
                key = vm.id.lower()
                known = estate.items.get(key)
                # A VM has one live item; a soft-deleted one elsewhere gives way to it.
                if known is None or (known.soft_deleted and not item.soft_deleted):
                    estate.items[key] = item
                vault = item.vault_id.lower()
                estate.vault_items[vault] = estate.vault_items.get(vault, 0) + 1
    if current and complete is not None:
        complete(current)
    estate.queries, estate.pages, estate.rows = (
        graph.queries - before[0],
        graph.pages - before[1],
        graph.rows - before[2],
    )
    return estate


def refused(error: HttpResponseError) -> bool:
    """Whether Resource Graph refused the identity (no role, no access), rather than failed."""
    return error.status_code in (401, 403)


def vault_ids(vaults: Iterable[VaultSpec]) -> set[str]:
    return {v.resource_id.lower() for v in vaults}
