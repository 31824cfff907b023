"""The shape of Azure's GUIDs (subscription, tenant and workspace ids), armsim's one pattern of them."""

from __future__ import annotations

import re

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
