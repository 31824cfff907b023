"""KQL evaluation: AddonAzureBackupJobs in an in-memory DuckDB database, queried through duckdb-kql.

Each query gets a fresh DuckDB connection (no file or network access) holding the table as the
workspace has it at that moment. duckdb-kql translates the KQL to SQL; `now()` and `ago()` are pinned
to armsim's simulated clock with duckdb-kql's `query_now` (its translator renders the clock as one bound
value instead of DuckDB's wall-clock `now()`), so `ago(1d)` means one simulated day ago. A query
duckdb-kql cannot parse, translate or run raises QueryError; nothing is ever guessed.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from armsim.loganalytics.models import COLUMNS, TABLE, JobRows

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

#: Log Analytics returns at most this many rows; the rest is cut with a PartialError.
MAX_ROWS = 500_000


class QueryError(Exception):
    """A query armsim cannot answer. kind: syntax, semantic, unsupported, engine, timeout, unavailable."""

    def __init__(
        self, kind: str, message: str, *, line: int = 0, pos: int = 0, near: str = "", name: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line
        self.pos = pos
        self.near = near  # the token the parser stopped at
        self.name = name


@dataclass
class QueryResult:
    columns: list[dict[str, str]]  # [{"name", "type"}] with Log Analytics type names
    rows: list[list[Any]]  # JSON-ready values
    truncated: bool
    table_rows: int  # rows of AddonAzureBackupJobs the query saw
    seconds: float


def run_query(rows: JobRows, query: str, timeout: float, max_rows: int = MAX_ROWS) -> QueryResult:
    """Load `rows` as AddonAzureBackupJobs and evaluate the KQL `query` at the simulated now."""
    started = time.perf_counter()
    try:
        import duckdb
        import duckdb_kql
        from duckdb_kql.types import kusto_type
    except ImportError as exc:
        raise QueryError(
            "unavailable",
            f"armsim needs duckdb and duckdb-kql to evaluate KQL ({exc}); install requirements-dev.txt.",
        ) from None
    if _is_command(query):
        raise QueryError(
            "syntax",
            "Control commands (starting with '.') are not accepted by the query API.",
            line=1,
            pos=0,
            near=".",
        )
    if _CROSS_REFERENCE.search(query):
        raise QueryError(
            "unsupported",
            "database() and cluster() references are not simulated: a workspace holds AddonAzureBackupJobs only",
        )
    con = duckdb_kql.connect(":memory:", config={"enable_external_access": False})
    timer: threading.Timer | None = None
    try:
        load_table(con, rows)
        now = dt.datetime.fromtimestamp(rows.now, dt.UTC).replace(tzinfo=None)
        try:
            relation = duckdb_kql.kql(con, query, database=CATALOG, allow_write=False, query_now=now)
        except duckdb_kql.KqlSyntaxError as exc:
            line, pos, token = _syntax_position(exc)
            raise QueryError("syntax", str(exc), line=line, pos=pos, near=token) from None
        except duckdb_kql.KqlSchemaError as exc:
            raise QueryError("semantic", str(exc), name=exc.name) from None
        except duckdb_kql.KqlError as exc:
            raise QueryError("unsupported", str(exc)) from None
        except duckdb.Error as exc:
            raise _engine_error(duckdb, exc) from None
        timer = threading.Timer(timeout, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            types = [kusto_type(t) for t in relation.types]
            fetched = relation.limit(max_rows + 1).fetchall()
        except duckdb.Error as exc:
            raise _engine_error(duckdb, exc) from None
        columns = [{"name": n, "type": t} for n, t in zip(relation.columns, types, strict=True)]
        truncated = len(fetched) > max_rows
        out = [[_value(v, t) for v, t in zip(row, types, strict=True)] for row in fetched[:max_rows]]
        return QueryResult(columns, out, truncated, len(rows), time.perf_counter() - started)
    finally:
        if timer is not None:
            timer.cancel()
        con.close()


def load_table(con: DuckDBPyConnection, rows: JobRows) -> None:
    """Create AddonAzureBackupJobs: a view in the `workspace` catalog joining the jobs to their item,
    kind and vault. The base tables live in a schema of the default catalog, out of a query's reach
    (queries resolve table names in `workspace` only)."""
    con.execute(f"ATTACH ':memory:' AS {CATALOG}")
    con.execute(f"CREATE SCHEMA {_BASE}")
    con.execute(
        f"CREATE TABLE {_BASE}.jobs AS SELECT unnest($1::VARCHAR[]) AS job_id, unnest($2::INTEGER[]) AS item, "
        "unnest($3::INTEGER[]) AS variant, "
        f"{_ts('unnest($4::DOUBLE[])')} AS started, {_ts('unnest($5::DOUBLE[])')} AS finished, "
        "unnest($5::DOUBLE[]) - unnest($4::DOUBLE[]) AS seconds",
        [rows.job_id, rows.item, rows.variant, rows.start, rows.end],
    )
    _load(con, "items", [("idx", "INTEGER")] + [(f, "VARCHAR") for f in _ITEM_FIELDS],
          [list(range(len(rows.items)))] + [[i[f] for i in rows.items] for f in _ITEM_FIELDS])  # fmt: skip
    _load(con, "variants", [("idx", "INTEGER")] + [(f, "VARCHAR") for f in _VARIANT_FIELDS],
          [list(range(len(rows.variants)))] + [[v[n] for v in rows.variants] for n in range(len(_VARIANT_FIELDS))])  # fmt: skip
    _load(
        con,
        "vaults",
        [(f, "VARCHAR") for f in _VAULT_FIELDS],
        [[v[f] for v in rows.vaults] for f in _VAULT_FIELDS],
    )
    con.execute(_VIEW_SQL)


def _load(
    con: DuckDBPyConnection, table: str, fields: list[tuple[str, str]], columns: list[list[Any]]
) -> None:
    selects = ", ".join(f"unnest(${n + 1}::{kind}[]) AS {name}" for n, (name, kind) in enumerate(fields))
    con.execute(f"CREATE TABLE {_BASE}.{table} AS SELECT {selects}", columns)


def _ts(seconds: str) -> str:
    return f"make_timestamp(CAST(round({seconds} * 1000000) AS BIGINT))"


#: Queries name their tables in this catalog only (duckdb-kql's `database=`), so DuckDB's own catalog
#: views (pg_class, duckdb_tables, ...) are unknown tables, as they are to Log Analytics.
CATALOG = "workspace"
_BASE = "memory.armsim_base"  # in the default catalog, where `union *` over the workspace does not look
_ITEM_FIELDS = ("item_id", "vm_id", "name", "vault_key", "unique_id", "container_unique_id")
_VARIANT_FIELDS = ("tenant", "operation", "kind", "status", "code")
_VAULT_FIELDS = (
    "vault_key",
    "id",
    "name",
    "resource_group",
    "subscription",
    "location",
    "redundancy",
    "tags",
    "unique_id",
)

# Values per column: see armsim/loganalytics/models.py and docs/ARMSIM.md (Azure Monitor Logs).
_SELECT: dict[str, str] = {
    "TenantId": "k.tenant",
    "TimeGenerated": "j.finished",
    "AdHocOrScheduledJob": "CASE WHEN k.kind = 'Scheduled' THEN 'Scheduled' ELSE 'Adhoc' END",
    "ArchiveTierStorageReplicationType": "''",
    "AzureDataCenter": "v.location",
    "BackupItemFriendlyName": "i.name",
    "BackupItemId": "i.item_id",
    "BackupItemUniqueId": "i.unique_id",
    "BackupManagementServerUniqueId": "''",
    "BackupManagementType": "'IaaSVM'",
    "Category": f"'{TABLE}'",
    "DatasourceFriendlyName": "i.name",
    "DatasourceResourceId": "i.vm_id",
    "DatasourceSetFriendlyName": "i.name",
    "DatasourceSetResourceId": "i.vm_id",
    "DatasourceSetType": "'Microsoft.Compute/virtualMachines'",
    "DatasourceType": "'Microsoft.Compute/virtualMachines'",
    "DataTransferredInMB": "0",
    "ExtendedProperties": "'{}'",
    "JobDurationInSecs": "j.seconds",
    "JobFailureCode": "k.code",
    "JobOperation": "k.operation",
    "JobOperationSubType": "''",
    "JobStartDateTime": "j.started",
    "JobStatus": "k.status",
    "JobUniqueId": "j.job_id",
    "OperationName": "'Job'",
    "ProtectedContainerUniqueId": "i.container_unique_id",
    "RecoveryJobDestination": "''",
    "RecoveryJobRPDateTime": "NULL",
    "RecoveryJobRPLocation": "''",
    "RecoveryLocationType": "''",
    "ResourceGroupName": "v.resource_group",
    "ResourceId": "upper(v.id)",
    "SchemaVersion": "'V2'",
    "SourceSystem": "'Azure'",
    "State": "'Active'",
    "StorageReplicationType": "v.redundancy",
    "SubscriptionId": "v.subscription",
    "Type": f"'{TABLE}'",
    "VaultName": "v.name",
    "VaultTags": "v.tags",
    "VaultType": "'Microsoft.RecoveryServices/vaults'",
    "VaultUniqueId": "v.unique_id",
    # An estimate of the record's size: its strings plus a fixed share for the rest.
    "_BilledSize": "700 + 2 * length(i.item_id) + 2 * length(i.vm_id) + length(v.id)",
    "_IsBillable": "'True'",
    "_ResourceId": "lower(v.id)",
    "_SubscriptionId": "lower(v.subscription)",
}
_DUCK_TYPES = {"string": "VARCHAR", "datetime": "TIMESTAMP", "real": "DOUBLE", "dynamic": "JSON"}
assert [c for c, _ in COLUMNS] == list(_SELECT), "the SQL must give every column of COLUMNS, in order"
_VIEW_SQL = (
    f'CREATE VIEW {CATALOG}."{TABLE}" AS SELECT '  # noqa: S608 - constants only
    + ", ".join(f'CAST({_SELECT[name]} AS {_DUCK_TYPES[kind]}) AS "{name}"' for name, kind in COLUMNS)
    + f" FROM {_BASE}.jobs j JOIN {_BASE}.items i ON j.item = i.idx JOIN {_BASE}.variants k ON j.variant = k.idx"
    + f" JOIN {_BASE}.vaults v ON i.vault_key = v.vault_key"
)

_CROSS_REFERENCE = re.compile(r"\b(cluster|database)\s*\(", re.IGNORECASE)
_COMMENT = re.compile(r"^\s*(//[^\n]*\n\s*)*")


def _is_command(query: str) -> bool:
    return _COMMENT.sub("", query, count=1).startswith(".")


def _syntax_position(exc: Exception) -> tuple[int, int, str]:
    diagnostics = getattr(exc, "diagnostics", None) or []
    line, pos, token = 1, 0, ""
    if diagnostics:
        first = diagnostics[0]
        line, pos = first.span.line, first.span.column
        found = re.search(r"input '([^']*)'", first.message) or re.search(r"at '([^']*)'", first.message)
        token = found.group(1) if found else ""
    return line, pos, token


def _engine_error(duckdb: Any, exc: Exception) -> QueryError:
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        return QueryError("timeout", "The query was cancelled: it ran longer than its server timeout.")
    if isinstance(exc, duckdb.CatalogException):
        found = re.search(r'with name "?([^"!\s]+)"? does not exist', text)
        return QueryError("semantic", text, name=found.group(1) if found else "")
    if isinstance(exc, duckdb.BinderException):
        found = re.search(r'column "([^"]+)" not found', text)
        if found:
            return QueryError("semantic", text, name=found.group(1))
    return QueryError("engine", text)


def _value(value: Any, kind: str) -> Any:
    """One result value as Log Analytics writes it in JSON."""
    if value is None:
        return None
    if kind == "datetime":
        return _datetime(value)
    if kind == "timespan":
        return _timespan(value)
    if kind == "dynamic":
        return value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    elif isinstance(value, dt.date):
        value = dt.datetime(value.year, value.month, value.day)
    else:
        return str(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _timespan(value: Any) -> str:
    """Kusto's timespan text: [-][d.]hh:mm:ss[.fffffff]."""
    if isinstance(value, dt.time):
        value = dt.timedelta(
            hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
        )
    if not isinstance(value, dt.timedelta):
        return str(value)
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    days, rest = value.days, value.seconds
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return f"{sign}{days}.{text}" if days else f"{sign}{text}"
