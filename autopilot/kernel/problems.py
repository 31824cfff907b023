"""RFC 9457 problems: the error answers of the HTTP API (application/problem+json)."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Caller-supplied text made safe for logs and audit rows: control characters (newlines
    included, so no one can forge a log line) written as \\xNN / \\uNNNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class Problem(Exception):
    """What was wrong (detail), which field, and the HTTP status; `type` is a stable URN per kind."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:backup-autopilot:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field:
            body["field"] = self.field
        return body
