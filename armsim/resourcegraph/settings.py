"""The settings of armsim's Azure Resource Graph (POST /_armsim/config {"resourceGraph": {...}})."""

from __future__ import annotations

from typing import Any

DEFAULT_SETTINGS: dict[str, Any] = {
    "lagSeconds": 30.0,  # how stale ARG's data may be (wall time)
    "quota": 15,  # queries per user ...
    "quotaWindowSeconds": 5.0,  # ... in a window of this many seconds
    "pageSize": 1000,  # rows per page at most (the API's $top maximum)
}


def merge_settings(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(change, dict):
        raise ValueError("resourceGraph must be an object")
    unknown = set(change) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValueError(
            f"unknown resourceGraph settings {sorted(unknown)}; known: {sorted(DEFAULT_SETTINGS)}"
        )
    merged = dict(current)
    for key, value in change.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"resourceGraph.{key} must be a number of 0 or more")
        if key in ("quota", "pageSize") and (int(value) != value or value < 1):
            raise ValueError(f"resourceGraph.{key} must be a whole number of 1 or more")
        if key == "pageSize" and value > 1000:
            raise ValueError("resourceGraph.pageSize is at most 1000 (ARG's limit)")
        merged[key] = value
    return merged
