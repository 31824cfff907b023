"""Routes of Microsoft.Resources: the subscription list and resource groups."""

from __future__ import annotations

from armsim.core.errors import BadRequest, InvalidRequestContent, NotFound
from armsim.core.http import Endpoint, Request, Response
from armsim.core.operations import operations
from armsim.core.paging import paged
from armsim.core.responses import Responses
from armsim.resources.models import ResourcesBackend, normalize_location

RESOURCES_API = (
    "2019-10-01", "2020-06-01", "2021-01-01", "2021-04-01", "2022-09-01", "2023-07-01",
    "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01",
)  # fmt: skip
SUBSCRIPTIONS_API = ("2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01", "2024-11-01")
GROUP = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
RG_TYPE = "Microsoft.Resources/resourceGroups"


def _group(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, RESOURCES_API, RG_TYPE)


ROUTES = (
    Endpoint("GET", "/subscriptions", "Subscriptions_List", "list_subscriptions", SUBSCRIPTIONS_API, "subscriptions"),
    Endpoint("GET", "/subscriptions/{subscriptionId}", "Subscriptions_Get", "get_subscription", SUBSCRIPTIONS_API, "subscriptions"),
    _group("PUT", GROUP, "ResourceGroups_CreateOrUpdate", "put_group"),
    _group("GET", GROUP, "ResourceGroups_Get", "get_group"),
    _group("HEAD", GROUP, "ResourceGroups_CheckExistence", "check_group"),
    _group("DELETE", GROUP, "ResourceGroups_Delete", "delete_group"),
    _group("GET", "/subscriptions/{subscriptionId}/operationresults/{operationId}", "ResourceGroups_OperationResults", "group_operation_result"),
    _group("GET", "/subscriptions/{subscriptionId}/resourcegroups", "ResourceGroups_List", "list_groups"),
)  # fmt: skip


class ResourcesResponses(Responses[ResourcesBackend]):
    def list_subscriptions(self, request: Request) -> Response:
        return paged(request, list(self.backend.subscriptions.values()), 1000)

    def get_subscription(self, request: Request) -> Response:
        return Response(200, self.backend.require_subscription(request.params["subscriptionId"]))

    def put_group(self, request: Request) -> Response:
        body = request.json()
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("LocationRequired", "The location property is required for this definition.")
        tags = body.get("tags") or {}
        if not isinstance(tags, dict):
            raise InvalidRequestContent("The 'tags' property must be an object.")
        group, created = self.backend.put_group(
            request.params["subscriptionId"],
            request.params["resourceGroupName"],
            normalize_location(location),
            tags,
        )
        return Response(201 if created else 200, group)

    def get_group(self, request: Request) -> Response:
        return Response(
            200,
            self.backend.require_group(request.params["subscriptionId"], request.params["resourceGroupName"]),
        )

    def check_group(self, request: Request) -> Response:
        self.backend.require_subscription(request.params["subscriptionId"])
        found = self.backend.group(request.params["subscriptionId"], request.params["resourceGroupName"])
        return Response(204 if found else 404)

    def delete_group(self, request: Request) -> Response:
        sub, name = request.params["subscriptionId"], request.params["resourceGroupName"]
        self.backend.require_group(sub, name)
        self.backend.delete_group(sub, name)
        op = operations(self.world).begin(
            "ResourceGroupDelete", resource_id=f"/subscriptions/{sub}/resourceGroups/{name}"
        )
        location = request.url_for(f"/subscriptions/{sub}/operationresults/{op.id}")
        return Response(202, None, {"Location": location, "Retry-After": op.retry_after(self.world.now())})

    def group_operation_result(self, request: Request) -> Response:
        op = operations(self.world).get(request.params["operationId"])
        now = self.world.now()
        if op is None:
            raise NotFound(
                "OperationNotFound", f"The operation '{request.params['operationId']}' was not found."
            )
        if not op.finished(now):
            return Response(
                202, None, {"Location": request.url_for(request.path), "Retry-After": op.retry_after(now)}
            )
        return Response(200)

    def list_groups(self, request: Request) -> Response:
        sub = request.params["subscriptionId"]
        self.backend.require_subscription(sub)
        groups = [g for (s, _), g in sorted(self.backend.groups.items()) if s == sub.lower()]
        return paged(request, groups, self.world.config["pageSize"]["resourceGroups"])
