"""Microsoft.RecoveryServices vaults: naming rules, storage redundancy and its lock."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from armsim.core.clock import iso
from armsim.core.errors import (
    ArmError,
    BadRequest,
    Conflict,
    InvalidBackupInput,
    InvalidRequestContent,
    resource_not_found,
)
from armsim.core.http import Router
from armsim.core.limits import active
from armsim.core.world import Provider
from armsim.resources.models import ResourcesBackend, normalize_location
from armsim.vaults import security as posture

VAULT_TYPE = "Microsoft.RecoveryServices/vaults"
VAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
REDUNDANCY = ("GeoRedundant", "LocallyRedundant", "ZoneRedundant")


def vault_id(subscription_id: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{group}/providers/{VAULT_TYPE}/{name}"


def check_vault_name(name: str) -> None:
    """The seed's rule: 2 to 50 characters, starting with a letter, only letters, digits and hyphens."""
    if not VAULT_NAME.match(name):
        raise BadRequest(
            "InvalidRestApiParameter",
            f"resourceName parameter is invalid. Please provide a valid resourceName: '{name}' must be 2 to 50 "
            "characters long, start with a letter, and contain only letters, numbers and hyphens.",
        )


class VaultsBackend(Provider):
    name = "vaults"

    def reset(self) -> None:
        self.vaults: dict[str, dict[str, Any]] = {}  # lower-case id -> {"model", "storage"}

    def register(self, router: Router) -> None:
        from armsim.vaults.responses import ROUTES, VaultsResponses

        router.mount(VaultsResponses(self), ROUTES)

    def get(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        record = self.vaults.get(vault_id(subscription_id, group, name).lower())
        if record is None:
            self.world.backend(ResourcesBackend).require_group(subscription_id, group)
            raise resource_not_found(VAULT_TYPE, name, group)
        return record

    def find(self, resource_id: str) -> dict[str, Any] | None:
        return self.vaults.get(resource_id.lower())

    def has_items(self, record: dict[str, Any]) -> bool:
        from armsim.backup.models import BackupBackend  # backup.models imports this module

        return bool(self.world.backend(BackupBackend).vault_item_count(record["model"]["id"]))

    def put(
        self, subscription_id: str, group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        check_vault_name(name)
        rg = self.world.backend(ResourcesBackend).require_group(subscription_id, group)
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise BadRequest("LocationRequired", "The location property is required for this definition.")
        location = normalize_location(location)
        key = vault_id(subscription_id, group, name).lower()
        existing = self.vaults.get(key)
        if existing is None:
            self._check_vault_count(subscription_id, location)
            for other in self.vaults.values():
                if other["model"]["name"].lower() == name.lower() and other["model"]["id"].lower().startswith(
                    f"/subscriptions/{subscription_id.lower()}/"
                ):
                    raise Conflict(
                        "VaultAlreadyExists",
                        f"A vault named '{name}' already exists in subscription '{subscription_id}'. "
                        "Vault names must be unique within a subscription.",
                    )
        elif existing["model"]["location"] != location:
            raise Conflict(
                "InvalidResourceLocation",
                f"The vault '{name}' already exists in location '{existing['model']['location']}'.",
            )
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRequestContent("The 'properties' of a vault must be an object.")
        redundancy = (props.get("redundancySettings") or {}).get("standardTierStorageRedundancy")
        storage = (
            copy.deepcopy(existing["storage"])
            if existing
            else {"storageType": "GeoRedundant", "crossRegionRestore": False}
        )
        if redundancy:
            self._set_redundancy(existing, storage, redundancy)
        _set_cross_region_restore(storage, (props.get("redundancySettings") or {}).get("crossRegionRestore"))
        model = copy.deepcopy(existing["model"]) if existing else {}
        identity = body.get("identity")
        if isinstance(identity, dict) and identity.get("type", "None") != "None":
            identity = {
                **identity,
                "principalId": (model.get("identity") or {}).get("principalId") or str(uuid.uuid4()),
                "tenantId": "72f988bf-0000-4000-8000-00000000a7e5",
            }
        model.update(
            {
                "id": vault_id(subscription_id, rg["name"], name),
                "name": name,
                "type": VAULT_TYPE,
                "location": location,
                "tags": dict(body.get("tags") or {}),
                "etag": f"W/\"datetime'{iso(self.world.clock.now())}'\"",
                "sku": {"name": "RS0", "tier": "Standard"},
            }
        )
        if identity:
            model["identity"] = identity
        settings = props.get("securitySettings")
        if existing is None:
            security = posture.initial(settings)
        else:
            # Soft delete is changed through backupconfig/vaultconfig: Azure answers a vault write that
            # changes softDeleteSettings with 200 and leaves them as they were (azure-rest-api-specs#34218,
            # azure-sdk-for-python#38347). Immutability is changed on the vault.
            security = dict(self.security(existing))
            immutability = (
                (settings or {}).get("immutabilitySettings") if isinstance(settings, dict) else None
            )
            if isinstance(immutability, dict) and immutability.get("state") is not None:
                posture.change_immutability(security, immutability["state"])
        _check_public_access(props)
        kept = {
            k: v
            for k, v in props.items()
            if k not in ("provisioningState", "redundancySettings", "securitySettings", "bcdrSecurityLevel")
        }
        model["properties"] = {
            **(model.get("properties") or {}),
            **kept,
            "provisioningState": "Succeeded",
        }
        if isinstance(settings, dict):
            model["properties"]["securitySettings"] = _extra_settings(settings)
        model["properties"].setdefault("securitySettings", {})
        model["properties"].setdefault("publicNetworkAccess", "Enabled")
        model["properties"].setdefault("privateEndpointStateForBackup", "None")
        model["properties"].setdefault("privateEndpointStateForSiteRecovery", "None")
        self.vaults[key] = {"model": model, "storage": storage, "security": security}
        return self.vaults[key], existing is None

    def security(self, record: dict[str, Any]) -> dict[str, Any]:
        """The vault's posture (armsim/vaults/security.py); a vault saved before it was kept gets it from
        the securitySettings it was written with."""
        if "security" not in record:
            settings = record["model"]["properties"].get("securitySettings") or {}
            try:
                record["security"] = posture.initial(settings)
            except ArmError:
                record["security"] = dict(posture.DEFAULT_SECURITY)
            record["model"]["properties"]["securitySettings"] = _extra_settings(settings)
        security: dict[str, Any] = record["security"]
        return security

    def multi_user_authorization(self, record: dict[str, Any]) -> bool:
        """A Resource Guard is associated with the vault (a backupResourceGuardProxies entry)."""
        from armsim.backup.models import BackupBackend  # backup.models imports this module

        return bool(self.world.backend(BackupBackend).guard_proxies_of(record["model"]["id"]))

    def set_soft_delete(self, record: dict[str, Any], properties: dict[str, Any]) -> None:
        """backupconfig/vaultconfig's PUT or PATCH: soft delete's state, enhanced security, retention."""
        posture.change_soft_delete(
            self.security(record),
            state=properties.get("softDeleteFeatureState"),
            days=properties.get("softDeleteRetentionPeriodInDays"),
            enhanced=properties.get("enhancedSecurityState"),
        )

    def vault_config(self, record: dict[str, Any]) -> dict[str, Any]:
        return posture.vault_config_view(record["model"]["id"], self.security(record))

    def _check_vault_count(self, subscription_id: str, location: str) -> None:
        """Refuse a new vault once the subscription has the most Azure allows in the region (500)."""
        limit = active(self.world.config, "vaultsPerSubscriptionRegion")
        if limit is None:
            return
        prefix = f"/subscriptions/{subscription_id.lower()}/"
        count = sum(
            1
            for key, record in self.vaults.items()
            if key.startswith(prefix) and record["model"]["location"] == location
        )
        if count >= limit["max"]:
            raise ArmError(
                int(limit["status"]),
                str(limit["code"]),
                f"Operation could not be completed as it results in exceeding the limit of {limit['max']} "
                f"Recovery Services vaults per subscription per region (subscription '{subscription_id}', "
                f"region '{location}', current: {count}). Create the vault in another subscription.",
            )

    def patch(self, subscription_id: str, group: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        record = self.get(subscription_id, group, name)
        props = body.get("properties") or {}
        redundancy = (props.get("redundancySettings") or {}).get("standardTierStorageRedundancy")
        storage = copy.deepcopy(record["storage"])
        if redundancy:
            self._set_redundancy(record, storage, redundancy)
        _set_cross_region_restore(storage, (props.get("redundancySettings") or {}).get("crossRegionRestore"))
        settings = props.get("securitySettings")
        immutability = settings.get("immutabilitySettings") if isinstance(settings, dict) else None
        if isinstance(immutability, dict) and immutability.get("state") is not None:
            # Validated before anything changes; soft delete is not changed here (see put).
            trial = dict(self.security(record))
            posture.change_immutability(trial, immutability["state"])
            record["security"] = trial
        _check_public_access(props)
        record["storage"] = storage
        if isinstance(body.get("tags"), dict):
            record["model"]["tags"] = dict(body["tags"])
        for key, value in props.items():
            if key == "securitySettings" and isinstance(value, dict):
                record["model"]["properties"]["securitySettings"] = {
                    **(record["model"]["properties"].get("securitySettings") or {}),
                    **_extra_settings(value),
                }
            elif key not in (
                "provisioningState",
                "redundancySettings",
                "securitySettings",
                "bcdrSecurityLevel",
            ):
                record["model"]["properties"][key] = value
        return record

    def _set_redundancy(
        self, record: dict[str, Any] | None, storage: dict[str, Any], redundancy: str
    ) -> None:
        if redundancy not in REDUNDANCY:
            raise InvalidBackupInput(
                f"Storage redundancy '{redundancy}' is not valid; use one of {', '.join(REDUNDANCY)}."
            )
        if record is not None and redundancy != storage["storageType"] and self.has_items(record):
            raise BadRequest(
                "StorageModelModifyError",
                "Storage Redundancy option is locked when the first machine is registered with the vault, and "
                "cannot be modified thereafter.",
            )
        storage["storageType"] = redundancy

    def storage_config(self, record: dict[str, Any]) -> dict[str, Any]:
        storage = record["storage"]
        return {
            "id": f"{record['model']['id']}/backupstorageconfig/vaultstorageconfig",
            "name": "vaultstorageconfig",
            "type": "Microsoft.RecoveryServices/vaults/backupstorageconfig",
            "properties": {
                "storageModelType": storage["storageType"],
                "storageType": storage["storageType"],
                "storageTypeState": "Locked" if self.has_items(record) else "Unlocked",
                "crossRegionRestoreFlag": bool(storage.get("crossRegionRestore")),
                "dedupState": "Disabled",
                "xcoolState": "Disabled",
            },
        }

    def set_storage_config(self, record: dict[str, Any], body: dict[str, Any]) -> None:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidRequestContent("The 'properties' must be an object.")
        wanted = props.get("storageType") or props.get("storageModelType")
        if wanted:
            self._set_redundancy(record, record["storage"], wanted)
        if "crossRegionRestoreFlag" in props:
            _set_cross_region_restore(
                record["storage"], "Enabled" if props["crossRegionRestoreFlag"] else "Disabled"
            )

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        model = copy.deepcopy(record["model"])
        security = self.security(record)
        mua = self.multi_user_authorization(record)
        model["properties"]["redundancySettings"] = {
            "standardTierStorageRedundancy": record["storage"]["storageType"],
            "crossRegionRestore": "Enabled" if record["storage"].get("crossRegionRestore") else "Disabled",
        }
        model["properties"]["securitySettings"] = posture.settings_view(
            security, mua, model["properties"].get("securitySettings")
        )
        model["properties"]["bcdrSecurityLevel"] = posture.level(security, mua)
        return model

    def delete(self, subscription_id: str, group: str, name: str) -> None:
        from armsim.backup.models import BackupBackend  # backup.models imports this module

        record = self.get(subscription_id, group, name)
        backup = self.world.backend(BackupBackend)
        backup.check_vault_deletable(record["model"]["id"])
        backup.forget_vault(record["model"]["id"])
        del self.vaults[record["model"]["id"].lower()]

    def check_group_deletable(self, subscription_id: str, group: str) -> None:
        from armsim.backup.models import BackupBackend  # backup.models imports this module

        backup = self.world.backend(BackupBackend)
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{group}/".lower()
        for key, record in self.vaults.items():
            if key.startswith(prefix):
                backup.check_vault_deletable(record["model"]["id"])

    def delete_in_group(self, subscription_id: str, group: str) -> None:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{group}/".lower()
        for key in [k for k in self.vaults if k.startswith(prefix)]:
            model = self.vaults[key]["model"]
            self.delete(subscription_id, group, model["name"])

    def list(self, subscription_id: str, group: str | None = None) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/".lower()
        if group is not None:
            prefix += f"{group.lower()}/"
        return [self.view(r) for k, r in sorted(self.vaults.items()) if k.startswith(prefix)]

    def to_dict(self) -> dict[str, Any]:
        return {"vaults": self.vaults}

    def load(self, data: dict[str, Any]) -> None:
        self.vaults = data.get("vaults", {})


PUBLIC_NETWORK_ACCESS = ("Enabled", "Disabled")


def _check_public_access(props: dict[str, Any]) -> None:
    value = props.get("publicNetworkAccess")
    if value is not None and value not in PUBLIC_NETWORK_ACCESS:
        raise InvalidBackupInput(
            f"Input provided for the call is invalid. publicNetworkAccess '{value}' is not valid; use Enabled or "
            "Disabled."
        )


def _extra_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What a vault's securitySettings hold besides the posture armsim keeps itself (e.g.
    sourceScanConfiguration), kept as written."""
    return {
        k: copy.deepcopy(v)
        for k, v in settings.items()
        if k not in ("softDeleteSettings", "immutabilitySettings", "multiUserAuthorization")
    }


def _set_cross_region_restore(storage: dict[str, Any], value: Any) -> None:
    """Cross-region restore on or off; it can be turned off again (the Terraform provider's acceptance
    test toggles it against Azure) and needs geo-redundant storage (Azure Backup docs; the refusal's
    code is armsim's choice)."""
    if value is None:
        return
    if value not in ("Enabled", "Disabled"):
        raise InvalidBackupInput(
            f"Input provided for the call is invalid. crossRegionRestore '{value}' is not valid; use Enabled or "
            "Disabled."
        )
    if value == "Enabled" and storage["storageType"] != "GeoRedundant":
        raise InvalidBackupInput(
            "Input provided for the call is invalid. Cross Region Restore can be enabled only on a vault with "
            f"geo-redundant storage (this vault is {storage['storageType']})."
        )
    storage["crossRegionRestore"] = value == "Enabled"
