"""RFC 9457 problems: the error answers of the HTTP API (application/problem+json)."""

from __future__ import annotations

from typing import Any


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
