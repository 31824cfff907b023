"""Routes of Microsoft.Compute: virtual machines, their instance view and power, managed disks."""

from __future__ import annotations

from typing import Any

from armsim.compute.models import NEVER, ComputeBackend
from armsim.core.errors import BadRequest, NotFound, NotImplementedOnArmsim
from armsim.core.http import Endpoint, Request, Response
from armsim.core.operations import operations
from armsim.core.paging import paged
from armsim.core.responses import Responses
from armsim.resources.models import ResourcesBackend

COMPUTE_API = (
    "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01",
    "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01",
)  # fmt: skip
DISKS_API = ("2023-04-02", "2023-10-02", "2024-03-02", "2025-01-02", "2026-03-02")
SUB = "/subscriptions/{subscriptionId}"
GROUP = SUB + "/resourceGroups/{resourceGroupName}"
VM = GROUP + "/providers/Microsoft.Compute/virtualMachines/{vmName}"
DISK = GROUP + "/providers/Microsoft.Compute/disks/{diskName}"
OPERATION = SUB + "/providers/Microsoft.Compute/locations/{location}/operations/{operationId}"
VM_TYPE = "Microsoft.Compute/virtualMachines"
DISK_TYPE = "Microsoft.Compute/disks"


def _vm(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, COMPUTE_API, VM_TYPE)


def _disk(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, DISKS_API, DISK_TYPE)


ROUTES = (
    _vm("PUT", VM, "VirtualMachines_CreateOrUpdate", "put_vm"),
    _vm("GET", VM, "VirtualMachines_Get", "get_vm"),
    _vm("PATCH", VM, "VirtualMachines_Update", "patch_vm"),
    _vm("DELETE", VM, "VirtualMachines_Delete", "delete_vm"),
    _vm("GET", VM + "/instanceView", "VirtualMachines_InstanceView", "instance_view"),
    _vm("POST", VM + "/start", "VirtualMachines_Start", "start"),
    _vm("POST", VM + "/powerOff", "VirtualMachines_PowerOff", "power_off"),
    _vm("POST", VM + "/deallocate", "VirtualMachines_Deallocate", "deallocate"),
    _vm("POST", VM + "/restart", "VirtualMachines_Restart", "restart"),
    # Disk deletes are polled here too, with the disks' api-version.
    Endpoint("GET", OPERATION, "VirtualMachines_OperationStatus", "operation_status", COMPUTE_API + DISKS_API, VM_TYPE),
    _vm("GET", GROUP + "/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_List", "list_vms"),
    _vm("GET", SUB + "/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_ListAll", "list_all_vms"),
    _disk("PUT", DISK, "Disks_CreateOrUpdate", "put_disk"),
    _disk("GET", DISK, "Disks_Get", "get_disk"),
    _disk("DELETE", DISK, "Disks_Delete", "delete_disk"),
    _disk("GET", GROUP + "/providers/Microsoft.Compute/disks", "Disks_ListByResourceGroup", "list_disks_in_group"),
    _disk("GET", SUB + "/providers/Microsoft.Compute/disks", "Disks_List", "list_disks"),
)  # fmt: skip


class ComputeResponses(Responses[ComputeBackend]):
    # -- virtual machines -----------------------------------------------------------------------
    def put_vm(self, request: Request) -> Response:
        backend = self.backend
        record, created = backend.put_vm(*_vm_ids(request), request.json())
        op = operations(self.world).get(record["sim"]["operation"])
        if created and op is not None:  # the agent reports a while after the VM is created (recorded)
            if "bootSeconds" in record["sim"]:  # made from restored disks: the guest boots first
                boot = record["sim"]["bootSeconds"]
                record["sim"]["agentReadyAt"] = NEVER if boot is None else op.done_at + float(boot)
            else:
                record["sim"]["agentReadyAt"] = op.done_at + float(self.world.config["agentReadySeconds"])
        headers = self._async_headers(request, record["model"]["location"], record["sim"]["operation"])
        return Response(201 if created else 200, backend.view(record), headers)

    def get_vm(self, request: Request) -> Response:
        expand = request.query.get("$expand", "")
        if expand and expand.lower() not in ("instanceview", "userdata", "resiliencypolicy"):
            raise BadRequest("InvalidParameter", f"The value '{expand}' of parameter '$expand' is not valid.")
        record = self.backend.get_vm(*_vm_ids(request))
        return Response(200, self.backend.view(record, instance_view=expand.lower() == "instanceview"))

    def patch_vm(self, request: Request) -> Response:
        backend = self.backend
        return Response(200, backend.view(backend.patch_vm(*_vm_ids(request), request.json())))

    def delete_vm(self, request: Request) -> Response:
        record = self.backend.get_vm(*_vm_ids(request))
        location = record["model"]["location"]
        operation_id = self.backend.delete_vm(*_vm_ids(request))
        headers = self._async_headers(request, location, operation_id)
        headers["Location"] = headers["Azure-AsyncOperation"] + "&monitor=true"
        return Response(202, None, headers)

    def instance_view(self, request: Request) -> Response:
        return Response(200, self.backend.instance_view(self.backend.get_vm(*_vm_ids(request))))

    def start(self, request: Request) -> Response:
        return self._power(request, "running")

    def power_off(self, request: Request) -> Response:
        return self._power(request, "stopped")

    def deallocate(self, request: Request) -> Response:
        return self._power(request, "deallocated")

    def restart(self, request: Request) -> Response:
        return self._power(request, "running")

    def operation_status(self, request: Request) -> Response:
        op = operations(self.world).get(request.params["operationId"])
        if op is None:
            raise NotFound("NotFound", f"The operation '{request.params['operationId']}' was not found.")
        now = self.world.now()
        if request.query.get("monitor") == "true":
            # The Location URL of a delete or power action: 202 until done, then 200 with no body.
            if not op.finished(now):
                return Response(
                    202,
                    None,
                    {
                        "Location": request.url_for(request.path, monitor="true"),
                        "Retry-After": op.retry_after(now),
                    },
                )
            return Response(200)
        headers = {} if op.finished(now) else {"Retry-After": op.retry_after(now)}
        return Response(200, op.status_body(now), headers)

    def list_vms(self, request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        self.world.backend(ResourcesBackend).require_group(sub, group)
        _refuse_filter(request)
        return paged(
            request,
            self.backend.list_vms(sub, group),
            self.world.config["pageSize"]["virtualMachines"],
            self.backend.view,
        )

    def list_all_vms(self, request: Request) -> Response:
        backend = self.backend
        sub = request.params["subscriptionId"]
        self.world.backend(ResourcesBackend).require_subscription(sub)
        _refuse_filter(request)
        status_only = request.query.get("statusonly", "").lower() == "true"
        return paged(
            request,
            backend.list_vms(sub),
            self.world.config["pageSize"]["virtualMachines"],
            lambda record: backend.view(record, instance_view=status_only),
        )

    # -- managed disks --------------------------------------------------------------------------
    def put_disk(self, request: Request) -> Response:
        disk, _ = self.backend.put_disk(*_disk_ids(request), request.json())
        return Response(200, self.backend.disk_view(disk))

    def get_disk(self, request: Request) -> Response:
        return Response(200, self.backend.disk_view(self.backend.get_disk(*_disk_ids(request))))

    def delete_disk(self, request: Request) -> Response:
        """202 with a Location to poll (`...&monitor=true`), as the official Disk_Delete example; 204 when
        there is no such disk."""
        operation_id = self.backend.delete_disk(*_disk_ids(request))
        if operation_id is None:
            return Response(204)
        op = operations(self.world).get(operation_id)
        assert op is not None
        location = request.url_for(
            f"/subscriptions/{request.params['subscriptionId']}/providers/Microsoft.Compute/locations/"
            f"{op.extra['location']}/operations/{operation_id}",
            monitor="true",
        )
        return Response(202, None, {"Location": location})

    def list_disks_in_group(self, request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        self.world.backend(ResourcesBackend).require_group(sub, group)
        return self._disk_page(request, self.backend.list_disks(sub, group))

    def list_disks(self, request: Request) -> Response:
        sub = request.params["subscriptionId"]
        self.world.backend(ResourcesBackend).require_subscription(sub)
        return self._disk_page(request, self.backend.list_disks(sub))

    # -- shared by several operations -----------------------------------------------------------
    def _disk_page(self, request: Request, disks: list[dict[str, Any]]) -> Response:
        backend = self.backend
        attached = backend.attachments()
        return paged(
            request,
            disks,
            self.world.config["pageSize"]["disks"],
            lambda disk: backend.disk_view(disk, attached),
        )

    def _power(self, request: Request, state: str) -> Response:
        record = self.backend.get_vm(*_vm_ids(request))
        operation_id = self.backend.set_power(record, state)
        headers = self._async_headers(request, record["model"]["location"], operation_id)
        headers["Location"] = headers["Azure-AsyncOperation"] + "&monitor=true"
        return Response(202, None, headers)

    def _async_headers(self, request: Request, location: str, operation_id: str) -> dict[str, str]:
        op = operations(self.world).get(operation_id)
        assert op is not None
        status = request.url_for(
            f"/subscriptions/{request.params['subscriptionId']}/providers/Microsoft.Compute/locations/{location}/operations/{operation_id}"
        )
        return {"Azure-AsyncOperation": status, "Retry-After": op.retry_after(self.world.now())}


def _vm_ids(request: Request) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p["vmName"]


def _disk_ids(request: Request) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p["diskName"]


def _refuse_filter(request: Request) -> None:
    if request.query.get("$filter"):
        raise NotImplementedOnArmsim("armsim does not simulate $filter on virtual machine lists.")
