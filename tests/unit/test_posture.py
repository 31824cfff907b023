"""Vault security posture, the pure part: Business Continuity Center's grade, the gaps against the
rules with their remedies and allowed fixes, and the rules' posture section with its errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from autopilot.posture.grading import PostureRules, VaultPosture, below, gaps, grade, level_remedy
from autopilot.rules import RulesError, parse_rules

VAULT = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-b/providers/Microsoft.RecoveryServices/vaults/rsv-1"
SANDBOX = (Path(__file__).resolve().parents[2] / "rules" / "sandbox.yaml").read_text(encoding="utf-8")
NEW_VAULT = VaultPosture(  # a new vault as Azure makes it (GETVault example): soft delete on, 14 days
    vault_id=VAULT,
    soft_delete="Enabled",
    retention_days=14,
    enhanced_security="Enabled",
    immutability="Disabled",
    multi_user_authorization=False,
    resource_guards=(),
    cross_region_restore=False,
    public_network_access="Enabled",
    redundancy="GeoRedundant",
    azure_level="Poor",
)


@pytest.mark.parametrize(
    ("soft_delete", "immutability", "mua", "level"),
    [
        ("Enabled", "Disabled", False, "Poor"),  # reversible settings count for nothing
        ("Enabled", "Unlocked", False, "Poor"),
        ("Disabled", "Disabled", False, "Poor"),
        ("Enabled", "Unlocked", True, "Fair"),  # multi-user authorization alone
        ("AlwaysON", "Disabled", False, "Good"),  # an irreversible protection alone
        ("Disabled", "Locked", False, "Good"),
        ("AlwaysON", "Disabled", True, "Excellent"),
        ("Enabled", "Locked", True, "Excellent"),
    ],
)
def test_the_grade_follows_business_continuity_centers_criteria(
    soft_delete: str, immutability: str, mua: bool, level: str
) -> None:
    posture = replace(
        NEW_VAULT, soft_delete=soft_delete, immutability=immutability, multi_user_authorization=mua
    )
    assert grade(posture) == level


def test_levels_are_ordered() -> None:
    assert below("Poor", "Fair") and below("Good", "Excellent")
    assert not below("Good", "Good") and not below("Excellent", "Poor")


def test_a_new_vault_meets_the_default_posture() -> None:
    assert gaps(PostureRules(), NEW_VAULT) == []


def test_soft_delete_off_is_a_gap_the_sweep_may_fix_only_when_allowed() -> None:
    off = replace(NEW_VAULT, soft_delete="Disabled")
    (gap,) = gaps(PostureRules(), off)
    assert gap.control == "softDelete" and gap.fix == ""
    assert "--soft-delete-feature-state Enable" in gap.remedy and "rg-b" in gap.remedy
    (allowed,) = gaps(PostureRules(fix=("softDelete",)), off)
    assert allowed.fix == "softDelete"


def test_a_short_retention_is_a_gap_of_its_own() -> None:
    rules = PostureRules(soft_delete_retention_days=30, fix=("softDeleteRetention",))
    (gap,) = gaps(rules, NEW_VAULT)
    assert (gap.control, gap.fix) == ("softDeleteRetention", "softDeleteRetention")
    assert "14 days" in gap.reason and "--soft-delete-duration 30" in gap.remedy
    assert gaps(rules, replace(NEW_VAULT, retention_days=45)) == []  # longer is fine: a minimum


def test_locked_immutability_is_never_a_fix_and_its_remedy_says_how_to_lock() -> None:
    rules = PostureRules(require=("immutabilityLocked",), fix=("immutability",))
    found = gaps(rules, NEW_VAULT)
    assert [(g.control, g.fix) for g in found] == [
        ("immutability", "immutability"),
        ("immutabilityLocked", ""),
    ]
    lock = found[1].remedy
    assert "irreversible" in lock and "--immutability-state Locked" in lock
    assert "--immutability-state Unlocked" in lock  # Disabled: Unlocked first, as Azure wants
    unlocked = gaps(rules, replace(NEW_VAULT, immutability="Unlocked"))
    assert [(g.control, g.fix) for g in unlocked] == [("immutabilityLocked", "")]
    assert "Unlocked first" not in unlocked[0].remedy


def test_always_on_multi_user_authorization_network_and_cross_region_restore() -> None:
    rules = PostureRules(
        require=(
            "softDeleteAlwaysOn",
            "multiUserAuthorization",
            "crossRegionRestore",
            "publicNetworkAccessDisabled",
        )
    )
    found = {g.control: g for g in gaps(rules, NEW_VAULT)}
    assert set(found) == {
        "softDeleteAlwaysOn",
        "multiUserAuthorization",
        "crossRegionRestore",
        "publicNetworkAccessDisabled",
    }
    assert all(g.fix == "" for g in found.values())
    assert "AlwaysON" in found["softDeleteAlwaysOn"].remedy
    assert "resource-guard-mapping update" in found["multiUserAuthorization"].remedy
    assert "--cross-region-restore-flag True" in found["crossRegionRestore"].remedy
    local = {g.control: g for g in gaps(rules, replace(NEW_VAULT, redundancy="LocallyRedundant"))}
    assert "geo-redundant" in local["crossRegionRestore"].remedy
    done = replace(
        NEW_VAULT,
        soft_delete="AlwaysON",
        multi_user_authorization=True,
        cross_region_restore=True,
        public_network_access="Disabled",
    )
    assert gaps(rules, done) == []


def test_accepted_redundancies_are_checked_only_when_the_rules_name_them() -> None:
    local = replace(NEW_VAULT, redundancy="LocallyRedundant")
    assert gaps(PostureRules(), local) == []
    (gap,) = gaps(
        PostureRules(storage_redundancy=("GeoRedundant", "ZoneRedundant")), local, "LocallyRedundant"
    )
    assert gap.control == "storageRedundancy" and "LocallyRedundant" in gap.reason


def test_the_level_remedy_names_what_reaches_the_minimum() -> None:
    good = level_remedy(NEW_VAULT, "Good")
    assert "lock immutability" in good and "always-on" in good and "multi-user" not in good
    excellent = level_remedy(replace(NEW_VAULT, immutability="Locked"), "Excellent")
    assert "multi-user authorization" in excellent and "lock immutability" not in excellent


# -- the rules' posture section ------------------------------------------------------------------
def rules_with(posture: str) -> PostureRules | None:
    return parse_rules(SANDBOX + posture, "rules.yaml").posture


def test_no_posture_section_means_no_posture_check() -> None:
    assert parse_rules(SANDBOX, "rules.yaml").posture is None


def test_the_posture_section_is_read() -> None:
    posture = rules_with(
        "posture:\n"
        "  minimumLevel: good\n"
        "  require: [softDelete, immutabilityLocked, multiUserAuthorization]\n"
        "  softDeleteRetentionDays: 30\n"
        "  fix: [softDelete, softDeleteRetention, immutability]\n"
        "  storageRedundancy: [GeoRedundant, ZoneRedundant]\n"
    )
    assert posture == PostureRules(
        "Good",
        ("softDelete", "immutabilityLocked", "multiUserAuthorization"),
        30,
        ("softDelete", "softDeleteRetention", "immutability"),
        ("GeoRedundant", "ZoneRedundant"),
    )
    assert rules_with("posture: {}\n") == PostureRules()
    assert rules_with("posture: {require: []}\n") == PostureRules(require=())


LINE = SANDBOX.count("\n") + 2  # the line after "posture:"


@pytest.mark.parametrize(
    ("posture", "line", "field", "message"),
    [
        ("  fix: [immutabilityLocked]\n", LINE, "posture.fix[0]", "locking immutability is irreversible"),
        ("  fix: [softDeleteAlwaysOn]\n", LINE, "posture.fix[0]", "always-on soft delete is irreversible"),
        ("  minimumLevel: Great\n", LINE, "posture.minimumLevel", "use one of Poor, Fair, Good, Excellent"),
        ("  softDeleteRetentionDays: 7\n", LINE, "posture.softDeleteRetentionDays", "14 to 180 days"),
        ("  softDeleteRetentionDays: 181\n", LINE, "posture.softDeleteRetentionDays", "14 to 180 days"),
        ("  require: [softDelete]\n  fix: [immutability]\n", LINE + 1, "posture.fix", "add immutability"),
        ("  require: [softdelete, softDelete]\n", LINE, "posture.require[1]", "listed twice"),
        ("  require: [mua]\n", LINE, "posture.require[0]", "use one of softDelete"),
        ("  requires: []\n", LINE, "posture.requires", "did you mean 'require'?"),
        (
            "  require: [crossRegionRestore]\n  storageRedundancy: [LocallyRedundant]\n",
            LINE + 1,
            "posture.storageRedundancy",
            "needs GeoRedundant",
        ),
    ],
)
def test_mistakes_in_the_posture_section_name_their_line(
    posture: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(RulesError) as error:
        parse_rules(SANDBOX + "posture:\n" + posture, "rules.yaml")
    assert (error.value.line, error.value.field) == (line, field), str(error.value)
    assert message in error.value.message, str(error.value)
