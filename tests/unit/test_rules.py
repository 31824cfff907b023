"""The rules file: parsing, validation errors (file, line, field), selection on tags, vaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopilot.rules import (
    Actions,
    FirstBackup,
    Rules,
    RulesError,
    Selection,
    load_rules,
    normalize_region,
    parse_lun_list,
    parse_rules,
    validate_file,
)

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "rules" / "sandbox.yaml"
EXAMPLE = ROOT / "rules" / "example.yaml"
SUB = "00000000-0000-0000-0000-000000000001"

# A small, complete rules file that the error tests change one thing at a time.
BASE = f"""\
version: 1
vaults:
  - subscription: {SUB}
    resourceGroup: rg-backup
    name: rsv-weu
    region: westeurope
  - subscription: {SUB}
    resourceGroup: rg-backup
    name: rsv-eus
    region: eastus
    storageRedundancy: LocallyRedundant
policies:
  gold:
    schedule: {{frequency: daily, time: "22:00", timeZone: UTC}}
    instantRestoreDays: 2
    retention:
      daily: 30
    trustedLaunch: gold-enhanced
  gold-enhanced:
    kind: enhanced
    schedule: {{frequency: daily, time: "22:00", timeZone: UTC}}
    instantRestoreDays: 7
  silver: {{}}
selection:
  - name: gold-rule
    priority: 10
    match: {{tag: backup-policy, equals: gold}}
    policy: gold
  - name: silver-rule
    priority: 20
    match: {{tag: backup-policy, equals: silver}}
    policy: silver
optOut:
  tag: backup-policy
  values: [none]
diskExclusion:
  tag: backup-exclude-luns
"""


# The gold policy's schedule up to its retention, and a weekly replacement for it.
GOLD_DAILY = (
    'schedule: {frequency: daily, time: "22:00", timeZone: UTC}\n'
    "    instantRestoreDays: 2\n    retention:\n      daily: 30\n"
)
WEEKLY_SCHEDULE = 'schedule: {frequency: weekly, weekdays: [Sunday], time: "22:00", timeZone: UTC}\n'


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the text"
    return hits[occurrence - 1]


def _replace(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _error(text: str) -> RulesError:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules/x.yaml")
    return caught.value


def test_base_file_is_valid() -> None:
    rules = parse_rules(BASE, "rules/x.yaml")
    assert [vault.name for vault in rules.vaults] == ["rsv-weu", "rsv-eus"]
    assert rules.policy_names == ("gold", "gold-enhanced", "silver")
    assert [rule.name for rule in rules.selection] == ["gold-rule", "silver-rule"]


# --- errors: each names the file, the line and the field, and says how to fix it ----------------


ERROR_CASES = [
    pytest.param(
        ("    policy: silver\n", "    policy: platinum\n"),
        "    policy: platinum",
        "selection[1].policy",
        ["'platinum'", "not defined", "known policies: gold, gold-enhanced, silver"],
        id="unknown-policy",
    ),
    pytest.param(
        (
            'schedule: {frequency: daily, time: "22:00", timeZone: UTC}\n    instantRestoreDays: 2',
            'schedule: {frequency: daily, time: "22:15", timeZone: UTC}\n    instantRestoreDays: 2',
        ),
        '"22:15"',
        "policies.gold.schedule.time",
        ["22:15 is not on a whole or half hour", '"22:00" or "22:30"'],
        id="schedule-22:15",
    ),
    pytest.param(
        (
            'time: "22:00", timeZone: UTC}\n    instantRestoreDays: 2',
            "time: 22:15, timeZone: UTC}\n    instantRestoreDays: 2",
        ),
        "time: 22:15",
        "policies.gold.schedule.time",
        ["22:15 is not on a whole or half hour"],
        id="schedule-22:15-unquoted",
    ),
    pytest.param(
        (
            'time: "22:00", timeZone: UTC}\n    instantRestoreDays: 2',
            'time: "25:00", timeZone: UTC}\n    instantRestoreDays: 2',
        ),
        '"25:00"',
        "policies.gold.schedule.time",
        ["'25:00' is not a time of day"],
        id="schedule-25:00",
    ),
    pytest.param(
        ("    instantRestoreDays: 2\n", "    instantRestoreDays: 6\n"),
        "instantRestoreDays: 6",
        "policies.gold.instantRestoreDays",
        ["6 is out of range; Azure allows 1 to 5 days for standard policies"],
        id="instant-restore-6",
    ),
    pytest.param(
        ("    instantRestoreDays: 7\n", "    instantRestoreDays: 31\n"),
        "instantRestoreDays: 31",
        "policies.gold-enhanced.instantRestoreDays",
        ["31 is out of range; Azure allows 1 to 30 days for enhanced policies"],
        id="instant-restore-enhanced-31",
    ),
    pytest.param(
        ("name: rsv-weu", "name: r"),
        "name: r",
        "vaults[0].name",
        ["'r' is not a valid vault name", "it has 1 character", "2 to 50 characters"],
        id="vault-name-too-short",
    ),
    pytest.param(
        ("name: rsv-weu", "name: " + "v" * 51),
        "name: vvv",
        "vaults[0].name",
        ["it has 51 characters", "2 to 50 characters"],
        id="vault-name-too-long",
    ),
    pytest.param(
        ("name: rsv-weu", "name: 1rsv-weu"),
        "name: 1rsv-weu",
        "vaults[0].name",
        ["'1rsv-weu' is not a valid vault name", "starts with '1', not a letter"],
        id="vault-name-starts-with-digit",
    ),
    pytest.param(
        ("name: rsv-eus", "name: rsv_eus"),
        "name: rsv_eus",
        "vaults[1].name",
        ["'rsv_eus' is not a valid vault name", "contains '_'", "only letters, digits and hyphens"],
        id="vault-name-underscore",
    ),
    pytest.param(
        ("    priority: 20\n", "    priority: 10\n"),
        ("priority: 10", 2),
        "selection[1].priority",
        ["rules 'gold-rule' (line 26) and 'silver-rule' both have priority 10", "its own priority"],
        id="duplicate-priorities",
    ),
    pytest.param(
        ("name: rsv-eus", "name: rsv-eus-{n}"),
        "name: rsv-eus-{n}",
        "vaults[1].name",
        ["'rsv-eus-{n}' is not a valid vault name", "contains '{', '}'"],
        id="vault-name-pattern-without-count",
    ),
    pytest.param(
        ("name: rsv-eus\n", "name: rsv-eus\n    count: 3\n"),
        "name: rsv-eus",
        "vaults[1].name",
        ["'rsv-eus' has a count, so it must contain {n} once", "rsv-prod-weu-{n}"],
        id="vault-count-without-pattern",
    ),
    pytest.param(
        ("name: rsv-eus\n", "name: rsv-eus-{n}\n    count: 51\n"),
        "count: 51",
        "vaults[1].count",
        ["51", "write 1 to 50 vaults"],
        id="vault-count-too-large",
    ),
    pytest.param(
        ("diskExclusion:\n", "vaultCapacity: {maxItems: 1001}\ndiskExclusion:\n"),
        "vaultCapacity",
        "vaultCapacity.maxItems",
        ["1001", "Azure holds at most 1000 VMs in a vault"],
        id="vault-capacity-over-azure",
    ),
    pytest.param(
        ("diskExclusion:\n", "vaultCapacity: {maxItems: 100, headroom: 100}\ndiskExclusion:\n"),
        "vaultCapacity",
        "vaultCapacity.headroom",
        ["write 0 to 99, less than maxItems (100)"],
        id="vault-headroom-not-below-max",
    ),
    pytest.param(
        ("name: rsv-eus", "name: RSV-WEU"),
        "name: RSV-WEU",
        "vaults[1].name",
        ["'RSV-WEU' is already used by the vault on line 3"],
        id="duplicate-vault-name",
    ),
    pytest.param(
        (
            "timeZone: UTC}\n    instantRestoreDays: 2",
            "timeZone: Europe/Amsterdam}\n    instantRestoreDays: 2",
        ),
        "Europe/Amsterdam",
        "policies.gold.schedule.timeZone",
        ["'Europe/Amsterdam' is not a time zone Azure Backup knows", "W. Europe Standard Time"],
        id="bad-time-zone",
    ),
    pytest.param(
        (
            "timeZone: UTC}\n    instantRestoreDays: 2",
            "timeZone: W Europe Standard Time}\n    instantRestoreDays: 2",
        ),
        "W Europe Standard Time",
        "policies.gold.schedule.timeZone",
        ["did you mean 'W. Europe Standard Time'?"],
        id="time-zone-typo",
    ),
    pytest.param(
        (
            'schedule: {frequency: daily, time: "22:00", timeZone: UTC}\n    instantRestoreDays: 2',
            WEEKLY_SCHEDULE + "    instantRestoreDays: 5",
        ),
        "      daily: 30",
        "policies.gold.retention.daily",
        ["a weekly schedule takes no daily points", "remove retention.daily"],
        id="weekly-schedule-with-daily-retention",
    ),
    pytest.param(
        ("    instantRestoreDays: 2\n", "    instantRestoreDay: 2\n"),
        "instantRestoreDay: 2",
        "policies.gold.instantRestoreDay",
        [
            "unknown key 'instantRestoreDay'",
            "did you mean 'instantRestoreDays'?",
            "allowed keys here: kind, schedule, instantRestoreDays, retention, trustedLaunch",
        ],
        id="unknown-key",
    ),
    pytest.param(
        ("diskExclusion:", "diskExclusions:"),
        "diskExclusions:",
        "diskExclusions",
        ["unknown key 'diskExclusions'", "did you mean 'diskExclusion'?"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        ("    instantRestoreDays: 2\n", '    instantRestoreDays: "2"\n'),
        'instantRestoreDays: "2"',
        "policies.gold.instantRestoreDays",
        ["expected a whole number; found the text '2'", "write the number without quotes"],
        id="quoted-number",
    ),
    pytest.param(
        ("      daily: 30\n", "      daily: thirty\n"),
        "daily: thirty",
        "policies.gold.retention.daily",
        ["expected a whole number; found the text 'thirty'", "7 to 9999 days"],
        id="text-for-number",
    ),
    pytest.param(
        ("    priority: 10\n", "    priority: 1.5\n"),
        "priority: 1.5",
        "selection[0].priority",
        ["expected a whole number; found the number 1.5"],
        id="float-for-number",
    ),
    pytest.param(
        ("    priority: 10\n", "    priority: high\n"),
        "priority: high",
        "selection[0].priority",
        ["expected a whole number; found the text 'high'"],
        id="text-for-priority",
    ),
    pytest.param(
        ("      daily: 30\n", "      daily: 3\n"),
        "daily: 3",
        "policies.gold.retention.daily",
        ["3 is out of range; Azure keeps daily points 7 to 9999 days"],
        id="daily-retention-too-short",
    ),
    pytest.param(
        ("subscription: " + SUB, "subscription: sub-1"),
        "subscription: sub-1",
        "vaults[0].subscription",
        ["'sub-1' is not a subscription id"],
        id="subscription-not-guid",
    ),
    pytest.param(
        ("    storageRedundancy: LocallyRedundant\n", "    storageRedundancy: LRS\n"),
        "storageRedundancy: LRS",
        "vaults[1].storageRedundancy",
        ["'LRS' is not allowed; use one of GeoRedundant, LocallyRedundant"],
        id="storage-redundancy",
    ),
    pytest.param(
        ("    trustedLaunch: gold-enhanced\n", "    trustedLaunch: silver\n"),
        "trustedLaunch: silver",
        "policies.gold.trustedLaunch",
        ["policy 'silver' is standard; Trusted Launch VMs need an enhanced policy"],
        id="trusted-launch-sibling-standard",
    ),
    pytest.param(
        ("    trustedLaunch: gold-enhanced\n", "    trustedLaunch: gold-tl\n"),
        "trustedLaunch: gold-tl",
        "policies.gold.trustedLaunch",
        ["policy 'gold-tl' is not defined", "enhanced policies: gold-enhanced"],
        id="trusted-launch-sibling-missing",
    ),
    pytest.param(
        (
            "    match: {tag: backup-policy, equals: gold}\n",
            "    match: {tag: backup-policy, equals: gold, like: g*}\n",
        ),
        "equals: gold, like",
        "selection[0].match",
        ["exactly one of equals, oneOf, like; found equals and like"],
        id="match-two-operators",
    ),
    pytest.param(
        ("    match: {tag: backup-policy, equals: gold}\n", "    match: {tag: backup-policy, equal: gold}\n"),
        "equal: gold",
        "selection[0].match.equal",
        ["unknown key 'equal'", "did you mean 'equals'?"],
        id="match-typo",
    ),
    pytest.param(
        ("  - name: silver-rule\n", "  - name: GOLD-rule\n"),
        "name: GOLD-rule",
        "selection[1].name",
        ["rule name 'GOLD-rule' is used twice"],
        id="duplicate-rule-name",
    ),
    pytest.param(
        ("  silver: {}\n", "  silver: {}\n  Silver: {}\n"),
        "Silver: {}",
        "policies.Silver",
        ["policy 'Silver' is defined twice"],
        id="duplicate-policy-name-ignoring-case",
    ),
    pytest.param(
        ("    instantRestoreDays: 2\n", "    instantRestoreDays: 2\n    instantRestoreDays: 3\n"),
        "instantRestoreDays: 3",
        "policies.gold.instantRestoreDays",
        ["appears twice in one mapping (first on line 15)"],
        id="duplicate-key",
    ),
    pytest.param(
        ("  values: [none]\n", "  values: none\n"),
        "values: none",
        "optOut.values",
        ["expected a list of tag values; found the text 'none'"],
        id="opt-out-values-not-a-list",
    ),
]


@pytest.mark.parametrize(("change", "line_needle", "field", "fragments"), ERROR_CASES)
def test_error_names_file_line_and_field(
    change: tuple[str, str], line_needle: str | tuple[str, int], field: str, fragments: list[str]
) -> None:
    text = _replace(*change)
    error = _error(text)
    assert error.path == "rules/x.yaml"
    assert error.field == field
    needle, occurrence = line_needle if isinstance(line_needle, tuple) else (line_needle, 1)
    assert error.line == _line_of(text, needle, occurrence)
    message = str(error)
    assert message.startswith(f"rules/x.yaml:{error.line}: {field}: ")
    for fragment in fragments:
        assert fragment in message


def test_error_str_reads_like_the_brief() -> None:
    text = _replace("    instantRestoreDays: 2\n", "    instantRestoreDays: 6\n")
    assert str(_error(text)) == (
        "rules/x.yaml:15: policies.gold.instantRestoreDays: 6 is out of range;"
        " Azure allows 1 to 5 days for standard policies"
    )


def test_every_mistake_of_a_file_is_reported_in_one_run() -> None:
    # Five mistakes in four parts of the file (a vault, two policies, a rule): one run names them all,
    # in the file's order of sections, each with its line and field, as a linter does.
    text = _replace("    region: eastus\n", "    region: east us!\n")
    text = text.replace("    instantRestoreDays: 2\n", "    instantRestoreDays: 6\n", 1)
    text = text.replace("  silver: {}\n", "  silver: {tiem: 3}\n")
    text = text.replace("    priority: 20\n", "    priority: 10\n").replace(
        "    policy: silver\n", "    policy: bronze\n"
    )
    error = _error(text)
    found = [(mistake.line, mistake.field) for mistake in error.mistakes]
    assert found == [
        (_line_of(text, "instantRestoreDays: 6"), "policies.gold.instantRestoreDays"),
        (_line_of(text, "tiem"), "policies.silver.tiem"),
        (_line_of(text, "east us!"), "vaults[1].region"),
        (_line_of(text, "priority: 10", 2), "selection[1].priority"),
        (_line_of(text, "policy: bronze"), "selection[1].policy"),
    ]
    assert (error.line, error.field) == found[0]  # the error itself is the first mistake
    lines = str(error).splitlines()
    assert lines[0] == str(error.mistakes[0]) and lines[-1] == "(5 mistakes in rules/x.yaml)"
    assert "did you mean" not in lines[1] and "allowed keys here" in lines[1]
    assert "rules 'gold-rule'" in lines[3] and "'bronze', which is not defined" in lines[4]


def test_a_rule_that_selects_a_policy_with_a_mistake_is_not_blamed_for_it() -> None:
    text = _replace("  silver: {}\n", "  silver: {kind: enhanced-ish}\n")
    error = _error(text)
    assert [mistake.field for mistake in error.mistakes] == ["policies.silver.kind"]


def test_weekly_standard_policy_needs_five_instant_restore_days() -> None:
    text = _replace(
        GOLD_DAILY,
        WEEKLY_SCHEDULE + "    instantRestoreDays: 2\n    retention:\n      weekly: {weeks: 4}\n",
    )
    error = _error(text)
    assert error.field == "policies.gold.instantRestoreDays"
    assert "exactly 5 days" in error.message


def test_weekly_schedule_needs_weekly_retention() -> None:
    text = _replace(
        GOLD_DAILY,
        WEEKLY_SCHEDULE,
    )
    error = _error(text)
    assert error.field == "policies.gold"
    assert error.line == _line_of(text, "  gold:")
    assert "needs retention.weekly" in error.message


def test_weekly_retention_day_must_be_a_backup_day() -> None:
    text = _replace(
        GOLD_DAILY,
        WEEKLY_SCHEDULE + "    retention:\n      weekly: {weekdays: [Monday], weeks: 4}\n",
    )
    error = _error(text)
    assert error.field == "policies.gold.retention.weekly.weekdays[0]"
    assert "Monday is not a backup day of this policy (schedule.weekdays: Sunday)" in error.message


def test_monthly_retention_needs_days_or_weeks() -> None:
    text = _replace("      daily: 30\n", "      daily: 30\n      monthly: {months: 6}\n")
    error = _error(text)
    assert error.field == "policies.gold.retention.monthly"
    assert error.line == _line_of(text, "monthly: {months: 6}")
    assert "weeksOfMonth with weekdays" in error.message


def test_month_day_29_is_refused() -> None:
    text = _replace(
        "      daily: 30\n", "      daily: 30\n      monthly: {daysOfMonth: [1, 29], months: 6}\n"
    )
    error = _error(text)
    assert error.field == "policies.gold.retention.monthly.daysOfMonth[1]"
    assert "29 is out of range" in error.message
    assert "last" in error.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "the file is empty"),
        ("# only a comment\n", 1, "the file is empty"),
        ("- vaults\n- policies\n", 1, "the file must be a mapping with the keys version, vaults"),
        ("just text\n", 1, "the file must be a mapping"),
        ("vaults: [\n", 2, "not valid YAML"),
        ("vaults: []\npolicies: {}\n", 1, "missing key 'selection'"),
    ],
    ids=["empty", "comment-only", "list", "scalar", "bad-yaml", "missing-key"],
)
def test_file_level_errors(text: str, line: int, fragment: str) -> None:
    error = _error(text)
    assert error.line == line
    assert fragment in str(error)
    assert str(error).startswith(f"rules/x.yaml:{line}: ")


def test_empty_lists_and_mappings_are_refused() -> None:
    vaults_start = BASE.index("vaults:")
    policies_start = BASE.index("policies:")
    empty_vaults = BASE[:vaults_start] + "vaults: []\n" + BASE[policies_start:]
    error = _error(empty_vaults)
    assert (error.field, error.line) == ("vaults", 2)
    assert "the list is empty" in error.message


def test_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RulesError) as caught:
        load_rules(str(missing))
    assert str(caught.value).startswith(f"{missing}: cannot read the rules file")
    assert "AUTOPILOT_RULES" in str(caught.value)


def test_error_path_is_the_file_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_replace("    instantRestoreDays: 2\n", "    instantRestoreDays: 6\n"), encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        validate_file(str(path))
    assert str(caught.value).startswith(f"{path}:15: policies.gold.instantRestoreDays: 6 is out of range")


# --- YAML conveniences -------------------------------------------------------------------------------


def test_merge_keys_and_x_keys_reuse_values() -> None:
    text = f"""\
x-common: &common
  subscription: {SUB}
  resourceGroup: rg-backup
x-policy: &policy
  schedule: {{time: "01:00"}}
  retention: {{daily: 10}}
vaults:
  - <<: *common
    name: rsv-weu
    region: westeurope
  - <<: *common
    name: rsv-neu
    region: northeurope
    resourceGroup: rg-other
policies:
  a: *policy
  b:
    <<: *policy
    instantRestoreDays: 4
selection:
  - {{name: r, priority: 1, match: {{tag: t, equals: v}}, policy: b}}
"""
    rules = parse_rules(text)
    assert [(v.name, v.resource_group) for v in rules.vaults] == [
        ("rsv-weu", "rg-backup"),
        ("rsv-neu", "rg-other"),
    ]
    a, b = rules.policies
    assert (a.time, a.daily_retention_days, a.instant_restore_days) == ("01:00", 10, 2)
    assert (b.time, b.daily_retention_days, b.instant_restore_days) == ("01:00", 10, 4)


def test_unquoted_times_and_yes_no_values_stay_text() -> None:
    text = _replace(
        'time: "22:00", timeZone: UTC}\n    instantRestoreDays: 2',
        "time: 22:30, timeZone: UTC}\n    instantRestoreDays: 2",
    )
    text = _replace("equals: silver}", "equals: no}", text)
    rules = parse_rules(text)
    assert rules.policy("gold").time == "22:30"  # YAML 1.1 would read 22:30 as the number 1350
    assert rules.select({"backup-policy": "no"}).policy == "silver"  # and no as false


# --- defaults ------------------------------------------------------------------------------------------


def test_empty_policy_is_the_seed_default() -> None:
    silver = parse_rules(BASE).policy("silver")
    assert silver.kind == "standard"
    assert silver.frequency == "daily"
    assert silver.daily_retention_days == 30
    assert silver.instant_restore_days == 2
    assert silver.time_zone == "UTC"
    assert silver.weekly_retention is None and silver.monthly_retention is None


def test_defaults_of_first_backup_and_actions() -> None:
    rules = parse_rules(BASE)
    assert rules.first_backup == FirstBackup(enabled=True, retain_days=30)
    assert rules.actions == Actions("report", "resume", "fix", "fix")


def test_actions_and_first_backup_are_read() -> None:
    text = BASE + (
        "firstBackup: {enabled: false, retainDays: 90}\n"
        "actions: {onOptOut: stopProtection, onStoppedProtection: report, onWrongPolicy: report,"
        " onPolicyDrift: report}\n"
    )
    rules = parse_rules(text)
    assert rules.first_backup == FirstBackup(False, 90)
    assert rules.actions == Actions("stopProtection", "report", "report", "report")
    assert rules.select({"backup-policy": "gold"}).first_backup is False


def test_bad_action_value() -> None:
    text = BASE + "actions: {onOptOut: delete}\n"
    error = _error(text)
    assert (error.field, error.line) == ("actions.onOptOut", _line_of(text, "onOptOut"))
    assert "use one of report, stopProtection" in error.message


# --- selection -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(BASE)


def test_tag_key_is_case_insensitive(rules: Rules) -> None:
    selection = rules.select({"Backup-Policy": "gold"})
    assert (selection.policy, selection.rule) == ("gold", "gold-rule")
    assert "tag 'Backup-Policy' is 'gold'" in selection.reason


def test_tag_value_is_case_insensitive_by_default(rules: Rules) -> None:
    assert rules.select({"backup-policy": "GOLD"}).policy == "gold"


def test_case_sensitive_value() -> None:
    text = _replace("equals: gold}", "equals: Gold, caseSensitive: true}")
    rules = parse_rules(text)
    assert rules.select({"backup-policy": "Gold"}).policy == "gold"
    assert rules.select({"backup-policy": "gold"}).policy is None


def test_no_tags_no_selection(rules: Rules) -> None:
    no_tags: tuple[dict[str, str] | None, ...] = ({}, None)
    for tags in no_tags:
        selection = rules.select(tags)
        assert selection == Selection(
            None, None, False, "The VM has no tags, so no selection rule matches; it is left alone."
        )


def test_unrelated_tags_no_selection(rules: Rules) -> None:
    selection = rules.select({"env": "prod", "backup-policy": "platinum"})
    assert selection.policy is None and not selection.opted_out
    assert "No selection rule matches the VM's tags ('env', 'backup-policy')" in selection.reason
    assert selection.first_backup is False


def test_opt_out_beats_every_rule() -> None:
    text = BASE.replace(
        "optOut:\n",
        "  - name: everything\n    priority: 1\n    match: {tag: backup-policy, like: '*'}\n"
        "    policy: gold\noptOut:\n",
    )
    rules = parse_rules(text)
    selection = rules.select({"BACKUP-POLICY": "None"})
    assert selection.opted_out is True
    assert selection.policy is None and selection.rule is None
    assert selection.first_backup is False
    assert "Opted out: tag 'BACKUP-POLICY' is 'None'" in selection.reason
    assert "overrides rule 'everything'" in selection.reason


def test_lowest_priority_number_wins() -> None:
    text = BASE.replace(
        "optOut:\n",
        "  - name: catch-all\n    priority: 5\n    match: {tag: backup-policy, oneOf: [gold, silver]}\n"
        "    policy: silver\noptOut:\n",
    )
    rules = parse_rules(text)
    selection = rules.select({"backup-policy": "gold"})
    assert (selection.rule, selection.policy) == ("catch-all", "silver")
    assert "Rule 'catch-all' (priority 5) selects policy 'silver'" in selection.reason
    assert "'gold-rule' (priority 10)" in selection.reason  # also matching, later by priority
    # the order in the file does not matter: rules are kept sorted by priority
    assert [rule.priority for rule in rules.selection] == [5, 10, 20]


def _rules_with_match(match: str) -> Rules:
    text = _replace("    match: {tag: backup-policy, equals: gold}\n", f"    match: {match}\n")
    return parse_rules(text)


def test_one_of() -> None:
    rules = _rules_with_match("{tag: tier, oneOf: [gold, platinum]}")
    assert rules.select({"tier": "Platinum"}).rule == "gold-rule"
    assert rules.select({"tier": "silver"}).rule is None
    assert "one of 'gold', 'platinum'" in rules.select({"tier": "gold"}).reason


@pytest.mark.parametrize(
    ("value", "matched"),
    [("prod-web-01", True), ("PROD-db", True), ("prod-", True), ("production", False), ("dev-prod-1", False)],
)
def test_wildcard_star(value: str, matched: bool) -> None:
    rules = _rules_with_match("{tag: env, like: 'prod-*'}")
    assert (rules.select({"env": value}).rule == "gold-rule") is matched


def test_wildcard_question_mark_and_literal_characters() -> None:
    rules = _rules_with_match("{tag: app, like: 'web-?.[a]'}")
    assert rules.select({"app": "web-1.[a]"}).rule == "gold-rule"
    assert rules.select({"app": "web-12.[a]"}).rule is None
    assert rules.select({"app": "web-1.a"}).rule is None  # [a] is literal, not a character class


def test_not_matches_missing_and_other_values() -> None:
    rules = _rules_with_match("{not: {tag: env, equals: dev}}")
    assert rules.select({"env": "prod"}).rule == "gold-rule"
    assert rules.select({"owner": "x"}).rule == "gold-rule"
    assert rules.select({"ENV": "Dev"}).rule is None
    assert "tag 'env' is 'prod', not 'dev'" in rules.select({"env": "prod"}).reason
    assert "the VM has no tag 'env'" in rules.select({"owner": "x"}).reason


def test_all_and_any() -> None:
    rules = _rules_with_match(
        "{all: [{tag: env, like: 'prod*'},"
        " {any: [{tag: tier, equals: gold}, {tag: critical, equals: 'yes'}]}]}"
    )
    assert rules.select({"env": "prod", "tier": "gold"}).rule == "gold-rule"
    assert rules.select({"env": "prod", "critical": "yes"}).rule == "gold-rule"
    assert rules.select({"env": "prod"}).rule is None
    assert rules.select({"env": "dev", "tier": "gold"}).rule is None
    reason = rules.select({"env": "prod-1", "critical": "YES"}).reason
    assert "tag 'env' is 'prod-1', which matches 'prod*' and tag 'critical' is 'YES'" in reason


def test_combinator_with_extra_key_is_refused() -> None:
    text = _replace(
        "    match: {tag: backup-policy, equals: gold}\n",
        "    match: {not: {tag: env, equals: dev}, tag: x}\n",
    )
    error = _error(text)
    assert error.field == "selection[0].match.tag"
    assert "'not' stands alone" in error.message


# --- disks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "luns"),
    [("1,3", (1, 3)), ("1;3", (1, 3)), (" 3 ; 1 , 3 ", (1, 3)), ("0", (0,)), ("", ()), ("63", (63,))],
)
def test_lun_list_parsing(value: str, luns: tuple[int, ...]) -> None:
    assert parse_lun_list(value) == luns


@pytest.mark.parametrize(
    ("value", "reason"), [("1,a", "'a' is not a LUN number"), ("64", "out of range"), ("-1", "'-1'")]
)
def test_bad_lun_list(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_lun_list(value)


def test_excluded_luns_from_tag_and_shared_disks(rules: Rules) -> None:
    selection = rules.select({"backup-policy": "gold", "Backup-Exclude-LUNs": "3;1"}, shared_disk_luns=[2, 3])
    assert selection.excluded_luns == (1, 2, 3)
    assert selection.lun_error is None


def test_shared_disks_are_excluded_without_tag(rules: Rules) -> None:
    assert rules.select({"backup-policy": "gold"}, shared_disk_luns=(4,)).excluded_luns == (4,)


def test_bad_lun_tag_is_reported_not_raised(rules: Rules) -> None:
    selection = rules.select({"backup-policy": "gold", "backup-exclude-luns": "1,x"}, shared_disk_luns=[5])
    assert selection.policy == "gold"
    assert selection.excluded_luns == (5,)
    assert selection.lun_error is not None
    assert "tag 'backup-exclude-luns' is '1,x'" in selection.lun_error
    assert "'x' is not a LUN number" in selection.lun_error


def test_first_backup_settings_on_selection(rules: Rules) -> None:
    selection = rules.select({"backup-policy": "silver"})
    assert (selection.first_backup, selection.first_backup_retain_days) == (True, 30)


# --- vaults and policies ----------------------------------------------------------------------------


def test_vault_for_region_and_subscription(rules: Rules) -> None:
    vault = rules.vault_for(SUB.upper(), "West Europe")
    assert vault is not None
    assert (vault.name, vault.region, vault.storage_redundancy) == ("rsv-weu", "westeurope", "GeoRedundant")
    assert vault.resource_id == (
        f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-weu"
    )
    eus = rules.vault_for(SUB, "EastUS")
    assert eus is not None and eus.storage_redundancy == "LocallyRedundant"
    assert rules.vault_for(SUB, "northeurope") is None
    assert rules.vault_for("00000000-0000-0000-0000-000000000002", "westeurope") is None


def test_normalize_region() -> None:
    assert normalize_region("West Europe") == "westeurope"
    assert normalize_region(" East US 2 ") == "eastus2"


def test_policy_for_trusted_launch(rules: Rules) -> None:
    assert rules.policy_for("gold", trusted_launch=False).name == "gold"
    assert rules.policy_for("gold", trusted_launch=True).name == "gold-enhanced"
    assert rules.policy_for("GOLD", trusted_launch=True).kind == "enhanced"
    # no sibling named: the standard policy comes back (the pre-flight check reports it)
    assert rules.policy_for("silver", trusted_launch=True).name == "silver"
    with pytest.raises(KeyError, match="known policies: gold, gold-enhanced, silver"):
        rules.policy_for("platinum", trusted_launch=False)


def test_warnings(rules: Rules) -> None:
    notes = rules.warnings()
    assert any("policy 'silver' is standard and names no trustedLaunch sibling" in note for note in notes)
    assert not any("'gold-enhanced' is not selected" in note for note in notes)  # a sibling is in use


# --- the shipped files --------------------------------------------------------------------------------


def test_sandbox_rules_load_and_say_what_the_sandbox_needs() -> None:
    rules = validate_file(str(SANDBOX))
    weu = rules.vault_for(SUB, "westeurope")
    eus = rules.vault_for(SUB, "eastus")
    assert weu is not None and eus is not None
    assert (weu.name, weu.resource_group, weu.storage_redundancy) == (
        "rsv-autopilot-weu",
        "rg-autopilot-backup",
        "GeoRedundant",
    )
    assert (eus.name, eus.resource_group, eus.storage_redundancy) == (
        "rsv-autopilot-eus",
        "rg-autopilot-backup",
        "GeoRedundant",
    )
    assert rules.vault_for(SUB, "northeurope") is None

    gold = rules.policy("gold")
    assert (gold.kind, gold.frequency, gold.time, gold.time_zone) == ("standard", "daily", "22:00", "UTC")
    assert (gold.instant_restore_days, gold.daily_retention_days) == (2, 30)
    assert gold.weekly_retention is not None and gold.weekly_retention.weekdays == ("Sunday",)
    assert gold.weekly_retention.weeks == 12
    assert gold.monthly_retention is not None
    assert (gold.monthly_retention.weeks_of_month, gold.monthly_retention.weekdays) == (
        ("First",),
        ("Sunday",),
    )
    assert gold.monthly_retention.months == 12
    silver = rules.policy("silver")
    assert (silver.time, silver.time_zone, silver.instant_restore_days, silver.daily_retention_days) == (
        "23:30",
        "W. Europe Standard Time",
        2,
        14,
    )
    assert silver.weekly_retention is None and silver.monthly_retention is None
    assert rules.policy_for("gold", True).name == "gold-enhanced"
    assert rules.policy_for("silver", True).name == "silver-enhanced"
    assert rules.policy("gold-enhanced").kind == rules.policy("silver-enhanced").kind == "enhanced"

    assert rules.select({"backup-policy": "gold"}).policy == "gold"
    assert rules.select({"backup-policy": "silver"}).policy == "silver"
    assert rules.select({"backup-policy": "none"}).opted_out is True
    assert rules.select({}).policy is None
    assert rules.select({"backup-exclude-luns": "1,2", "backup-policy": "gold"}).excluded_luns == (1, 2)
    assert rules.first_backup == FirstBackup(True, 30)


def test_example_rules_load_and_use_every_feature() -> None:
    rules = load_rules(str(EXAMPLE))
    assert {v.storage_redundancy for v in rules.vaults} == {"GeoRedundant", "LocallyRedundant"}
    kinds = {p.kind for p in rules.policies}
    assert kinds == {"standard", "enhanced"}
    assert any(p.frequency == "weekly" for p in rules.policies)
    assert any(p.monthly_retention and p.monthly_retention.day_based for p in rules.policies)
    assert any(p.monthly_retention and not p.monthly_retention.day_based for p in rules.policies)
    assert rules.select({"environment": "prod-app"}).policy == "silver"
    assert rules.select({"environment": "prod-app", "backup-policy": "gold"}).policy == "gold"
    assert rules.select({"backup-policy": "Weekly"}).policy == "weekly-archive"
    assert rules.select({"backup-policy": "weekly"}).policy is None  # caseSensitive
    assert rules.select({"environment": "test"}).policy == "bronze"
    assert rules.select({"backup-policy": "no-backup", "environment": "dev-1"}).opted_out is True
    assert rules.vault_for("11111111-2222-3333-4444-555555555555", "West Europe") is not None


@pytest.mark.parametrize(
    "key",
    [
        "version",
        "vaults",
        "policies",
        "selection",
        "optOut",
        "diskExclusion",
        "firstBackup",
        "actions",
        "subscription",
        "resourceGroup",
        "storageRedundancy",
        "kind",
        "schedule",
        "instantRestoreDays",
        "retention",
        "trustedLaunch",
        "frequency",
        "time",
        "timeZone",
        "weekdays",
        "weeks",
        "months",
        "weeksOfMonth",
        "daysOfMonth",
        "priority",
        "match",
        "policy",
        "description",
        "equals",
        "oneOf",
        "like",
        "caseSensitive",
        "not",
        "all",
        "any",
        "values",
        "tag",
        "enabled",
        "retainDays",
        "onOptOut",
        "onStoppedProtection",
        "onWrongPolicy",
        "onPolicyDrift",
    ],
)
def test_docs_describe_every_key(key: str) -> None:
    docs = (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")
    assert f"`{key}`" in docs


# -- vault sets ------------------------------------------------------------------------------------
SETS = BASE.replace(
    "    storageRedundancy: LocallyRedundant\n",
    "    storageRedundancy: LocallyRedundant\n"
    f"  - subscription: {SUB}\n    resourceGroup: rg-backup\n    name: rsv-weu-x{{n}}\n    count: 2\n"
    "    region: West Europe\n",
).replace("diskExclusion:\n", "vaultCapacity: {headroom: 25}\ndiskExclusion:\n")


def test_vaults_of_one_subscription_and_region_form_a_set_in_file_order() -> None:
    rules = parse_rules(SETS)
    assert [v.name for v in rules.vault_set(SUB, "westeurope")] == ["rsv-weu", "rsv-weu-x1", "rsv-weu-x2"]
    assert [v.name for v in rules.vault_set(SUB.upper(), "West Europe")] == [
        "rsv-weu",
        "rsv-weu-x1",
        "rsv-weu-x2",
    ]
    assert [v.name for v in rules.vault_set(SUB, "eastus")] == ["rsv-eus"]
    assert rules.vault_set(SUB, "northeurope") == ()
    assert (
        rules.vault_for(SUB, "westeurope") is not None
        and rules.vault_for(SUB, "westeurope").name == "rsv-weu"
    )
    assert (rules.vault_capacity.max_items, rules.vault_capacity.headroom, rules.vault_capacity.usable) == (
        1000,
        25,
        975,
    )


def test_a_pattern_name_that_clashes_with_another_vault_is_an_error() -> None:
    text = SETS.replace("name: rsv-weu\n", "name: rsv-weu-x2\n")
    error = _error(text)
    assert error.line == _line_of(text, "name: rsv-weu-x{n}")
    assert "vault name 'rsv-weu-x2' is already used by the vault on line 3" in str(error)


def test_the_sandbox_rules_give_westeurope_a_set_of_two_vaults() -> None:
    rules = load_rules(str(SANDBOX))
    sub = rules.vaults[0].subscription_id
    assert [v.name for v in rules.vault_set(sub, "westeurope")] == [
        "rsv-autopilot-weu",
        "rsv-autopilot-weu-2",
    ]
