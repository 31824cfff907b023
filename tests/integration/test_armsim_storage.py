"""armsim's storage accounts (both modes): the staging account a restore of a VM's disks needs, created,
read, listed, its keys, deleted, and the refusals of a bad name and a name already taken. The pinned
SDKs hold no Storage management client, so the requests are raw ARM requests (as
azure-mgmt-storage would send them). The Blob data plane is tested with the restores
(test_armsim_restore.py), which are what write blobs."""

from __future__ import annotations

from typing import Any

import requests

from tests.armsim_support import ARM_SCOPE, Sandbox

RG = "rg-stage"
API = "2025-06-01"


def account_path(arm: Sandbox, name: str, group: str = RG) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"


def call(arm: Sandbox, method: str, path: str, body: Any = None) -> requests.Response:
    token = arm.credential().get_token(ARM_SCOPE).token
    return requests.request(
        method,
        arm.url + path,
        params={"api-version": API},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(arm.ca_path),
        timeout=30,
    )


def create(
    arm: Sandbox, name: str, sku: str = "Standard_LRS", location: str = "westeurope"
) -> requests.Response:
    return call(
        arm,
        "PUT",
        account_path(arm, name),
        {"location": location, "sku": {"name": sku}, "kind": "StorageV2", "tags": {"purpose": "restore"}},
    )


def test_a_storage_account_is_created_and_read(arm: Sandbox) -> None:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": "westeurope"}])
    created = create(arm, "stagingweu01", "Standard_GRS")
    assert created.status_code == 200, created.text
    body = call(arm, "GET", account_path(arm, "stagingweu01")).json()
    assert body["id"] == account_path(arm, "stagingweu01")
    assert (body["type"], body["kind"], body["location"]) == (
        "Microsoft.Storage/storageAccounts",
        "StorageV2",
        "westeurope",
    )
    assert body["sku"] == {"name": "Standard_GRS", "tier": "Standard"}
    props = body["properties"]
    assert props["provisioningState"] == "Succeeded"
    assert (props["primaryLocation"], props["secondaryLocation"]) == ("westeurope", "northeurope")
    assert props["primaryEndpoints"]["blob"] == f"{arm.url}/stagingweu01.blob/"
    assert body["tags"] == {"purpose": "restore"}


def test_seeded_storage_accounts_are_listed(arm: Sandbox) -> None:
    answer = arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": "stagingweu01",
                "location": "westeurope",
            },
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": "rg-other",
                "name": "stagingeus01",
                "location": "eastus",
            },
        ]
    )
    assert answer["storageAccounts"] == 2
    in_group = call(
        arm,
        "GET",
        f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts",
    )
    assert [a["name"] for a in in_group.json()["value"]] == ["stagingweu01"]
    everywhere = call(
        arm, "GET", f"/subscriptions/{arm.subscription}/providers/Microsoft.Storage/storageAccounts"
    )
    assert sorted(a["name"] for a in everywhere.json()["value"]) == ["stagingeus01", "stagingweu01"]


def test_storage_account_keys_are_listed(arm: Sandbox) -> None:
    """As recorded (test_backup_restore #298): two keys with FULL permissions."""
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": "stagingweu01",
                "location": "westeurope",
            }
        ]
    )
    keys = call(arm, "POST", account_path(arm, "stagingweu01") + "/listKeys").json()["keys"]
    assert [(k["keyName"], k["permissions"]) for k in keys] == [("key1", "FULL"), ("key2", "FULL")]
    assert all(k["value"] for k in keys)


def test_a_storage_account_is_deleted(arm: Sandbox) -> None:
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": "stagingweu01",
                "location": "westeurope",
            }
        ]
    )
    assert call(arm, "DELETE", account_path(arm, "stagingweu01")).status_code == 200
    assert call(arm, "DELETE", account_path(arm, "stagingweu01")).status_code == 204
    missing = call(arm, "GET", account_path(arm, "stagingweu01"))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ResourceNotFound")


def test_a_resource_group_delete_takes_its_storage_accounts(arm: Sandbox) -> None:
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": "stagingweu01",
                "location": "westeurope",
            }
        ]
    )
    token = arm.credential().get_token(ARM_SCOPE).token
    deleted = requests.delete(
        f"{arm.url}/subscriptions/{arm.subscription}/resourcegroups/{RG}",
        params={"api-version": "2025-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(arm.ca_path),
        timeout=30,
    )
    assert deleted.status_code == 202
    assert (
        call(
            arm, "GET", f"/subscriptions/{arm.subscription}/providers/Microsoft.Storage/storageAccounts"
        ).json()["value"]
        == []
    )


def test_an_invalid_storage_account_name_is_refused(arm: Sandbox) -> None:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": "westeurope"}])
    refused = create(arm, "Staging-WEU")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "AccountNameInvalid")


def test_a_storage_account_name_is_global(arm: Sandbox) -> None:
    arm.seed(
        storageAccounts=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": "rg-a",
                "name": "stagingweu01",
                "location": "westeurope",
            }
        ]
    )
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": "westeurope"}])
    refused = create(arm, "stagingweu01")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "StorageAccountAlreadyTaken")
