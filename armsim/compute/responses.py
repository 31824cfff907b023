"""Routes of Microsoft.Compute: virtual machines, their instance view and power, managed disks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armsim.compute.models import NEVER
from armsim.core.errors import ArmError
from armsim.core.http import Request, Response, Router
from armsim.core.operations import operations
from armsim.core.paging import paged

if TYPE_CHECKING:
    from armsim.compute.models import ComputeBackend

COMPUTE_API = (
    "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01",
    "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01",
)  # fmt: skip
DISKS_API = ("2023-04-02", "2023-10-02", "2024-03-02", "2025-01-02", "2026-03-02")
VM = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{vmName}"
DISK = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/disks/{diskName}"
VM_TYPE = "Microsoft.Compute/virtualMachines"


def register(router: Router, backend: ComputeBackend) -> None:
    world = backend.world

    def ids(request: Request) -> tuple[str, str, str]:
        p = request.params
        return p["subscriptionId"], p["resourceGroupName"], p["vmName"]

    def async_headers(request: Request, location: str, operation_id: str) -> dict[str, str]:
        op = operations(world).get(operation_id)
        assert op is not None
        status = request.url_for(
            f"/subscriptions/{request.params['subscriptionId']}/providers/Microsoft.Compute/locations/{location}/operations/{operation_id}"
        )
        return {"Azure-AsyncOperation": status, "Retry-After": op.retry_after(world.now())}

    @router.add("PUT", VM, "VirtualMachines_CreateOrUpdate", COMPUTE_API, VM_TYPE)
    def put_vm(request: Request) -> Response:
        record, created = backend.put_vm(*ids(request), request.json())
        op = operations(world).get(record["sim"]["operation"])
        if created and op is not None:  # the agent reports a while after the VM is created (recorded)
            if "bootSeconds" in record["sim"]:  # made from restored disks: the guest boots first
                boot = record["sim"]["bootSeconds"]
                record["sim"]["agentReadyAt"] = NEVER if boot is None else op.done_at + float(boot)
            else:
                record["sim"]["agentReadyAt"] = op.done_at + float(world.config["agentReadySeconds"])
        headers = async_headers(request, record["model"]["location"], record["sim"]["operation"])
        return Response(201 if created else 200, backend.view(record), headers)

    @router.add("GET", VM, "VirtualMachines_Get", COMPUTE_API, VM_TYPE)
    def get_vm(request: Request) -> Response:
        expand = request.query.get("$expand", "")
        if expand and expand.lower() not in ("instanceview", "userdata", "resiliencypolicy"):
            raise ArmError(
                400, "InvalidParameter", f"The value '{expand}' of parameter '$expand' is not valid."
            )
        record = backend.get_vm(*ids(request))
        return Response(200, backend.view(record, instance_view=expand.lower() == "instanceview"))

    @router.add("PATCH", VM, "VirtualMachines_Update", COMPUTE_API, VM_TYPE)
    def patch_vm(request: Request) -> Response:
        return Response(200, backend.view(backend.patch_vm(*ids(request), request.json())))

    @router.add("DELETE", VM, "VirtualMachines_Delete", COMPUTE_API, VM_TYPE)
    def delete_vm(request: Request) -> Response:
        record = backend.get_vm(*ids(request))
        location = record["model"]["location"]
        operation_id = backend.delete_vm(*ids(request))
        headers = async_headers(request, location, operation_id)
        headers["Location"] = headers["Azure-AsyncOperation"] + "&monitor=true"
        return Response(202, None, headers)

    @router.add("GET", VM + "/instanceView", "VirtualMachines_InstanceView", COMPUTE_API, VM_TYPE)
    def instance_view(request: Request) -> Response:
        return Response(200, backend.instance_view(backend.get_vm(*ids(request))))

    def power(action: str, state: str) -> None:
        @router.add(
            "POST", f"{VM}/{action}", f"VirtualMachines_{action[0].upper()}{action[1:]}", COMPUTE_API, VM_TYPE
        )
        def change_power(request: Request) -> Response:
            record = backend.get_vm(*ids(request))
            operation_id = backend.set_power(record, state)
            headers = async_headers(request, record["model"]["location"], operation_id)
            headers["Location"] = headers["Azure-AsyncOperation"] + "&monitor=true"
            return Response(202, None, headers)

    power("start", "running")
    power("powerOff", "stopped")
    power("deallocate", "deallocated")
    power("restart", "running")

    @router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/operations/{operationId}",
        "VirtualMachines_OperationStatus",
        COMPUTE_API + DISKS_API,  # disk deletes are polled here too, with the disks' api-version
        VM_TYPE,
    )
    def operation_status(request: Request) -> Response:
        op = operations(world).get(request.params["operationId"])
        if op is None:
            raise ArmError(404, "NotFound", f"The operation '{request.params['operationId']}' was not found.")
        now = world.now()
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

    @router.add("GET", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_List", COMPUTE_API, VM_TYPE)  # fmt: skip
    def list_vms(request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        backend.resources.require_group(sub, group)
        _refuse_filter(request)
        return paged(
            request, backend.list_vms(sub, group), world.config["pageSize"]["virtualMachines"], backend.view
        )

    @router.add("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/virtualMachines", "VirtualMachines_ListAll", COMPUTE_API, VM_TYPE)  # fmt: skip
    def list_all(request: Request) -> Response:
        sub = request.params["subscriptionId"]
        backend.resources.require_subscription(sub)
        _refuse_filter(request)
        status_only = request.query.get("statusonly", "").lower() == "true"
        return paged(
            request,
            backend.list_vms(sub),
            world.config["pageSize"]["virtualMachines"],
            lambda record: backend.view(record, instance_view=status_only),
        )

    @router.add("PUT", DISK, "Disks_CreateOrUpdate", DISKS_API, "Microsoft.Compute/disks")
    def put_disk(request: Request) -> Response:
        p = request.params
        disk, _ = backend.put_disk(p["subscriptionId"], p["resourceGroupName"], p["diskName"], request.json())
        return Response(200, backend.disk_view(disk))

    @router.add("GET", DISK, "Disks_Get", DISKS_API, "Microsoft.Compute/disks")
    def get_disk(request: Request) -> Response:
        p = request.params
        disk = backend.get_disk(p["subscriptionId"], p["resourceGroupName"], p["diskName"])
        return Response(200, backend.disk_view(disk))

    @router.add("DELETE", DISK, "Disks_Delete", DISKS_API, "Microsoft.Compute/disks")
    def delete_disk(request: Request) -> Response:
        """202 with a Location to poll (`...&monitor=true`), as the official Disk_Delete example; 204 when
        there is no such disk."""
        p = request.params
        operation_id = backend.delete_disk(p["subscriptionId"], p["resourceGroupName"], p["diskName"])
        if operation_id is None:
            return Response(204)
        op = operations(world).get(operation_id)
        assert op is not None
        location = request.url_for(
            f"/subscriptions/{p['subscriptionId']}/providers/Microsoft.Compute/locations/"
            f"{op.extra['location']}/operations/{operation_id}",
            monitor="true",
        )
        return Response(202, None, {"Location": location})

    @router.add(
        "GET",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/disks",
        "Disks_ListByResourceGroup",
        DISKS_API,
        "Microsoft.Compute/disks",
    )
    def list_disks_in_group(request: Request) -> Response:
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        backend.resources.require_group(sub, group)
        attached = backend.attachments()
        return paged(
            request,
            backend.list_disks(sub, group),
            world.config["pageSize"]["disks"],
            lambda disk: backend.disk_view(disk, attached),
        )

    @router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/disks",
        "Disks_List",
        DISKS_API,
        "Microsoft.Compute/disks",
    )
    def list_disks(request: Request) -> Response:
        sub = request.params["subscriptionId"]
        backend.resources.require_subscription(sub)
        attached = backend.attachments()
        return paged(
            request,
            backend.list_disks(sub),
            world.config["pageSize"]["disks"],
            lambda disk: backend.disk_view(disk, attached),
        )


def _refuse_filter(request: Request) -> None:
    if request.query.get("$filter"):
        raise ArmError(501, "NotImplemented", "armsim does not simulate $filter on virtual machine lists.")
