"""The pure parts of autopilot.azure.joblogs: the query, reading its result table, success rates and totals,
report rows, and turning Logs' errors and partial results into a JobHistory (with a stand-in client)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult

from autopilot.azure.joblogs import (
    ItemHistory,
    JobHistory,
    describe_error,
    history_query,
    history_rows,
    history_summary,
    job_history,
    parse_history,
    percent,
)

COLUMNS = [
    "BackupItemUniqueId",
    "Runs",
    "Completed",
    "Warnings",
    "Failures",
    "TimeGenerated",
    "JobStatus",
    "FailedAt",
    "JobFailureCode",
    "VmId",
    "VmName",
    "Vault",
]
VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
T1 = dt.datetime(2030, 1, 5, 22, 0, 6, tzinfo=dt.UTC)
T0 = dt.datetime(2030, 1, 3, 22, 0, 2, tzinfo=dt.UTC)


def row(
    name: str,
    runs: int,
    completed: int,
    warnings: int,
    failures: int,
    failed_at: Any = None,
    code: str = "Success",
) -> list[Any]:
    return [
        f"westeurope;v;iaasvmcontainerv2;rg;{name}",
        runs,
        completed,
        warnings,
        failures,
        T1,
        "Completed",
        failed_at,
        code,
        VM + name,
        name,
        "rsv",
    ]


def item(name: str, runs: int, completed: int, warnings: int = 0, failures: int = 0) -> ItemHistory:
    return ItemHistory(
        f"westeurope;v;iaasvmcontainerv2;rg;{name}",
        VM + name,
        name,
        "rsv",
        runs,
        completed,
        warnings,
        failures,
        T1,
        "Completed",
        "BackUpOperationFailedV2" if failures else None,
        T0 if failures else None,
    )


def test_the_query_is_one_summarize_per_backup_item() -> None:
    query = history_query(30)
    assert query.startswith("AddonAzureBackupJobs\n")
    assert "ago(30d)" in query
    assert 'JobOperation == "Backup"' in query
    assert "by JobUniqueId" in query and "by BackupItemUniqueId" in query
    assert "ago(7d)" in history_query(7)
    with pytest.raises(ValueError):
        history_query(0)


def test_parse_history_reads_columns_by_name() -> None:
    columns = list(reversed(COLUMNS))
    rows = [list(reversed(row("vm-1", 4, 3, 0, 1, failed_at=T0, code="UserErrorFsFreezeFailed")))]
    (parsed,) = parse_history(columns, rows)
    assert parsed == ItemHistory(
        "westeurope;v;iaasvmcontainerv2;rg;vm-1",
        VM + "vm-1",
        "vm-1",
        "rsv",
        4,
        3,
        0,
        1,
        T1,
        "Completed",
        "UserErrorFsFreezeFailed",
        T0,
    )
    assert parsed.success_rate == 0.75


def test_a_failure_code_counts_only_with_a_failure_time() -> None:
    # arg_max over FailedAt hands back some row's code ("Success") when nothing failed.
    (parsed,) = parse_history(COLUMNS, [row("vm-2", 2, 2, 0, 0, failed_at=None, code="Success")])
    assert parsed.last_failure_code is None and parsed.last_failure_time is None


def test_parse_history_takes_iso_text_with_seven_digits() -> None:
    raw = row("vm-3", 1, 0, 0, 1, failed_at="2030-01-03T22:00:02.1234567Z", code="X")
    raw[5] = "2030-01-05T22:00:06Z"
    (parsed,) = parse_history(COLUMNS, [raw])
    assert parsed.last_failure_time == dt.datetime(2030, 1, 3, 22, 0, 2, 123456, tzinfo=dt.UTC)
    assert parsed.last_run == T1


def test_parse_history_needs_the_count_columns() -> None:
    with pytest.raises(ValueError, match="Runs"):
        parse_history(["BackupItemUniqueId"], [])


def test_success_rates_and_totals() -> None:
    history = JobHistory("ws", 30, (item("a", 30, 27, 1, 2), item("b", 10, 10), item("c", 0, 0)))
    assert history.ok
    assert (history.runs, history.completed, history.warnings, history.failures) == (40, 37, 1, 2)
    assert history.success_rate == pytest.approx(37 / 40)
    assert history.items[2].success_rate is None
    assert JobHistory("ws", 30).success_rate is None
    assert history.for_vm((VM + "B").upper()) == history.items[1]
    assert history.for_vm(VM + "zz") is None


def test_history_rows_put_the_worst_first() -> None:
    history = JobHistory("ws", 30, (item("good", 30, 30), item("bad", 30, 20, 4, 6), item("idle", 0, 0)))
    rows = history_rows(history)
    assert [r["VM"] for r in rows] == ["bad", "good", "idle"]
    assert rows[0] == {
        "VM": "bad",
        "Vault": "rsv",
        "Runs": "30",
        "Success rate": "66.7 %",
        "Failures": "6",
        "Warnings": "4",
        "Last run": "2030-01-05 22:00 UTC",
        "Last status": "Completed",
        "Last failure": "BackUpOperationFailedV2",
        "Last failure time": "2030-01-03 22:00 UTC",
    }
    assert rows[2]["Success rate"] == "-"
    assert percent(1.0) == "100.0 %" and percent(None) == "-"


def test_summary_carries_the_error() -> None:
    summary = history_summary(JobHistory("ws", 30, error="Log Analytics answered 403 InvalidTokenError: no"))
    assert summary == {
        "Period": "30 days",
        "Backup items": "0",
        "Runs": "0",
        "Success rate": "-",
        "Failures": "0",
        "Warnings": "0",
        "Error": "Log Analytics answered 403 InvalidTokenError: no",
    }


class StubClient:
    """Stands in for LogsQueryClient: answers with what it is given, or raises it."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, Any]] = []

    def query_workspace(self, workspace_id: str, query: str, *, timespan: Any) -> Any:
        self.calls.append((workspace_id, query, timespan))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def generated(rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": c, "type": "string"} for c in COLUMNS],
                "rows": rows,
            }
        ]
    }


def test_job_history_sends_one_query_with_the_period() -> None:
    client = StubClient(LogsQueryResult._from_generated(generated([row("vm-1", 2, 1, 1, 0)])))
    history = job_history(client, "ws-1", days=14)  # type: ignore[arg-type]
    assert client.calls == [("ws-1", history_query(14), dt.timedelta(days=14))]
    assert history.ok and [i.vm_name for i in history.items] == ["vm-1"]


def test_job_history_turns_errors_into_text() -> None:
    for error, expected in (
        (HttpResponseError(message="boom"), "Log Analytics query failed: boom"),
        (ServiceRequestError("connection refused"), "Log Analytics query failed: connection refused"),
    ):
        history = job_history(StubClient(error), "ws", days=30)  # type: ignore[arg-type]
        assert not history.ok and history.items == () and history.error == expected


def test_job_history_keeps_a_partial_result_and_says_so() -> None:
    body = generated([row("vm-1", 1, 1, 0, 0)])
    body["error"] = {"code": "PartialError", "message": "There were some errors when processing your query."}
    partial = LogsQueryPartialResult._from_generated(body, LogsQueryError)
    history = job_history(StubClient(partial), "ws", days=30)  # type: ignore[arg-type]
    assert history.partial and [i.vm_name for i in history.items] == ["vm-1"]
    assert history.error == (
        "Log Analytics answered a partial result: PartialError: There were some errors when processing your query."
    )


def test_describe_error_prefers_status_code_and_inner_message() -> None:
    class Model:
        message = "Query could not be parsed at '|' on line [1,21]"

    class Error:
        code = "BadArgumentError"
        message = "The request had some invalid properties"

    exc = HttpResponseError(message="(BadArgumentError) The request had some invalid properties")
    exc.status_code = 400
    exc.error = Error()  # type: ignore[assignment]
    exc.model = Model()
    assert describe_error(exc) == (
        "Log Analytics answered 400 BadArgumentError: Query could not be parsed at '|' on line [1,21]"
    )
    exc.model = Model  # the SDK leaves the class there for 404s
    assert (
        describe_error(exc)
        == "Log Analytics answered 400 BadArgumentError: The request had some invalid properties"
    )
