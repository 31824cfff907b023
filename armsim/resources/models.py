"""Subscriptions and resource groups: where every other resource lives."""

from __future__ import annotations

from typing import Any

from armsim.core.errors import Conflict, NotFound, resource_group_not_found
from armsim.core.http import Router
from armsim.core.world import Provider

SANDBOX_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
TENANT = "72f988bf-0000-4000-8000-00000000a7e5"


class ResourcesBackend(Provider):
    name = "resources"

    def reset(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.add_subscription(SANDBOX_SUBSCRIPTION, "armsim sandbox")

    def register(self, router: Router) -> None:
        from armsim.resources.responses import ROUTES, ResourcesResponses

        router.mount(ResourcesResponses(self), ROUTES)

    # -- subscriptions ---------------------------------------------------------------------
    def add_subscription(self, subscription_id: str, display_name: str = "") -> dict[str, Any]:
        key = subscription_id.lower()
        sub = self.subscriptions.get(key)
        if sub is None:
            sub = {
                "id": f"/subscriptions/{subscription_id}",
                "subscriptionId": subscription_id,
                "tenantId": TENANT,
                "displayName": display_name or f"armsim {subscription_id[:8]}",
                "state": "Enabled",
                "subscriptionPolicies": {
                    "locationPlacementId": "Public_2014-09-01",
                    "quotaId": "PayAsYouGo_2014-09-01",
                    "spendingLimit": "Off",
                },
                "authorizationSource": "RoleBased",
            }
            self.subscriptions[key] = sub
        return sub

    def require_subscription(self, subscription_id: str) -> dict[str, Any]:
        sub = self.subscriptions.get(subscription_id.lower())
        if sub is None:
            raise NotFound(
                "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
            )
        return sub

    # -- resource groups -------------------------------------------------------------------
    def group(self, subscription_id: str, name: str) -> dict[str, Any] | None:
        return self.groups.get((subscription_id.lower(), name.lower()))

    def require_group(self, subscription_id: str, name: str) -> dict[str, Any]:
        self.require_subscription(subscription_id)
        group = self.group(subscription_id, name)
        if group is None:
            raise resource_group_not_found(name)
        return group

    def put_group(
        self, subscription_id: str, name: str, location: str, tags: dict[str, str] | None
    ) -> tuple[dict[str, Any], bool]:
        sub = self.require_subscription(subscription_id)
        existing = self.group(subscription_id, name)
        if existing is not None:
            if existing["location"] != location:
                raise Conflict(
                    "InvalidResourceGroupLocation",
                    f"Invalid resource group location '{location}'. The Resource group already exists in "
                    f"location '{existing['location']}'.",
                )
            existing["tags"] = dict(tags or {})
            return existing, False
        group = {
            "id": f"{sub['id']}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": dict(tags or {}),
            "properties": {"provisioningState": "Succeeded"},
        }
        self.groups[(subscription_id.lower(), name.lower())] = group
        return group, True

    def delete_group(self, subscription_id: str, name: str) -> None:
        self.require_group(subscription_id, name)
        # Refuse before anything is deleted, so a refusal leaves the group whole.
        for provider in self.world.providers.values():
            check = getattr(provider, "check_group_deletable", None)
            if check is not None:
                check(subscription_id, name)
        for provider in self.world.providers.values():
            delete_in_group = getattr(provider, "delete_in_group", None)
            if delete_in_group is not None:
                delete_in_group(subscription_id, name)
        del self.groups[(subscription_id.lower(), name.lower())]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subscriptions": list(self.subscriptions.values()),
            "groups": [[k[0], k[1], v] for k, v in self.groups.items()],
        }

    def load(self, data: dict[str, Any]) -> None:
        self.subscriptions = {s["subscriptionId"].lower(): s for s in data.get("subscriptions", [])}
        self.groups = {(sub, name): group for sub, name, group in data.get("groups", [])}


def normalize_location(location: str) -> str:
    """ARM stores 'West Europe' as 'westeurope'."""
    return location.replace(" ", "").lower()
