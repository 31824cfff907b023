"""The calls the product makes on Azure (Compute and Backup), on top of the SDK clients.

Everything that talks to Azure goes through AzureGateway, so the rest of the core works with plain
facts (VmFacts, and facts.py's ItemFacts, JobFacts and PointFacts). Retries, Retry-After and polling
are azure-core's; what a failure means is failures.py's.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
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
    BackupRequestResource,
    BackupResourceConfigResource,
    ProtectedItemResource,
    ProtectionPolicyResource,
)

from autopilot.azure.clients import Clients
from autopilot.azure.facts import ItemFacts, JobFacts, PointFacts
from autopilot.azure.failures import ProtectionRefused, TransientError, is_transient
from autopilot.azure.vms import VmFacts, backup_names
from autopilot.names import split_id, text
from autopilot.rules import VaultSpec

FABRIC = "Azure"


class _StatusOnly(AzureAsyncOperationPolling[Any, Any]):
    """Azure-AsyncOperation polling without the final GET of the resource."""

    def get_final_get_url(self, pipeline_response: PipelineResponse[Any, Any]) -> str | None:
        return None


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
