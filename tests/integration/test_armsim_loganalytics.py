"""armsim's Log Analytics query API through the real LogsQueryClient (azure-monitor-query 2.0.0):
AddonAzureBackupJobs built from the seeded job history, KQL evaluated by duckdb-kql on the simulated
clock, the service's error shapes (syntax, unsupported, unknown workspace, wrong token), and the
product's job_history over it. `arm` tests run against armsim in-process and from its CLI; `sim` tests
check armsim-internal details once."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsBatchQuery, LogsQueryClient, LogsQueryResult, LogsQueryStatus

from armsim.core.auth import make_token
from armsim.loganalytics.engine import QueryError, run_query
from armsim.loganalytics.models import COLUMNS, DEFAULT_WORKSPACE_ID, JobRows
from armsim.loganalytics.responses import LogsError, _timespan, parse_duration
from autopilot.azure.joblogs import job_history
from tests.armsim_support import FixedToken, Sandbox
from tests.bodies import v1_policy

AUDIENCE = "https://api.loganalytics.io"
WS = DEFAULT_WORKSPACE_ID
RG = "rg-app"
GUEST_AGENT = "UserErrorGuestAgentStatusUnavailable"


def vault_id(arm: Sandbox, name: str = "rsv") -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/{name}"


def vm_id(arm: Sandbox, name: str) -> str:
    return f"/subscriptions/{arm.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}"


def seed_history(arm: Sandbox, jobs: Mapping[str, Sequence[tuple[str, float]]], vault: str = "rsv") -> None:
    """A frozen clock, no scheduled backups, one vault, and per VM the backup jobs (outcome, hoursAgo)."""
    arm.clock(speed=0)
    arm.configure(scheduledBackups=False)
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": "rg-backup",
                "name": vault,
                "location": "westeurope",
            }
        ],
        policies=[{"vaultId": vault_id(arm, vault), "name": "gold", "properties": v1_policy()}],
        vms=[
            {"subscriptionId": arm.subscription, "resourceGroup": RG, "name": n, "location": "westeurope"}
            for n in jobs
        ],
        protections=[
            {"vmId": vm_id(arm, n), "vaultId": vault_id(arm, vault), "policy": "gold"} for n in jobs
        ],
        jobs=[
            {
                "vmId": vm_id(arm, name),
                "outcome": outcome,
                "hoursAgo": hours,
                **({"errorCode": GUEST_AGENT} if outcome == "Failed" else {}),
                **(
                    {"errorCode": "CopyingVHDsFromBackUpVaultTakingLongTime"}
                    if outcome == "CompletedWithWarnings"
                    else {}
                ),
            }
            for name, runs in jobs.items()
            for outcome, hours in runs
        ],
    )


HISTORY = {
    "vm-1": [("Completed", 2), ("Failed", 5), ("Completed", 26), ("Completed", 50)],
    "vm-2": [("CompletedWithWarnings", 3)],
}


def clock_now(arm: Sandbox) -> dt.datetime:
    """The simulated now (the control API gives seven fractional digits; Python reads six)."""
    return dt.datetime.fromisoformat(arm.clock()["now"][:26] + "+00:00")


def logs_client(arm: Sandbox, endpoint: str = "/loganalytics/v1", **kwargs: Any) -> LogsQueryClient:
    kwargs.setdefault("audience", AUDIENCE)
    return LogsQueryClient(arm.credential(), endpoint=f"{arm.url}{endpoint}", retry_total=0, **kwargs)


def rows(result: Any) -> list[list[Any]]:
    assert result.status == LogsQueryStatus.SUCCESS, result
    return [list(r) for r in result.tables[0].rows]


# -- queries over the seeded history ------------------------------------------------------------------


def test_kql_summarize_counts_the_seeded_jobs(arm: Sandbox) -> None:
    seed_history(arm, HISTORY)
    result = logs_client(arm).query_workspace(
        WS,
        'AddonAzureBackupJobs | where JobOperation == "Backup" '
        '| summarize Runs = count(), Failed = countif(JobStatus == "Failed"), '
        'Warnings = countif(JobStatus == "CompletedWithWarnings") by BackupItemFriendlyName '
        "| order by BackupItemFriendlyName asc",
        timespan=dt.timedelta(days=30),
    )
    assert isinstance(result, LogsQueryResult)
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert list(zip(table.columns, table.columns_types, strict=True)) == [
        ("BackupItemFriendlyName", "string"),
        ("Runs", "long"),
        ("Failed", "long"),
        ("Warnings", "long"),
    ]
    assert rows(result) == [["vm-1", 4, 1, 0], ["vm-2", 1, 0, 1]]


def test_arg_max_by_item_gives_each_items_latest_job(arm: Sandbox) -> None:
    seed_history(arm, HISTORY)
    result = logs_client(arm).query_workspace(
        WS,
        'AddonAzureBackupJobs | where TimeGenerated > ago(1d) | where JobOperation == "Backup" '
        '| where JobStatus in ("Completed", "Failed", "CompletedWithWarnings") '
        "| summarize arg_max(TimeGenerated, *) by BackupItemUniqueId "
        "| project BackupItemFriendlyName, JobStatus, JobFailureCode | order by BackupItemFriendlyName asc",
        timespan=None,
    )
    assert rows(result) == [
        ["vm-1", "Completed", "Success"],
        ["vm-2", "CompletedWithWarnings", "CopyingVHDsFromBackUpVaultTakingLongTime"],
    ]


def test_a_row_has_the_tables_columns_and_values(sim: Sandbox) -> None:
    seed_history(sim, {"vm-1": [("Failed", 5)]})
    now = clock_now(sim)
    result = logs_client(sim).query_workspace(
        WS, 'AddonAzureBackupJobs | where JobOperation == "Backup"', timespan=None
    )
    assert isinstance(result, LogsQueryResult)
    table = result.tables[0]
    assert list(zip(table.columns, table.columns_types, strict=True)) == list(COLUMNS)
    (row,) = table.rows
    assert row["JobStatus"] == "Failed"
    assert row["JobFailureCode"] == GUEST_AGENT
    assert row["AdHocOrScheduledJob"] == "Scheduled"
    assert row["JobOperation"] == "Backup"
    assert row["BackupManagementType"] == "IaaSVM"
    assert row["TenantId"] == WS
    assert row["DatasourceResourceId"] == vm_id(sim, "vm-1")
    assert row["ResourceId"] == vault_id(sim).upper()
    assert row["_ResourceId"] == vault_id(sim).lower()
    assert row["StorageReplicationType"] == "GeoRedundant"
    unique = row["BackupItemUniqueId"].split(";")
    assert unique[0] == "westeurope" and unique[2:] == ["iaasvmcontainerv2", RG.lower(), "vm-1"]
    assert row["VaultUniqueId"] == unique[1]
    # A failed job ends with its snapshot phase (2 s by default): its record is written then.
    assert row["JobDurationInSecs"] == pytest.approx(2.0)
    assert row["TimeGenerated"] - row["JobStartDateTime"] == dt.timedelta(seconds=2)
    assert abs(row["JobStartDateTime"] - (now - dt.timedelta(hours=5))) < dt.timedelta(seconds=1)
    assert row["ExtendedProperties"] == "{}"
    assert row["RecoveryJobRPDateTime"] is None


def test_ago_follows_the_simulated_clock(arm: Sandbox) -> None:
    seed_history(arm, {"vm-1": [("Completed", 2), ("Completed", 30)]})
    client = logs_client(arm)
    query = "AddonAzureBackupJobs | where JobOperation == 'Backup' and TimeGenerated > ago(1d) | count"
    assert rows(client.query_workspace(WS, query, timespan=None)) == [[1]]
    arm.clock(advanceSeconds=23 * 3600)  # the 2-hour-old job is now 25 hours old
    assert rows(client.query_workspace(WS, query, timespan=None)) == [[0]]
    now = rows(client.query_workspace(WS, "print now()", timespan=None))[0][0]
    assert abs(now - clock_now(arm)) < dt.timedelta(seconds=1)


def test_a_job_is_logged_when_it_finishes(sim: Sandbox) -> None:
    seed_history(sim, {"vm-1": [("Completed", 0)]})  # started now: snapshot 2 s + transfer 4 s to go
    client = logs_client(sim)
    query = "AddonAzureBackupJobs | where JobOperation == 'Backup' | count"
    assert rows(client.query_workspace(WS, query, timespan=None)) == [[0]]
    sim.clock(advanceSeconds=10)
    assert rows(client.query_workspace(WS, query, timespan=None)) == [[1]]


def test_timespan_limits_time_generated(sim: Sandbox) -> None:
    seed_history(sim, HISTORY)
    client = logs_client(sim)
    query = "AddonAzureBackupJobs | where JobOperation == 'Backup' | count"
    assert rows(client.query_workspace(WS, query, timespan=dt.timedelta(hours=12))) == [[3]]
    assert rows(client.query_workspace(WS, query, timespan=None)) == [[5]]
    now = clock_now(sim)
    window = (now - dt.timedelta(hours=30), now - dt.timedelta(hours=20))
    assert rows(client.query_workspace(WS, query, timespan=window)) == [[1]]


def test_both_endpoint_spellings_and_the_batch_api(sim: Sandbox) -> None:
    seed_history(sim, HISTORY)
    query = "AddonAzureBackupJobs | where JobOperation == 'Backup' | count"
    # An endpoint ending in /v1 loses its path in the SDK (it reaches /v1/...); without /v1 the path stays.
    for endpoint in ("/loganalytics/v1", "/loganalytics"):
        assert rows(logs_client(sim, endpoint).query_workspace(WS, query, timespan=None)) == [[5]]
    paths = [e["path"] for e in sim.stats(log=True)["log"] if e["operation"] == "Query_Execute"]
    assert paths[-2:] == [f"/v1/workspaces/{WS}/query", f"/loganalytics/v1/workspaces/{WS}/query"]
    batch = logs_client(sim).query_batch(
        [
            LogsBatchQuery(WS, query, timespan=None),
            LogsBatchQuery(WS, "AddonAzureBackupJobs | wherex", timespan=None),
        ]
    )
    assert batch[0].status == LogsQueryStatus.SUCCESS and [list(r) for r in batch[0].tables[0].rows] == [[5]]
    assert batch[1].status == LogsQueryStatus.FAILURE and batch[1].code == "BadArgumentError"


def test_statistics_on_request(sim: Sandbox) -> None:
    seed_history(sim, HISTORY)
    result = logs_client(sim).query_workspace(
        WS, "AddonAzureBackupJobs | take 2", timespan=None, include_statistics=True, server_timeout=30
    )
    statistics: Any = result.statistics
    assert statistics["query"]["inputDatasetStatistics"]["rows"]["total"] == 7  # 5 backups, 2 ConfigureBackup
    assert statistics["query"]["datasetStatistics"][0]["tableRowCount"] == 2


# -- errors -----------------------------------------------------------------------------------------


def inner(err: HttpResponseError) -> dict[str, Any]:
    response: Any = err.response
    body = response.json()["error"]
    assert body["code"] == "BadArgumentError" and body["message"] == "The request had some invalid properties"
    return dict(body["innererror"])


def test_a_query_duckdb_kql_cannot_evaluate_answers_an_error_not_rows(arm: Sandbox) -> None:
    seed_history(arm, HISTORY)
    client = logs_client(arm)
    with pytest.raises(HttpResponseError) as caught:
        client.query_workspace(
            WS, "AddonAzureBackupJobs | evaluate bag_unpack(ExtendedProperties)", timespan=None
        )
    assert caught.value.status_code == 400
    error = inner(caught.value)
    assert error["code"] == "SemanticError" and error["innererror"]["code"] == "ARMSIM_UNSUPPORTED"
    assert "EvaluateOperator" in error["innererror"]["message"]


def test_syntax_and_semantic_errors_have_the_services_shape(arm: Sandbox) -> None:
    client = logs_client(arm)
    with pytest.raises(HttpResponseError) as caught:
        client.query_workspace(WS, "AddonAzureBackupJobs | wherex", timespan=None)
    error = inner(caught.value)
    assert error["code"] == "SyntaxError"
    assert error["innererror"]["code"] == "SYN0002"
    assert error["innererror"]["line"] == 1 and error["innererror"]["token"] == "|"
    for query, name in (
        ("Heartbeat | take 1", "Heartbeat"),
        ("AddonAzureBackupJobs | where Nope == 1", "Nope"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            client.query_workspace(WS, query, timespan=None)
        error = inner(caught.value)
        assert error["code"] == "SemanticError" and error["innererror"]["code"] == "SEM0100"
        assert f"'{name}'" in error["innererror"]["message"]


def test_unknown_workspace_is_path_not_found(arm: Sandbox) -> None:
    client = logs_client(arm)
    for workspace in ("11111111-2222-3333-4444-555555555555", "my-workspace-name"):
        with pytest.raises(HttpResponseError) as caught:
            client.query_workspace(workspace, "AddonAzureBackupJobs | count", timespan=None)
        assert caught.value.status_code == 404
        assert caught.value.error is not None and caught.value.error.code == "PathNotFoundError"
        assert caught.value.error.message == "The requested path does not exist"


def test_a_token_for_another_audience_is_refused(arm: Sandbox) -> None:
    # The SDK's default audience is the endpoint itself: armsim's address, not Log Analytics.
    for client in (
        LogsQueryClient(arm.credential(), endpoint=f"{arm.url}/loganalytics/v1", retry_total=0),
        logs_client(arm, audience="https://management.azure.com"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            client.query_workspace(WS, "AddonAzureBackupJobs | count", timespan=None)
        assert caught.value.status_code == 403
        assert caught.value.error is not None and caught.value.error.code == "InvalidTokenError"
    expired = LogsQueryClient(
        FixedToken(make_token(AUDIENCE, time.time() - 60)),
        endpoint=f"{arm.url}/loganalytics/v1",
        retry_total=0,
    )
    with pytest.raises(HttpResponseError) as caught:
        expired.query_workspace(WS, "AddonAzureBackupJobs | count", timespan=None)
    assert caught.value.status_code == 403
    missing = requests.post(
        f"{arm.url}/v1/workspaces/{WS}/query", json={"query": "print 1"}, verify=str(arm.ca_path), timeout=10
    )
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"


def test_bad_request_bodies(sim: Sandbox) -> None:
    token = sim.credential().get_token(f"{AUDIENCE}/.default").token
    url = f"{sim.url}/v1/workspaces/{WS}/query"

    def post(body: Any) -> requests.Response:
        return requests.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, verify=str(sim.ca_path), timeout=10
        )

    for body, code in (
        ({"query": ""}, "QueryValidationError"),
        ({"query": "print 1", "timespan": "yesterday"}, "InvalidTimespan"),
        (
            {"query": "print 1", "workspaces": ["22222222-2222-2222-2222-222222222222"]},
            "WorkspaceNotFoundError",
        ),
        ({"query": ".show tables"}, "SyntaxError"),
        ([1, 2], "InvalidRequestBody"),
    ):
        answer = post(body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["innererror"]["code"] == code
    got = requests.get(
        url,
        params={"query": "print x = 1"},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(sim.ca_path),
        timeout=10,
    )
    assert got.status_code == 200
    assert got.json() == {
        "tables": [{"name": "PrimaryResult", "columns": [{"name": "x", "type": "long"}], "rows": [[1]]}]
    }


# -- workspaces ------------------------------------------------------------------------------------


def test_registered_workspaces_and_their_vaults(arm: Sandbox) -> None:
    seed_history(arm, {"vm-1": [("Completed", 2)]})
    arm.seed(
        vaults=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": "rg-backup",
                "name": "rsv2",
                "location": "westeurope",
            }
        ],
        policies=[{"vaultId": vault_id(arm, "rsv2"), "name": "gold", "properties": v1_policy()}],
        vms=[
            {
                "subscriptionId": arm.subscription,
                "resourceGroup": RG,
                "name": "vm-9",
                "location": "westeurope",
            }
        ],
        protections=[{"vmId": vm_id(arm, "vm-9"), "vaultId": vault_id(arm, "rsv2"), "policy": "gold"}],
        jobs=[{"vmId": vm_id(arm, "vm-9"), "outcome": "Completed", "hoursAgo": 1}],
    )
    one, two = "0f0f0f0f-1111-4222-8333-444444444444", "0e0e0e0e-1111-4222-8333-444444444444"
    made = arm.control(
        "POST", "/loganalytics/workspaces", {"workspaceId": one, "vaultIds": [vault_id(arm, "rsv2")]}
    )
    assert made["workspaceId"] == one and made["endpoint"] == f"{arm.url}/loganalytics/v1"
    arm.control("POST", "/loganalytics/workspaces", {"workspaceId": two})
    listed = {w["workspaceId"] for w in arm.control("GET", "/loganalytics/workspaces")["value"]}
    assert listed == {WS, one, two}
    client = logs_client(arm)
    query = (
        "AddonAzureBackupJobs | where JobOperation == 'Backup' | summarize n = count() by VaultName, TenantId"
    )
    assert rows(client.query_workspace(one, query, timespan=None)) == [["rsv2", one, 1]]
    both = client.query_workspace(two, query + " | order by VaultName asc", timespan=None)
    assert rows(both) == [["rsv", two, 1], ["rsv2", two, 1]]
    # A cross-workspace query sees each workspace's copy, as Log Analytics does.
    cross = client.query_workspace(
        one, query + " | order by TenantId asc", timespan=None, additional_workspaces=[two]
    )
    assert sorted(map(tuple, rows(cross))) == sorted([("rsv", two, 1), ("rsv2", one, 1), ("rsv2", two, 1)])
    bad = requests.post(
        f"{arm.url}/_armsim/loganalytics/workspaces",
        json={"workspaceId": "ws1"},
        verify=str(arm.ca_path),
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidControlRequest"
    arm.control("DELETE", f"/loganalytics/workspaces/{two}")
    with pytest.raises(HttpResponseError):
        client.query_workspace(two, "print 1", timespan=None)
    arm.reset()
    assert [w["workspaceId"] for w in arm.control("GET", "/loganalytics/workspaces")["value"]] == [WS]


# -- the product's job history over it ----------------------------------------------------------------


def test_job_history_gives_the_success_rate_per_item(arm: Sandbox) -> None:
    seed_history(arm, HISTORY)
    history = job_history(logs_client(arm), WS, days=30)
    assert history.ok and not history.partial
    by_vm = {item.vm_name: item for item in history.items}
    assert set(by_vm) == {"vm-1", "vm-2"}
    vm1, vm2 = by_vm["vm-1"], by_vm["vm-2"]
    assert (vm1.runs, vm1.completed, vm1.warnings, vm1.failures) == (4, 3, 0, 1)
    assert vm1.success_rate == pytest.approx(0.75)
    assert vm1.last_failure_code == GUEST_AGENT
    assert vm1.last_status == "Completed"
    assert vm1.vm_id == vm_id(arm, "vm-1") and vm1.vault == "rsv"
    now = clock_now(arm)
    assert vm1.last_failure_time is not None
    assert abs(vm1.last_failure_time - (now - dt.timedelta(hours=5, seconds=-2))) < dt.timedelta(seconds=1)
    assert (vm2.runs, vm2.completed, vm2.warnings, vm2.failures) == (1, 0, 1, 0)
    assert vm2.success_rate == 0.0 and vm2.last_failure_code is None and vm2.last_failure_time is None
    assert (history.runs, history.completed, history.failures, history.warnings) == (5, 3, 1, 1)
    assert history.success_rate == pytest.approx(0.6)
    assert history.for_vm(vm_id(arm, "vm-1").upper()) == vm1
    # Two days of history leave out the job 50 hours ago.
    recent = job_history(logs_client(arm), WS, days=2)
    assert {i.vm_name: i.runs for i in recent.items} == {"vm-1": 3, "vm-2": 1}


def test_job_history_reports_logs_errors_instead_of_raising(sim: Sandbox) -> None:
    history = job_history(logs_client(sim), "11111111-2222-3333-4444-555555555555", days=30)
    assert not history.ok and history.items == ()
    assert history.error == "Log Analytics answered 404 PathNotFoundError: The requested path does not exist"
    wrong_audience = job_history(
        LogsQueryClient(sim.credential(), endpoint=f"{sim.url}/loganalytics/v1", retry_total=0), WS, days=30
    )
    assert wrong_audience.error is not None and "403 InvalidTokenError" in wrong_audience.error


# -- armsim internals: truncation, durations ------------------------------------------------------------


def test_results_over_the_row_limit_are_a_partial_error() -> None:
    from armsim.loganalytics.responses import _tables

    empty = JobRows(now=time.time())
    result = run_query(empty, "range x from 1 to 10 step 1", timeout=10, max_rows=4)
    assert result.truncated and len(result.rows) == 4
    payload = _tables(result)
    assert payload["error"]["code"] == "PartialError"
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in payload["error"]["details"][0]["innererror"]["message"]
    assert run_query(empty, "union * | count", timeout=10).rows == [[0]]  # the workspace has one table
    with pytest.raises(QueryError) as caught:
        run_query(empty, 'database("system").pg_class | take 1', timeout=10)
    assert caught.value.kind == "unsupported"
    with pytest.raises(QueryError) as caught:
        run_query(empty, "pg_class | take 1", timeout=10)
    assert caught.value.kind == "semantic" and caught.value.name == "pg_class"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT2592000.0S", 2592000.0),
        ("P30D", 2592000.0),
        ("PT1H30M", 5400.0),
        ("P1DT2H", 93600.0),
        ("P1W", 604800.0),
    ],
)
def test_iso_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_timespan_forms() -> None:
    now = dt.datetime(2030, 1, 2, tzinfo=dt.UTC).timestamp()
    assert _timespan("P1D", now) == (now - 86400, None)
    assert _timespan("2030-01-01T00:00:00Z/2030-01-01T12:00:00Z", now) == (now - 86400, now - 43200)
    assert _timespan("2030-01-01T00:00:00.000Z/PT6H", now) == (now - 86400, now - 86400 + 21600)
    assert _timespan("PT6H/2030-01-02T00:00:00Z", now) == (now - 21600, now)
    assert _timespan(None, now) == (None, None)
    for bad in ("P", "PT", "1 day", "2030-13-01T00:00:00Z/P1D"):
        with pytest.raises(LogsError) as caught:
            _timespan(bad, now)
        assert caught.value.status == 400 and caught.value.innererror == {
            "code": "InvalidTimespan",
            "message": caught.value.innererror["message"] if caught.value.innererror else "",
        }
