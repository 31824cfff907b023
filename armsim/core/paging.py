"""Paged lists with nextLink (as ARM pages) and the simple OData $filter the backup lists take."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from armsim.core.errors import BadRequest
from armsim.core.http import Request, Response

Position = tuple[Any, ...]


def by_id(item: Any) -> Position:
    """A list's default order: by resource id, as ARM lists are not in insertion order either."""
    identifier = item.get("id") if isinstance(item, dict) else None
    if identifier is None:
        identifier = item["model"]["id"]
    return (str(identifier).lower(),)


def paged(
    request: Request,
    items: Sequence[Any],
    page_size: int,
    render: Callable[[Any], Any] | None = None,
    position: Callable[[Any], Position] = by_id,
) -> Response:
    """One page of `items` after `$skiptoken`, with a nextLink to the rest; `render` shapes the page's
    items. The list is ordered by `position` (unique per item: the id, or e.g. newest first and then
    the id), and the token names the last position given, not an offset: an item that is there from
    the first page to the last is listed exactly once however the list changes in between, as Azure's
    opaque skip tokens behave (an offset would skip or repeat items when one is added or removed)."""
    ordered = sorted(items, key=position)
    positions = [position(item) for item in ordered]
    start = 0
    token = request.query.get("$skiptoken")
    if token is not None:
        try:
            start = bisect.bisect_right(positions, _decode(token))
        except TypeError:  # a token of another list
            raise BadRequest(
                "InvalidSkipToken", f"The skip token '{token}' is not valid for this list."
            ) from None
    end = start + page_size
    page = [render(item) if render else item for item in ordered[start:end]]
    body: dict[str, Any] = {"value": page}
    if end < len(ordered):
        query = {k: v for k, v in request.query.items() if k not in ("api-version", "$skiptoken")}
        body["nextLink"] = request.url_for(
            request.path, **query, **{"$skiptoken": _encode(positions[end - 1])}
        )
    return Response(200, body)


def newest_first(time_field: str) -> Callable[[Any], Position]:
    """The order of lists Azure gives newest first (jobs, recovery points), ties by id."""
    return lambda item: (-float(item[time_field]), str(item["id"]).lower())


def _encode(position: Position) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def _decode(token: str) -> Position:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        value = None
    if not isinstance(value, list) or not value:
        raise BadRequest("InvalidSkipToken", f"The skip token '{token}' is not valid for this list.")
    return tuple(value)


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
            raise BadRequest(
                "BMSUserErrorInvalidFilter",
                f"The filter clause '{clause.strip()}' is not supported; use <field> eq '<value>' joined by 'and'.",
            )
        name = by_lower.get(m.group(1).lower())
        if name is None:
            raise BadRequest(
                "BMSUserErrorInvalidFilter",
                f"The filter field '{m.group(1)}' is not supported here; supported: {', '.join(allowed)}.",
            )
        result[name] = m.group(2).replace("''", "'")
    return result
