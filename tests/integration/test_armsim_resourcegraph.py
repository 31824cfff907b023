"""armsim's Azure Resource Graph through the pinned ResourceGraphClient (both modes): the answer's
shape, scopes (subscriptions, management groups, the tenant), $skipToken paging with $top and $skip,
the user quota and its headers, the lag behind ARM, the shapes of the tables' rows, and its errors
(armsim/SUPPORTED_OPERATIONS.md, "Azure Resource Graph")."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from tests.armsim_support import Sandbox, sdk_clients

SUB = "00000000-0000-0000-0000-000000000001"
OTHER = "33333333-0000-4000-8000-000000000003"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
VMS = "Resources | where type =~ 'Microsoft.Compute/virtualMachines' | project id, name, resourceGroup | order by id asc"


def client(arm: Sandbox) -> ResourceGraphClient:
    # No retries: a 429 must reach the test.
    return ResourceGraphClient(arm.credential(), retry_total=0, **arm.arm_kwargs())


def seed(arm: Sandbox, count: int = 5) -> None:
    from tests.bodies import daily_policy_body

    arm.seed(
        subscriptions=[{"subscriptionId": OTHER, "displayName": "prod-other"}],
        vaults=[{"subscriptionId": SUB, "resourceGroup": "rg-b", "name": "rsv-weu", "location": "westeurope"}],
        policies=[{"vaultId": VAULT, "name": "daily", "properties": daily_policy_body()["properties"]}],
        vms=[
            {"subscriptionId": SUB, "resourceGroup": "RG-Apps", "name": f"vm-{i}", "location": "westeurope",
             "tags": {"backup-policy": "gold"}}
            for i in range(count)
        ]
        + [{"subscriptionId": OTHER, "resourceGroup": "rg-o", "name": "vm-other", "location": "westeurope"}],
        protections=[{"vmId": f"/subscriptions/{SUB}/resourceGroups/RG-Apps/providers/Microsoft.Compute/virtualMachines/vm-0",
                      "vaultId": VAULT, "policy": "daily"}],
        jobs=[{"vmId": f"/subscriptions/{SUB}/resourceGroups/RG-Apps/providers/Microsoft.Compute/virtualMachines/vm-0",
               "outcome": "Failed", "errorCode": "UserErrorFsFreezeFailed", "hoursAgo": 2}],
    )  # fmt: skip


def query(arm: Sandbox, kql: str, **scope: Any) -> Any:
    return client(arm).resources(QueryRequest(query=kql, **scope))


def test_the_answer_has_the_shape_of_the_rest_examples(arm: Sandbox) -> None:
    seed(arm)
    answer = query(arm, VMS, subscriptions=[SUB])
    assert (answer.total_records, answer.count, answer.result_truncated, answer.skip_token) == (
        5,
        5,
        "false",
        None,
    )
    assert answer.facets == []
    first = answer.data[0]
    assert set(first) == {"id", "name", "resourceGroup"} and first["resourceGroup"] == "rg-apps"
    table = client(arm).resources(
        QueryRequest(query=VMS, subscriptions=[SUB], options=QueryRequestOptions(result_format="table"))
    )
    assert [c["name"] for c in table.data["columns"]] == ["id", "name", "resourceGroup"]
    assert table.data["rows"][0][1] == "vm-0"


def test_scopes_subscriptions_management_groups_and_the_tenant(arm: Sandbox) -> None:
    seed(arm)
    assert query(arm, VMS, subscriptions=[SUB]).total_records == 5
    assert query(arm, VMS, subscriptions=[OTHER]).total_records == 1
    assert query(arm, VMS).total_records == 6
    arm.control("POST", "/resourcegraph/managementGroups", {"name": "mg-prod", "subscriptions": [OTHER]})
    assert query(arm, VMS, management_groups=["mg-prod"]).total_records == 1
    subs = query(
        arm,
        "ResourceContainers | where type =~ 'microsoft.resources/subscriptions' | project subscriptionId, name, groups = properties.managementGroupAncestorsChain",
    )
    by_id = {row["subscriptionId"]: row for row in subs.data}
    assert by_id[OTHER]["name"] == "prod-other" and by_id[OTHER]["groups"] == [
        {"name": "mg-prod", "displayName": "mg-prod"}
    ]
    with pytest.raises(HttpResponseError) as refused:
        query(arm, VMS, management_groups=["mg-none"])
    assert refused.value.status_code == 400


def test_paging_by_skip_token_top_and_skip(arm: Sandbox) -> None:
    seed(arm, count=2500)
    graph = client(arm)
    answer = graph.resources(QueryRequest(query=VMS, subscriptions=[SUB]))
    assert (answer.total_records, answer.count) == (2500, 1000) and answer.skip_token
    seen = [row["name"] for row in answer.data]
    while answer.skip_token:
        answer = graph.resources(
            QueryRequest(
                query=VMS, subscriptions=[SUB], options=QueryRequestOptions(skip_token=answer.skip_token)
            )
        )
        seen += [row["name"] for row in answer.data]
    assert len(seen) == len(set(seen)) == 2500
    small = graph.resources(
        QueryRequest(query=VMS, subscriptions=[SUB], options=QueryRequestOptions(top=10, skip=20))
    )
    assert small.count == 10 and small.data[0]["name"] == sorted(seen)[20]
    with pytest.raises(HttpResponseError) as other_scope:
        graph.resources(
            QueryRequest(
                query=VMS, subscriptions=[OTHER], options=QueryRequestOptions(skip_token=answer_token(graph))
            )
        )
    assert other_scope.value.status_code == 400


def answer_token(graph: ResourceGraphClient) -> str:
    token = graph.resources(
        QueryRequest(query=VMS, subscriptions=[SUB], options=QueryRequestOptions(top=1))
    ).skip_token
    assert token
    return str(token)


def test_the_user_quota_and_its_headers(arm: Sandbox) -> None:
    seed(arm)
    arm.configure(resourceGraph={"quota": 3, "quotaWindowSeconds": 2})
    graph = client(arm)
    seen: list[tuple[str, str]] = []

    def hook(response: Any) -> None:
        headers = response.http_response.headers
        seen.append((headers.get("x-ms-user-quota-remaining"), headers.get("x-ms-user-quota-resets-after")))

    for _ in range(3):
        graph.resources(QueryRequest(query=VMS), raw_response_hook=hook)
    assert [r for r, _ in seen] == ["2", "1", "0"] and all(a.startswith("00:00:0") for _, a in seen)
    with pytest.raises(HttpResponseError) as throttled:
        graph.resources(QueryRequest(query=VMS))
    assert throttled.value.status_code == 429 and throttled.value.error.code == "RateLimiting"
    assert throttled.value.response.headers["x-ms-user-quota-remaining"] == "0"
    assert "Retry-After" not in throttled.value.response.headers
    time.sleep(2.1)
    assert graph.resources(QueryRequest(query=VMS)).count == 6


def test_arg_trails_arm_by_its_lag(arm: Sandbox) -> None:
    seed(arm)
    arm.configure(resourceGraph={"lagSeconds": 1.5})
    query(arm, VMS)  # indexed now
    sdk_clients(arm)["compute"].virtual_machines.begin_delete("RG-Apps", "vm-4").result()
    assert query(arm, VMS, subscriptions=[SUB]).total_records == 5, (
        "Resource Graph has not seen the delete yet"
    )
    time.sleep(1.6)
    assert query(arm, VMS, subscriptions=[SUB]).total_records == 4


def test_the_rows_have_the_shapes_armsim_documents(arm: Sandbox) -> None:
    seed(arm)
    vm = query(arm, "Resources | where name == 'vm-0' | project type, properties").data[0]
    assert vm["type"] == "microsoft.compute/virtualmachines"
    view = vm["properties"]["extended"]["instanceView"]
    assert set(view) == {"computerName", "osName", "osVersion", "hyperVGeneration", "powerState"}
    assert view["powerState"] == {
        "code": "PowerState/running",
        "level": "Info",
        "displayStatus": "VM running",
    }
    item = query(
        arm,
        "RecoveryServicesResources | where type == 'microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems' | project properties",
    ).data[0]["properties"]
    assert item["backupManagementType"] == "AzureIaasVM" and item["vaultId"] == VAULT
    assert item["dataSourceInfo"]["resourceID"].endswith("/vm-0") and item["currentProtectionState"]
    assert "extendedProperties" not in item and "healthStatus" not in item
    job = query(
        arm,
        "RecoveryServicesResources | where type == 'microsoft.recoveryservices/vaults/backupjobs' and properties.status == 'Failed' | project properties",
    ).data[0]["properties"]
    assert job["status"] == "Failed" and job["errorDetails"][0]["errorCode"] == "UserErrorFsFreezeFailed"
    policies = query(
        arm,
        "RecoveryServicesResources | where type == 'microsoft.recoveryservices/vaults/backuppolicies' | project name",
    )
    assert [p["name"] for p in policies.data] == ["daily"]


def test_errors(arm: Sandbox) -> None:
    seed(arm)
    with pytest.raises(HttpResponseError) as bad:
        query(arm, "Resources | wher x")
    assert bad.value.status_code == 400 and bad.value.error.code == "BadRequest"
    details = [d.code for d in bad.value.error.details]
    assert details[0] == "InvalidQuery"
    arm.faults(rate=1.0, kinds={"403": 1}, operations=["Resources"])
    with pytest.raises(HttpResponseError) as denied:
        query(arm, VMS)
    assert (
        denied.value.status_code == 403 and "Microsoft.ResourceGraph/resources/read" in denied.value.message
    )
