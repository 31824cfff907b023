"""Routes of Azure Backup for IaaS VMs (Microsoft.RecoveryServices vault children).

About 580 lines: one method per operation of the ~40 Azure Backup operations armsim serves, and
the ROUTES table that names them; each method is short."""

from __future__ import annotations

from typing import Any

from armsim.backup import restore
from armsim.backup.models import BackupBackend, filter_time, names_for
from armsim.compute.models import ComputeBackend
from armsim.core.clock import parse_iso
from armsim.core.errors import (
    ArmError,
    BadRequest,
    Conflict,
    InvalidBackupInput,
    NotFound,
    NotImplementedOnArmsim,
)
from armsim.core.http import Endpoint, Request, Response
from armsim.core.operations import Operation, operations
from armsim.core.paging import newest_first, paged, parse_filter
from armsim.core.responses import Responses
from armsim.vaults.models import VaultsBackend

BACKUP_API = (
    "2016-12-01", "2019-05-13", "2021-12-01", "2023-02-01", "2024-04-01", "2025-02-01", "2025-08-01",
    "2026-01-01", "2026-02-01", "2026-05-01", "2026-07-01", "2026-08-01", "2026-10-01", "2026-11-01",
)  # fmt: skip
V = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.RecoveryServices/vaults/{vaultName}"
ITEM = (
    V + "/backupFabrics/{fabricName}/protectionContainers/{containerName}/protectedItems/{protectedItemName}"
)
MAX_RETAIN_DAYS = 99 * 365
# An operation status's endTime while it runs: recorded "0001-01-01T00:00:00" (2019), and
# "0001-01-01T00:00:00.00000Z" in the official ProtectedItem_Delete_OperationStatus example, which armsim follows.
NOT_ENDED = "0001-01-01T00:00:00.00000Z"
T = "Microsoft.RecoveryServices/vaults"
STORAGE_CONFIG = V + "/backupstorageconfig/vaultstorageconfig"
VAULT_CONFIG = V + "/backupconfig/vaultconfig"
GUARD_PROXY = V + "/backupResourceGuardProxies/{resourceGuardProxyName}"
POLICY = V + "/backupPolicies/{policyName}"
FABRIC = V + "/backupFabrics/{fabricName}"
BACKUP_STATUS = "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/locations/{azureRegion}/backupStatus"


def _route(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, BACKUP_API, T)


ROUTES = (
    # -- storage configuration
    _route("GET", STORAGE_CONFIG, "BackupResourceStorageConfigsNonCRR_Get", "get_storage_config"),
    _route("PUT", STORAGE_CONFIG, "BackupResourceStorageConfigsNonCRR_Update", "put_storage_config"),
    _route("PATCH", STORAGE_CONFIG, "BackupResourceStorageConfigsNonCRR_Patch", "patch_storage_config"),
    # -- vault security configuration
    _route("GET", VAULT_CONFIG, "BackupResourceVaultConfigs_Get", "get_vault_config"),
    _route("PUT", VAULT_CONFIG, "BackupResourceVaultConfigs_Put", "put_vault_config"),
    _route("PATCH", VAULT_CONFIG, "BackupResourceVaultConfigs_Update", "update_vault_config"),
    _route("GET", V + "/backupResourceGuardProxies", "ResourceGuardProxies_Get", "list_guard_proxies"),
    _route("GET", GUARD_PROXY, "ResourceGuardProxy_Get", "get_guard_proxy"),
    _route("PUT", GUARD_PROXY, "ResourceGuardProxy_Put", "put_guard_proxy"),
    # -- policies
    _route("GET", V + "/backupPolicies", "BackupPolicies_List", "list_policies"),
    _route("GET", POLICY, "ProtectionPolicies_Get", "get_policy"),
    _route("PUT", POLICY, "ProtectionPolicies_CreateOrUpdate", "put_policy"),
    _route("DELETE", POLICY, "ProtectionPolicies_Delete", "delete_policy"),
    _route("GET", POLICY + "/operationResults/{operationId}", "ProtectionPolicyOperationResults_Get", "policy_operation_result"),
    _route("GET", POLICY + "/operations/{operationId}", "ProtectionPolicyOperationStatuses_Get", "policy_operation_status"),
    # -- discovery
    _route("POST", FABRIC + "/refreshContainers", "ProtectionContainers_Refresh", "refresh_containers"),
    _route("GET", FABRIC + "/operationResults/{operationId}", "ProtectionContainerRefreshOperationResults_Get", "refresh_result"),
    _route("GET", FABRIC + "/operationsStatus/{operationId}", "ProtectionContainerRefreshOperationStatuses_Get", "refresh_status"),
    _route("GET", V + "/backupProtectableItems", "BackupProtectableItems_List", "list_protectable_items"),
    # -- protected items
    _route("GET", V + "/backupProtectedItems", "BackupProtectedItems_List", "list_protected_items"),
    _route("GET", ITEM, "ProtectedItems_Get", "get_item"),
    _route("PUT", ITEM, "ProtectedItems_CreateOrUpdate", "put_item"),
    _route("DELETE", ITEM, "ProtectedItems_Delete", "delete_item"),
    _route("GET", ITEM + "/operationsStatus/{operationId}", "ProtectedItemOperationStatuses_Get", "item_operation_status"),
    _route("GET", ITEM + "/operationResults/{operationId}", "ProtectedItemOperationResults_Get", "item_operation_result"),
    _route("POST", ITEM + "/backup", "Backups_Trigger", "trigger_backup"),
    _route("POST", ITEM + "/recoveryPoints/{recoveryPointId}/restore", "Restores_Trigger", "trigger_restore"),
    # -- vault-level operations (delete of backup data)
    _route("GET", V + "/backupOperationResults/{operationId}", "BackupOperationResults_Get", "backup_operation_result"),
    _route("GET", V + "/backupOperations/{operationId}", "BackupOperationStatuses_Get", "backup_operation_status"),
    # -- recovery points
    _route("GET", ITEM + "/recoveryPoints", "RecoveryPoints_List", "list_recovery_points"),
    _route("GET", ITEM + "/recoveryPoints/{recoveryPointId}", "RecoveryPoints_Get", "get_recovery_point"),
    # -- jobs
    _route("GET", V + "/backupJobs", "BackupJobs_List", "list_jobs"),
    _route("GET", V + "/backupJobs/{jobName}", "JobDetails_Get", "get_job"),
    # -- per-VM backup status, and containers (read-only)
    _route("POST", BACKUP_STATUS, "BackupStatus_Get", "get_backup_status"),
    _route("GET", FABRIC + "/protectionContainers/{containerName}", "ProtectionContainers_Get", "get_container"),
)  # fmt: skip


class BackupResponses(Responses[BackupBackend]):
    # -- storage configuration ---------------------------------------------------------------
    def get_storage_config(self, request: Request) -> Response:
        return Response(200, self.world.backend(VaultsBackend).storage_config(self._vault(request)))

    def put_storage_config(self, request: Request) -> Response:
        vault = self._vault(request)
        self.world.backend(VaultsBackend).set_storage_config(vault, request.json())
        return Response(200, self.world.backend(VaultsBackend).storage_config(vault))

    def patch_storage_config(self, request: Request) -> Response:
        self.world.backend(VaultsBackend).set_storage_config(self._vault(request), request.json())
        return Response(204)

    # -- vault security configuration --------------------------------------------------------
    def get_vault_config(self, request: Request) -> Response:
        return Response(200, self.world.backend(VaultsBackend).vault_config(self._vault(request)))

    def put_vault_config(self, request: Request) -> Response:
        return self._write_vault_config(request)

    def update_vault_config(self, request: Request) -> Response:
        return self._write_vault_config(request)

    def list_guard_proxies(self, request: Request) -> Response:
        backend = self.backend
        vault = self._vault(request)
        proxies = [
            backend.guard_proxy_view(vault, p)
            for p in sorted(backend.guard_proxies_of(vault["model"]["id"]), key=lambda p: p["name"].lower())
        ]
        return paged(request, proxies, self.world.config["pageSize"]["protectedItems"])

    def get_guard_proxy(self, request: Request) -> Response:
        return Response(
            200, self.backend.get_guard_proxy(self._vault(request), request.params["resourceGuardProxyName"])
        )

    def put_guard_proxy(self, request: Request) -> Response:
        return Response(
            200,
            self.backend.put_guard_proxy(
                self._vault(request), request.params["resourceGuardProxyName"], request.json()
            ),
        )

    # -- policies ----------------------------------------------------------------------------
    def list_policies(self, request: Request) -> Response:
        filters = parse_filter(request.query.get("$filter"), ["backupManagementType", "workloadType"])
        policies = self.backend.list_policies(self._vault(request))
        if "backupManagementType" in filters:
            policies = [
                p
                for p in policies
                if p["properties"]["backupManagementType"].lower() == filters["backupManagementType"].lower()
            ]
        return paged(request, policies, self.world.config["pageSize"]["policies"])

    def get_policy(self, request: Request) -> Response:
        return Response(200, self.backend.get_policy(self._vault(request), request.params["policyName"]))

    def put_policy(self, request: Request) -> Response:
        return Response(
            200, self.backend.put_policy(self._vault(request), request.params["policyName"], request.json())
        )

    def delete_policy(self, request: Request) -> Response:
        self.backend.delete_policy(self._vault(request), request.params["policyName"])
        return Response(200)

    def policy_operation_result(self, request: Request) -> Response:
        self._operation(request)
        return Response(200, self.backend.get_policy(self._vault(request), request.params["policyName"]))

    def policy_operation_status(self, request: Request) -> Response:
        return Response(200, status_body(self._operation(request), self.world.now()))

    # -- discovery ---------------------------------------------------------------------------
    def refresh_containers(self, request: Request) -> Response:
        vault = self._vault(request)
        if request.params["fabricName"].lower() != "azure":
            raise InvalidBackupInput("Fabric name must be 'Azure'.")
        self.backend.refresh(vault)
        op = operations(self.world).begin("RefreshContainers", resource_id=vault["model"]["id"])
        # Recorded since Oct 2019: Location and Azure-AsyncOperation (the July 2019 recording and the
        # official example show Location only); Retry-After as in the official example.
        base = request.path.rsplit("/", 1)[0]
        return self._accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    def refresh_result(self, request: Request) -> Response:
        return self._result_or_wait(request, self._operation(request))

    def refresh_status(self, request: Request) -> Response:
        vault = self._vault(request)
        body = self._operation(request).status_body(self.world.now())
        body["id"] = f"{vault['model']['id']}/backupFabrics/Azure/operationsStatus/{body['id']}"
        return Response(200, body)

    def list_protectable_items(self, request: Request) -> Response:
        filters = parse_filter(
            request.query.get("$filter"), ["backupManagementType", "workloadType", "friendlyName"]
        )
        _check_iaasvm(filters)
        vault = self._vault(request)
        vms = self.backend.protectable_vms(vault)
        if "friendlyName" in filters:
            vms = [vm for vm in vms if vm["model"]["name"].lower() == filters["friendlyName"].lower()]
        return paged(
            request,
            vms,
            self.world.config["pageSize"]["protectableItems"],
            lambda vm: _protectable_view(vault, vm),
        )

    # -- protected items ---------------------------------------------------------------------
    def list_protected_items(self, request: Request) -> Response:
        filters = parse_filter(
            request.query.get("$filter"),
            [
                "backupManagementType",
                "itemType",
                "policyName",
                "containerName",
                "friendlyName",
                "protectionStatus",
            ],
        )
        _check_iaasvm(filters)
        if filters.get("itemType", "VM").lower() != "vm":
            raise NotImplementedOnArmsim("armsim simulates protected items of itemType 'VM' only.")
        backend = self.backend
        vault = self._vault(request)
        prefix = vault["model"]["id"].lower() + "/"
        items = _filter_items(
            [backend.items[k] for k in sorted(backend.items) if k.startswith(prefix)], filters
        )
        views = [backend.item_view(i) for i in items]
        if "protectionStatus" in filters:
            views = [
                v
                for v in views
                if v["properties"]["protectionStatus"].lower() == filters["protectionStatus"].lower()
            ]
        return paged(request, views, self.world.config["pageSize"]["protectedItems"])

    def get_item(self, request: Request) -> Response:
        return Response(200, self.backend.item_view(self._item(request)[1]))

    def put_item(self, request: Request) -> Response:
        vault = self._vault(request)
        p = request.params
        body = request.json()
        _, op = self.backend.put_item(
            vault, p["fabricName"], p["containerName"], p["protectedItemName"], body
        )
        # The URLs repeat the item's path as the request spelled it (recorded: 'vm;...' stays 'vm;...').
        return self._accepted(
            request, op, f"{request.path}/operationResults", f"{request.path}/operationsStatus"
        )

    def delete_item(self, request: Request) -> Response:
        vault, item = self._item(request)
        op = self.backend.delete_item(vault, item)
        base = request.path.split("/backupFabrics/", 1)[0]
        return self._accepted(
            request, op, f"{base}/backupOperationResults", f"{base}/backupOperations", retry_after=False
        )

    def item_operation_status(self, request: Request) -> Response:
        return Response(200, status_body(self._operation(request), self.world.now()))

    def item_operation_result(self, request: Request) -> Response:
        op = self._operation(request)
        now = self.world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        if op.kind in ("ConfigureBackup", "DisableBackup", "Undelete"):
            p = request.params
            vault = self._vault(request)
            try:
                item = self.backend.find_item(
                    vault, p["fabricName"], p["containerName"], p["protectedItemName"]
                )
            except ArmError:
                return Response(204)
            return Response(200, self.backend.item_view(item))
        return Response(204)

    def trigger_backup(self, request: Request) -> Response:
        backend = self.backend
        vault, item = self._item(request)
        props = request.json().get("properties") or {}
        if props.get("objectType") != "IaasVMBackupRequest":
            raise InvalidBackupInput("properties.objectType must be 'IaasVMBackupRequest' for VMs.")
        now = self.world.now()
        expiry = _expiry(props, now)
        self._refuse_backup(item)
        job = backend.start_backup(vault, item, "OnDemand", now, expiry)
        op = operations(self.world).begin("Backup", resource_id=item["id"], job_id=job["id"])
        base = request.path.rsplit("/", 1)[0]  # the item as the request spelled it
        return self._accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    def trigger_restore(self, request: Request) -> Response:
        """202 with the item's operation URLs (recorded) and Retry-After (the official examples); the
        operation is done at once and names the Restore job (recorded, test_backup_restore #286)."""
        vault, item = self._item(request)
        job = restore.trigger(self.backend, vault, item, request.params["recoveryPointId"], request.json())
        op = operations(self.world).begin("Restore", resource_id=item["id"], job_id=job["id"])
        base = request.path.split("/recoveryPoints/", 1)[0]  # the item as the request spelled it
        return self._accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    # -- vault-level operations (delete of backup data) --------------------------------------
    def backup_operation_result(self, request: Request) -> Response:
        return self._result_or_wait(request, self._operation(request))

    def backup_operation_status(self, request: Request) -> Response:
        return Response(200, status_body(self._operation(request), self.world.now()))

    # -- recovery points ---------------------------------------------------------------------
    def list_recovery_points(self, request: Request) -> Response:
        backend = self.backend
        _, item = self._item(request)
        filters = parse_filter(request.query.get("$filter"), ["startDate", "endDate"])
        points = backend.visible_points(item)
        if "startDate" in filters:
            start = filter_time(filters["startDate"])
            points = [p for p in points if p["time"] >= start]
        if "endDate" in filters:
            end = filter_time(filters["endDate"])
            points = [p for p in points if p["time"] <= end]
        return paged(
            request,
            points,
            self.world.config["pageSize"]["recoveryPoints"],
            lambda p: backend.point_view(item, p, detailed=False),
            newest_first("time"),
        )

    def get_recovery_point(self, request: Request) -> Response:
        _, item = self._item(request)
        for point in self.backend.visible_points(item):
            if point["id"] == request.params["recoveryPointId"]:
                return Response(200, self.backend.point_view(item, point))
        raise NotFound("BMSUserErrorRecoveryPointNotFound", "The recovery point was not found.")

    # -- jobs --------------------------------------------------------------------------------
    def list_jobs(self, request: Request) -> Response:
        backend = self.backend
        filters = parse_filter(
            request.query.get("$filter"),
            ["backupManagementType", "operation", "status", "startTime", "endTime", "jobId"],
        )
        jobs = backend.list_jobs(self._vault(request), filters)
        return paged(
            request,
            jobs,
            self.world.config["pageSize"]["jobs"],
            lambda job: backend.job_view(job, detailed=False),
            newest_first("start"),
        )

    def get_job(self, request: Request) -> Response:
        vault = self._vault(request)
        job = self.backend.find_job(vault, request.params["jobName"])
        return Response(200, self.backend.job_view(job, detailed=True, base_url=request.base_url))

    # -- per-VM backup status ----------------------------------------------------------------
    def get_backup_status(self, request: Request) -> Response:
        backend = self.backend
        body = request.json()
        resource_id = body.get("resourceId")
        if body.get("resourceType", "VM") != "VM" or not isinstance(resource_id, str):
            raise InvalidBackupInput("Give resourceType 'VM' and the VM's resourceId.")
        key = backend.by_vm.get(resource_id.lower())
        vm = self.world.backend(ComputeBackend).find_vm(resource_id)
        if key is None:
            status = {
                "protectionStatus": "NotProtected",
                "errorCode": "" if vm else "ResourceNotFound",
                "errorMessage": "" if vm else f"The resource '{resource_id}' was not found.",
            }
            return Response(200, status)
        item = backend.items[key]
        view = backend.item_view(item)["properties"]
        protecting = view["protectionState"] == "IRPending"
        return Response(
            200,
            {
                "protectionStatus": "Protecting"
                if protecting
                else ("NotProtected" if item["softDeleted"] else "Protected"),
                "vaultId": item["vault"],
                "fabricName": "Azure",
                "containerName": f"iaasvmcontainer;{item['containerName']}",
                "protectedItemName": f"vm;{item['containerName']}",
                "policyName": view["policyName"],
                "errorCode": "",
                "errorMessage": "",
            },
        )

    # -- containers (read-only) --------------------------------------------------------------
    def get_container(self, request: Request) -> Response:
        vault = self._vault(request)
        name = request.params["containerName"]
        prefix = f"{vault['model']['id']}/backupFabrics/Azure/protectionContainers/{name}/".lower()
        for key, item in self.backend.items.items():
            if key.startswith(prefix):
                return Response(
                    200,
                    {
                        "id": f"{vault['model']['id']}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{item['containerName']}",
                        "name": f"IaasVMContainer;{item['containerName']}",
                        "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers",
                        "properties": {
                            "containerType": "Microsoft.Compute/virtualMachines",
                            "backupManagementType": "AzureIaasVM",
                            "friendlyName": item["friendlyName"],
                            "registrationStatus": "Registered",
                            "healthStatus": "Healthy",
                            "virtualMachineId": item["vm"],
                        },
                    },
                )
        raise NotFound(
            "BMSUserErrorContainerObjectNotFound",
            f"The container '{name}' is not registered with the vault.",
        )

    # -- shared by several operations --------------------------------------------------------
    def _vault(self, request: Request) -> dict[str, Any]:
        p = request.params
        return self.backend.vault(p["subscriptionId"], p["resourceGroupName"], p["vaultName"])

    def _item(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        vault = self._vault(request)
        p = request.params
        return vault, self.backend.find_item(
            vault, p["fabricName"], p["containerName"], p["protectedItemName"]
        )

    def _operation(self, request: Request) -> Operation:
        op = operations(self.world).get(request.params["operationId"])
        if op is None:
            raise NotFound(
                "BMSUserErrorOperationNotFound",
                f"The operation '{request.params['operationId']}' was not found.",
            )
        return op

    def _accepted(
        self, request: Request, op: Operation, results: str, statuses: str, retry_after: bool = True
    ) -> Response:
        """202 with the operation's URLs. Retry-After where Azure is shown to send it: the official
        examples of configure, trigger and refresh have it; no evidence shows it on a delete."""
        headers = {
            "Location": request.url_for(f"{results}/{op.id}"),
            "Azure-AsyncOperation": request.url_for(f"{statuses}/{op.id}"),
        }
        if retry_after:
            headers["Retry-After"] = op.retry_after(self.world.now())
        return Response(202, None, headers)

    def _result_or_wait(self, request: Request, op: Operation) -> Response:
        """An operation result with no body: 202 to poll again while it runs, then 204."""
        now = self.world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(204)

    def _write_vault_config(self, request: Request) -> Response:
        vault = self._vault(request)
        props = request.json().get("properties")
        if not isinstance(props, dict):
            raise InvalidBackupInput("The vault configuration needs 'properties'.")
        self.world.backend(VaultsBackend).set_soft_delete(vault, props)
        return Response(200, self.world.backend(VaultsBackend).vault_config(vault))

    def _refuse_backup(self, item: dict[str, Any]) -> None:
        """An on-demand backup's refusals, in the order Azure Backup checks them."""
        backend = self.backend
        if item["softDeleted"] or item["state"] == "ProtectionStopped" or not item["policy"]:
            raise InvalidBackupInput(
                "Input provided for the call is invalid. Protection of this item is stopped; resume protection "
                "before taking an on-demand backup."
            )
        if backend._busy(item):
            raise Conflict(
                "BMSUserErrorObjectLocked",
                "Another operation is in progress on the selected item. Wait until the previous operation is "
                "completed and then retry.",
            )
        if backend.running_snapshot(item) is not None:
            raise BadRequest(
                "UserErrorBackupOperationInProgress",
                "Unable to initiate backup as another backup operation is currently in progress.",
            )
        if backend.on_demand_today(item) >= self.world.config["onDemandDailyLimit"]:
            raise BadRequest(
                "CloudDosAbsoluteLimitReached",
                "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours.",
            )


def status_body(op: Operation, now: float) -> dict[str, Any]:
    """As recorded: while running, endTime is .NET's DateTime.MinValue and no job is named; when
    done, properties.jobId names the job (OperationStatusJobExtendedInfo)."""
    body = op.status_body(now)
    if not op.finished(now):
        body["endTime"] = NOT_ENDED
    elif op.job_id:
        body["properties"] = {"objectType": "OperationStatusJobExtendedInfo", "jobId": op.job_id}
    return body


def _expiry(props: dict[str, Any], now: float) -> float:
    """An on-demand backup's recoveryPointExpiryTimeInUTC as a timestamp (30 days ahead when not given)."""
    expiry_text = props.get("recoveryPointExpiryTimeInUTC")
    if expiry_text:
        try:
            expiry = parse_iso(str(expiry_text)).timestamp()
        except ValueError:
            raise InvalidBackupInput(
                f"recoveryPointExpiryTimeInUTC '{expiry_text}' is not a date-time."
            ) from None
    else:
        expiry = now + 30 * 86400
    if expiry <= now:
        raise InvalidBackupInput("The recovery point expiry time must be in the future (UTC).")
    if expiry > now + MAX_RETAIN_DAYS * 86400:
        raise InvalidBackupInput("The recovery point expiry time can be at most 99 years ahead.")
    return expiry


def _filter_items(items: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    """Protected items by the $filter clauses on their records: policyName, friendlyName, containerName."""
    if "policyName" in filters:
        items = [i for i in items if i["policy"].rsplit("/", 1)[-1].lower() == filters["policyName"].lower()]
    if "friendlyName" in filters:
        items = [i for i in items if i["friendlyName"].lower() == filters["friendlyName"].lower()]
    if "containerName" in filters:
        wanted = filters["containerName"].lower().removeprefix("iaasvmcontainer;")
        items = [i for i in items if i["containerName"].lower() == wanted]
    return items


def _protectable_view(vault: dict[str, Any], vm: dict[str, Any]) -> dict[str, Any]:
    # Recorded for a Compute VM: the name is the container's ('iaasvmcontainerv2;rg;vm'), the id
    # ends in 'protectableItems/vm;...'; with the VM's resource group and virtualMachineVersion.
    # workloadType is the official example's (newer api-version).
    _, group, name, container = names_for(vm["model"]["id"])
    return {
        "id": f"{vault['model']['id']}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}"
        f"/protectableItems/vm;{container}",
        "name": container,
        "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectableItems",
        "properties": {
            "virtualMachineId": vm["model"]["id"],
            "virtualMachineVersion": "Compute",
            "resourceGroup": group,
            "backupManagementType": "AzureIaasVM",
            "workloadType": "VM",
            "protectableItemType": "Microsoft.Compute/virtualMachines",
            "friendlyName": name,
            "protectionState": "NotProtected",
        },
    }


def _check_iaasvm(filters: dict[str, str]) -> None:
    management = filters.get("backupManagementType", "AzureIaasVM")
    if management.lower() != "azureiaasvm":
        raise NotImplementedOnArmsim(
            f"armsim simulates backupManagementType 'AzureIaasVM' only, not '{management}'."
        )


__all__ = ["ROUTES", "BackupResponses"]
