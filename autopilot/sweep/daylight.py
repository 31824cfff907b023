"""Daylight saving time ahead: Azure Backup keeps a policy's time in its time zone's standard offset,
so a backup moves by an hour for part of the year; the sweep says so a few days before it happens."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from autopilot.kernel.findings import Finding
from autopilot.rules import Rules

if TYPE_CHECKING:
    pass

log = logging.getLogger("autopilot.sweep.daylight")


def dst_findings(rules: Rules, now: dt.datetime, warn_days: int) -> list[Finding]:
    """Policies scheduled in a time zone whose daylight saving time changes within `warn_days`: Azure
    keeps the schedule at the zone's standard offset, so the backup moves by an hour in local time."""
    findings = []
    for spec in rules.policies:
        if not spec.has_dst:
            continue
        change = _next_offset_change(spec.iana_time_zone, now, warn_days)
        if change is None:
            continue
        findings.append(
            Finding(
                "dst-change-ahead",
                f"policy:{spec.name}",
                f"policy {spec.name} runs at {spec.time} {spec.time_zone}; daylight saving time changes on "
                f"{change:%Y-%m-%d} and Azure does not adjust backup schedules, so from then the backup runs an hour "
                "earlier or later in local time",
                "If the backup window matters (e.g. before a batch job), move the policy's time after the change.",
                "reported",
                policy=spec.name,
                detail=change.strftime("%Y-%m-%d"),
            )
        )
    return findings


def _next_offset_change(zone_name: str, now: dt.datetime, days: int) -> dt.datetime | None:
    zone = ZoneInfo(zone_name)
    offset = now.astimezone(zone).utcoffset()
    for hour in range(1, days * 24 + 1):
        moment = now + dt.timedelta(hours=hour)
        if moment.astimezone(zone).utcoffset() != offset:
            return moment
    return None
