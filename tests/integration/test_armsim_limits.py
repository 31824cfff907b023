"""Azure's limits in armsim (both modes): 1,000 protected items per vault (enabling protection in a full
vault is accepted, then its operation and ConfigureBackup job fail with UserErrorProtectionQuotaExceeded),
200 policies per vault, 50 policy creates or edits per vault in 24 hours of simulated time, 500 vaults
per subscription and region; which items hold a place; changing and switching the limits off through
the control API, and /reset putting them back."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from tests.armsim_support import Sandbox
from tests.bodies import v1_policy

RG = "rg-lim"
VAULT = "rsv-lim"
LOCATION = "westeurope"
BACKUP_API = {"api-version": "2026-10-01"}
VAULT_API = {"api-version": "2026-11-01"}


def sub_path(arm: Sandbox) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{RG}"


def vault_path(arm: Sandbox, name: str = VAULT) -> str:
    return f"{sub_path(arm)}/providers/Microsoft.RecoveryServices/vaults/{name}"


def vm_id(arm: Sandbox, name: str) -> str:
    return f"{sub_path(arm)}/providers/Microsoft.Compute/virtualMachines/{name}"


def item_path(arm: Sandbox, vm: str) -> str:
    container = f"iaasvmcontainerv2;{RG};{vm}"
    return (
        f"{vault_path(arm)}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{container}"
        f"/protectedItems/VM;{container}"
    )


class Client:
    """Raw ARM requests with the sandbox's token (statuses and bodies as they come)."""

    def __init__(self, arm: Sandbox) -> None:
        self.arm = arm
        self.token = arm.credential().get_token("https://management.azure.com/.default").token

    def __call__(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.arm.url}{path}",
            params=params or BACKUP_API,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=str(self.arm.ca_path),
            timeout=30,
        )

    def protect(self, vm: str, policy: str = "daily") -> requests.Response:
        body = {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm_id(self.arm, vm),
                "policyId": f"{vault_path(self.arm)}/backupPolicies/{policy}",
            }
        }
        return self("PUT", item_path(self.arm, vm), body)

    def policy(self, name: str, run: str = "22:00") -> requests.Response:
        return self(
            "PUT", f"{vault_path(self.arm)}/backupPolicies/{name}", {"properties": v1_policy(run=run)}
        )

    def vault(self, name: str, location: str = LOCATION) -> requests.Response:
        return self("PUT", vault_path(self.arm, name), {"location": location, "properties": {}}, VAULT_API)


@pytest.fixture
def client(arm: Sandbox) -> Client:
    return Client(arm)


def seed(arm: Sandbox, vms: int = 0, protect: int = 0, **extra: Any) -> None:
    """The vault with a 'daily' policy and `vms` VMs vm-0, vm-1, ..., the first `protect` protected."""
    names = [f"vm-{n}" for n in range(vms)]
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": VAULT, "location": LOCATION}
        ],
        policies=[
            {"vaultId": vault_path(arm), "name": "daily", "properties": v1_policy()},
        ],
        vms=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": n, "location": LOCATION}
            for n in names
        ],
        protections=[
            {"vmId": vm_id(arm, n), "vaultId": vault_path(arm), "policy": "daily"} for n in names[:protect]
        ],
        **extra,
    )


def discover(client: Client) -> None:
    response = client("POST", f"{vault_path(client.arm)}/backupFabrics/Azure/refreshContainers")
    assert response.status_code == 202


def follow(client: Client, accepted: requests.Response) -> dict[str, Any]:
    """The operation status behind a 202, once it has ended."""
    assert accepted.status_code == 202, accepted.text
    status_path = urlsplit(accepted.headers["Azure-AsyncOperation"]).path
    for _ in range(100):
        status: dict[str, Any] = client("GET", status_path).json()
        if status["status"] != "InProgress":
            return status
        time.sleep(0.05)
    raise AssertionError(f"the operation did not end: {status}")


def items(client: Client) -> list[str]:
    listed = client("GET", f"{vault_path(client.arm)}/backupProtectedItems").json()["value"]
    return sorted(i["properties"]["friendlyName"] for i in listed)


# -- protected items per vault -------------------------------------------------------------------
def test_the_1001st_protection_is_accepted_then_fails_with_the_quota_error(
    arm: Sandbox, client: Client
) -> None:
    seed(arm, vms=1001, protect=1000)
    discover(client)
    accepted = client.protect("vm-1000")
    assert accepted.status_code == 202  # accepted, as Azure accepts every enable-protection PUT
    status = follow(client, accepted)
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "UserErrorProtectionQuotaExceeded"
    assert "VM protection quota has exceeded for this vault" in status["error"]["message"]
    job_id = status["properties"]["jobId"]
    job = client("GET", f"{vault_path(arm)}/backupJobs/{job_id}").json()["properties"]
    assert (job["operation"], job["status"], job["entityFriendlyName"]) == (
        "ConfigureBackup",
        "Failed",
        "vm-1000",
    )
    assert job["errorDetails"][0]["errorCode"] == "UserErrorProtectionQuotaExceeded"
    assert job["extendedInfo"]["propertyBag"]["Policy Name"] == "daily"
    # No item was made.
    assert client("GET", item_path(arm, "vm-1000")).status_code == 404
    assert len(client("GET", f"{vault_path(arm)}/backupProtectedItems").json()["value"]) == 200  # a page
    status_body = client(
        "POST",
        f"/subscriptions/{arm.subscription}/providers/Microsoft.RecoveryServices/locations/{LOCATION}/backupStatus",
        {"resourceType": "VM", "resourceId": vm_id(arm, "vm-1000")},
    ).json()
    assert status_body["protectionStatus"] == "NotProtected"


def test_the_sdk_poller_reports_the_failed_protection(arm: Sandbox, sdk: dict[str, Any]) -> None:
    seed(arm, vms=3, protect=2)
    arm.configure(limits={"protectedItemsPerVault": 2})
    backup = sdk["backup"]
    backup.protection_containers.refresh(VAULT, RG, "Azure")
    container = f"iaasvmcontainerv2;{RG};vm-2"
    body = {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm_id(arm, "vm-2"),
            "policyId": f"{vault_path(arm)}/backupPolicies/daily",
        }
    }
    poller = backup.protected_items.begin_create_or_update(
        VAULT, RG, "Azure", f"IaasVMContainer;{container}", f"VM;{container}", body
    )
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert "UserErrorProtectionQuotaExceeded" in str(err.value)


def test_every_item_of_the_vault_holds_a_place_until_it_is_purged(arm: Sandbox, client: Client) -> None:
    arm.clock(speed=0)
    seed(arm, vms=6)
    arm.seed(
        protections=[
            {"vmId": vm_id(arm, "vm-0"), "vaultId": vault_path(arm), "policy": "daily"},
            {
                "vmId": vm_id(arm, "vm-1"),
                "vaultId": vault_path(arm),
                "policy": "daily",
                "state": "ProtectionStopped",
            },
            {
                "vmId": vm_id(arm, "vm-2"),
                "vaultId": vault_path(arm),
                "policy": "daily",
                "state": "SoftDeleted",
            },
        ]
    )
    arm.configure(limits={"protectedItemsPerVault": 4})
    discover(client)
    assert follow(client, client.protect("vm-3"))["status"] == "Succeeded"  # the 4th place (IRPending)
    refused = follow(client, client.protect("vm-4"))
    assert refused["status"] == "Failed" and refused["error"]["code"] == "UserErrorProtectionQuotaExceeded"
    assert items(client) == ["vm-0", "vm-1", "vm-2", "vm-3"]
    # Changing the policy of an item, stopping or resuming it needs no new place.
    assert follow(client, client.protect("vm-1"))["status"] == "Succeeded"
    # The soft-deleted item's place is freed when it is purged (14 days later).
    arm.clock(advanceSeconds=15 * 86400)
    assert items(client) == ["vm-0", "vm-1", "vm-3"]
    assert follow(client, client.protect("vm-4"))["status"] == "Succeeded"


def test_the_item_limit_can_refuse_at_once_and_be_switched_off(arm: Sandbox, client: Client) -> None:
    seed(arm, vms=4, protect=1)
    discover(client)
    arm.configure(limits={"protectedItemsPerVault": {"max": 1, "synchronous": True}})
    refused = client.protect("vm-1")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "UserErrorProtectionQuotaExceeded"
    arm.configure(
        limits={
            "protectedItemsPerVault": {"max": 1, "synchronous": False, "code": "CloudDosAbsoluteLimitReached"}
        }
    )
    assert follow(client, client.protect("vm-1"))["error"]["code"] == "CloudDosAbsoluteLimitReached"
    arm.configure(limits={"protectedItemsPerVault": {"enabled": False}})
    assert follow(client, client.protect("vm-2"))["status"] == "Succeeded"
    arm.configure(limits={"protectedItemsPerVault": {"enabled": True}, "enabled": False})
    assert follow(client, client.protect("vm-3"))["status"] == "Succeeded"
    assert items(client) == ["vm-0", "vm-2", "vm-3"]


def test_a_seed_cannot_hold_more_than_the_limit(arm: Sandbox) -> None:
    arm.configure(limits={"protectedItemsPerVault": 2})
    response = requests.post(
        f"{arm.url}/_armsim/seed",
        json={
            "vaults": [
                {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": VAULT, "location": LOCATION}
            ],
            "policies": [{"vaultId": vault_path(arm), "name": "daily", "properties": v1_policy()}],
            "vms": [
                {
                    "subscriptionId": arm.subscription,
                    "resourceGroup": RG,
                    "name": f"vm-{n}",
                    "location": LOCATION,
                }
                for n in range(3)
            ],
            "protections": [
                {"vmId": vm_id(arm, f"vm-{n}"), "vaultId": vault_path(arm), "policy": "daily"}
                for n in range(3)
            ],
        },
        verify=str(arm.ca_path),
        timeout=30,
    )
    assert response.status_code == 400
    assert "limits.protectedItemsPerVault" in response.json()["error"]["message"]


# -- policies per vault --------------------------------------------------------------------------
def test_the_201st_policy_is_refused_and_edits_of_existing_ones_are_not(arm: Sandbox, client: Client) -> None:
    seed(arm)
    arm.seed(
        policies=[
            {"vaultId": vault_path(arm), "name": f"p{n:03d}", "properties": v1_policy()} for n in range(199)
        ]
    )  # 200 with 'daily'; seeded policies are not policy writes
    refused = client.policy("one-too-many")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "BMSUserErrorInvalidPolicyInput"
    assert error["details"][0]["message"].startswith(f"The vault '{VAULT}' already has 200 backup policies")
    assert client.policy("p000", run="23:00").status_code == 200  # an edit is not a new policy
    assert client("DELETE", f"{vault_path(arm)}/backupPolicies/p001").status_code == 200
    assert client.policy("one-too-many").status_code == 200  # a freed place


def test_the_policy_limit_can_be_changed_and_switched_off(arm: Sandbox, client: Client) -> None:
    seed(arm)
    arm.configure(limits={"policiesPerVault": {"max": 2, "status": 409, "code": "QuotaExceeded"}})
    assert client.policy("second").status_code == 200
    refused = client.policy("third")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "QuotaExceeded")
    assert "a vault can have up to 2" in refused.json()["error"]["message"]
    arm.configure(limits={"policiesPerVault": {"enabled": False}})
    assert client.policy("third").status_code == 200


# -- policy writes in 24 hours -------------------------------------------------------------------
def test_the_51st_policy_write_in_24_hours_is_refused(arm: Sandbox, client: Client) -> None:
    arm.clock(speed=0)
    seed(arm)
    writes = [client.policy(f"p{n % 5}", run=("22:00", "23:00")[n % 2]).status_code for n in range(50)]
    assert writes == [200] * 50  # creates and edits alike
    refused = client.policy("p0")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "CloudDosAbsoluteLimitReached"
    assert error["message"] == (
        "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours."
    )
    assert "50 times in the last 24 hours" in error["details"][0]["message"]
    assert (
        client("DELETE", f"{vault_path(arm)}/backupPolicies/p4").status_code == 200
    )  # deletes are not limited
    arm.clock(advanceSeconds=86400)  # the window slides on the simulated clock
    assert client.policy("p0").status_code == 200


def test_refused_or_invalid_policy_writes_do_not_count(arm: Sandbox, client: Client) -> None:
    arm.clock(speed=0)
    seed(arm)
    arm.configure(limits={"policyWritesPerVault": 2})
    bad = client("PUT", f"{vault_path(arm)}/backupPolicies/bad", {"properties": v1_policy(run="22:15")})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BMSUserErrorInvalidPolicyInput"
    assert [client.policy("a").status_code, client.policy("b").status_code] == [200, 200]
    assert client.policy("c").status_code == 400
    arm.configure(limits={"policyWritesPerVault": {"windowSeconds": 60}})
    arm.clock(advanceSeconds=61)
    assert client.policy("c").status_code == 200


def test_each_vault_has_its_own_policy_write_budget(arm: Sandbox, client: Client) -> None:
    seed(arm)
    arm.seed(
        vaults=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": "rsv-2", "location": LOCATION}
        ]
    )
    arm.configure(limits={"policyWritesPerVault": 1})
    assert client.policy("a").status_code == 200
    assert client.policy("b").status_code == 400
    other = client("PUT", f"{vault_path(arm, 'rsv-2')}/backupPolicies/a", {"properties": v1_policy()})
    assert other.status_code == 200


# -- vaults per subscription and region ----------------------------------------------------------
def test_the_501st_vault_of_a_region_is_refused(arm: Sandbox, client: Client) -> None:
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": f"v{n:03d}",
                "location": LOCATION,
            }
            for n in range(500)
        ]
    )
    refused = client.vault("v500")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "QuotaExceeded"
    assert "500 Recovery Services vaults per subscription per region" in error["message"]
    assert client.vault("v500", location="northeurope").status_code in (200, 201)  # another region
    assert client.vault("v000", location=LOCATION).status_code == 200  # an update of an existing vault
    assert client("DELETE", vault_path(arm, "v001"), params=VAULT_API).status_code in (200, 204)
    assert client.vault("v500b").status_code in (200, 201)


def test_the_vault_limit_can_be_changed_switched_off_and_reset(arm: Sandbox, client: Client) -> None:
    arm.seed(resourceGroups=[{"subscriptionId": arm.subscription, "name": RG, "location": LOCATION}])
    arm.configure(limits={"vaultsPerSubscriptionRegion": 1})
    assert client.vault("va").status_code in (200, 201)
    assert client.vault("vb").status_code == 400
    arm.configure(limits={"enabled": False})
    assert client.vault("vb").status_code in (200, 201)
    arm.reset()
    assert arm.control("GET", "/config")["limits"] == {
        "enabled": True,
        "protectedItemsPerVault": {
            "enabled": True,
            "max": 1000,
            "code": "UserErrorProtectionQuotaExceeded",
            "synchronous": False,
            "status": 400,
        },
        "policiesPerVault": {
            "enabled": True,
            "max": 200,
            "code": "BMSUserErrorInvalidPolicyInput",
            "status": 400,
        },
        "policyWritesPerVault": {
            "enabled": True,
            "max": 50,
            "windowSeconds": 86400,
            "code": "CloudDosAbsoluteLimitReached",
            "status": 400,
        },
        "vaultsPerSubscriptionRegion": {"enabled": True, "max": 500, "code": "QuotaExceeded", "status": 400},
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"vaultsPerVault": 5},
        {"policiesPerVault": -1},
        {"policiesPerVault": {"max": "many"}},
        {"policiesPerVault": {"synchronous": True}},
        {"policyWritesPerVault": {"status": 200}},
        {"enabled": "no"},
    ],
)
def test_bad_limit_settings_are_refused(arm: Sandbox, bad: dict[str, Any]) -> None:
    response = requests.post(
        f"{arm.url}/_armsim/config", json={"limits": bad}, verify=str(arm.ca_path), timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidControlRequest"
