"""Azure's documented limits that armsim enforces, and the answers it gives when one is reached.

Each limit is documented by Microsoft (docs/research/azure-limits.md); the answer Azure gives is
evidenced only for some. Where no answer was ever captured, armsim answers with the nearest evidenced
code and keeps the code (and status) configurable: SUPPORTED_OPERATIONS.md, "Limits", says which is
which and how sure it is.

    POST /_armsim/config {"limits": {"policiesPerVault": 5}}                   # a new maximum
    POST /_armsim/config {"limits": {"policiesPerVault": {"enabled": false}}}  # off
    POST /_armsim/config {"limits": {"enabled": false}}                        # all off
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMITS: dict[str, Any] = {
    "enabled": True,
    # Azure VMs per Recovery Services vault (Backup FAQ: "up to 1000 Azure Virtual machines per vault").
    # Every item of the vault holds a place: protected, IRPending, stopped with data, soft-deleted.
    # Enabling protection beyond it is accepted (202) and its ConfigureBackup job and operation fail
    # with `code` (synchronous: false); synchronous: true refuses the PUT with `status` instead.
    "protectedItemsPerVault": {
        "enabled": True,
        "max": 1000,
        "code": "UserErrorProtectionQuotaExceeded",
        "synchronous": False,
        "status": 400,
    },
    # Backup policies per vault (Backup FAQ: "You can only have up to 200 policies per vault").
    "policiesPerVault": {
        "enabled": True,
        "max": 200,
        "code": "BMSUserErrorInvalidPolicyInput",
        "status": 400,
    },
    # Policy creates and edits per vault in a sliding window of simulated time (Backup FAQ: "limited to
    # 50 over a span of 24 hours").
    "policyWritesPerVault": {
        "enabled": True,
        "max": 50,
        "windowSeconds": 86400,
        "code": "CloudDosAbsoluteLimitReached",
        "status": 400,
    },
    # Recovery Services vaults per subscription and region (Backup FAQ: "up to 500 Recovery Services
    # vaults, per supported region of Azure Backup, per subscription").
    "vaultsPerSubscriptionRegion": {"enabled": True, "max": 500, "code": "QuotaExceeded", "status": 400},
}

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "enabled": bool,
    "max": int,
    "windowSeconds": (int, float),
    "code": str,
    "synchronous": bool,
    "status": int,
}


def merge_limits(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`current` with `change` applied. A limit takes a number (its new maximum) or an object of its
    fields; ValueError names what is wrong."""
    if not isinstance(change, dict):
        raise ValueError("limits must be an object")
    unknown = set(change) - set(DEFAULT_LIMITS)
    if unknown:
        raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}")
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in current.items()}
    for name, given_value in change.items():
        if name == "enabled":
            if not isinstance(given_value, bool):
                raise ValueError("limits.enabled must be true or false")
            merged[name] = given_value
            continue
        is_number = isinstance(given_value, int) and not isinstance(given_value, bool)
        value: Any = {"max": given_value} if is_number else given_value
        if not isinstance(value, dict):
            raise ValueError(f"limits.{name} must be a number (its maximum) or an object")
        allowed = set(DEFAULT_LIMITS[name])
        extra = set(value) - allowed
        if extra:
            raise ValueError(f"unknown limits.{name} entries {sorted(extra)}; known: {sorted(allowed)}")
        for field, given in value.items():
            number: Any = given
            kind = _FIELDS[field]
            if not isinstance(given, kind) or (isinstance(given, bool) and kind is not bool):
                raise ValueError(f"limits.{name}.{field} has the wrong type")
            if field in ("max", "windowSeconds") and number < 0:
                raise ValueError(f"limits.{name}.{field} must be 0 or more")
            if field == "status" and not 400 <= number <= 599:
                raise ValueError(f"limits.{name}.status must be an HTTP error status (400-599)")
        merged[name] = {**merged[name], **value}
    return merged


def active(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The settings of limit `name` when it is enforced, else None."""
    limits = config["limits"]
    limit: dict[str, Any] = limits[name]
    if not limits.get("enabled", True) or not limit.get("enabled", True):
        return None
    return limit
