"""Paged lists with nextLink (as ARM pages) and the simple OData $filter the backup lists take."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from armsim.core.errors import ArmError
from armsim.core.http import Request, Response


def paged(
    request: Request, items: Sequence[Any], page_size: int, render: Callable[[Any], Any] | None = None
) -> Response:
    """One page of `items` from `$skiptoken`, with a nextLink to the rest; `render` shapes the page's items."""
    token = request.query.get("$skiptoken", "0")
    if not token.isdigit():
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{token}' is not valid for this list.")
    start = int(token)
    page = [render(item) if render else item for item in items[start : start + page_size]]
    body: dict[str, Any] = {"value": page}
    if start + page_size < len(items):
        query = {k: v for k, v in request.query.items() if k not in ("api-version", "$skiptoken")}
        body["nextLink"] = request.url_for(request.path, **query, **{"$skiptoken": str(start + page_size)})
    return Response(200, body)


_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def parse_filter(expression: str | None, allowed: Sequence[str]) -> dict[str, str]:
    """`a eq 'x' and b eq 'y'` as {a: x, b: y}; field names case-insensitive, in `allowed`."""
    if not expression:
        return {}
    result: dict[str, str] = {}
    by_lower = {name.lower(): name for name in allowed}
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if not m:
            raise ArmError(
                400,
                "BMSUserErrorInvalidFilter",
                f"The filter clause '{clause.strip()}' is not supported; use <field> eq '<value>' joined by 'and'.",
            )
        name = by_lower.get(m.group(1).lower())
        if name is None:
            raise ArmError(
                400,
                "BMSUserErrorInvalidFilter",
                f"The filter field '{m.group(1)}' is not supported here; supported: {', '.join(allowed)}.",
            )
        result[name] = m.group(2).replace("''", "'")
    return result
