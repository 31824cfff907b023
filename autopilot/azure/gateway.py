"""The calls the product makes on Azure (Compute and Backup), on top of the SDK clients.

Everything that talks to Azure goes through here, so the rest of the core works with plain facts
(VmFacts, ItemFacts, JobFacts). Retries, Retry-After and polling are azure-core's.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import OperationFailed
from azure.mgmt.core.polling.arm_polling import (
    ARMPolling,
    AzureAsyncOperationPolling,
    BodyContentPolling,
    LocationPolling,
    StatusCheckPolling,
)
from azure.mgmt.recoveryservicesbackup.models import (
    AzureIaaSComputeVMProtectedItem,
    BackupRequestResource,
    BackupResourceConfigResource,
    ProtectedItemResource,
    ProtectionPolicyResource,
)

from autopilot.azure.clients import Clients, OutboundHostError
from autopilot.azure.errorcodes import classify
from autopilot.azure.vms import VmFacts, backup_names
from autopilot.names import split_id, text
from autopilot.rules import VaultSpec


class TransientError(RuntimeError):
    """Azure or storage was busy or unreachable; the trigger should be retried (Event Grid, queue)."""


log = logging.getLogger("autopilot.azure")

FABRIC = "Azure"
# Error codes the Backup service answers while another operation runs on the same item.
BUSY_CODES = {
    "BMSUserErrorObjectLocked",
    "UserErrorBackupOperationInProgress",
    "BMSUserErrorConflictingProtectionOperation",
}


@dataclass(frozen=True)
class ItemFacts:
    """A VM's protected item in a vault."""

    id: str
    vault_id: str
    policy_id: str
    protection_state: str  # IRPending, Protected, ProtectionStopped, ...
    soft_deleted: bool
    last_backup_status: str
    last_backup_time: dt.datetime | None
    last_recovery_point: dt.datetime | None
    health: str
    vm_id: str
    excluded_luns: tuple[int, ...] = ()

    @property
    def policy_name(self) -> str:
        return self.policy_id.rsplit("/", 1)[-1] if self.policy_id else ""

    @classmethod
    def from_resource(cls, resource: Any) -> ItemFacts:
        props = AzureIaaSComputeVMProtectedItem(resource.properties)
        exclusion = (
            props.extended_properties and props.extended_properties.disk_exclusion_properties
        ) or None
        return cls(
            id=resource.id,
            vault_id=resource.id.split("/backupFabrics/")[0],
            policy_id=text(props.policy_id),
            protection_state=text(props.protection_state),
            soft_deleted=bool(props.is_scheduled_for_deferred_delete),
            last_backup_status=text(props.last_backup_status),
            last_backup_time=_real_time(props.last_backup_time),
            last_recovery_point=_real_time(props.last_recovery_point),
            health=text(props.health_status),
            vm_id=text(props.source_resource_id or props.virtual_machine_id),
            excluded_luns=tuple(exclusion.disk_lun_list or [])
            if exclusion and not exclusion.is_inclusion_list
            else (),
        )


@dataclass(frozen=True)
class JobFacts:
    id: str
    vault_id: str
    operation: str
    status: str
    start: dt.datetime | None
    end: dt.datetime | None
    vm_name: str
    phases: tuple[tuple[str, str], ...]  # (task, status): Take Snapshot, Transfer data to vault
    error_code: str
    error_message: str
    recommendations: tuple[str, ...]
    container: str = ""  # a job's GET names its container; a job list does not
    retain_until: dt.datetime | None = None  # the recovery point's expiry an on-demand backup asked for

    @property
    def container_key(self) -> str:
        """'iaasvmcontainerv2;<rg>;<vm>' in lower case, whichever way the job spells its container
        (recorded: 'iaasvmcontainerv2;rg;vm', ';iaasvmcontainerv2;rg;vm', none at all)."""
        container = self.container.lower()
        start = container.find("iaasvmcontainerv2;")
        if start >= 0:
            return container[start:]
        return container.removeprefix("iaasvmcontainer;").lstrip(";") or self.vm_name.lower()

    def is_for(self, vm: VmFacts | str) -> bool:
        """Whether the job backs up this VM (given as facts or as its resource id)."""
        _, group, name = (
            split_id(vm) if isinstance(vm, str) else (vm.subscription_id, vm.resource_group, vm.name)
        )
        if not self.container:
            return self.vm_name.lower() == name.lower()
        return self.container_key == f"iaasvmcontainerv2;{group};{name}".lower()

    @classmethod
    def from_resource(cls, resource: Any) -> JobFacts:
        props = resource.properties
        errors = list(getattr(props, "error_details", None) or [])
        extended = getattr(props, "extended_info", None)
        tasks = (
            tuple((text(t.task_id), text(t.status)) for t in (extended.tasks_list or [])) if extended else ()
        )
        bag = dict(extended.property_bag or {}) if extended else {}
        first = errors[0] if errors else None
        return cls(
            id=resource.name,
            vault_id=resource.id.split("/backupJobs/")[0],
            operation=text(props.operation),
            status=text(props.status),
            start=props.start_time,
            end=props.end_time,
            vm_name=text(props.entity_friendly_name),
            phases=tasks,
            error_code=text(first.error_code) if first else "",
            error_message=text(first.error_string) if first else "",
            recommendations=tuple(first.recommendations or []) if first else (),
            container=text(getattr(props, "container_name", None)),
            retain_until=bag_time(bag, "Recovery Point Expiry Time in UTC"),
        )


def bag_time(bag: dict[str, Any], key: str) -> dt.datetime | None:
    """A time from a job's propertyBag, where Azure writes them as 'M/d/yyyy h:mm:ss AM' in UTC
    (e.g. "Recovery Point Expiry Time in UTC": "1/29/2020 12:00:00 AM"); keys are matched without
    regard to case. None when the key is absent or the value is not such a time."""
    wanted = key.lower()
    value = next((str(v) for k, v in bag.items() if str(k).strip().lower() == wanted), None)
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip(), "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class PointFacts:
    """A recovery point of a protected item."""

    name: str
    time: dt.datetime
    expiry: dt.datetime | None  # recoveryPointProperties.expiryTime, where Azure sends it
    tiers: tuple[str, ...]  # InstantRP (snapshot), HardenedRP (vault), ...

    @classmethod
    def from_resource(cls, resource: Any) -> PointFacts:
        props = resource.properties
        extra = getattr(props, "recovery_point_properties", None)
        expiry = getattr(extra, "expiry_time", None) if extra is not None else None
        return cls(
            name=str(resource.name),
            time=props.recovery_point_time,
            expiry=_parse_time(expiry),
            tiers=tuple(
                text(t.type) for t in (getattr(props, "recovery_point_tier_details", None) or []) if t.type
            ),
        )


def _parse_time(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class ProtectionRefused(HttpResponseError):
    """Azure refused a protection change: its PUT answered 4xx, or its operation ended Failed (a VM
    protected by another vault, a full vault, ...). Nothing was changed. A poll of the operation
    that failed is not this: the change may have been made."""


class _StatusOnly(AzureAsyncOperationPolling[Any, Any]):
    """Azure-AsyncOperation polling without the final GET of the resource."""

    def get_final_get_url(self, pipeline_response: PipelineResponse[Any, Any]) -> str | None:
        return None


def _real_time(value: dt.datetime | None) -> dt.datetime | None:
    """Azure answers 2001-01-01 for "never" (e.g. lastBackupTime of an item not backed up yet)."""
    return value if value is not None and value.year > 2001 else None


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # throttling, a server error, a lost connection: try again later
    CONFLICT = "conflict"  # the item is busy with another operation: clears by itself
    PERMANENT = "permanent"  # Azure refused: trying again changes nothing; a person must act


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    code: str
    remedy: str


def classify_failure(error: BaseException) -> Failure:
    """What a failed call to Azure means, whatever the SDK raised: the one classification every
    boundary (HTTP, event, queue, timer, CLI) uses, by status and error code."""
    code = error_code(error)
    if isinstance(error, TransientError):
        return Failure(FailureKind.TRANSIENT, code, "Retry later.")
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        status = error.status_code
        if status in (408, 429) or status >= 500:
            return Failure(FailureKind.TRANSIENT, code, "Azure is busy or throttling; retry later.")
        if code in BUSY_CODES:
            return Failure(
                FailureKind.CONFLICT, code, "Another operation runs on the item; retry when it ends."
            )
        return Failure(FailureKind.PERMANENT, code, classify(code).remedy)
    if isinstance(error, OutboundHostError):
        return Failure(
            FailureKind.PERMANENT, code, "A request was for a host no setting names; check the endpoints."
        )
    if isinstance(error, AzureError):  # no answer at all: the connection was lost or never made
        return Failure(FailureKind.TRANSIENT, code, "The connection to Azure failed; retry later.")
    return Failure(FailureKind.PERMANENT, code, "An unexpected error; see the app's log.")


def is_transient(error: BaseException) -> bool:
    """Worth retrying later: throttling, server errors, lost connections, and busy items."""
    return classify_failure(error).kind is not FailureKind.PERMANENT


def error_code(error: BaseException) -> str:
    if isinstance(error, HttpResponseError) and error.error is not None and error.error.code:
        return str(error.error.code)
    return type(error).__name__


class AzureGateway:
    """The one way the core reads and changes Azure: Compute (VMs, their disks) and Azure Backup
    (protected items, protection, backups, jobs, recovery points, vault storage, policies), answered
    as plain facts."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._refresh_locks: dict[str, threading.Lock] = {}
        self._refreshed_at: dict[str, float] = {}
        self._locks_guard = threading.Lock()

    def _status_only_polling(self) -> ARMPolling:
        return ARMPolling(
            self.clients.settings.polling_interval,
            lro_algorithms=[_StatusOnly(), LocationPolling(), BodyContentPolling(), StatusCheckPolling()],
        )

    # -- compute ---------------------------------------------------------------------------
    def get_vm(self, vm_id: str) -> VmFacts | None:
        subscription, group, name = split_id(vm_id)
        try:
            vm = self.clients.compute(subscription).virtual_machines.get(group, name, expand="instanceView")
        except ResourceNotFoundError:
            return None
        return VmFacts.from_model(vm)

    def shared_disk_luns(self, vm: VmFacts) -> list[int]:
        """LUNs of data disks that are shared (maxShares > 1): Azure Backup cannot back them up."""
        luns = []
        for disk in vm.data_disks:
            if not disk.managed_disk_id:
                continue
            subscription, group, name = split_id(disk.managed_disk_id)
            try:
                managed = self.clients.compute(subscription).disks.get(group, name)
            except ResourceNotFoundError:
                continue
            if managed.properties is not None and int(managed.properties.max_shares or 1) > 1:
                luns.append(disk.lun)
        return luns

    def shared_disks(self, subscription_id: str) -> set[str]:
        """Lower-case ids of the subscription's shared managed disks (maxShares > 1), in pages."""
        compute = self.clients.compute(subscription_id)
        return {
            disk.id.lower()
            for disk in compute.disks.list()
            if disk.id and disk.properties is not None and int(disk.properties.max_shares or 1) > 1
        }

    def list_vms(self, subscription_id: str) -> list[VmFacts]:
        """Every VM of a subscription with its instance view, in pages (statusOnly=true)."""
        compute = self.clients.compute(subscription_id)
        return [VmFacts.from_model(vm) for vm in compute.virtual_machines.list_all(status_only="true")]

    # -- protected items -------------------------------------------------------------------
    def get_item(self, vault: VaultSpec, vm: VmFacts) -> ItemFacts | None:
        backup = self.clients.backup(vault.subscription_id)
        try:
            item = backup.protected_items.get(
                vault.name, vault.resource_group, FABRIC, vm.container_name, vm.item_name
            )
        except ResourceNotFoundError:
            return None
        return ItemFacts.from_resource(item)

    def list_items(self, vault: VaultSpec) -> list[ItemFacts]:
        backup = self.clients.backup(vault.subscription_id)
        pages = backup.backup_protected_items.list(
            vault.name,
            vault.resource_group,
            filter="backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'",
        )
        return [ItemFacts.from_resource(item) for item in pages]

    def item_vms(self, vault: VaultSpec) -> list[str]:
        """The VMs the vault holds items of (every state: stopped and soft-deleted ones hold their
        place too), in pages."""
        return [item.vm_id for item in self.list_items(vault)]

    def backup_status(self, vm: VmFacts) -> dict[str, Any]:
        """Where the VM is protected, if anywhere (one call, across every vault of its region)."""
        backup = self.clients.backup(vm.subscription_id)
        status = backup.backup_status.get(vm.location, {"resourceType": "VM", "resourceId": vm.id})
        return dict(status.as_dict())

    def refresh_containers(self, vault: VaultSpec, vm: VmFacts) -> bool:
        """Make a new VM discoverable by its vault; VMs created together share one refresh.

        Returns True when a refresh ran, False when a refresh that started after the VM was created
        already covered it."""
        key = vault.resource_id.lower()
        with self._locks_guard:
            lock = self._refresh_locks.setdefault(key, threading.Lock())
        created = vm.time_created.timestamp() if vm.time_created else time.time()
        with lock:
            if self._refreshed_at.get(key, float("-inf")) >= created:
                return False
            started = time.time()
            backup = self.clients.backup(vault.subscription_id)
            initial = backup.protection_containers.refresh(
                vault.name,
                vault.resource_group,
                FABRIC,
                cls=lambda pipeline_response, _, __: pipeline_response,
            )
            # The SDK models refreshContainers as a plain 202; follow it with azure-core's poller: its
            # Azure-AsyncOperation status where Azure sends one (recorded since late 2019), without the
            # final GET of its Location (nothing reads that answer), else its Location.
            LROPoller(backup._client, initial, lambda _: None, self._status_only_polling()).result()
            self._refreshed_at[key] = started - 1
            return True

    def protect(
        self, vault: VaultSpec, vm: VmFacts, policy_name: str, excluded_luns: tuple[int, ...] = ()
    ) -> None:
        """Enable protection, or change the policy, and follow the operation to its end."""
        properties: dict[str, Any] = {"policyId": f"{vault.resource_id}/backupPolicies/{policy_name}"}
        if excluded_luns or vm.data_disks:  # an empty list is stated too, so that old exclusions end
            properties["extendedProperties"] = {
                "diskExclusionProperties": {"diskLunList": list(excluded_luns), "isInclusionList": False}
            }
        self._put_item(vault, vm, properties)

    def stop_protection(self, vault: VaultSpec, vm: VmFacts) -> None:
        """Stop protection and keep the backup data."""
        self._put_item(vault, vm, {"protectionState": "ProtectionStopped", "policyId": ""})

    def undelete(self, vault: VaultSpec, vm: VmFacts) -> None:
        """Bring a soft-deleted item back (it returns as ProtectionStopped)."""
        self._put_item(vault, vm, {"protectionState": "ProtectionStopped", "isRehydrate": True})

    def _put_item(self, vault: VaultSpec, vm: VmFacts, properties: dict[str, Any]) -> None:
        """PUT the VM's protected item with these properties, and follow the operation to its end
        with azure-core's poller (Retry-After honoured). The poller is told not to GET the item once
        the operation has succeeded: nothing uses that answer, and at scale it is one ARM request
        per protected VM."""
        body = {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm.id,
            **properties,
        }
        backup = self.clients.backup(vault.subscription_id)
        try:
            poller = backup.protected_items.begin_create_or_update(
                vault.name,
                vault.resource_group,
                FABRIC,
                vm.container_name,
                vm.item_name,
                ProtectedItemResource({"properties": body}),
                polling=self._status_only_polling(),
            )
        except HttpResponseError as error:
            if error.status_code is not None and 400 <= error.status_code < 500 and not is_transient(error):
                raise ProtectionRefused(message=error.message, response=error.response) from error
            raise
        try:
            poller.wait()
        except HttpResponseError as error:
            if isinstance(error.__cause__, OperationFailed):  # the operation itself ended Failed
                raise ProtectionRefused(message=error.message, response=error.response) from error
            raise  # a poll that failed: the change may have been made
        if poller.status().lower() != "succeeded":
            raise ProtectionRefused(message=f"the protection operation ended {poller.status()}")

    # -- backups and jobs ------------------------------------------------------------------
    def backup_now(self, vault: VaultSpec, vm: VmFacts, retain_until: dt.datetime) -> str:
        """Trigger an on-demand backup; returns the operation id (its status names the job)."""
        backup = self.clients.backup(vault.subscription_id)
        response = backup.backups.trigger(
            vault.name,
            vault.resource_group,
            FABRIC,
            vm.container_name,
            vm.item_name,
            BackupRequestResource(
                {
                    "properties": {
                        "objectType": "IaasVMBackupRequest",
                        "recoveryPointExpiryTimeInUTC": retain_until.astimezone(dt.UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    }
                }
            ),
            cls=lambda pipeline_response, _, __: pipeline_response.http_response,
        )
        assert response is not None, "the cls callback returns the HTTP response"
        status_url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location") or ""
        return status_url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]

    def job_of_operation(
        self, vault: VaultSpec, vm: VmFacts | str, operation_id: str, wait_seconds: float = 60
    ) -> str:
        """The job id behind an accepted backup operation (polls the operation status briefly)."""
        backup = self.clients.backup(vault.subscription_id)
        container, item = backup_names(vm)
        deadline = time.monotonic() + wait_seconds
        while True:
            status = backup.protected_item_operation_statuses.get(
                vault.name, vault.resource_group, FABRIC, container, item, operation_id
            )
            job_id = status.as_dict().get("properties", {}).get("jobId")
            if job_id:
                return str(job_id)
            if text(status.status) == "Failed":
                error = status.error
                raise HttpResponseError(
                    message=f"backup operation failed: {getattr(error, 'code', '')} {getattr(error, 'message', '')}"
                )
            if time.monotonic() > deadline:
                raise TransientError(
                    f"the backup operation {operation_id} did not name its job within {wait_seconds} s"
                )
            time.sleep(1)

    def recovery_points(
        self, vault: VaultSpec, vm: VmFacts | str, since: dt.datetime, until: dt.datetime
    ) -> list[PointFacts]:
        """The VM's recovery points taken between two times, newest first ($filter startDate and
        endDate, in Azure's 'yyyy-MM-dd hh:mm:ss tt' UTC times)."""
        backup = self.clients.backup(vault.subscription_id)
        container, item = backup_names(vm)
        start, end = (t.astimezone(dt.UTC).strftime("%Y-%m-%d %I:%M:%S %p") for t in (since, until))
        points = backup.recovery_points.list(
            vault.name,
            vault.resource_group,
            FABRIC,
            container,
            item,
            filter=f"startDate eq '{start}' and endDate eq '{end}'",
        )
        return sorted((PointFacts.from_resource(p) for p in points), key=lambda p: p.time, reverse=True)

    def confirm_job(self, vault: VaultSpec, job: JobFacts, vm: VmFacts | str) -> JobFacts | None:
        """The job if it backs up this VM, else None. A job from a list names its VM only by name,
        and VMs of one name can live in several resource groups: such a job is read (one GET, which
        names its container) before it is taken for this VM's."""
        if not job.is_for(vm):
            return None
        if job.container:
            return job
        detailed = self.get_job(vault, job.id)
        return detailed if detailed.is_for(vm) else None

    def get_job(self, vault: VaultSpec, job_id: str) -> JobFacts:
        backup = self.clients.backup(vault.subscription_id)
        return JobFacts.from_resource(backup.job_details.get(vault.name, vault.resource_group, job_id))

    def backup_jobs(self, vault: VaultSpec, since: dt.datetime, until: dt.datetime) -> list[JobFacts]:
        """The vault's backup jobs that started between two times, in pages ($filter with Azure's
        'yyyy-MM-dd hh:mm:ss tt' UTC times)."""
        start, end = (t.astimezone(dt.UTC).strftime("%Y-%m-%d %I:%M:%S %p") for t in (since, until))
        return self.list_jobs(
            vault, f"operation eq 'Backup' and startTime eq '{start}' and endTime eq '{end}'"
        )

    def list_jobs(self, vault: VaultSpec, odata_filter: str) -> list[JobFacts]:
        backup = self.clients.backup(vault.subscription_id)
        return [
            JobFacts.from_resource(job)
            for job in backup.backup_jobs.list(vault.name, vault.resource_group, filter=odata_filter)
        ]

    # -- vault storage -----------------------------------------------------------------------
    def storage_redundancy(self, vault: VaultSpec) -> tuple[str, str]:
        """(storage type, GeoRedundant or LocallyRedundant ...; Locked or Unlocked) of a vault."""
        backup = self.clients.backup(vault.subscription_id)
        config = backup.backup_resource_storage_configs_non_crr.get(vault.name, vault.resource_group)
        props = config.properties
        return (text(props.storage_type) if props else "", text(props.storage_type_state) if props else "")

    def set_storage_redundancy(self, vault: VaultSpec, redundancy: str) -> None:
        backup = self.clients.backup(vault.subscription_id)
        backup.backup_resource_storage_configs_non_crr.patch(
            vault.name,
            vault.resource_group,
            BackupResourceConfigResource(
                {"properties": {"storageType": redundancy, "storageTypeState": "Unlocked"}}
            ),
        )

    # -- policies --------------------------------------------------------------------------
    def get_policy(self, vault: VaultSpec, name: str) -> dict[str, Any] | None:
        backup = self.clients.backup(vault.subscription_id)
        try:
            policy = backup.protection_policies.get(vault.name, vault.resource_group, name)
        except ResourceNotFoundError:
            return None
        return dict(policy.as_dict().get("properties") or {})

    def list_policies(self, vault: VaultSpec) -> dict[str, dict[str, Any]]:
        """Every policy of the vault: lower-case name -> its properties (as ARM JSON)."""
        backup = self.clients.backup(vault.subscription_id)
        return {
            str(policy.name).lower(): dict(policy.as_dict().get("properties") or {})
            for policy in backup.backup_policies.list(vault.name, vault.resource_group)
        }

    def put_policy(self, vault: VaultSpec, name: str, properties: dict[str, Any]) -> None:
        backup = self.clients.backup(vault.subscription_id)
        backup.protection_policies.create_or_update(
            vault.name, vault.resource_group, name, ProtectionPolicyResource({"properties": properties})
        )
