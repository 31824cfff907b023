"""Reading the rules' `posture` section (docs/RULES.md, "Vault security posture"), with the rules
loader's line-numbered errors. Called by autopilot/rules/__init__.py's parse_rules."""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import ScalarNode

from autopilot.rules.loader import _choice, _choices, _Field, _int, _list, _mapping

LEVELS = ("Poor", "Fair", "Good", "Excellent")
RETENTION_DAYS = (14, 180)  # soft delete keeps deleted backup data 14 to 180 days (Azure Backup docs)
REDUNDANCIES = ("GeoRedundant", "LocallyRedundant", "ZoneRedundant")
# Controls the rules may require of every vault.
CONTROLS = (
    "softDelete",  # soft delete Enabled or AlwaysON
    "softDeleteAlwaysOn",  # soft delete AlwaysON (irreversible)
    "immutability",  # immutability Unlocked or Locked
    "immutabilityLocked",  # immutability Locked (irreversible)
    "multiUserAuthorization",  # a Resource Guard protects the vault's critical operations
    "crossRegionRestore",  # restores in the paired region (geo-redundant vaults only)
    "publicNetworkAccessDisabled",  # the vault is reached through private endpoints only
)
# Changes the rules may allow the sweep to make (all reversible).
FIXES = ("softDelete", "softDeleteRetention", "immutability")
IRREVERSIBLE = {
    "immutabilityLocked": "locking immutability is irreversible",
    "softDeleteAlwaysOn": "always-on soft delete is irreversible",
    "lockImmutability": "locking immutability is irreversible",
}


@dataclass(frozen=True)
class PostureRules:
    """The rules' `posture` section (docs/RULES.md)."""

    minimum_level: str = "Poor"
    require: tuple[str, ...] = ("softDelete",)
    soft_delete_retention_days: int = RETENTION_DAYS[0]  # at least
    fix: tuple[str, ...] = ()
    storage_redundancy: tuple[str, ...] = ()  # accepted redundancies; empty: the vault's own in the rules


_KEYS = ("minimumLevel", "require", "softDeleteRetentionDays", "fix", "storageRedundancy")
_FIX_NEEDS = {"softDelete": "softDelete", "immutability": "immutability"}


def parse_posture(f: _Field) -> PostureRules:
    keys = _mapping(f, _KEYS)
    minimum = _choice(keys["minimumLevel"], LEVELS) if "minimumLevel" in keys else "Poor"
    require = PostureRules().require
    if "require" in keys:
        require = _names(keys["require"], CONTROLS, "controls")
    low, high = RETENTION_DAYS
    days = low
    if "softDeleteRetentionDays" in keys:
        days = _int(
            keys["softDeleteRetentionDays"],
            low,
            high,
            f"Azure keeps soft-deleted backup data {low} to {high} days",
        )
    fix: tuple[str, ...] = ()
    if "fix" in keys:
        fix = _fixes(keys["fix"])
        for name, needed in _FIX_NEEDS.items():
            if name in fix and needed not in require and f"{needed}Locked" not in require:
                raise keys["fix"].error(
                    f"fix '{name}' acts on a control the rules do not require: add {needed} to posture.require, "
                    f"or remove {name} from fix"
                )
    redundancy: tuple[str, ...] = ()
    if "storageRedundancy" in keys:
        redundancy = _names(keys["storageRedundancy"], REDUNDANCIES, "storage redundancies")
        if "crossRegionRestore" in require and "GeoRedundant" not in redundancy:
            raise keys["storageRedundancy"].error(
                "posture.require has crossRegionRestore, which needs GeoRedundant storage; accept GeoRedundant "
                "or drop crossRegionRestore"
            )
    return PostureRules(minimum, require, days, fix, redundancy)


def _names(f: _Field, choices: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A list of names from `choices` (an empty list is allowed: nothing required)."""
    if not _list(f, what, non_empty=False):
        return ()
    return _choices(f, choices, what)


def _fixes(f: _Field) -> tuple[str, ...]:
    for item in _list(f, "fixes", non_empty=False):
        node = item.node
        value = str(node.value).strip() if isinstance(node, ScalarNode) else ""
        if value in IRREVERSIBLE:
            raise item.error(
                f"'{value}' cannot be a fix: {IRREVERSIBLE[value]}, so a person decides it (the finding says how); "
                f"the sweep may fix {', '.join(FIXES)}"
            )
    return _names(f, FIXES, "fixes")
