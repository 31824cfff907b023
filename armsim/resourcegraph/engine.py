"""KQL over Resource Graph's tables, with duckdb-kql (as armsim's Log Analytics does).

A snapshot's tables are loaded once into an in-memory DuckDB database (base tables out of a query's
reach). A query sees them through views in a catalog of its scope: every subscription (the tenant), or
the subscriptions of the request (or of its management groups). `now()` and `ago()` are pinned to the
simulated time of the snapshot. Whatever duckdb-kql cannot parse, translate or run is an error, never
a guessed answer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from armsim.core.ids import GUID
from armsim.resourcegraph.models import COLUMNS, DYNAMIC, TABLES, Snapshot, Tables

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

_BASE = "memory.arg_base"


class QueryError(Exception):
    """kind: syntax (the parser's line, position and token), semantic, unsupported, engine."""

    def __init__(self, kind: str, message: str, line: int = 1, pos: int = 0, token: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line
        self.pos = pos
        self.token = token


@dataclass
class Result:
    columns: list[dict[str, str]]  # [{"name", "type"}]
    rows: list[list[Any]]  # JSON-ready values


def load(tables: Tables) -> DuckDBPyConnection:
    import duckdb_kql

    con = duckdb_kql.connect(":memory:", config={"enable_external_access": False})
    con.execute(f"CREATE SCHEMA {_BASE}")
    for table in TABLES:
        cols = tables.columns.get(table) or {c: [] for c in COLUMNS}
        selects = ", ".join(
            f'CAST(unnest(${n + 1}::VARCHAR[]) AS {"JSON" if c in DYNAMIC else "VARCHAR"}) AS "{c}"'
            for n, c in enumerate(COLUMNS)
        )
        con.execute(f'CREATE TABLE {_BASE}."{table}" AS SELECT {selects}', [cols[c] for c in COLUMNS])
    return con


def _catalog(snapshot: Snapshot, subscriptions: set[str] | None) -> str:
    """The catalog whose views show the scope's rows (made once per snapshot and scope)."""
    key = "*" if subscriptions is None else ",".join(sorted(subscriptions))
    con = snapshot.connection
    known = snapshot.scopes  # the caller holds the snapshot's lock
    if key in known:
        return known[key]
    name = f"scope_{len(known)}"
    con.execute(f"ATTACH ':memory:' AS {name}")
    for table in TABLES:
        where = ""
        if subscriptions is not None:
            listed = ", ".join(f"'{s.lower()}'" for s in sorted(subscriptions) if GUID.match(s)) or "''"
            where = f" WHERE lower(subscriptionId) IN ({listed})"
        con.execute(f'CREATE VIEW {name}."{table}" AS SELECT * FROM {_BASE}."{table}"{where}')  # noqa: S608
    known[key] = name
    return name


def run(snapshot: Snapshot, query: str, subscriptions: set[str] | None, max_rows: int) -> Result:
    import duckdb
    import duckdb_kql
    from duckdb_kql.types import kusto_type

    if re.match(r"^\s*(//[^\n]*\n\s*)*\.", query):
        raise QueryError("syntax", "Control commands are not queries.", 1, 0, ".")
    if re.search(r"\b(cluster|database)\s*\(", query, re.IGNORECASE):
        raise QueryError("unsupported", "cluster() and database() are not part of Resource Graph.")
    with snapshot.lock:
        catalog = _catalog(snapshot, subscriptions)
        cursor = snapshot.connection.cursor()
    try:
        now = dt.datetime.fromtimestamp(snapshot.tables.taken_sim, dt.UTC).replace(tzinfo=None)
        try:
            relation = duckdb_kql.kql(cursor, query, database=catalog, allow_write=False, query_now=now)
        except duckdb_kql.KqlSyntaxError as exc:
            diagnostics = getattr(exc, "diagnostics", None) or []
            line, pos, token = 1, 0, ""
            if diagnostics:
                line, pos = diagnostics[0].span.line, diagnostics[0].span.column
                found = re.search(r"input '([^']*)'", diagnostics[0].message)
                token = found.group(1) if found else ""
            raise QueryError("syntax", str(exc), line, pos, token) from None
        except duckdb_kql.KqlSchemaError as exc:
            raise QueryError("semantic", str(exc), token=getattr(exc, "name", "") or "") from None
        except duckdb_kql.KqlError as exc:
            raise QueryError("unsupported", str(exc)) from None
        except duckdb.Error as exc:
            raise QueryError("engine", str(exc)) from None
        try:
            types = [kusto_type(t) for t in relation.types]
            fetched = relation.limit(max_rows).fetchall()
        except duckdb.Error as exc:
            raise QueryError("engine", str(exc)) from None
        columns = [{"name": n, "type": _arg_type(t)} for n, t in zip(relation.columns, types, strict=True)]
        rows = [[_value(v, t) for v, t in zip(row, types, strict=True)] for row in fetched]
        return Result(columns, rows)
    finally:
        cursor.close()


def _arg_type(kusto: str) -> str:
    """Column types as ARG's table format names them (chosen: ARG's own names, string, integer,
    number, boolean, datetime, object)."""
    return {
        "long": "integer",
        "int": "integer",
        "real": "number",
        "decimal": "number",
        "bool": "boolean",
        "dynamic": "object",
        "timespan": "string",
        "guid": "string",
    }.get(kusto, kusto)


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "dynamic":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return text + "Z"
    if isinstance(value, dt.timedelta | dt.date | dt.time):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if not isinstance(value, str | int | float | bool | list | dict):
        return str(value)
    return value
