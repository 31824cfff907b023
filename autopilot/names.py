"""Azure's names and ids, as every layer reads them: the patterns of subscription ids, management
group ids and resource group names, a resource id's parts, and SDK values as plain text. The bottom
of the package: it imports nothing of the autopilot's."""

from __future__ import annotations

import re
from enum import Enum

from azure.mgmt.core.tools import parse_resource_id

# A GUID, as Azure writes subscription ids (the one GUID pattern of the product).
SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MANAGEMENT_GROUP = re.compile(r"^[A-Za-z0-9_().-]{1,90}$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")


def split_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of a resource id."""
    parts = parse_resource_id(resource_id)
    return (
        str(parts.get("subscription", "")),
        str(parts.get("resource_group", "")),
        str(parts.get("name", "")),
    )


def same_id(a: str | None, b: str | None) -> bool:
    """ARM may return an id in another letter case than it was written: compare case-insensitively."""
    return (a or "").lower() == (b or "").lower()


def text(value: object) -> str:
    """An SDK value as plain text: the SDK's enums print as 'ProtectionState.PROTECTED' with str()."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)
