"""Routes of Microsoft.RecoveryServices/vaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armsim.core.errors import ArmError
from armsim.core.http import Request, Response, Router
from armsim.core.operations import operations
from armsim.core.paging import paged
from armsim.vaults.models import VAULT_TYPE

if TYPE_CHECKING:
    from armsim.vaults.models import VaultsBackend

VAULTS_API = (
    "2024-04-01",
    "2025-02-01",
    "2025-08-01",
    "2026-01-01",
    "2026-02-01",
    "2026-05-01",
    "2026-11-01",
)
VAULT = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.RecoveryServices/vaults/{vaultName}"


def register(router: Router, backend: VaultsBackend) -> None:
    world = backend.world

    def ids(request: Request) -> tuple[str, str, str]:
        p = request.params
        return p["subscriptionId"], p["resourceGroupName"], p["vaultName"]

    @router.add("PUT", VAULT, "Vaults_CreateOrUpdate", VAULTS_API, VAULT_TYPE)
    def put_vault(request: Request) -> Response:
        record, created = backend.put(*ids(request), request.json())
        op = operations(world).begin("VaultWrite", resource_id=record["model"]["id"])
        status_url = request.url_for(f"{record['model']['id']}/operationStatus/{op.id}")
        headers = {"Azure-AsyncOperation": status_url, "Retry-After": op.retry_after(world.now())}
        return Response(201 if created else 200, backend.view(record), headers)

    @router.add("GET", VAULT, "Vaults_Get", VAULTS_API, VAULT_TYPE)
    def get_vault(request: Request) -> Response:
        return Response(200, backend.view(backend.get(*ids(request))))

    @router.add("PATCH", VAULT, "Vaults_Update", VAULTS_API, VAULT_TYPE)
    def patch_vault(request: Request) -> Response:
        return Response(200, backend.view(backend.patch(*ids(request), request.json())))

    @router.add("DELETE", VAULT, "Vaults_Delete", VAULTS_API, VAULT_TYPE)
    def delete_vault(request: Request) -> Response:
        backend.delete(*ids(request))
        return Response(204)

    @router.add(
        "GET", VAULT + "/operationStatus/{operationId}", "Vaults_GetOperationStatus", VAULTS_API, VAULT_TYPE
    )
    def vault_operation(request: Request) -> Response:
        op = operations(world).get(request.params["operationId"])
        if op is None:
            raise ArmError(
                404, "OperationNotFound", f"The operation '{request.params['operationId']}' was not found."
            )
        now = world.now()
        return Response(
            200, op.status_body(now), {} if op.finished(now) else {"Retry-After": op.retry_after(now)}
        )

    @router.add("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.RecoveryServices/vaults", "Vaults_ListByResourceGroup", VAULTS_API, VAULT_TYPE)  # fmt: skip
    def list_in_group(request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        backend.resources.require_group(sub, group)
        return paged(request, backend.list(sub, group), world.config["pageSize"]["vaults"])

    @router.add("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/vaults", "Vaults_ListBySubscriptionId", VAULTS_API, VAULT_TYPE)  # fmt: skip
    def list_in_subscription(request: Request) -> Response:
        sub = request.params["subscriptionId"]
        backend.resources.require_subscription(sub)
        return paged(request, backend.list(sub), world.config["pageSize"]["vaults"])
