"""What a rules file declares: vaults (listed or by template), policies, selection rules on tags,
opt-out, disk exclusion, first backup, actions, vault capacity; and the questions the product asks of
it (which policy and vault set for a VM, which vaults a subscription should have). Pure Python.

About 530 lines: one small frozen dataclass per part of the format, with the questions asked of it
beside it, so that the model can be read in one place."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from autopilot.names import split_id
from autopilot.rules.policyspec import (
    PolicySpec,
)

if TYPE_CHECKING:
    from autopilot.rules.drills import DrillRules
    from autopilot.rules.posture import PostureRules


StorageRedundancy = Literal["GeoRedundant", "LocallyRedundant"]
STORAGE_REDUNDANCIES: tuple[str, ...] = ("GeoRedundant", "LocallyRedundant")
MAX_LUN = 63
MAX_RETAIN_DAYS = 36135  # Azure keeps an on-demand backup at most 99 years
MAX_VAULT_ITEMS = 1000  # Azure VMs in one Recovery Services vault (Azure Backup support matrix)
MAX_VAULT_COUNT = 50  # vaults one pattern entry may declare
_MAX_MATCH_DEPTH = 16

_REGION = re.compile(r"^[a-z][a-z0-9]*$")
_POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,149}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_LUN_SEPARATORS = re.compile(r"[,;]")


# ---------------------------------------------------------------------------------------------
# What the file declares
# ---------------------------------------------------------------------------------------------


def normalize_region(region: str) -> str:
    """Azure's region name: "West Europe" -> "westeurope"."""
    return "".join(region.split()).lower()


@dataclass(frozen=True)
class VaultSpec:
    """The Recovery Services vault that protects the VMs of one subscription and region."""

    subscription_id: str
    resource_group: str
    name: str
    region: str
    storage_redundancy: StorageRedundancy = "GeoRedundant"

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.RecoveryServices/vaults/{self.name}"
        )


@dataclass(frozen=True)
class SubscriptionFacts:
    """What vault templates may select a subscription by: its display name and its management groups
    (read by the sweep from Resource Graph or ARM)."""

    name: str = ""
    management_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class VaultTemplate:
    """Vaults declared once for many subscriptions: for each subscription it selects and each of its
    regions, a vault set named from patterns ({region}, {subscription}, {subscriptionShort}, {n})."""

    regions: tuple[str, ...]
    resource_group: str  # pattern
    name: str  # pattern
    count: int = 1
    storage_redundancy: StorageRedundancy = "GeoRedundant"
    subscriptions: tuple[str, ...] = ()  # lower-case ids; empty with all_subscriptions
    all_subscriptions: bool = False
    name_pattern: str = ""  # a glob on the subscription's display name
    management_group: str = ""
    exclude: tuple[str, ...] = ()  # lower-case ids never selected
    line: int = 0

    def selects(self, subscription_id: str, facts: SubscriptionFacts | None) -> bool:
        sub = subscription_id.lower()
        if sub in self.exclude:
            return False
        if self.all_subscriptions:
            return True
        if self.subscriptions:
            return sub in self.subscriptions
        if facts is None:
            return False
        if self.name_pattern:
            return _glob(self.name_pattern).fullmatch(facts.name) is not None
        return self.management_group.lower() in {g.lower() for g in facts.management_groups}

    def vaults(self, subscription_id: str, region: str | None = None) -> list[VaultSpec]:
        sub = subscription_id.lower()
        out = []
        for name_region in self.regions:
            if region is not None and name_region != region:
                continue
            for n in range(1, self.count + 1):
                values = {
                    "region": name_region,
                    "subscription": sub,
                    "subscriptionShort": sub[:8],
                    "n": str(n),
                }
                out.append(
                    VaultSpec(
                        sub,
                        _fill(self.resource_group, values),
                        _fill(self.name, values),
                        name_region,
                        self.storage_redundancy,
                    )
                )
        return out

    def describe(self) -> str:
        if self.all_subscriptions:
            who = "every subscription in scope"
        elif self.subscriptions:
            who = f"subscriptions {', '.join(self.subscriptions)}"
        elif self.name_pattern:
            who = f"subscriptions named like '{self.name_pattern}'"
        else:
            who = f"subscriptions of management group {self.management_group}"
        return f"{self.name} in {self.resource_group}, {self.count} a region in {', '.join(self.regions)}, for {who}"


def _fill(pattern: str, values: Mapping[str, str]) -> str:
    out = pattern
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def _glob(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class _Tags:
    """A VM's tags with keys looked up case-insensitively, as Azure treats tag names."""

    by_key: Mapping[str, tuple[str, str]]  # lower-case key -> (key as written, value)

    @classmethod
    def of(cls, tags: Mapping[str, str] | None) -> _Tags:
        by_key: dict[str, tuple[str, str]] = {}
        for key, value in (tags or {}).items():
            by_key.setdefault(str(key).lower(), (str(key), "" if value is None else str(value)))
        return cls(by_key)

    def get(self, key: str) -> tuple[str, str] | None:
        return self.by_key.get(key.lower())


class Match(Protocol):
    """A condition on a VM's tags."""

    def matches(self, tags: _Tags) -> bool: ...

    def explain(self, tags: _Tags) -> str:
        """What the VM's tags are with respect to this condition, in words."""
        ...


def _quote_all(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


@dataclass(frozen=True)
class TagMatch:
    """`tag` + one of `equals`, `oneOf`, `like` (wildcards * and ?)."""

    tag: str
    op: Literal["equals", "oneOf", "like"]
    values: tuple[str, ...]
    case_sensitive: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op == "like" and self._pattern is None:
            regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in self.values[0])
            flags = re.DOTALL if self.case_sensitive else re.DOTALL | re.IGNORECASE
            object.__setattr__(self, "_pattern", re.compile(regex, flags))

    def _same(self, a: str, b: str) -> bool:
        return a == b if self.case_sensitive else a.casefold() == b.casefold()

    def matches(self, tags: _Tags) -> bool:
        found = tags.get(self.tag)
        if found is None:
            return False
        value = found[1]
        if self.op == "like":
            assert self._pattern is not None
            return self._pattern.fullmatch(value) is not None
        return any(self._same(value, wanted) for wanted in self.values)

    def explain(self, tags: _Tags) -> str:
        found = tags.get(self.tag)
        if found is None:
            return f"the VM has no tag '{self.tag}'"
        key, value = found
        hit = self.matches(tags)
        if self.op == "equals":
            return f"tag '{key}' is '{value}'" + ("" if hit else f", not '{self.values[0]}'")
        if self.op == "oneOf":
            return (
                f"tag '{key}' is '{value}', " + ("one of " if hit else "none of ") + _quote_all(self.values)
            )
        return (
            f"tag '{key}' is '{value}', which "
            + ("matches" if hit else "does not match")
            + f" '{self.values[0]}'"
        )


@dataclass(frozen=True)
class NotMatch:
    inner: Match

    def matches(self, tags: _Tags) -> bool:
        return not self.inner.matches(tags)

    def explain(self, tags: _Tags) -> str:
        return self.inner.explain(tags)


@dataclass(frozen=True)
class AllMatch:
    items: tuple[Match, ...]

    def matches(self, tags: _Tags) -> bool:
        return all(item.matches(tags) for item in self.items)

    def explain(self, tags: _Tags) -> str:
        return " and ".join(item.explain(tags) for item in self.items)


@dataclass(frozen=True)
class AnyMatch:
    items: tuple[Match, ...]

    def matches(self, tags: _Tags) -> bool:
        return any(item.matches(tags) for item in self.items)

    def explain(self, tags: _Tags) -> str:
        hits = [item for item in self.items if item.matches(tags)] or list(self.items)
        return " or ".join(item.explain(tags) for item in hits)


@dataclass(frozen=True)
class SelectionRule:
    name: str
    priority: int
    match: Match
    policy: str
    description: str = ""


@dataclass(frozen=True)
class OptOut:
    """A tag whose value(s) mean "never protect this VM"; it beats every rule."""

    tag: str
    values: tuple[str, ...]
    case_sensitive: bool = False

    def as_match(self) -> TagMatch:
        return TagMatch(self.tag, "oneOf", self.values, self.case_sensitive)


@dataclass(frozen=True)
class VaultCapacity:
    """How full the rules let a vault get. Azure holds at most 1,000 Azure VMs in a Recovery
    Services vault (Azure Backup support matrix); `headroom` keeps that many places free in each
    vault, for VMs protected by hand or by another instance at the same moment."""

    max_items: int = MAX_VAULT_ITEMS
    headroom: int = 0

    @property
    def usable(self) -> int:
        """How many items the autopilot puts in one vault at most."""
        return self.max_items - self.headroom


@dataclass(frozen=True)
class FirstBackup:
    enabled: bool = True
    retain_days: int = 30


@dataclass(frozen=True)
class Actions:
    """What to do in situations where fixing and reporting are both reasonable."""

    on_opt_out: Literal["report", "stopProtection"] = "report"
    on_stopped_protection: Literal["resume", "report"] = "resume"
    on_wrong_policy: Literal["fix", "report"] = "fix"
    on_policy_drift: Literal["fix", "report"] = "fix"


@dataclass(frozen=True)
class Selection:
    """The outcome of the selection rules for one VM."""

    policy: str | None
    rule: str | None
    opted_out: bool
    reason: str
    excluded_luns: tuple[int, ...] = ()
    lun_error: str | None = None
    first_backup: bool = False
    first_backup_retain_days: int = 30


def parse_lun_list(text: str) -> tuple[int, ...]:
    """LUNs from a tag value like "1,3" or "1; 3"; raises ValueError with a readable reason."""
    luns: set[int] = set()
    for part in _LUN_SEPARATORS.split(text):
        item = part.strip()
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"'{item}' is not a LUN number")
        lun = int(item)
        if lun > MAX_LUN:
            raise ValueError(f"LUN {lun} is out of range (0 to {MAX_LUN})")
        luns.add(lun)
    return tuple(sorted(luns))


@dataclass(frozen=True)
class Rules:
    """A validated rules file. Build it with `load_rules` or `parse_rules`."""

    source: str
    vaults: tuple[VaultSpec, ...]
    policies: tuple[PolicySpec, ...]
    selection: tuple[SelectionRule, ...]  # lowest priority number first
    opt_out: OptOut | None = None
    disk_exclusion_tag: str | None = None
    first_backup: FirstBackup = field(default_factory=FirstBackup)
    actions: Actions = field(default_factory=Actions)
    vault_capacity: VaultCapacity = field(default_factory=VaultCapacity)
    vault_templates: tuple[VaultTemplate, ...] = ()
    # What templates that select by name or management group know of each subscription (lower id).
    subscription_facts: Mapping[str, SubscriptionFacts] = field(default_factory=dict)
    posture: PostureRules | None = None  # the vaults' security posture (None: not checked)
    drills: DrillRules | None = None  # restore drills (autopilot/rules/drills.py); None: no drills

    # --- vaults -------------------------------------------------------------------------------

    def with_facts(self, facts: Mapping[str, SubscriptionFacts]) -> Rules:
        """These rules with what is known of the subscriptions (names, management groups)."""
        merged = {**self.subscription_facts, **{k.lower(): v for k, v in facts.items()}}
        return dataclasses.replace(self, subscription_facts=merged)

    def vault_by_id(self, resource_id: str) -> VaultSpec | None:
        """The rules' vault with this resource id (compared case-insensitively), or None."""
        found = next((v for v in self.vaults if v.resource_id.lower() == resource_id.lower()), None)
        if found is not None or not self.vault_templates:
            return found
        subscription = split_id(resource_id)[0]
        return next(
            (v for v in self.vaults_for([subscription]) if v.resource_id.lower() == resource_id.lower()), None
        )

    def vaults_for(self, subscriptions: Iterable[str]) -> tuple[VaultSpec, ...]:
        """Every vault the rules expect in these subscriptions: those listed, and those the templates
        make (a (subscription, region) with listed vaults keeps them; templates fill the others)."""
        wanted = {s.strip().lower() for s in subscriptions}
        listed = [v for v in self.vaults if v.subscription_id.lower() in wanted]
        covered = {(v.subscription_id.lower(), v.region) for v in listed}
        made: list[VaultSpec] = []
        for sub in sorted(wanted):
            for template in self.vault_templates:
                if not template.selects(sub, self.subscription_facts.get(sub)):
                    continue
                for vault in template.vaults(sub):
                    if (sub, vault.region) in covered or vault in made:
                        continue
                    made.append(vault)
        return tuple(listed + made)

    def vault_set(self, subscription_id: str, region: str) -> tuple[VaultSpec, ...]:
        """The vaults for VMs of this subscription and region, in the order protection fills them
        (the rules file's order, or a template's); empty when the rules have none."""
        subscription = subscription_id.strip().lower()
        wanted = normalize_region(region)
        listed = tuple(
            v for v in self.vaults if v.subscription_id.lower() == subscription and v.region == wanted
        )
        if listed or not self.vault_templates:
            return listed
        facts = self.subscription_facts.get(subscription)
        for template in self.vault_templates:
            if wanted in template.regions and template.selects(subscription, facts):
                return tuple(template.vaults(subscription, wanted))
        return ()

    def vault_for(self, subscription_id: str, region: str) -> VaultSpec | None:
        """The first vault of the subscription's and region's set, or None when the rules have none."""
        found = self.vault_set(subscription_id, region)
        return found[0] if found else None

    # --- policies -----------------------------------------------------------------------------

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(policy.name for policy in self.policies)

    def policy(self, name: str) -> PolicySpec:
        """The policy of this name (case-insensitive, as Azure resource names); KeyError if none."""
        for policy in self.policies:
            if policy.name.lower() == name.lower():
                return policy
        raise KeyError(f"no policy '{name}' in {self.source}; known policies: {', '.join(self.policy_names)}")

    def policy_for(self, selection_policy_name: str, trusted_launch: bool) -> PolicySpec:
        """The policy to protect a VM with: the enhanced sibling for Trusted Launch VMs if named."""
        policy = self.policy(selection_policy_name)
        if trusted_launch and policy.kind == "standard" and policy.trusted_launch:
            return self.policy(policy.trusted_launch)
        return policy

    # --- selection ----------------------------------------------------------------------------

    def select(self, tags: Mapping[str, str] | None, shared_disk_luns: Iterable[int] = ()) -> Selection:
        """Evaluate the opt-out and the selection rules on a VM's tags."""
        vm_tags = _Tags.of(tags)
        shared = {int(lun) for lun in shared_disk_luns}
        excluded, lun_error = self._excluded_luns(vm_tags, shared)
        matching = [rule for rule in self.selection if rule.match.matches(vm_tags)]

        if self.opt_out is not None:
            opt_out = self.opt_out.as_match()
            if opt_out.matches(vm_tags):
                key, value = vm_tags.get(self.opt_out.tag) or (self.opt_out.tag, "")
                reason = f"Opted out: tag '{key}' is '{value}', which means never protect this VM"
                if matching:
                    reason += f" (it overrides rule '{matching[0].name}', which would select policy"
                    reason += f" '{matching[0].policy}')"
                return Selection(None, None, True, reason + ".", excluded, lun_error)

        if not matching:
            if not vm_tags.by_key:
                reason = "The VM has no tags, so no selection rule matches; it is left alone."
            else:
                keys = ", ".join(f"'{key}'" for key, _ in vm_tags.by_key.values())
                reason = f"No selection rule matches the VM's tags ({keys}); it is left alone."
            return Selection(None, None, False, reason, excluded, lun_error)

        rule = matching[0]
        reason = (
            f"Rule '{rule.name}' (priority {rule.priority}) selects policy '{rule.policy}': "
            f"{rule.match.explain(vm_tags)}."
        )
        if len(matching) > 1:
            others = ", ".join(f"'{other.name}' (priority {other.priority})" for other in matching[1:])
            reason += f" Also matching, but later by priority: {others}."
        return Selection(
            rule.policy,
            rule.name,
            False,
            reason,
            excluded,
            lun_error,
            self.first_backup.enabled,
            self.first_backup.retain_days,
        )

    def _excluded_luns(self, tags: _Tags, shared: set[int]) -> tuple[tuple[int, ...], str | None]:
        if self.disk_exclusion_tag is None:
            return tuple(sorted(shared)), None
        found = tags.get(self.disk_exclusion_tag)
        if found is None:
            return tuple(sorted(shared)), None
        key, value = found
        try:
            tagged = parse_lun_list(value)
        except ValueError as exc:
            message = (
                f"tag '{key}' is '{value}', which is not a LUN list: {exc}; write LUNs 0 to {MAX_LUN}"
                " separated by commas or semicolons, e.g. '1,3'. No disk is excluded by the tag"
            )
            if shared:
                message += " (shared disks are still excluded)"
            return tuple(sorted(shared)), message + "."
        return tuple(sorted(shared.union(tagged))), None

    # --- advice -------------------------------------------------------------------------------

    def warnings(self) -> list[str]:
        """Things that are valid but probably not meant; `python -m autopilot validate` shows them."""
        notes: list[str] = []
        used = {rule.policy.lower() for rule in self.selection}
        siblings = {p.trusted_launch.lower() for p in self.policies if p.trusted_launch}
        for policy in self.policies:
            if policy.name.lower() not in used | siblings:
                notes.append(
                    f"policy '{policy.name}' is not selected by any rule nor a trustedLaunch sibling."
                )
            if policy.name.lower() in used and policy.kind == "standard" and not policy.trusted_launch:
                notes.append(
                    f"policy '{policy.name}' is standard and names no trustedLaunch sibling: Trusted Launch"
                    " VMs it selects will be reported, not protected (they need an enhanced policy)."
                )
            try:
                dst = policy.has_dst
            except KeyError:  # no time zone data on this machine (ZoneInfoNotFoundError): nothing to say
                dst = False
            if dst:
                notes.append(
                    f"policy '{policy.name}' runs at {policy.time} {policy.time_zone}, a zone with daylight"
                    " saving time; Azure does not adjust backup schedules for it."
                )
        return notes
