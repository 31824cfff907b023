"""Routes of Microsoft.Network: virtual networks (subnets inside them) and network interfaces, and the
status and result URLs their long-running writes and deletes are polled at."""

from __future__ import annotations

from armsim.core.errors import NotFound
from armsim.core.http import Endpoint, Request, Response
from armsim.core.operations import Operation, operations
from armsim.core.responses import Responses
from armsim.network.models import NIC_TYPE, VNET_TYPE, NetworkBackend

NETWORK_API = (
    "2018-01-01", "2023-09-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01", "2025-01-01",
    "2025-03-01", "2025-05-01", "2025-07-01", "2026-01-01", "2026-03-01",
)  # fmt: skip
SUB = "/subscriptions/{subscriptionId}"
GROUP = SUB + "/resourceGroups/{resourceGroupName}"
VNET = GROUP + "/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}"
NIC = GROUP + "/providers/Microsoft.Network/networkInterfaces/{networkInterfaceName}"
LOCATION = SUB + "/providers/Microsoft.Network/locations/{location}"


def _vnet(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, NETWORK_API, VNET_TYPE)


def _nic(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, NETWORK_API, NIC_TYPE)


ROUTES = (
    _vnet("PUT", VNET, "VirtualNetworks_CreateOrUpdate", "put_vnet"),
    _vnet("GET", VNET, "VirtualNetworks_Get", "get_vnet"),
    _vnet("DELETE", VNET, "VirtualNetworks_Delete", "delete_vnet"),
    _nic("PUT", NIC, "NetworkInterfaces_CreateOrUpdate", "put_nic"),
    _nic("GET", NIC, "NetworkInterfaces_Get", "get_nic"),
    _nic("DELETE", NIC, "NetworkInterfaces_Delete", "delete_nic"),
    _vnet("GET", LOCATION + "/operations/{operationId}", "Network_OperationStatus", "operation_status"),
    _vnet("GET", LOCATION + "/operationResults/{operationId}", "Network_OperationResult", "operation_result"),
)


class NetworkResponses(Responses[NetworkBackend]):
    # -- virtual networks ---------------------------------------------------------------------------
    def put_vnet(self, request: Request) -> Response:
        record, created = self.backend.put_vnet(*_ids(request, "virtualNetworkName"), request.json())
        return self._written(request, record, self.backend.vnet_view(record), created)

    def get_vnet(self, request: Request) -> Response:
        return Response(
            200, self.backend.vnet_view(self.backend.get_vnet(*_ids(request, "virtualNetworkName")))
        )

    def delete_vnet(self, request: Request) -> Response:
        return self._deleted(request, self.backend.delete_vnet(*_ids(request, "virtualNetworkName")))

    # -- network interfaces -------------------------------------------------------------------------
    def put_nic(self, request: Request) -> Response:
        record, created = self.backend.put_nic(*_ids(request, "networkInterfaceName"), request.json())
        return self._written(request, record, self.backend.nic_view(record), created)

    def get_nic(self, request: Request) -> Response:
        return Response(
            200, self.backend.nic_view(self.backend.get_nic(*_ids(request, "networkInterfaceName")))
        )

    def delete_nic(self, request: Request) -> Response:
        return self._deleted(request, self.backend.delete_nic(*_ids(request, "networkInterfaceName")))

    # -- polling -------------------------------------------------------------------------------------
    def operation_status(self, request: Request) -> Response:
        """The Azure-AsyncOperation URL: `{"status"}` (and `error` when it failed), the spec's
        AzureAsyncOperationResult."""
        op = self._operation(request)
        now = self.world.now()
        body: dict[str, object] = {"status": op.status(now)}
        if op.error and op.finished(now):
            body["error"] = dict(op.error)
        headers = {} if op.finished(now) else {"Retry-After": op.retry_after(now)}
        return Response(200, body, headers)

    def operation_result(self, request: Request) -> Response:
        """The Location URL of a delete: 202 while it runs, then 204."""
        op = self._operation(request)
        now = self.world.now()
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(204)

    # -- shared ----------------------------------------------------------------------------------------
    def _operation(self, request: Request) -> Operation:
        op = operations(self.world).get(request.params["operationId"])
        if op is None:
            raise NotFound("NotFound", f"The operation '{request.params['operationId']}' was not found.")
        return op

    def _written(
        self, request: Request, record: dict[str, object], view: dict[str, object], created: bool
    ) -> Response:
        """201 (created) or 200 (updated) with the resource, `Azure-AsyncOperation` and `Retry-After`."""
        location = str(view["location"])
        status = request.url_for(
            f"/subscriptions/{request.params['subscriptionId']}/providers/Microsoft.Network/locations/"
            f"{location}/operations/{record['operation']}"
        )
        op = operations(self.world).get(str(record["operation"]))
        retry = op.retry_after(self.world.now()) if op else "0"
        return Response(201 if created else 200, view, {"Azure-AsyncOperation": status, "Retry-After": retry})

    def _deleted(self, request: Request, deleted: tuple[str, str] | None) -> Response:
        """202 with `Location` (operationResults) and `Azure-AsyncOperation`; 204 when there was nothing."""
        if deleted is None:
            return Response(204)
        operation_id, location = deleted
        op = operations(self.world).get(operation_id)
        retry = op.retry_after(self.world.now()) if op else "0"
        base = f"/subscriptions/{request.params['subscriptionId']}/providers/Microsoft.Network/locations/{location}"
        return Response(
            202,
            None,
            {
                "Location": request.url_for(f"{base}/operationResults/{operation_id}"),
                "Azure-AsyncOperation": request.url_for(f"{base}/operations/{operation_id}"),
                "Retry-After": retry,
            },
        )


def _ids(request: Request, name: str) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p[name]
