"""Backup job history from Azure Monitor Logs: runs, failures and success rate per backup item.

When a Log Analytics workspace is configured (vaults send their diagnostics to it in the
resource-specific mode), one KQL query over AddonAzureBackupJobs gives the history of every backup
item over the last N days: how many backups ran, how many completed, completed with warnings (the
snapshot is fine, the copy to the vault is not) or failed, the success rate, the last run and the
last failure with its code. Only backup jobs count (not ConfigureBackup and the like); a job Azure
logged more than once counts once.

Success rate = completed / runs: a run that completed with warnings is not a success (its recovery
point never reached the vault). Logs answering an error never fails the caller: job_history returns
a JobHistory whose `error` says what went wrong (and whose items are empty, or partial).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

TABLE = "AddonAzureBackupJobs"

# One query: the finished backup jobs of the period, each job once (Azure may log a job more than once;
# its latest record wins), then per backup item the counts, the last run and the last failure.
QUERY = """AddonAzureBackupJobs
| where TimeGenerated > ago({days}d)
| where JobOperation == "Backup" and JobStatus in ("Completed", "CompletedWithWarnings", "Failed")
| summarize arg_max(TimeGenerated, JobStatus, JobFailureCode, BackupItemUniqueId, BackupItemFriendlyName, DatasourceResourceId, VaultName) by JobUniqueId
| extend FailedAt = iff(JobStatus == "Failed", TimeGenerated, datetime(null))
| summarize Runs = count(), Completed = countif(JobStatus == "Completed"), Warnings = countif(JobStatus == "CompletedWithWarnings"), Failures = countif(JobStatus == "Failed"), arg_max(TimeGenerated, JobStatus), arg_max(FailedAt, JobFailureCode), VmId = take_any(DatasourceResourceId), VmName = take_any(BackupItemFriendlyName), Vault = take_any(VaultName) by BackupItemUniqueId
| order by BackupItemUniqueId asc"""


def history_query(days: int) -> str:
    """The KQL job_history sends for a period of `days` days."""
    if days < 1:
        raise ValueError("days must be 1 or more")
    return QUERY.format(days=int(days))


@dataclass(frozen=True)
class ItemHistory:
    """One backup item (a protected VM in a vault) over the period."""

    backup_item: str  # BackupItemUniqueId: <region>;<vault>;iaasvmcontainerv2;<rg>;<vm>
    vm_id: str
    vm_name: str
    vault: str
    runs: int
    completed: int
    warnings: int
    failures: int
    last_run: dt.datetime | None
    last_status: str
    last_failure_code: str | None
    last_failure_time: dt.datetime | None

    @property
    def success_rate(self) -> float | None:
        """Completed runs / runs, 0 to 1; None without runs."""
        return self.completed / self.runs if self.runs else None


@dataclass(frozen=True)
class JobHistory:
    """The job history of a workspace over `days` days, or why it could not be had."""

    workspace_id: str
    days: int
    items: tuple[ItemHistory, ...] = ()
    error: str | None = None  # Logs' error; with partial=True the items are what it did return
    partial: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def runs(self) -> int:
        return sum(i.runs for i in self.items)

    @property
    def completed(self) -> int:
        return sum(i.completed for i in self.items)

    @property
    def warnings(self) -> int:
        return sum(i.warnings for i in self.items)

    @property
    def failures(self) -> int:
        return sum(i.failures for i in self.items)

    @property
    def success_rate(self) -> float | None:
        runs = self.runs
        return self.completed / runs if runs else None

    def for_vm(self, vm_id: str) -> ItemHistory | None:
        """The item of a VM (ARM ids compared case-insensitively)."""
        wanted = vm_id.lower()
        return next((i for i in self.items if i.vm_id.lower() == wanted), None)


def job_history(logs_client: LogsQueryClient, workspace_id: str, days: int = 30) -> JobHistory:
    """Ask Log Analytics for the backup job history of the last `days` days (one query)."""
    from azure.core.exceptions import AzureError
    from azure.monitor.query import LogsQueryPartialResult

    query = history_query(days)
    try:
        response = logs_client.query_workspace(workspace_id, query, timespan=dt.timedelta(days=days))
    except AzureError as exc:
        return JobHistory(workspace_id, days, error=describe_error(exc))
    if isinstance(response, LogsQueryPartialResult):
        tables = response.partial_data or []
        error = response.partial_error
        text = f"{error.code}: {error.message}" if error is not None else "partial result"
        items = parse_history(tables[0].columns, tables[0].rows) if tables else ()
        return JobHistory(
            workspace_id, days, items, error=f"Log Analytics answered a partial result: {text}", partial=True
        )
    if not response.tables:
        return JobHistory(workspace_id, days)
    table = response.tables[0]
    return JobHistory(workspace_id, days, parse_history(table.columns, table.rows))


def describe_error(exc: Exception) -> str:
    """A one-line account of a failed Logs query: status, service code and the innermost message."""
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    model = getattr(exc, "model", None)
    # LogsQueryClient puts the innermost message on its LogsQueryError model; for statuses azure-core
    # maps to its own exceptions (401, 404, ...) the model is left as the class, so read the body.
    inner = None if model is None or isinstance(model, type) else getattr(model, "message", None)
    message = inner or getattr(error, "message", None) or str(exc)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    head = " ".join(str(p) for p in (status, code) if p)
    return (
        f"Log Analytics answered {head}: {first_line}"
        if head
        else f"Log Analytics query failed: {first_line}"
    )


def parse_history(columns: Sequence[str], rows: Iterable[Any]) -> tuple[ItemHistory, ...]:
    """The result table of QUERY as ItemHistory records (columns found by name). Rows are sequences
    of values, or the SDK's LogsTableRow (indexable and sized the same way)."""
    index = {name: n for n, name in enumerate(columns)}
    missing = {"BackupItemUniqueId", "Runs", "Completed", "Warnings", "Failures"} - set(index)
    if missing:
        raise ValueError(f"the history table lacks the columns {sorted(missing)}")

    def get(row: Any, name: str) -> Any:
        n = index.get(name)
        return row[n] if n is not None and n < len(row) else None

    items = []
    for row in rows:
        failed_at = _as_datetime(get(row, "FailedAt"))
        items.append(
            ItemHistory(
                backup_item=str(get(row, "BackupItemUniqueId") or ""),
                vm_id=str(get(row, "VmId") or ""),
                vm_name=str(get(row, "VmName") or ""),
                vault=str(get(row, "Vault") or ""),
                runs=int(get(row, "Runs") or 0),
                completed=int(get(row, "Completed") or 0),
                warnings=int(get(row, "Warnings") or 0),
                failures=int(get(row, "Failures") or 0),
                last_run=_as_datetime(get(row, "TimeGenerated")),
                last_status=str(get(row, "JobStatus") or ""),
                # arg_max over FailedAt gives some row's code when nothing failed: only a failure's counts.
                last_failure_code=(str(get(row, "JobFailureCode") or "") or None) if failed_at else None,
                last_failure_time=failed_at,
            )
        )
    return tuple(items)


def history_rows(history: JobHistory) -> list[dict[str, str]]:
    """Rows a report can show, worst success rate first: VM, vault, runs, success rate, failures,
    warnings, last run and status, last failure and its time. Times are UTC, to the minute."""
    ordered = sorted(
        history.items,
        key=lambda i: (
            i.success_rate if i.success_rate is not None else 2.0,
            -i.failures,
            -i.warnings,
            i.vm_name.lower(),
        ),
    )
    return [
        {
            "VM": item.vm_name or item.backup_item,
            "Vault": item.vault,
            "Runs": str(item.runs),
            "Success rate": percent(item.success_rate),
            "Failures": str(item.failures),
            "Warnings": str(item.warnings),
            "Last run": _minute(item.last_run),
            "Last status": item.last_status,
            "Last failure": item.last_failure_code or "",
            "Last failure time": _minute(item.last_failure_time),
        }
        for item in ordered
    ]


def history_summary(history: JobHistory) -> dict[str, str]:
    """One line for the whole workspace: items, runs, success rate, failures, warnings, and Logs'
    error if there was one."""
    summary = {
        "Period": f"{history.days} days",
        "Backup items": str(len(history.items)),
        "Runs": str(history.runs),
        "Success rate": percent(history.success_rate),
        "Failures": str(history.failures),
        "Warnings": str(history.warnings),
    }
    if history.error:
        summary["Error"] = history.error
    return summary


def percent(rate: float | None) -> str:
    """0.9667 -> "96.7 %"; None -> "-"."""
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _minute(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _as_datetime(value: Any) -> dt.datetime | None:
    """A datetime from the SDK (already parsed) or an ISO 8601 string; aware, in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        head, dot, tail = text.partition(".")
        if dot:  # Python reads at most 6 fractional digits; Log Analytics may send 7
            digits = "".join(ch for ch in tail if ch.isdigit())
            text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
