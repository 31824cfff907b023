"""POST /api/backups: the request's signature (when the operator requires one; a refused one is
audited), the request itself, its callback address, then the backup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autopilot.backup_now.callback_target import check_callback_url
from autopilot.backup_now.request import MAX_BODY_BYTES, parse_request
from autopilot.backup_now.start import request_backup
from autopilot.kernel.api import check_signed
from autopilot.kernel.problems import Problem

if TYPE_CHECKING:
    from autopilot.app import Autopilot


def accept(
    autopilot: Autopilot, headers: Mapping[str, str], body: bytes, now: dt.datetime
) -> tuple[int, dict[str, Any]]:
    """POST /api/backups: the signature (when the operator requires one), the request, its callback
    address, then the backup. Refused signatures are audited. Raises Problem."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413, "body-too-large", "The request body is too large", f"The limit is {MAX_BODY_BYTES} bytes."
        )
    check_signed(autopilot, headers, body, now, "backup-now")
    request = parse_request(body, autopilot.settings.backup_retain_days, now)
    if request.callback_url:
        check_callback_url(
            request.callback_url,
            autopilot.settings.callback_allowed_hosts,
            autopilot.settings.callback_http_allowed,
        )
    return request_backup(autopilot, request, source=f"http:{request.request_id}")
