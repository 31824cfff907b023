"""Routes of Microsoft.Resources: the subscription list and resource groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armsim.core.errors import ArmError
from armsim.core.http import Request, Response, Router
from armsim.core.operations import operations
from armsim.core.paging import paged
from armsim.resources.models import normalize_location

if TYPE_CHECKING:
    from armsim.resources.models import ResourcesBackend

RESOURCES_API = (
    "2019-10-01", "2020-06-01", "2021-01-01", "2021-04-01", "2022-09-01", "2023-07-01",
    "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01",
)  # fmt: skip
SUBSCRIPTIONS_API = ("2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01", "2024-11-01")
GROUP = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
RG_TYPE = "Microsoft.Resources/resourceGroups"


def register(router: Router, backend: ResourcesBackend) -> None:
    @router.add("GET", "/subscriptions", "Subscriptions_List", SUBSCRIPTIONS_API, "subscriptions")
    def list_subscriptions(request: Request) -> Response:
        return paged(request, list(backend.subscriptions.values()), 1000)

    @router.add(
        "GET", "/subscriptions/{subscriptionId}", "Subscriptions_Get", SUBSCRIPTIONS_API, "subscriptions"
    )
    def get_subscription(request: Request) -> Response:
        return Response(200, backend.require_subscription(request.params["subscriptionId"]))

    @router.add("PUT", GROUP, "ResourceGroups_CreateOrUpdate", RESOURCES_API, RG_TYPE)
    def put_group(request: Request) -> Response:
        body = request.json()
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict):
            raise ArmError(400, "InvalidRequestContent", "The 'tags' property must be an object.")
        group, created = backend.put_group(
            request.params["subscriptionId"],
            request.params["resourceGroupName"],
            normalize_location(location),
            tags,
        )
        return Response(201 if created else 200, group)

    @router.add("GET", GROUP, "ResourceGroups_Get", RESOURCES_API, RG_TYPE)
    def get_group(request: Request) -> Response:
        return Response(
            200, backend.require_group(request.params["subscriptionId"], request.params["resourceGroupName"])
        )

    @router.add("HEAD", GROUP, "ResourceGroups_CheckExistence", RESOURCES_API, RG_TYPE)
    def head_group(request: Request) -> Response:
        backend.require_subscription(request.params["subscriptionId"])
        found = backend.group(request.params["subscriptionId"], request.params["resourceGroupName"])
        return Response(204 if found else 404)

    @router.add("DELETE", GROUP, "ResourceGroups_Delete", RESOURCES_API, RG_TYPE)
    def delete_group(request: Request) -> Response:
        sub, name = request.params["subscriptionId"], request.params["resourceGroupName"]
        backend.require_group(sub, name)
        backend.delete_group(sub, name)
        op = operations(backend.world).begin(
            "ResourceGroupDelete", resource_id=f"/subscriptions/{sub}/resourceGroups/{name}"
        )
        location = request.url_for(f"/subscriptions/{sub}/operationresults/{op.id}")
        return Response(202, None, {"Location": location, "Retry-After": op.retry_after(backend.world.now())})

    @router.add(
        "GET", "/subscriptions/{subscriptionId}/operationresults/{operationId}", "ResourceGroups_OperationResults",
        RESOURCES_API, RG_TYPE,
    )  # fmt: skip
    def group_operation(request: Request) -> Response:
        op = operations(backend.world).get(request.params["operationId"])
        now = backend.world.now()
        if op is None:
            raise ArmError(
                404, "OperationNotFound", f"The operation '{request.params['operationId']}' was not found."
            )
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(200)

    @router.add(
        "GET", "/subscriptions/{subscriptionId}/resourcegroups", "ResourceGroups_List", RESOURCES_API, RG_TYPE
    )
    def list_groups(request: Request) -> Response:
        sub = request.params["subscriptionId"]
        backend.require_subscription(sub)
        groups = [g for (s, _), g in sorted(backend.groups.items()) if s == sub.lower()]
        return paged(request, groups, backend.world.config["pageSize"]["resourceGroups"])
