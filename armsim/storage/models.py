"""Microsoft.Storage storage accounts, as far as a restore of a VM's disks needs them: the staging
account (its region, SKU and kind, which Azure Backup checks), its keys, and the blobs a restore
writes into it (the VM's configuration and the template to create a VM from the restored disks).

Blobs are kept in armsim's state and served by a minimal Blob data plane (armsim/storage/responses.py)
at `{armsim}/{account}.blob/{container}/{blob}`; the account's `primaryEndpoints.blob` points there,
so a restore job's "Config Blob Uri" can be read with azure-storage-blob as in Azure.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from armsim.core.clock import iso
from armsim.core.errors import BadRequest, Conflict, InvalidRequestContent, resource_not_found
from armsim.core.http import Router
from armsim.core.world import Provider
from armsim.resources.models import ResourcesBackend, normalize_location

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
SKUS = (
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_ZRS",
    "Premium_LRS",
    "Premium_ZRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
)
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
# Regions that have a geo pair, for secondaryLocation of geo-redundant accounts (Azure's documented
# region pairs, the ones the tests and the product use; others answer no secondary).
PAIRS = {
    "westeurope": "northeurope",
    "northeurope": "westeurope",
    "eastus": "westus",
    "westus": "eastus",
    "eastus2": "centralus",
    "centralus": "eastus2",
    "southeastasia": "eastasia",
    "eastasia": "southeastasia",
    "uksouth": "ukwest",
    "ukwest": "uksouth",
}


def account_id(subscription_id: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{ACCOUNT_TYPE}/{name}"


class StorageBackend(Provider):
    name = "storage"

    def reset(self) -> None:
        # lower-case id -> {"model": ARM JSON without endpoints, "keys": [..], "containers": {name: {...}}}
        self.accounts: dict[str, dict[str, Any]] = {}

    def register(self, router: Router) -> None:
        from armsim.storage.responses import ROUTES, StorageResponses

        router.mount(StorageResponses(self), ROUTES)

    # -- accounts ----------------------------------------------------------------------------
    def put(
        self, subscription_id: str, group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        if not ACCOUNT_NAME.match(name):
            raise BadRequest(
                "AccountNameInvalid",
                f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
                "characters in length and use numbers and lower-case letters only.",
            )
        key = account_id(subscription_id, group, name).lower()
        existing = self.accounts.get(key)
        if existing is None and self.find_by_name(name) is not None:
            raise Conflict(
                "StorageAccountAlreadyTaken",
                f"The storage account named {name} is already taken.",
            )
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("LocationRequired", "The location property is required for this definition.")
        location = normalize_location(location)
        if existing is not None and existing["model"]["location"] != location:
            raise Conflict(
                "InvalidResourceLocation",
                f"The resource '{name}' already exists in location '{existing['model']['location']}'.",
            )
        sku = (body.get("sku") or {}).get("name") if isinstance(body.get("sku"), dict) else None
        if sku not in SKUS:
            raise BadRequest(
                "InvalidRequestContent" if sku is None else "SkuNotSupported",
                f"The sku '{sku}' is not valid; use one of {', '.join(SKUS)}.",
            )
        kind = body.get("kind")
        if kind not in KINDS:
            raise InvalidRequestContent(f"The kind '{kind}' is not valid; use one of {', '.join(KINDS)}.")
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRequestContent("The 'properties' must be an object.")
        created = (existing or {}).get("model", {}).get("properties", {}).get("creationTime") or iso(
            self.world.clock.now()
        )
        kept = {
            k: copy.deepcopy(v)
            for k, v in props.items()
            if k
            in (
                "allowBlobPublicAccess",
                "minimumTlsVersion",
                "allowSharedKeyAccess",
                "supportsHttpsTrafficOnly",
            )
        }
        model = {
            "id": account_id(subscription_id, rg["name"], name),
            "name": name,
            "type": ACCOUNT_TYPE,
            "location": location,
            "tags": dict(body.get("tags") or {}),
            "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"},
            "kind": kind,
            "properties": {
                "creationTime": created,
                "keyCreationTime": {"key1": created, "key2": created},
                "encryption": {
                    "keySource": "Microsoft.Storage",
                    "services": {
                        "blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
                        "file": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
                    },
                },
                "networkAcls": {
                    "bypass": "AzureServices",
                    "defaultAction": "Allow",
                    "ipRules": [],
                    "virtualNetworkRules": [],
                },
                "provisioningState": "Succeeded",
                "primaryLocation": location,
                "statusOfPrimary": "available",
                "supportsHttpsTrafficOnly": True,
                "isHnsEnabled": False,
                "isSkuConversionBlocked": False,
                "accountMigrationInProgress": False,
                **kept,
            },
        }
        if "GRS" in sku and location in PAIRS:
            model["properties"]["secondaryLocation"] = PAIRS[location]
            model["properties"]["statusOfSecondary"] = "available"
        keys = (existing or {}).get("keys") or [secrets.token_urlsafe(48) for _ in range(2)]
        containers = (existing or {}).get("containers") or {}
        self.accounts[key] = {"model": model, "keys": keys, "containers": containers}
        return self.accounts[key], existing is None

    def get(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        record = self.accounts.get(account_id(subscription_id, group, name).lower())
        if record is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(ACCOUNT_TYPE, name, group)
        return record

    def find(self, resource_id: str) -> dict[str, Any] | None:
        return self.accounts.get(resource_id.lower())

    def find_by_name(self, name: str) -> dict[str, Any] | None:
        """Account names are global in Azure (they are DNS names)."""
        for record in self.accounts.values():
            if record["model"]["name"] == name.lower():
                return record
        return None

    def delete(self, subscription_id: str, group: str, name: str) -> bool:
        """True when the account existed (200), False when not (204), as Azure answers a delete."""
        self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        return self.accounts.pop(account_id(subscription_id, group, name).lower(), None) is not None

    def delete_in_group(self, subscription_id: str, group: str) -> None:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{group}/".lower()
        for key in [k for k in self.accounts if k.startswith(prefix)]:
            del self.accounts[key]

    def list(self, subscription_id: str, group: str | None = None) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/".lower()
        if group is not None:
            prefix += f"{group.lower()}/"
        return [r for k, r in sorted(self.accounts.items()) if k.startswith(prefix)]

    def view(self, record: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The account as Azure answers it; its endpoints are armsim's (path style, as Azurite's)."""
        model = copy.deepcopy(record["model"])
        model["properties"]["primaryEndpoints"] = {
            service: f"{base_url}/{model['name']}.{service}/"
            for service in ("blob", "queue", "table", "file", "dfs", "web")
        }
        return model

    def keys_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """As recorded (test_backup_restore #298): keyName, value, permissions."""
        return {
            "keys": [
                {"keyName": f"key{i}", "value": value, "permissions": "FULL"}
                for i, value in enumerate(record["keys"], start=1)
            ]
        }

    # -- blobs ------------------------------------------------------------------------------
    def put_blob(
        self, record: dict[str, Any], container: str, name: str, content: bytes, content_type: str
    ) -> None:
        """A blob written by Azure itself (a restore's configuration and template)."""
        now = self.world.now()
        box = record["containers"].setdefault(container, {"created": now, "blobs": {}})
        box["blobs"][name] = {
            "content": content.decode("utf-8"),
            "contentType": content_type,
            "created": now,
            "etag": f'"0x{hashlib.sha256(content).hexdigest()[:15].upper()}"',
        }

    def blob(self, account: str, container: str, name: str) -> dict[str, Any] | None:
        record = self.find_by_name(account)
        if record is None:
            return None
        box = record["containers"].get(container)
        return None if box is None else box["blobs"].get(name)

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"accounts": self.accounts}

    def load(self, data: dict[str, Any]) -> None:
        self.accounts = data.get("accounts", {})


def http_date(ts: float) -> str:
    """RFC 1123, as Blob storage writes Last-Modified."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
