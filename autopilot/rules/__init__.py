"""The rules file: which VMs to protect, into which vault, under which policy.

One YAML file (path from the setting AUTOPILOT_RULES) holds the vaults per region, the backup
policies and the selection rules on tags. It is read and validated as a whole before anything
uses it; mistakes stop it with one `RulesError` that lists every mistake of the file, each naming
the file, line and field, and how to fix it. docs/RULES.md is the reference of the format.

The validation is written here rather than by a JSON-schema library because its errors are better
for the person who edits the file: the YAML line of the field (a schema validator sees parsed data,
without lines), a hint naming the likely key for a typo, and checks across entries (policy names
that ignore case, priorities, Trusted Launch siblings, vault names per subscription).

    rules = load_rules("rules/sandbox.yaml")
    selection = rules.select(vm.tags, shared_disk_luns=[2])
    vault = rules.vault_for(subscription_id, vm.location)
    policy = rules.policy_for(selection.policy, trusted_launch=True)

Pure Python: no I/O besides reading the file, no Azure calls.
"""

from autopilot.rules.loader import RulesError, load_rules, parse_rules, validate_file
from autopilot.rules.model import (
    Actions,
    AllMatch,
    AnyMatch,
    FirstBackup,
    Match,
    NotMatch,
    OptOut,
    Rules,
    Selection,
    SelectionRule,
    SubscriptionFacts,
    TagMatch,
    VaultCapacity,
    VaultSpec,
    VaultTemplate,
    normalize_region,
    parse_lun_list,
)
from autopilot.rules.policyspec import MonthlyRetention, PolicySpec, WeeklyRetention, policy_differences

__all__ = [
    "Actions",
    "AllMatch",
    "AnyMatch",
    "FirstBackup",
    "Match",
    "MonthlyRetention",
    "NotMatch",
    "OptOut",
    "PolicySpec",
    "Rules",
    "RulesError",
    "Selection",
    "SelectionRule",
    "SubscriptionFacts",
    "TagMatch",
    "VaultCapacity",
    "VaultSpec",
    "VaultTemplate",
    "WeeklyRetention",
    "load_rules",
    "normalize_region",
    "parse_lun_list",
    "parse_rules",
    "policy_differences",
    "validate_file",
]
