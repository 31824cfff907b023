"""Reading a rules file: YAML with its lines kept, every mistake gathered with its file, line and
field. The validation is written here rather than by a JSON-schema library because its errors are
better for the person who edits the file: the YAML line of the field (a schema validator sees parsed
data, without lines), a hint naming the likely key for a typo, and checks across entries (policy names
that ignore case, priorities, Trusted Launch siblings, vault names per subscription). One function
per section and entry kind; long (about 950 lines) because the format is: each part is short."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from autopilot.names import RESOURCE_GROUP, SUBSCRIPTION_ID
from autopilot.rules.policyspec import (
    DAILY_RETENTION_DAYS,
    DEFAULT_DAILY_RETENTION_DAYS,
    DEFAULT_INSTANT_RESTORE_DAYS,
    DEFAULT_TIME,
    DEFAULT_TIME_ZONE,
    ENHANCED_INSTANT_RESTORE_DAYS,
    MONTH_DAYS,
    MONTHLY_RETENTION_MONTHS,
    STANDARD_INSTANT_RESTORE_DAYS,
    WEEKDAYS,
    WEEKLY_RETENTION_WEEKS,
    WEEKLY_STANDARD_INSTANT_RESTORE_DAYS,
    WEEKS_OF_MONTH,
    WINDOWS_TIME_ZONES,
    MonthlyRetention,
    PolicySpec,
    WeeklyRetention,
    canonical_time_zone,
    week_order,
)

if TYPE_CHECKING:
    pass

from autopilot.rules.model import (
    _MAX_MATCH_DEPTH,
    _POLICY_NAME,
    _REGION,
    _TIME,
    MAX_RETAIN_DAYS,
    MAX_VAULT_COUNT,
    MAX_VAULT_ITEMS,
    STORAGE_REDUNDANCIES,
    Actions,
    AllMatch,
    AnyMatch,
    FirstBackup,
    Match,
    NotMatch,
    OptOut,
    Rules,
    SelectionRule,
    StorageRedundancy,
    TagMatch,
    VaultCapacity,
    VaultSpec,
    VaultTemplate,
    _quote_all,
    normalize_region,
)


class RulesError(ValueError):
    """A mistake in the rules file: where it is (file, line, field) and what to do about it.

    Raised for a whole file, it carries every mistake found (`mistakes`, in the order they were found,
    one line each when printed); its own path, line, field and message are the first one's."""

    def __init__(self, path: str, line: int, field: str, message: str) -> None:
        super().__init__(path, line, field, message)
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        self.mistakes: tuple[RulesError, ...] = (self,)

    @classmethod
    def of_file(cls, mistakes: Sequence[RulesError]) -> RulesError:
        first = mistakes[0]
        error = cls(first.path, first.line, first.field, first.message)
        error.mistakes = tuple(mistakes)
        return error

    def _where(self) -> str:
        where = f"{self.path}:{self.line}" if self.line > 0 else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def __str__(self) -> str:
        if len(self.mistakes) == 1:
            return self._where()
        lines = [mistake._where() for mistake in self.mistakes]
        return "\n".join([*lines, f"({len(lines)} mistakes in {self.path})"])


# ---------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, source: str) -> None:
        self.source = source
        self.constructor = SafeConstructor()
        self.mistakes: list[RulesError] = []

    @contextlib.contextmanager
    def gathering(self) -> Iterator[None]:
        """Note a mistake in the block and go on with the next part of the file, so that one run
        reports every mistake (each part is checked on its own: a policy, a vault, a rule, a section)."""
        try:
            yield
        except RulesError as mistake:
            self.mistakes.append(mistake)


class _Field:
    """A YAML node and where it is: the file, the line and the field path.

    The line of a mapping's value is the line of its key (`gold:`), where a reader looks for it.
    """

    def __init__(self, ctx: _Context, node: Node, path: str, key: Node | None = None) -> None:
        self.ctx = ctx
        self.node = node
        self.path = path
        self.line = int((key or node).start_mark.line) + 1

    def error(self, message: str) -> RulesError:
        return RulesError(self.ctx.source, self.line, self.path, message)

    def child(self, node: Node, key: str | int, key_node: Node | None = None) -> _Field:
        if isinstance(key, int):
            return _Field(self.ctx, node, f"{self.path}[{key}]")
        return _Field(self.ctx, node, f"{self.path}.{key}" if self.path else key, key_node)

    @property
    def is_null(self) -> bool:
        return isinstance(self.node, ScalarNode) and self.node.tag == "tag:yaml.org,2002:null"

    def describe(self) -> str:
        node = self.node
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        if self.is_null:
            return "nothing"
        if node.tag == "tag:yaml.org,2002:str":
            return f"the text '{node.value}'"
        if node.tag == "tag:yaml.org,2002:bool":
            return f"the value {node.value}"
        return f"the number {node.value}"


def _close(word: str, choices: Iterable[str]) -> str:
    lowered = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[found[0]]}'?)" if found else ""


def _mapping(
    f: _Field, allowed: Sequence[str], required: Sequence[str] = (), extensions: bool = False
) -> dict[str, _Field]:
    """The keys of a mapping; unknown keys (typos) and missing required keys are errors.

    With `extensions`, keys starting with "x-" are ignored (they hold YAML anchors to reuse).
    """
    if not isinstance(f.node, MappingNode):
        raise f.error(f"expected a mapping with the keys {', '.join(allowed)}; found {f.describe()}")
    out: dict[str, _Field] = {}
    for key_node, value_node in f.node.value:  # merged keys come first, own keys override them
        key = str(key_node.value)
        if extensions and key.startswith("x-"):
            continue
        if key not in allowed:  # noted, and the rest of the mapping is still checked
            f.ctx.mistakes.append(
                RulesError(
                    f.ctx.source,
                    int(key_node.start_mark.line) + 1,
                    f"{f.path}.{key}" if f.path else key,
                    f"unknown key '{key}'{_close(key, allowed)}; allowed keys here: {', '.join(allowed)}",
                )
            )
            continue
        out[key] = f.child(value_node, key, key_node)
    for key in required:
        if key not in out:
            raise f.error(f"missing key '{key}'; this mapping needs {', '.join(required)}")
    return out


def _entries(f: _Field, what: str) -> list[tuple[str, _Field]]:
    """The entries of a mapping whose keys are names (e.g. policies)."""
    if not isinstance(f.node, MappingNode):
        raise f.error(f"expected a mapping of {what} by name; found {f.describe()}")
    return [(str(key.value), f.child(value, str(key.value), key)) for key, value in f.node.value]


def _list(f: _Field, what: str, non_empty: bool = True) -> list[_Field]:
    if not isinstance(f.node, SequenceNode):
        raise f.error(
            f"expected a list of {what}; found {f.describe()} (write [a, b] or one '- item' a line)"
        )
    if non_empty and not f.node.value:
        raise f.error(f"the list is empty; give at least one of {what}")
    return [f.child(node, index) for index, node in enumerate(f.node.value)]


def _text(f: _Field, what: str = "a value") -> str:
    """A scalar as written (so `no`, `22:00` or `123` stay text); null or empty is an error."""
    if not isinstance(f.node, ScalarNode):
        raise f.error(f"expected {what}; found {f.describe()}")
    value = str(f.node.value)
    if f.is_null or not value.strip():
        raise f.error(f"is empty; write {what}")
    return value


def _int(f: _Field, low: int, high: int, hint: str) -> int:
    node = f.node
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:int":
        quoted = (
            isinstance(node, ScalarNode) and node.style in ("'", '"') and str(node.value).strip().isdigit()
        )
        extra = " (it is in quotes; write the number without quotes)" if quoted else ""
        raise f.error(f"expected a whole number; found {f.describe()}{extra}; {hint}")
    if len(str(node.value)) > 20:  # Python refuses to convert integers of thousands of digits
        raise f.error(f"{str(node.value)[:20]}... is out of range; {hint}")
    value = int(f.ctx.constructor.construct_yaml_int(node))
    if not low <= value <= high:
        raise f.error(f"{value} is out of range; {hint}")
    return value


def _bool(f: _Field) -> bool:
    node = f.node
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
        raise f.error(f"expected true or false; found {f.describe()}")
    return bool(f.ctx.constructor.construct_yaml_bool(node))


def _choice(f: _Field, choices: Sequence[str]) -> str:
    value = _text(f, "one of " + ", ".join(choices))
    for choice in choices:
        if choice.lower() == value.strip().lower():
            return choice
    raise f.error(f"'{value}' is not allowed{_close(value, choices)}; use one of {', '.join(choices)}")


def _choices(f: _Field, choices: Sequence[str], what: str) -> tuple[str, ...]:
    picked: list[str] = []
    for item in _list(f, what):
        value = _choice(item, choices)
        if value in picked:
            raise item.error(f"'{value}' is listed twice; name each once")
        picked.append(value)
    return tuple(picked)


def _prepare(node: Node, ctx: _Context, seen: set[int], path: str = "") -> None:
    """Reject duplicate keys, then resolve merge keys (<<), in every mapping of the document."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _prepare(value_node, ctx, seen, path)
                continue
            line = int(key_node.start_mark.line) + 1
            if not isinstance(key_node, ScalarNode):
                raise RulesError(ctx.source, line, path, "a key must be a plain name, not a list or mapping")
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in first_line:
                raise RulesError(
                    ctx.source,
                    line,
                    child,
                    f"'{key}' appears twice in one mapping (first on line {first_line[key]});"
                    " YAML would silently keep only the last one: write it once",
                )
            first_line[key] = line
            _prepare(value_node, ctx, seen, child)
        try:
            ctx.constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else 0
            raise RulesError(ctx.source, line, path, f"bad merge key (<<): {exc.problem}") from exc
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _prepare(item, ctx, seen, f"{path}[{index}]")


# --- vaults --------------------------------------------------------------------------------------

_VAULT_NAME_RULE = (
    "a vault name has 2 to 50 characters, starts with a letter and has only letters, digits and hyphens"
)


def _vault_name(f: _Field, name: str | None = None) -> str:
    """A vault name as Azure allows it: the field's text, or `name` made from the field's pattern."""
    name = _text(f, "the vault name") if name is None else name
    if not 2 <= len(name) <= 50:
        problem = f"it has {len(name)} character{'s' if len(name) != 1 else ''}"
    elif not name[0].isascii() or not name[0].isalpha():
        problem = f"it starts with '{name[0]}', not a letter"
    else:
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
        problem = f"it contains {_quote_all(bad)}" if bad else ""
    if problem:
        raise f.error(f"'{name}' is not a valid vault name: {problem}; {_VAULT_NAME_RULE}")
    return name


def _parse_vaults(f: _Field) -> tuple[VaultSpec, ...]:
    """The vaults. Several vaults of one subscription and region form a set that protection fills in
    the file's order; a name with '{n}' and a count declares several at once (rsv-weu-{n}, count 3:
    rsv-weu-1, rsv-weu-2, rsv-weu-3)."""
    vaults: list[VaultSpec] = []
    lines: list[int] = []
    for item in _list(f, "vaults"):
        with f.ctx.gathering():
            _parse_vault(item, vaults, lines)
    return tuple(vaults)


def _parse_vault(item: _Field, vaults: list[VaultSpec], lines: list[int]) -> None:
    """One entry of `vaults` (one vault, or several with a count), added to `vaults`."""
    keys = _mapping(
        item,
        ("subscription", "resourceGroup", "name", "region", "storageRedundancy", "count"),
        ("subscription", "resourceGroup", "name", "region"),
    )
    subscription = _text(keys["subscription"], "the subscription id").strip()
    if not SUBSCRIPTION_ID.match(subscription):
        raise keys["subscription"].error(
            f"'{subscription}' is not a subscription id;"
            " write its GUID, e.g. 00000000-0000-0000-0000-000000000000"
        )
    group = _text(keys["resourceGroup"], "the resource group name").strip()
    if not RESOURCE_GROUP.match(group) or group.endswith("."):
        raise keys["resourceGroup"].error(
            f"'{group}' is not a valid resource group name: up to 90 letters, digits, underscores,"
            " hyphens, periods and parentheses, not ending in a period"
        )
    names = _vault_names(keys["name"], keys.get("count"))
    region = normalize_region(_text(keys["region"], "the Azure region, e.g. westeurope"))
    if not _REGION.match(region):
        raise keys["region"].error(
            f"'{region}' is not an Azure region name; write it like westeurope or eastus"
        )
    redundancy: StorageRedundancy = "GeoRedundant"
    if "storageRedundancy" in keys:
        redundancy = (
            "LocallyRedundant"
            if _choice(keys["storageRedundancy"], STORAGE_REDUNDANCIES) == ("LocallyRedundant")
            else "GeoRedundant"
        )
    for name in names:
        vault = VaultSpec(subscription.lower(), group, name, region, redundancy)
        for index, other in enumerate(vaults):
            if other.subscription_id == vault.subscription_id and other.name.lower() == name.lower():
                raise keys["name"].error(
                    f"vault name '{name}' is already used by the vault on line {lines[index]} in the"
                    " same subscription; vault names are unique within a subscription"
                )
        vaults.append(vault)
        lines.append(item.line)


def _vault_names(name_field: _Field, count_field: _Field | None) -> list[str]:
    """The names one vault entry declares: its name, or with a count the pattern's names."""
    if count_field is None:
        return [_vault_name(name_field)]
    count = _int(count_field, 1, MAX_VAULT_COUNT, f"write 1 to {MAX_VAULT_COUNT} vaults")
    pattern = _text(name_field, "the vault name pattern, e.g. rsv-prod-weu-{n}").strip()
    if pattern.count("{n}") != 1:
        raise name_field.error(
            f"'{pattern}' has a count, so it must contain {{n}} once, where the vault's number goes,"
            " e.g. rsv-prod-weu-{n}"
        )
    return [_vault_name(name_field, pattern.replace("{n}", str(n))) for n in range(1, count + 1)]


_TEMPLATE_PLACEHOLDERS = ("{region}", "{subscription}", "{subscriptionShort}", "{n}")
_SAMPLE_SUBSCRIPTION = "0123abcd-0000-0000-0000-000000000000"


def _template_subscriptions(sel: _Field) -> tuple[bool, tuple[str, ...], str, str]:
    """(every subscription, ids, name pattern, management group): what a template's `subscriptions` selects."""
    all_subs, name_pattern, group = False, "", ""
    ids: tuple[str, ...] = ()
    if isinstance(sel.node, ScalarNode) and str(sel.node.value).strip() == "*":
        all_subs = True
    elif isinstance(sel.node, SequenceNode):
        ids = tuple(_subscription_id(entry) for entry in _list(sel, "subscription ids"))
    elif isinstance(sel.node, MappingNode):
        chosen = _mapping(sel, ("namePattern", "managementGroup"))
        if len(chosen) != 1:
            raise sel.error("give exactly one of namePattern and managementGroup")
        if "namePattern" in chosen:
            name_pattern = _text(chosen["namePattern"], "a pattern on the subscription's name, e.g. prod-*")
        else:
            group = _text(chosen["managementGroup"], "a management group id").strip()
    else:
        raise sel.error(
            "write '*' (every subscription in scope), a list of subscription ids, {namePattern: prod-*} or "
            "{managementGroup: mg-id}"
        )
    return all_subs, ids, name_pattern, group


def _template_regions(f: _Field) -> list[str]:
    """A template's regions, each named once."""
    regions: list[str] = []
    for entry in _list(f, "regions"):
        region = normalize_region(_text(entry, "the Azure region, e.g. westeurope"))
        if not _REGION.match(region):
            raise entry.error(f"'{region}' is not an Azure region name; write it like westeurope or eastus")
        if region in regions:
            raise entry.error(f"region '{region}' is listed twice; name each once")
        regions.append(region)
    return regions


def _parse_vault_templates(f: _Field, vaults: Sequence[VaultSpec]) -> tuple[VaultTemplate, ...]:
    """Vaults by template: for every subscription selected (`subscriptions: "*"`, a list of ids,
    `{namePattern: ...}` or `{managementGroup: ...}`), one vault set per region of the template."""
    templates: list[VaultTemplate] = []
    for item in _list(f, "vault templates"):
        keys = _mapping(
            item,
            (
                "subscriptions",
                "excludeSubscriptions",
                "regions",
                "resourceGroup",
                "name",
                "count",
                "storageRedundancy",
            ),
            ("subscriptions", "regions", "resourceGroup", "name"),
        )
        all_subs, ids, name_pattern, group = _template_subscriptions(keys["subscriptions"])
        exclude = (
            tuple(_subscription_id(e) for e in _list(keys["excludeSubscriptions"], "subscription ids"))
            if "excludeSubscriptions" in keys
            else ()
        )
        regions = _template_regions(keys["regions"])
        count = (
            _int(keys["count"], 1, MAX_VAULT_COUNT, f"write 1 to {MAX_VAULT_COUNT} vaults")
            if "count" in keys
            else 1
        )
        name = _text(keys["name"], "the vault name pattern, e.g. rsv-{subscriptionShort}-{region}").strip()
        group_pattern = _text(keys["resourceGroup"], "the resource group name pattern").strip()
        if len(regions) > 1 and "{region}" not in name:
            raise keys["name"].error(
                f"'{name}' names the vaults of {len(regions)} regions alike; put {{region}} in it, e.g. "
                "rsv-backup-{region}"
            )
        if count > 1 and name.count("{n}") != 1:
            raise keys["name"].error(
                f"'{name}' has a count, so it must contain {{n}} once, e.g. rsv-{{region}}-{{n}}"
            )
        redundancy: StorageRedundancy = "GeoRedundant"
        if (
            "storageRedundancy" in keys
            and _choice(keys["storageRedundancy"], STORAGE_REDUNDANCIES) == "LocallyRedundant"
        ):
            redundancy = "LocallyRedundant"
        template = VaultTemplate(
            tuple(regions),
            group_pattern,
            name,
            count,
            redundancy,
            ids,
            all_subs,
            name_pattern,
            group,
            exclude,
            item.line,
        )
        # Every name the template makes must be a valid name (checked with a sample subscription id).
        for vault in template.vaults(_SAMPLE_SUBSCRIPTION):
            _vault_name(keys["name"], vault.name)
            if not RESOURCE_GROUP.match(vault.resource_group) or vault.resource_group.endswith("."):
                raise keys["resourceGroup"].error(
                    f"'{vault.resource_group}' (from '{group_pattern}') is not a valid resource group name"
                )
        for other in templates:
            if set(other.regions) & set(regions) and (other.all_subscriptions or all_subs):
                raise item.error(
                    f"this template and the one on line {other.line} both give vaults for every subscription in "
                    f"region(s) {', '.join(sorted(set(other.regions) & set(regions)))}; exclude subscriptions or "
                    "split the regions"
                )
        templates.append(template)
    return tuple(templates)


def _subscription_id(f: _Field) -> str:
    value = _text(f, "the subscription id").strip()
    if not SUBSCRIPTION_ID.match(value):
        raise f.error(
            f"'{value}' is not a subscription id; write its GUID, e.g. 00000000-0000-0000-0000-000000000000"
        )
    return value.lower()


def _parse_vault_capacity(f: _Field) -> VaultCapacity:
    keys = _mapping(f, ("maxItems", "headroom"))
    most = MAX_VAULT_ITEMS
    if "maxItems" in keys:
        most = _int(
            keys["maxItems"],
            1,
            MAX_VAULT_ITEMS,
            f"write 1 to {MAX_VAULT_ITEMS}: Azure holds at most {MAX_VAULT_ITEMS} VMs in a vault",
        )
    headroom = 0
    if "headroom" in keys:
        headroom = _int(keys["headroom"], 0, most - 1, f"write 0 to {most - 1}, less than maxItems ({most})")
    return VaultCapacity(most, headroom)


# --- policies ------------------------------------------------------------------------------------


def _parse_time(f: _Field) -> str:
    raw = _text(f, 'a time like "22:00" or "22:30"').strip()
    match = _TIME.match(raw)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise f.error(
            f'\'{raw}\' is not a time of day; write HH:MM on a whole or half hour, e.g. "22:00" or "22:30"'
        )
    if match[2] not in ("00", "30"):
        raise f.error(
            f"{raw} is not on a whole or half hour; Azure schedules VM backups only at :00 or :30,"
            f' e.g. "{int(match[1]):02d}:00" or "{int(match[1]):02d}:30"'
        )
    return f"{int(match[1]):02d}:{match[2]}"


def _parse_time_zone(f: _Field) -> str:
    raw = _text(f, "a Windows time zone id, e.g. UTC or W. Europe Standard Time")
    canonical = canonical_time_zone(raw)
    if canonical is None:
        raise f.error(
            f"'{raw}' is not a time zone Azure Backup knows{_close(raw, WINDOWS_TIME_ZONES)};"
            " use a Windows time zone id such as UTC, W. Europe Standard Time or Eastern Standard Time"
            " (docs/RULES.md lists them)"
        )
    return canonical


_DAILY: tuple[str, str, str, tuple[str, ...]] = ("daily", DEFAULT_TIME, DEFAULT_TIME_ZONE, ())


def _parse_schedule(f: _Field) -> tuple[str, str, str, tuple[str, ...]]:
    """(frequency, time, time zone, weekdays) of a policy's schedule."""
    frequency, time, time_zone, weekdays = _DAILY
    schedule = _mapping(f, ("frequency", "time", "timeZone", "weekdays"))
    if "frequency" in schedule:
        frequency = _choice(schedule["frequency"], ("daily", "weekly"))
    if "time" in schedule:
        time = _parse_time(schedule["time"])
    if "timeZone" in schedule:
        time_zone = _parse_time_zone(schedule["timeZone"])
    if frequency == "weekly":
        if "weekdays" not in schedule:
            raise f.error("a weekly schedule needs weekdays, e.g. weekdays: [Sunday]")
        weekdays = _choices(schedule["weekdays"], WEEKDAYS, "weekdays")
    elif "weekdays" in schedule:
        raise schedule["weekdays"].error(
            "a daily schedule runs every day; remove weekdays or set frequency: weekly"
        )
    return frequency, time, time_zone, weekdays


def _instant_restore_days(f: _Field | None, kind: str, frequency: str) -> int:
    """How many days the policy keeps instant restore snapshots (Azure's default when `f` is None)."""
    if f is None:
        if kind == "standard" and frequency == "weekly":
            return WEEKLY_STANDARD_INSTANT_RESTORE_DAYS
        return DEFAULT_INSTANT_RESTORE_DAYS
    low, high = ENHANCED_INSTANT_RESTORE_DAYS if kind == "enhanced" else STANDARD_INSTANT_RESTORE_DAYS
    instant = _int(f, low, high, f"Azure allows {low} to {high} days for {kind} policies")
    if kind == "standard" and frequency == "weekly" and instant != WEEKLY_STANDARD_INSTANT_RESTORE_DAYS:
        raise f.error(
            f"{instant} is not allowed for a weekly standard policy; Azure keeps its instant restore"
            f" snapshots exactly {WEEKLY_STANDARD_INSTANT_RESTORE_DAYS} days: set 5 or leave it out"
        )
    return instant


def _parse_policy(name: str, f: _Field) -> tuple[PolicySpec, _Field | None]:
    """A policy and the field of its trustedLaunch key (checked once all policies are known)."""
    if f.is_null:
        return PolicySpec(name=name), None
    keys = _mapping(f, ("kind", "schedule", "instantRestoreDays", "retention", "trustedLaunch"))
    kind = _choice(keys["kind"], ("standard", "enhanced")) if "kind" in keys else "standard"

    frequency, time, time_zone, weekdays = _parse_schedule(keys["schedule"]) if "schedule" in keys else _DAILY
    instant = _instant_restore_days(keys.get("instantRestoreDays"), kind, frequency)

    daily: int | None = DEFAULT_DAILY_RETENTION_DAYS if frequency == "daily" else None
    weekly: WeeklyRetention | None = None
    monthly: MonthlyRetention | None = None
    retention_field = keys.get("retention")
    if retention_field is not None:
        retention = _mapping(retention_field, ("daily", "weekly", "monthly"))
        if "daily" in retention:
            if frequency == "weekly":
                raise retention["daily"].error(
                    "a weekly schedule takes no daily points to keep; remove retention.daily"
                    " (keep the weekly points with retention.weekly) or make the schedule daily"
                )
            low, high = DAILY_RETENTION_DAYS
            daily = _int(retention["daily"], low, high, f"Azure keeps daily points {low} to {high} days")
        if "weekly" in retention:
            weekly = _parse_weekly_retention(retention["weekly"], frequency, weekdays)
        if "monthly" in retention:
            monthly = _parse_monthly_retention(retention["monthly"], frequency, weekdays)
    if frequency == "weekly" and weekly is None:
        raise (retention_field or f).error(
            "a weekly schedule needs retention.weekly (how many weeks to keep the weekly points),"
            " e.g. retention: {weekly: {weeks: 12}}"
        )

    spec = PolicySpec(
        name=name,
        kind="enhanced" if kind == "enhanced" else "standard",
        frequency="weekly" if frequency == "weekly" else "daily",
        time=time,
        weekdays=week_order(weekdays),
        time_zone=time_zone,
        instant_restore_days=instant,
        daily_retention_days=daily,
        weekly_retention=weekly,
        monthly_retention=monthly,
        trusted_launch=_text(keys["trustedLaunch"], "the name of an enhanced policy")
        if "trustedLaunch" in keys
        else None,
    )
    return spec, keys.get("trustedLaunch")


def _check_scheduled(f: _Field, days: Sequence[str], frequency: str, scheduled: Sequence[str]) -> None:
    if frequency != "weekly":
        return
    for index, day in enumerate(days):
        if day not in scheduled:
            raise f.child(f.node.value[index], index).error(
                f"{day} is not a backup day of this policy"
                f" (schedule.weekdays: {', '.join(week_order(scheduled))});"
                " only points that are taken can be kept"
            )


def _parse_weekly_retention(f: _Field, frequency: str, scheduled: Sequence[str]) -> WeeklyRetention:
    required = ("weekdays", "weeks") if frequency == "daily" else ("weeks",)
    keys = _mapping(f, ("weekdays", "weeks"), required)
    low, high = WEEKLY_RETENTION_WEEKS
    weeks = _int(keys["weeks"], low, high, f"Azure keeps weekly points {low} to {high} weeks")
    if "weekdays" in keys:
        days = _choices(keys["weekdays"], WEEKDAYS, "weekdays")
        _check_scheduled(keys["weekdays"], days, frequency, scheduled)
    else:
        days = tuple(scheduled)
    return WeeklyRetention(week_order(days), weeks)


def _parse_monthly_retention(f: _Field, frequency: str, scheduled: Sequence[str]) -> MonthlyRetention:
    keys = _mapping(f, ("months", "weeksOfMonth", "weekdays", "daysOfMonth"), ("months",))
    low, high = MONTHLY_RETENTION_MONTHS
    months = _int(keys["months"], low, high, f"Azure keeps monthly points {low} to {high} months")
    if "daysOfMonth" in keys:
        if "weeksOfMonth" in keys or "weekdays" in keys:
            raise keys["daysOfMonth"].error("give either daysOfMonth or weeksOfMonth with weekdays, not both")
        if frequency == "weekly":
            raise keys["daysOfMonth"].error(
                "a weekly schedule can keep monthly points only by week (weeksOfMonth and weekdays),"
                " not by day of the month"
            )
        days: list[int] = []
        last = False
        for item in _list(keys["daysOfMonth"], "days of the month"):
            node = item.node
            if isinstance(node, ScalarNode) and str(node.value).strip().lower() == "last":
                last = True
                continue
            day = _int(
                item, MONTH_DAYS[0], MONTH_DAYS[1], "write days 1 to 28, or last for the month's last day"
            )
            if day in days:
                raise item.error(f"day {day} is listed twice; name each once")
            days.append(day)
        return MonthlyRetention(months, days_of_month=tuple(sorted(days)), last_day=last)
    if "weeksOfMonth" not in keys:
        raise f.error("monthly retention needs weeksOfMonth with weekdays (e.g. First Sunday) or daysOfMonth")
    weeks = _choices(keys["weeksOfMonth"], WEEKS_OF_MONTH, "weeks of the month")
    if "weekdays" in keys:
        weekdays = _choices(keys["weekdays"], WEEKDAYS, "weekdays")
        _check_scheduled(keys["weekdays"], weekdays, frequency, scheduled)
    elif frequency == "weekly":
        weekdays = tuple(scheduled)
    else:
        raise f.error(
            "monthly retention by week needs weekdays too, e.g. weeksOfMonth: [First], weekdays: [Sunday]"
        )
    order = {week: i for i, week in enumerate(WEEKS_OF_MONTH)}
    return MonthlyRetention(
        months, weeks_of_month=tuple(sorted(weeks, key=order.__getitem__)), weekdays=week_order(weekdays)
    )


def _parse_policies(f: _Field) -> tuple[PolicySpec, ...]:
    entries = _entries(f, "policies")
    if not entries:
        raise f.error(
            "no policies; define at least one, e.g. policies: {gold: {}} for Azure's default settings"
        )
    policies: list[PolicySpec] = []
    trusted_fields: dict[str, _Field] = {}
    seen: dict[str, int] = {}
    for name, item in entries:
        with f.ctx.gathering():
            if not _POLICY_NAME.match(name):
                raise item.error(
                    f"'{name}' is not a valid policy name: start with a letter or digit and use only letters,"
                    " digits, hyphens and underscores, at most 150 characters"
                )
            if name.lower() in seen:
                raise item.error(
                    f"policy '{name}' is defined twice (also on line {seen[name.lower()]}); Azure policy"
                    " names ignore case, so give each policy its own name"
                )
            seen[name.lower()] = item.line
            spec, trusted = _parse_policy(name, item)
            policies.append(spec)
            if trusted is not None:
                trusted_fields[name] = trusted

    by_name = {policy.name.lower(): policy for policy in policies}
    resolved: list[PolicySpec] = []
    for policy in policies:
        trusted = trusted_fields.get(policy.name)
        if trusted is None or policy.trusted_launch is None:
            resolved.append(policy)
            continue
        if policy.kind == "enhanced":
            raise trusted.error(
                f"policy '{policy.name}' is already enhanced and protects Trusted Launch VMs itself;"
                " remove trustedLaunch"
            )
        sibling = by_name.get(policy.trusted_launch.lower())
        if sibling is None:
            enhanced = [p.name for p in policies if p.kind == "enhanced"]
            known = ", ".join(enhanced) if enhanced else "none yet: add one with kind: enhanced"
            raise trusted.error(
                f"policy '{policy.trusted_launch}' is not defined; trustedLaunch names an enhanced policy of"
                f" this file (enhanced policies: {known})"
            )
        if sibling.kind != "enhanced":
            raise trusted.error(
                f"policy '{sibling.name}' is standard; Trusted Launch VMs need an enhanced policy:"
                f" set kind: enhanced on '{sibling.name}' or name another policy"
            )
        resolved.append(dataclasses.replace(policy, trusted_launch=sibling.name))  # canonical spelling
    return tuple(resolved)


# --- selection -----------------------------------------------------------------------------------


def _parse_match(f: _Field, depth: int = 0) -> Match:
    if depth > _MAX_MATCH_DEPTH:
        raise f.error("the match is nested too deeply")
    allowed = ("tag", "equals", "oneOf", "like", "caseSensitive", "not", "all", "any")
    keys = _mapping(f, allowed)
    if not keys:
        raise f.error("the match is empty; write e.g. {tag: backup-policy, equals: gold}")
    for combinator in ("not", "all", "any"):
        if combinator in keys:
            extra = sorted(set(keys) - {combinator})
            if extra:
                raise keys[extra[0]].error(
                    f"'{combinator}' stands alone in its match; move {extra[0]} into it"
                )
            if combinator == "not":
                return NotMatch(_parse_match(keys["not"], depth + 1))
            items = tuple(_parse_match(item, depth + 1) for item in _list(keys[combinator], "matches"))
            return AllMatch(items) if combinator == "all" else AnyMatch(items)
    if "tag" not in keys:
        raise f.error("a match needs 'tag' (or 'not', 'all', 'any'); e.g. {tag: backup-policy, equals: gold}")
    tag = _text(keys["tag"], "the tag name").strip()
    ops = [op for op in ("equals", "oneOf", "like") if op in keys]
    if len(ops) != 1:
        which = "none" if not ops else " and ".join(ops)
        raise f.error(f"a tag match needs exactly one of equals, oneOf, like; found {which}")
    op = ops[0]
    case_sensitive = _bool(keys["caseSensitive"]) if "caseSensitive" in keys else False
    if op == "oneOf":
        values = tuple(_text(item, "a tag value") for item in _list(keys["oneOf"], "tag values"))
        return TagMatch(tag, "oneOf", values, case_sensitive)
    value = _text(keys[op], "a tag value")
    return TagMatch(tag, "equals" if op == "equals" else "like", (value,), case_sensitive)


def _parse_selection(f: _Field, known: Mapping[str, str]) -> tuple[SelectionRule, ...]:
    """The selection rules; `known` has the policy names (lower-cased: as declared)."""
    rules: list[SelectionRule] = []
    first: dict[int, tuple[str, int]] = {}
    names: dict[str, int] = {}
    for item in _list(f, "selection rules"):
        with f.ctx.gathering():
            rules.append(_parse_selection_rule(item, known, first, names))
    return tuple(sorted(rules, key=lambda rule: rule.priority))


def _parse_selection_rule(
    item: _Field, known: Mapping[str, str], first: dict[int, tuple[str, int]], names: dict[str, int]
) -> SelectionRule:
    keys = _mapping(
        item,
        ("name", "priority", "match", "policy", "description"),
        ("name", "priority", "match", "policy"),
    )
    name = _text(keys["name"], "the rule's name").strip()
    # A clash or an unknown policy is noted and the rule still checked, as the rest of the file is.
    mistakes = item.ctx.mistakes
    if name.lower() in names:
        mistakes.append(
            keys["name"].error(
                f"rule name '{name}' is used twice (also on line {names[name.lower()]}); name each rule once"
            )
        )
    names.setdefault(name.lower(), keys["name"].line)
    priority = _int(keys["priority"], 0, 1_000_000, "write a whole number from 0; the lowest number wins")
    if priority in first:
        other, line = first[priority]
        mistakes.append(
            keys["priority"].error(
                f"rules '{other}' (line {line}) and '{name}' both have priority {priority};"
                " give each rule its own priority (the lowest number wins when several match)"
            )
        )
    first.setdefault(priority, (name, keys["priority"].line))
    policy_name = _text(keys["policy"], "a policy name").strip()
    if policy_name.lower() not in known:
        mistakes.append(
            keys["policy"].error(
                f"rule '{name}' selects policy '{policy_name}', which is not defined"
                f"{_close(policy_name, known.values())}; known policies: {', '.join(known.values())}"
            )
        )
    description = _text(keys["description"], "a description") if "description" in keys else ""
    match = _parse_match(keys["match"])
    return SelectionRule(name, priority, match, known.get(policy_name.lower(), policy_name), description)


def _parse_opt_out(f: _Field) -> OptOut:
    keys = _mapping(f, ("tag", "values", "caseSensitive"), ("tag", "values"))
    tag = _text(keys["tag"], "the tag name").strip()
    values = tuple(_text(item, "a tag value") for item in _list(keys["values"], "tag values"))
    case_sensitive = _bool(keys["caseSensitive"]) if "caseSensitive" in keys else False
    return OptOut(tag, values, case_sensitive)


def _parse_actions(f: _Field) -> Actions:
    keys = _mapping(f, ("onOptOut", "onStoppedProtection", "onWrongPolicy", "onPolicyDrift"))
    on_opt_out = _choice(keys["onOptOut"], ("report", "stopProtection")) if "onOptOut" in keys else "report"
    on_stopped = (
        _choice(keys["onStoppedProtection"], ("resume", "report"))
        if "onStoppedProtection" in keys
        else "resume"
    )
    on_wrong = _choice(keys["onWrongPolicy"], ("fix", "report")) if "onWrongPolicy" in keys else "fix"
    on_drift = _choice(keys["onPolicyDrift"], ("fix", "report")) if "onPolicyDrift" in keys else "fix"
    return Actions(
        on_opt_out="stopProtection" if on_opt_out == "stopProtection" else "report",
        on_stopped_protection="report" if on_stopped == "report" else "resume",
        on_wrong_policy="report" if on_wrong == "report" else "fix",
        on_policy_drift="report" if on_drift == "report" else "fix",
    )


def _parse_first_backup(f: _Field) -> FirstBackup:
    keys = _mapping(f, ("enabled", "retainDays"))
    enabled = _bool(keys["enabled"]) if "enabled" in keys else True
    retain = FirstBackup().retain_days
    if "retainDays" in keys:
        retain = _int(keys["retainDays"], 1, MAX_RETAIN_DAYS, f"write 1 to {MAX_RETAIN_DAYS} days (99 years)")
    return FirstBackup(enabled, retain)


_TOP_LEVEL = (
    "version",
    "vaults",
    "policies",
    "selection",
    "optOut",
    "diskExclusion",
    "firstBackup",
    "actions",
    "vaultCapacity",
    "vaultTemplates",
    "posture",
    "drills",
)


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Validate the text of a rules file; `source` names it in error messages."""
    ctx = _Context(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "cannot be read"
        raise RulesError(
            source, line, "", f"not valid YAML: {problem}; check indentation and quotes"
        ) from exc
    except yaml.YAMLError as exc:
        raise RulesError(source, 0, "", f"not valid YAML: {exc}") from exc
    except RecursionError:
        raise RulesError(source, 0, "", "the YAML is nested too deeply to be a rules file") from None
    if root is None:
        raise RulesError(
            source, 1, "", "the file is empty; it needs vaults, policies and selection (see docs/RULES.md)"
        )
    try:
        _prepare(root, ctx, set())
    except RecursionError:
        raise RulesError(source, 0, "", "the YAML is nested too deeply to be a rules file") from None
    top = _Field(ctx, root, "")
    if not isinstance(root, MappingNode):
        raise top.error(
            f"the file must be a mapping with the keys {', '.join(_TOP_LEVEL)}; found {top.describe()}"
        )
    keys = _mapping(top, _TOP_LEVEL, ("policies", "selection"), extensions=True)
    if "vaults" not in keys and "vaultTemplates" not in keys:
        ctx.mistakes.append(
            top.error("missing key 'vaults'; list the vaults, or declare them by template (vaultTemplates)")
        )
    rules = _parse_sections(ctx, keys)
    if ctx.mistakes:
        raise RulesError.of_file(ctx.mistakes)
    assert rules is not None
    return rules


def _parse_sections(ctx: _Context, keys: Mapping[str, _Field]) -> Rules | None:
    """Each section checked on its own, so that the mistakes of all of them are reported at once."""
    policies: tuple[PolicySpec, ...] = ()
    vaults: tuple[VaultSpec, ...] = ()
    templates: tuple[VaultTemplate, ...] = ()
    selection: tuple[SelectionRule, ...] = ()
    opt_out: OptOut | None = None
    disk_tag: str | None = None
    first_backup, actions, capacity = FirstBackup(), Actions(), VaultCapacity()
    with ctx.gathering():
        if "version" in keys:
            _int(keys["version"], 1, 1, "this autopilot reads version 1 of the rules format")
    with ctx.gathering():
        policies = _parse_policies(keys["policies"])
    with ctx.gathering():
        vaults = _parse_vaults(keys["vaults"]) if "vaults" in keys else ()
    with ctx.gathering():
        templates = _parse_vault_templates(keys["vaultTemplates"], vaults) if "vaultTemplates" in keys else ()
    with ctx.gathering():
        selection = _parse_selection(keys["selection"], _declared_names(keys["policies"]))
    with ctx.gathering():
        opt_out = _parse_opt_out(keys["optOut"]) if "optOut" in keys else None
    with ctx.gathering():
        if "diskExclusion" in keys:
            disk = _mapping(keys["diskExclusion"], ("tag",), ("tag",))
            disk_tag = _text(disk["tag"], "the tag name").strip()
    with ctx.gathering():
        first_backup = _parse_first_backup(keys["firstBackup"]) if "firstBackup" in keys else FirstBackup()
    with ctx.gathering():
        actions = _parse_actions(keys["actions"]) if "actions" in keys else Actions()
    with ctx.gathering():
        capacity = (
            _parse_vault_capacity(keys["vaultCapacity"]) if "vaultCapacity" in keys else VaultCapacity()
        )
    posture = None
    if "posture" in keys:
        from autopilot.rules.posture import parse_posture

        with ctx.gathering():
            posture = parse_posture(keys["posture"])
    drills = None
    if "drills" in keys:
        from autopilot.rules.drills import parse_drills

        with ctx.gathering():
            drills = parse_drills(keys["drills"], policies, vaults)
    if ctx.mistakes:
        return None
    return Rules(
        ctx.source,
        vaults,
        policies,
        selection,
        opt_out,
        disk_tag,
        first_backup,
        actions,
        capacity,
        templates,
        drills=drills,
        posture=posture,
    )


def _declared_names(f: _Field) -> dict[str, str]:
    """The policy names the file declares (lower-cased: as written), a policy with mistakes included:
    a rule that selects it is not wrong."""
    if not isinstance(f.node, MappingNode):
        return {}
    return {str(key.value).lower(): str(key.value) for key, _ in f.node.value}


def load_rules(path: str) -> Rules:
    """Read and validate the rules file at `path` (the AUTOPILOT_RULES setting)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise RulesError(path, 0, "", f"the file is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise RulesError(
            path,
            0,
            "",
            f"cannot read the rules file: {exc.strerror or exc}; check the AUTOPILOT_RULES setting",
        ) from exc
    return parse_rules(text, path)


def validate_file(path: str) -> Rules:
    """What `python -m autopilot validate` runs: load and validate, raising RulesError on a mistake."""
    return load_rules(path)
