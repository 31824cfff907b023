"""HTTP trigger route templates (``items/{id}``, ``{id:int}``, ``{name?}``, ``{*rest}``)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from .config import HostError

__all__ = ["RouteTemplate"]

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
}
_PARAMETER = re.compile(r"^(?P<star>\*)?(?P<name>[A-Za-z_]\w*)(?::(?P<constraint>[a-z]+))?(?P<optional>\?)?$")
_TOKEN = re.compile(r"\{([^{}]*)\}")


class RouteTemplate:
    """One route, matched case-insensitively against the path after the route prefix."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.parameter_count = 0
        pattern = ""
        for index, segment in enumerate(self.template.split("/") if self.template else []):
            separator = "/" if index else ""
            part, optional = self._segment(segment)
            pattern += f"(?:{separator}{part})?" if optional else separator + part
        self._regex = re.compile(f"^{pattern}/?$", re.IGNORECASE)

    def _segment(self, segment: str) -> tuple[str, bool]:
        """Regex of one segment, and whether the whole segment is one optional parameter."""
        parts: list[str] = []
        position = 0
        optional_alone = False
        for token in _TOKEN.finditer(segment):
            parts.append(re.escape(segment[position : token.start()]))
            position = token.end()
            match = _PARAMETER.match(token.group(1))
            if match is None:
                raise HostError(
                    f"route {self.template!r}: devhost cannot read the parameter {token.group(0)!r}"
                )
            constraint = match.group("constraint")
            if constraint is not None and constraint not in _CONSTRAINTS:
                raise HostError(
                    f"route {self.template!r}: devhost does not support the route constraint {constraint!r} "
                    f"(supported: {', '.join(sorted(_CONSTRAINTS))})"
                )
            value = ".*" if match.group("star") else _CONSTRAINTS.get(constraint or "", "[^/]+")
            parts.append(f"(?P<{match.group('name')}>{value})")
            self.parameter_count += 1
            optional_alone = (
                bool(match.group("optional") or match.group("star")) and token.group(0) == segment
            )
        parts.append(re.escape(segment[position:]))
        return "".join(parts), optional_alone

    def match(self, path: str) -> dict[str, str] | None:
        """Route values (URL-decoded) when ``path`` (no prefix, no query) fits, else None."""
        found = self._regex.match(path.strip("/"))
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items() if value is not None}
