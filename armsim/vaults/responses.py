"""Routes of Microsoft.RecoveryServices/vaults."""

from __future__ import annotations

from armsim.core.errors import NotFound
from armsim.core.http import Endpoint, Request, Response
from armsim.core.operations import operations
from armsim.core.paging import paged
from armsim.core.responses import Responses
from armsim.resources.models import ResourcesBackend
from armsim.vaults.models import VAULT_TYPE, VaultsBackend

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
VAULTS_IN_GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.RecoveryServices/vaults"
VAULTS = "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/vaults"


def _route(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, VAULTS_API, VAULT_TYPE)


ROUTES = (
    _route("PUT", VAULT, "Vaults_CreateOrUpdate", "put_vault"),
    _route("GET", VAULT, "Vaults_Get", "get_vault"),
    _route("PATCH", VAULT, "Vaults_Update", "patch_vault"),
    _route("DELETE", VAULT, "Vaults_Delete", "delete_vault"),
    _route("GET", VAULT + "/operationStatus/{operationId}", "Vaults_GetOperationStatus", "vault_operation_status"),
    _route("GET", VAULTS_IN_GROUP, "Vaults_ListByResourceGroup", "list_vaults_in_group"),
    _route("GET", VAULTS, "Vaults_ListBySubscriptionId", "list_vaults"),
)  # fmt: skip


class VaultsResponses(Responses[VaultsBackend]):
    def put_vault(self, request: Request) -> Response:
        record, created = self.backend.put(*_ids(request), request.json())
        op = operations(self.world).begin("VaultWrite", resource_id=record["model"]["id"])
        status_url = request.url_for(f"{record['model']['id']}/operationStatus/{op.id}")
        headers = {"Azure-AsyncOperation": status_url, "Retry-After": op.retry_after(self.world.now())}
        return Response(201 if created else 200, self.backend.view(record), headers)

    def get_vault(self, request: Request) -> Response:
        return Response(200, self.backend.view(self.backend.get(*_ids(request))))

    def patch_vault(self, request: Request) -> Response:
        return Response(200, self.backend.view(self.backend.patch(*_ids(request), request.json())))

    def delete_vault(self, request: Request) -> Response:
        self.backend.delete(*_ids(request))
        return Response(204)

    def vault_operation_status(self, request: Request) -> Response:
        op = operations(self.world).get(request.params["operationId"])
        if op is None:
            raise NotFound(
                "OperationNotFound", f"The operation '{request.params['operationId']}' was not found."
            )
        now = self.world.now()
        return Response(
            200, op.status_body(now), {} if op.finished(now) else {"Retry-After": op.retry_after(now)}
        )

    def list_vaults_in_group(self, request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        self.world.backend(ResourcesBackend).require_group(sub, group)
        return paged(request, self.backend.list(sub, group), self.world.config["pageSize"]["vaults"])

    def list_vaults(self, request: Request) -> Response:
        sub = request.params["subscriptionId"]
        self.world.backend(ResourcesBackend).require_subscription(sub)
        return paged(request, self.backend.list(sub), self.world.config["pageSize"]["vaults"])


def _ids(request: Request) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p["vaultName"]
