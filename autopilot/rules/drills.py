"""The `drills` section of the rules file: when restore drills run, which VMs they prove, where they
restore to, and what they check. Read with the rules loader's line-numbered errors (autopilot/rules/__init__.py
calls `parse_drills`); docs/RULES.md ("drills") is the reference.

    drills:
      schedule: "0 0 2 * * *"          # NCRONTAB, UTC: when a drill round starts
      rotationDays: 30                 # every VM a sample covers is drilled within this many days
      sample:
        - {policy: gold, count: 2}     # per round: the 2 gold VMs least recently drilled
        - {tag: {name: app, equals: erp}, share: 25%}
      staging:
        - {region: westeurope, resourceGroup: rg-drills-weu, storageAccount: stdrillsweu01}
      recoveryPointTier: snapshot      # snapshot | vault | both
      policies:
        gold: {restoreTimeObjective: 30m, verify: boot}
      inFlightPerVault: 2
      restoredDisks: delete            # or keep
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from autopilot.rules.schedule import Schedule, ScheduleError, parse_schedule

if TYPE_CHECKING:
    from autopilot.rules.loader import PolicySpec, VaultSpec, _Field

TIERS = ("snapshot", "vault", "both")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*(s|m|h|d)\s*$")
_SHARE = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*%\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_IN_FLIGHT = 20  # restores a vault runs at once, at most (the rules' limit, not Azure's)


@dataclass(frozen=True)
class DrillSample:
    """VMs of a policy (or carrying a tag value), and how many of them each round drills."""

    policy: str | None
    tag: tuple[str, str] | None
    count: int | None
    share: float | None  # 0 < share <= 1

    def covers(self, policy: str, tags: Mapping[str, str]) -> bool:
        if self.policy is not None:
            return self.policy == "*" or policy.lower() == self.policy.lower()
        assert self.tag is not None
        name, value = self.tag
        return any(k.lower() == name.lower() and v.lower() == value.lower() for k, v in tags.items())

    def size(self, members: int) -> int:
        """How many of `members` VMs one round drills."""
        if self.count is not None:
            return min(self.count, members)
        return min(members, math.ceil((self.share or 0) * members))

    def describe(self) -> str:
        who = (
            f"policy {self.policy}" if self.policy else f"tag {self.tag[0]}={self.tag[1]}" if self.tag else ""
        )
        how = (
            f"{self.count} a round"
            if self.count is not None
            else f"{round((self.share or 0) * 100, 2)} % a round"
        )
        return f"{who}, {how}"


@dataclass(frozen=True)
class StagingSpec:
    """Where drills of a region restore to: a resource group and a storage account in the vault's
    subscription (or the one named), in the region."""

    region: str
    resource_group: str
    storage_account: str
    subscription: str | None = None

    def group_id(self, subscription: str) -> str:
        return f"/subscriptions/{self.subscription or subscription}/resourceGroups/{self.resource_group}"

    def account_id(self, subscription: str) -> str:
        return f"{self.group_id(subscription)}/providers/Microsoft.Storage/storageAccounts/{self.storage_account}"


DEFAULT_BOOT_TIMEOUT = 20 * 60  # a VM made from restored disks that has not booted by then fails the drill
MAX_BOOT_TIMEOUT = 24 * 3600


@dataclass(frozen=True)
class DrillPolicy:
    restore_objective_seconds: int | None = None
    verify_boot: bool = False
    boot_timeout_seconds: int = DEFAULT_BOOT_TIMEOUT


@dataclass(frozen=True)
class DrillRules:
    schedule: Schedule
    rotation_days: int
    samples: tuple[DrillSample, ...]
    staging: tuple[StagingSpec, ...]
    tier: Literal["snapshot", "vault", "both"] = "snapshot"
    policies: Mapping[str, DrillPolicy] = field(default_factory=dict)  # lower-case policy name
    in_flight_per_vault: int = 1
    keep_restored_disks: bool = False

    def staging_for(self, subscription: str, region: str) -> StagingSpec | None:
        """The staging of a vault's subscription and region: an entry naming the subscription wins
        over one that names none."""
        fits = [s for s in self.staging if s.region == region.lower().replace(" ", "")]
        named = [s for s in fits if s.subscription and s.subscription.lower() == subscription.lower()]
        choices = named or [s for s in fits if not s.subscription]
        return choices[0] if choices else None

    def policy(self, name: str) -> DrillPolicy:
        return self.policies.get(name.lower(), DrillPolicy())

    def sample_of(self, policy: str, tags: Mapping[str, str]) -> DrillSample | None:
        return next((s for s in self.samples if s.covers(policy, tags)), None)


def parse_duration(text: str) -> int | None:
    """'30m', '2h', '90s', '1d' in seconds; None if it is not one."""
    match = _DURATION.fullmatch(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def parse_drills(f: _Field, policies: Sequence[PolicySpec], vaults: Sequence[VaultSpec]) -> DrillRules:
    from autopilot.rules.loader import _choice, _int, _list, _mapping, _text

    keys = _mapping(
        f,
        (
            "schedule",
            "rotationDays",
            "sample",
            "staging",
            "recoveryPointTier",
            "policies",
            "inFlightPerVault",
            "restoredDisks",
        ),
        ("schedule", "rotationDays", "sample", "staging"),
    )
    text = _text(keys["schedule"], "an NCRONTAB schedule such as '0 0 2 * * *'")
    try:
        schedule = parse_schedule(text)
    except ScheduleError as error:
        raise keys["schedule"].error(str(error)) from None
    rotation = _int(
        keys["rotationDays"], 1, 366, "write 1 to 366 days: every sampled VM is drilled within it"
    )
    known = {p.name.lower(): p.name for p in policies}
    samples = tuple(_parse_sample(item, known) for item in _list(keys["sample"], "samples"))
    staging = _parse_staging(keys["staging"])
    tier = _choice(keys["recoveryPointTier"], TIERS) if "recoveryPointTier" in keys else "snapshot"
    drill_policies = _parse_policies(keys["policies"], known) if "policies" in keys else {}
    in_flight = 1
    if "inFlightPerVault" in keys:
        in_flight = _int(
            keys["inFlightPerVault"],
            1,
            MAX_IN_FLIGHT,
            f"write 1 to {MAX_IN_FLIGHT} restores at once per vault",
        )
    keep = _choice(keys["restoredDisks"], ("delete", "keep")) == "keep" if "restoredDisks" in keys else False
    regions = {v.region for v in vaults}
    for spec, item in zip(staging, _list(keys["staging"], "staging entries"), strict=True):
        if regions and spec.region not in regions:
            raise item.error(
                f"region '{spec.region}' has no vault in the rules; drills restore in the vault's region "
                f"(regions with vaults: {', '.join(sorted(regions))})"
            )
    return DrillRules(
        schedule,
        rotation,
        samples,
        staging,
        "vault" if tier == "vault" else "both" if tier == "both" else "snapshot",
        drill_policies,
        in_flight,
        keep,
    )


def _parse_sample(item: _Field, known: Mapping[str, str]) -> DrillSample:
    from autopilot.rules.loader import _int, _mapping, _text

    keys = _mapping(item, ("policy", "tag", "count", "share"))
    if ("policy" in keys) == ("tag" in keys):
        raise item.error(
            "a sample names either a policy (policy: gold, or '*' for every policy) or a tag (tag: {name: app, equals: erp})"
        )
    if ("count" in keys) == ("share" in keys):
        raise item.error(
            "a sample gives either count (VMs a round, e.g. count: 2) or share (of its VMs a round, e.g. share: 10%)"
        )
    policy = tag = None
    if "policy" in keys:
        name = _text(keys["policy"], "a policy name or '*'").strip()
        if name != "*" and name.lower() not in known:
            raise keys["policy"].error(
                f"policy '{name}' is not defined; known policies: {', '.join(known.values())}"
            )
        policy = "*" if name == "*" else known[name.lower()]
    else:
        tag_keys = _mapping(keys["tag"], ("name", "equals"), ("name", "equals"))
        tag = (_text(tag_keys["name"], "the tag name").strip(), _text(tag_keys["equals"], "the tag value"))
    count = share = None
    if "count" in keys:
        count = _int(keys["count"], 1, 10_000, "write how many VMs a round drills, 1 to 10000")
    else:
        raw = _text(keys["share"], "a share such as 10%")
        match = _SHARE.fullmatch(raw)
        value = float(match.group(1)) if match else 0.0
        if match is None or not 0 < value <= 100:
            raise keys["share"].error(
                f"'{raw}' is not a share; write a percentage above 0 and up to 100, e.g. 10%"
            )
        share = value / 100
    return DrillSample(policy, tag, count, share)


def _parse_staging(f: _Field) -> tuple[StagingSpec, ...]:
    from autopilot.names import RESOURCE_GROUP
    from autopilot.rules.loader import _REGION, _list, _mapping, _subscription_id, _text

    out: list[StagingSpec] = []
    seen: dict[tuple[str, str], int] = {}
    for item in _list(f, "staging entries (region, resourceGroup, storageAccount)"):
        keys = _mapping(
            item,
            ("region", "resourceGroup", "storageAccount", "subscription"),
            ("region", "resourceGroup", "storageAccount"),
        )
        region = _text(keys["region"], "an Azure region such as westeurope").strip().lower().replace(" ", "")
        if not _REGION.fullmatch(region):
            raise keys["region"].error(
                f"'{region}' is not a region name; write it as Azure does, e.g. westeurope"
            )
        group = _text(keys["resourceGroup"], "a resource group name").strip()
        if not RESOURCE_GROUP.fullmatch(group):
            raise keys["resourceGroup"].error(
                f"'{group}' is not a valid resource group name (1 to 90 letters, digits, - _ . ( ))"
            )
        account = _text(keys["storageAccount"], "a storage account name").strip()
        if not _ACCOUNT.fullmatch(account):
            raise keys["storageAccount"].error(
                f"'{account}' is not a storage account name: 3 to 24 lower-case letters and digits"
            )
        subscription = _subscription_id(keys["subscription"]) if "subscription" in keys else None
        key = (region, (subscription or "").lower())
        if key in seen:
            raise item.error(
                f"region {region} has a staging entry already (line {seen[key]}); give one per region and subscription"
            )
        seen[key] = item.line
        out.append(StagingSpec(region, group, account, subscription))
    return tuple(out)


def _parse_policies(f: _Field, known: Mapping[str, str]) -> dict[str, DrillPolicy]:
    from autopilot.rules.loader import _choice, _entries, _mapping, _text

    out: dict[str, DrillPolicy] = {}
    for name, item in _entries(f, "policies"):
        if name.lower() not in known:
            raise item.error(f"policy '{name}' is not defined; known policies: {', '.join(known.values())}")
        keys = _mapping(item, ("restoreTimeObjective", "verify", "bootTimeout"))
        objective = None
        if "restoreTimeObjective" in keys:
            raw = _text(keys["restoreTimeObjective"], "a duration such as 30m or 2h")
            objective = parse_duration(raw)
            if not objective:
                raise keys["restoreTimeObjective"].error(
                    f"'{raw}' is not a duration; write a whole number with s, m, h or d, e.g. 45m or 4h"
                )
        boot = _choice(keys["verify"], ("disks", "boot")) == "boot" if "verify" in keys else False
        timeout = DEFAULT_BOOT_TIMEOUT
        if "bootTimeout" in keys:
            raw = _text(keys["bootTimeout"], "a duration such as 15m")
            timeout = parse_duration(raw) or 0
            if not 0 < timeout <= MAX_BOOT_TIMEOUT:
                raise keys["bootTimeout"].error(
                    f"'{raw}' is not a boot timeout; write a whole number with s, m or h up to 24h, e.g. 15m"
                )
        out[name.lower()] = DrillPolicy(objective, boot, timeout)
    return out
