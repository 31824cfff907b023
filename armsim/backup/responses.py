"""Routes of Azure Backup for IaaS VMs (Microsoft.RecoveryServices vault children)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.backup import restore
from armsim.backup.models import filter_time, names_for
from armsim.core.clock import parse_iso
from armsim.core.errors import ArmError
from armsim.core.http import Request, Response, Router
from armsim.core.operations import Operation, operations
from armsim.core.paging import newest_first, paged, parse_filter

if TYPE_CHECKING:
    from armsim.backup.models import BackupBackend

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


def register(router: Router, backend: BackupBackend) -> None:
    world = backend.world

    def route(method: str, path: str, operation: str) -> Any:
        return router.add(method, path, operation, BACKUP_API, T)

    def vault_of(request: Request) -> dict[str, Any]:
        p = request.params
        return backend.vault(p["subscriptionId"], p["resourceGroupName"], p["vaultName"])

    def item_of(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        vault = vault_of(request)
        p = request.params
        return vault, backend.find_item(vault, p["fabricName"], p["containerName"], p["protectedItemName"])

    def accepted(
        request: Request, op: Operation, results: str, statuses: str, retry_after: bool = True
    ) -> Response:
        """202 with the operation's URLs. Retry-After where Azure is shown to send it: the official
        examples of configure, trigger and refresh have it; no evidence shows it on a delete."""
        headers = {
            "Location": request.url_for(f"{results}/{op.id}"),
            "Azure-AsyncOperation": request.url_for(f"{statuses}/{op.id}"),
        }
        if retry_after:
            headers["Retry-After"] = op.retry_after(world.now())
        return Response(202, None, headers)

    def operation(request: Request) -> Operation:
        op = operations(world).get(request.params["operationId"])
        if op is None:
            raise ArmError(
                404,
                "BMSUserErrorOperationNotFound",
                f"The operation '{request.params['operationId']}' was not found.",
            )
        return op

    def status_body(op: Operation, now: float) -> dict[str, Any]:
        """As recorded: while running, endTime is .NET's DateTime.MinValue and no job is named; when
        done, properties.jobId names the job (OperationStatusJobExtendedInfo)."""
        body = op.status_body(now)
        if not op.finished(now):
            body["endTime"] = NOT_ENDED
        elif op.job_id:
            body["properties"] = {"objectType": "OperationStatusJobExtendedInfo", "jobId": op.job_id}
        return body

    # -- storage configuration -------------------------------------------------------------
    config_path = V + "/backupstorageconfig/vaultstorageconfig"

    @route("GET", config_path, "BackupResourceStorageConfigsNonCRR_Get")
    def get_storage_config(request: Request) -> Response:
        return Response(200, backend.vaults.storage_config(vault_of(request)))

    @route("PUT", config_path, "BackupResourceStorageConfigsNonCRR_Update")
    def put_storage_config(request: Request) -> Response:
        vault = vault_of(request)
        backend.vaults.set_storage_config(vault, request.json())
        return Response(200, backend.vaults.storage_config(vault))

    @route("PATCH", config_path, "BackupResourceStorageConfigsNonCRR_Patch")
    def patch_storage_config(request: Request) -> Response:
        backend.vaults.set_storage_config(vault_of(request), request.json())
        return Response(204)

    # -- vault security configuration ------------------------------------------------------
    vault_config_path = V + "/backupconfig/vaultconfig"

    @route("GET", vault_config_path, "BackupResourceVaultConfigs_Get")
    def get_vault_config(request: Request) -> Response:
        return Response(200, backend.vaults.vault_config(vault_of(request)))

    def write_vault_config(request: Request) -> Response:
        vault = vault_of(request)
        props = request.json().get("properties")
        if not isinstance(props, dict):
            raise ArmError(400, "BMSUserErrorInvalidInput", "The vault configuration needs 'properties'.")
        backend.vaults.set_soft_delete(vault, props)
        return Response(200, backend.vaults.vault_config(vault))

    route("PUT", vault_config_path, "BackupResourceVaultConfigs_Put")(write_vault_config)
    route("PATCH", vault_config_path, "BackupResourceVaultConfigs_Update")(write_vault_config)

    @route("GET", V + "/backupResourceGuardProxies", "ResourceGuardProxies_Get")
    def list_guard_proxies(request: Request) -> Response:
        vault = vault_of(request)
        proxies = [
            backend.guard_proxy_view(vault, p)
            for p in sorted(backend.guard_proxies_of(vault["model"]["id"]), key=lambda p: p["name"].lower())
        ]
        return paged(request, proxies, world.config["pageSize"]["protectedItems"])

    @route("GET", V + "/backupResourceGuardProxies/{resourceGuardProxyName}", "ResourceGuardProxy_Get")
    def get_guard_proxy(request: Request) -> Response:
        return Response(
            200, backend.get_guard_proxy(vault_of(request), request.params["resourceGuardProxyName"])
        )

    @route("PUT", V + "/backupResourceGuardProxies/{resourceGuardProxyName}", "ResourceGuardProxy_Put")
    def put_guard_proxy(request: Request) -> Response:
        return Response(
            200,
            backend.put_guard_proxy(
                vault_of(request), request.params["resourceGuardProxyName"], request.json()
            ),
        )

    # -- policies --------------------------------------------------------------------------
    @route("GET", V + "/backupPolicies", "BackupPolicies_List")
    def list_policies(request: Request) -> Response:
        filters = parse_filter(request.query.get("$filter"), ["backupManagementType", "workloadType"])
        policies = backend.list_policies(vault_of(request))
        if "backupManagementType" in filters:
            policies = [
                p
                for p in policies
                if p["properties"]["backupManagementType"].lower() == filters["backupManagementType"].lower()
            ]
        return paged(request, policies, world.config["pageSize"]["policies"])

    @route("GET", V + "/backupPolicies/{policyName}", "ProtectionPolicies_Get")
    def get_policy(request: Request) -> Response:
        return Response(200, backend.get_policy(vault_of(request), request.params["policyName"]))

    @route("PUT", V + "/backupPolicies/{policyName}", "ProtectionPolicies_CreateOrUpdate")
    def put_policy(request: Request) -> Response:
        return Response(
            200, backend.put_policy(vault_of(request), request.params["policyName"], request.json())
        )

    @route("DELETE", V + "/backupPolicies/{policyName}", "ProtectionPolicies_Delete")
    def delete_policy(request: Request) -> Response:
        backend.delete_policy(vault_of(request), request.params["policyName"])
        return Response(200)

    @route(
        "GET",
        V + "/backupPolicies/{policyName}/operationResults/{operationId}",
        "ProtectionPolicyOperationResults_Get",
    )
    def policy_operation_result(request: Request) -> Response:
        operation(request)
        return Response(200, backend.get_policy(vault_of(request), request.params["policyName"]))

    @route(
        "GET",
        V + "/backupPolicies/{policyName}/operations/{operationId}",
        "ProtectionPolicyOperationStatuses_Get",
    )
    def policy_operation_status(request: Request) -> Response:
        return Response(200, status_body(operation(request), world.now()))

    # -- discovery -------------------------------------------------------------------------
    fabric = V + "/backupFabrics/{fabricName}"

    @route("POST", fabric + "/refreshContainers", "ProtectionContainers_Refresh")
    def refresh(request: Request) -> Response:
        vault = vault_of(request)
        if request.params["fabricName"].lower() != "azure":
            raise ArmError(400, "BMSUserErrorInvalidInput", "Fabric name must be 'Azure'.")
        backend.refresh(vault)
        op = operations(world).begin("RefreshContainers", resource_id=vault["model"]["id"])
        # Recorded since Oct 2019: Location and Azure-AsyncOperation (the July 2019 recording and the
        # official example show Location only); Retry-After as in the official example.
        base = request.path.rsplit("/", 1)[0]
        return accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    @route(
        "GET", fabric + "/operationResults/{operationId}", "ProtectionContainerRefreshOperationResults_Get"
    )
    def refresh_result(request: Request) -> Response:
        op = operation(request)
        now = world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(204)

    @route(
        "GET", fabric + "/operationsStatus/{operationId}", "ProtectionContainerRefreshOperationStatuses_Get"
    )
    def refresh_status(request: Request) -> Response:
        vault = vault_of(request)
        body = operation(request).status_body(world.now())
        body["id"] = f"{vault['model']['id']}/backupFabrics/Azure/operationsStatus/{body['id']}"
        return Response(200, body)

    @route("GET", V + "/backupProtectableItems", "BackupProtectableItems_List")
    def protectable_items(request: Request) -> Response:
        filters = parse_filter(
            request.query.get("$filter"), ["backupManagementType", "workloadType", "friendlyName"]
        )
        _check_iaasvm(filters)
        vault = vault_of(request)
        vms = backend.protectable_vms(vault)
        if "friendlyName" in filters:
            vms = [vm for vm in vms if vm["model"]["name"].lower() == filters["friendlyName"].lower()]

        def view(vm: dict[str, Any]) -> dict[str, Any]:
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

        return paged(request, vms, world.config["pageSize"]["protectableItems"], view)

    # -- protected items -------------------------------------------------------------------
    @route("GET", V + "/backupProtectedItems", "BackupProtectedItems_List")
    def protected_items(request: Request) -> Response:
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
            raise ArmError(501, "NotImplemented", "armsim simulates protected items of itemType 'VM' only.")
        vault = vault_of(request)
        prefix = vault["model"]["id"].lower() + "/"
        items = [backend.items[k] for k in sorted(backend.items) if k.startswith(prefix)]
        if "policyName" in filters:
            items = [
                i for i in items if i["policy"].rsplit("/", 1)[-1].lower() == filters["policyName"].lower()
            ]
        if "friendlyName" in filters:
            items = [i for i in items if i["friendlyName"].lower() == filters["friendlyName"].lower()]
        if "containerName" in filters:
            wanted = filters["containerName"].lower().removeprefix("iaasvmcontainer;")
            items = [i for i in items if i["containerName"].lower() == wanted]
        views = [backend.item_view(i) for i in items]
        if "protectionStatus" in filters:
            views = [
                v
                for v in views
                if v["properties"]["protectionStatus"].lower() == filters["protectionStatus"].lower()
            ]
        return paged(request, views, world.config["pageSize"]["protectedItems"])

    @route("GET", ITEM, "ProtectedItems_Get")
    def get_item(request: Request) -> Response:
        return Response(200, backend.item_view(item_of(request)[1]))

    @route("PUT", ITEM, "ProtectedItems_CreateOrUpdate")
    def put_item(request: Request) -> Response:
        vault = vault_of(request)
        p = request.params
        body = request.json()
        _, op = backend.put_item(vault, p["fabricName"], p["containerName"], p["protectedItemName"], body)
        # The URLs repeat the item's path as the request spelled it (recorded: 'vm;...' stays 'vm;...').
        return accepted(request, op, f"{request.path}/operationResults", f"{request.path}/operationsStatus")

    @route("DELETE", ITEM, "ProtectedItems_Delete")
    def delete_item(request: Request) -> Response:
        vault, item = item_of(request)
        op = backend.delete_item(vault, item)
        base = request.path.split("/backupFabrics/", 1)[0]
        return accepted(
            request, op, f"{base}/backupOperationResults", f"{base}/backupOperations", retry_after=False
        )

    @route("GET", ITEM + "/operationsStatus/{operationId}", "ProtectedItemOperationStatuses_Get")
    def item_operation_status(request: Request) -> Response:
        return Response(200, status_body(operation(request), world.now()))

    @route("GET", ITEM + "/operationResults/{operationId}", "ProtectedItemOperationResults_Get")
    def item_operation_result(request: Request) -> Response:
        op = operation(request)
        now = world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        if op.kind in ("ConfigureBackup", "DisableBackup", "Undelete"):
            p = request.params
            vault = vault_of(request)
            try:
                item = backend.find_item(vault, p["fabricName"], p["containerName"], p["protectedItemName"])
            except ArmError:
                return Response(204)
            return Response(200, backend.item_view(item))
        return Response(204)

    @route("POST", ITEM + "/backup", "Backups_Trigger")
    def trigger_backup(request: Request) -> Response:
        vault, item = item_of(request)
        props = request.json().get("properties") or {}
        if props.get("objectType") != "IaasVMBackupRequest":
            raise ArmError(
                400,
                "BMSUserErrorInvalidInput",
                "properties.objectType must be 'IaasVMBackupRequest' for VMs.",
            )
        now = world.now()
        expiry_text = props.get("recoveryPointExpiryTimeInUTC")
        if expiry_text:
            try:
                expiry = parse_iso(str(expiry_text)).timestamp()
            except ValueError:
                raise ArmError(
                    400,
                    "BMSUserErrorInvalidInput",
                    f"recoveryPointExpiryTimeInUTC '{expiry_text}' is not a date-time.",
                ) from None
        else:
            expiry = now + 30 * 86400
        if expiry <= now:
            raise ArmError(
                400, "BMSUserErrorInvalidInput", "The recovery point expiry time must be in the future (UTC)."
            )
        if expiry > now + MAX_RETAIN_DAYS * 86400:
            raise ArmError(
                400,
                "BMSUserErrorInvalidInput",
                "The recovery point expiry time can be at most 99 years ahead.",
            )
        if item["softDeleted"] or item["state"] == "ProtectionStopped" or not item["policy"]:
            raise ArmError(
                400,
                "BMSUserErrorInvalidInput",
                "Input provided for the call is invalid. Protection of this item is stopped; resume protection "
                "before taking an on-demand backup.",
            )
        if backend._busy(item):
            raise ArmError(
                409,
                "BMSUserErrorObjectLocked",
                "Another operation is in progress on the selected item. Wait until the previous operation is "
                "completed and then retry.",
            )
        if backend.running_snapshot(item) is not None:
            raise ArmError(
                400,
                "UserErrorBackupOperationInProgress",
                "Unable to initiate backup as another backup operation is currently in progress.",
            )
        if backend.on_demand_today(item) >= world.config["onDemandDailyLimit"]:
            raise ArmError(
                400,
                "CloudDosAbsoluteLimitReached",
                "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours.",
            )
        job = backend.start_backup(vault, item, "OnDemand", now, expiry)
        op = operations(world).begin("Backup", resource_id=item["id"], job_id=job["id"])
        base = request.path.rsplit("/", 1)[0]  # the item as the request spelled it
        return accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    @route("POST", ITEM + "/recoveryPoints/{recoveryPointId}/restore", "Restores_Trigger")
    def trigger_restore(request: Request) -> Response:
        """202 with the item's operation URLs (recorded) and Retry-After (the official examples); the
        operation is done at once and names the Restore job (recorded, test_backup_restore #286)."""
        vault, item = item_of(request)
        job = restore.trigger(backend, vault, item, request.params["recoveryPointId"], request.json())
        op = operations(world).begin("Restore", resource_id=item["id"], job_id=job["id"])
        base = request.path.split("/recoveryPoints/", 1)[0]  # the item as the request spelled it
        return accepted(request, op, f"{base}/operationResults", f"{base}/operationsStatus")

    # -- vault-level operations (delete of backup data) ------------------------------------
    @route("GET", V + "/backupOperationResults/{operationId}", "BackupOperationResults_Get")
    def backup_operation_result(request: Request) -> Response:
        op = operation(request)
        now = world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(204)

    @route("GET", V + "/backupOperations/{operationId}", "BackupOperationStatuses_Get")
    def backup_operation_status(request: Request) -> Response:
        return Response(200, status_body(operation(request), world.now()))

    # -- recovery points -------------------------------------------------------------------
    @route("GET", ITEM + "/recoveryPoints", "RecoveryPoints_List")
    def list_points(request: Request) -> Response:
        _, item = item_of(request)
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
            world.config["pageSize"]["recoveryPoints"],
            lambda p: backend.point_view(item, p, detailed=False),
            newest_first("time"),
        )

    @route("GET", ITEM + "/recoveryPoints/{recoveryPointId}", "RecoveryPoints_Get")
    def get_point(request: Request) -> Response:
        _, item = item_of(request)
        for point in backend.visible_points(item):
            if point["id"] == request.params["recoveryPointId"]:
                return Response(200, backend.point_view(item, point))
        raise ArmError(404, "BMSUserErrorRecoveryPointNotFound", "The recovery point was not found.")

    # -- jobs ------------------------------------------------------------------------------
    @route("GET", V + "/backupJobs", "BackupJobs_List")
    def list_jobs(request: Request) -> Response:
        filters = parse_filter(
            request.query.get("$filter"),
            ["backupManagementType", "operation", "status", "startTime", "endTime", "jobId"],
        )
        jobs = backend.list_jobs(vault_of(request), filters)
        return paged(
            request,
            jobs,
            world.config["pageSize"]["jobs"],
            lambda job: backend.job_view(job, detailed=False),
            newest_first("start"),
        )

    @route("GET", V + "/backupJobs/{jobName}", "JobDetails_Get")
    def get_job(request: Request) -> Response:
        vault = vault_of(request)
        job = backend.find_job(vault, request.params["jobName"])
        return Response(200, backend.job_view(job, detailed=True, base_url=request.base_url))

    # -- per-VM backup status --------------------------------------------------------------
    @route(
        "POST",
        "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/locations/{azureRegion}/backupStatus",
        "BackupStatus_Get",
    )
    def backup_status(request: Request) -> Response:
        body = request.json()
        resource_id = body.get("resourceId")
        if body.get("resourceType", "VM") != "VM" or not isinstance(resource_id, str):
            raise ArmError(400, "BMSUserErrorInvalidInput", "Give resourceType 'VM' and the VM's resourceId.")
        key = backend.by_vm.get(resource_id.lower())
        vm = backend.compute.find_vm(resource_id)
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

    # -- containers (read-only) ------------------------------------------------------------
    @route("GET", fabric + "/protectionContainers/{containerName}", "ProtectionContainers_Get")
    def get_container(request: Request) -> Response:
        vault = vault_of(request)
        name = request.params["containerName"]
        prefix = f"{vault['model']['id']}/backupFabrics/Azure/protectionContainers/{name}/".lower()
        for key, item in backend.items.items():
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
        raise ArmError(
            404,
            "BMSUserErrorContainerObjectNotFound",
            f"The container '{name}' is not registered with the vault.",
        )


def _check_iaasvm(filters: dict[str, str]) -> None:
    management = filters.get("backupManagementType", "AzureIaasVM")
    if management.lower() != "azureiaasvm":
        raise ArmError(
            501,
            "NotImplemented",
            f"armsim simulates backupManagementType 'AzureIaasVM' only, not '{management}'.",
        )


__all__ = ["register"]
