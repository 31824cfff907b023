"""What the rules want for one VM: `decide` on the sandbox rules, with facts built by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopilot.azure.facts import ItemFacts
from autopilot.azure.vms import DataDisk, VmFacts
from autopilot.kernel.outcomes import Kind
from autopilot.protect.decide import LINUX_AGENT_GUIDANCE, WINDOWS_AGENT_GUIDANCE, Decision, decide
from autopilot.protect.placement import VaultRoom
from autopilot.rules import Rules, VaultCapacity, VaultSpec, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_RULES = ROOT / "rules" / "sandbox.yaml"
SUB = "00000000-0000-0000-0000-000000000001"
BACKUP_RG = "rg-autopilot-backup"
WEU_VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/{BACKUP_RG}/providers/Microsoft.RecoveryServices/vaults/rsv-autopilot-weu"
OTHER_VAULT_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-legacy/providers/Microsoft.RecoveryServices/vaults/rsv-legacy"
)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(str(SANDBOX_RULES))


def _rules_with(old: str, new: str) -> Rules:
    text = SANDBOX_RULES.read_text(encoding="utf-8")
    assert old in text, old
    return parse_rules(text.replace(old, new, 1), "rules/changed.yaml")


def _vm(
    tag: str | None = "gold",
    *,
    location: str = "westeurope",
    os_type: str = "Linux",
    trusted_launch: bool = False,
    agent_status: str = "Ready",
    agent_version: str = "2.11.1.5",
    power_state: str = "running",
    provisioning_state: str = "Succeeded",
    tags: dict[str, str] | None = None,
    subscription: str = SUB,
    data_disks: tuple[DataDisk, ...] = (),
) -> VmFacts:
    name = "vm-app-01"
    return VmFacts(
        id=f"/subscriptions/{subscription}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/{name}",
        subscription_id=subscription,
        resource_group="rg-app",
        name=name,
        location=location,
        tags=tags if tags is not None else ({"backup-policy": tag} if tag is not None else {}),
        os_type=os_type,
        trusted_launch=trusted_launch,
        agent_status=agent_status,
        agent_version=agent_version,
        power_state=power_state,
        provisioning_state=provisioning_state,
        data_disks=data_disks,
    )


def _item(
    policy: str = "gold",
    *,
    state: str = "Protected",
    soft_deleted: bool = False,
    vault_id: str = WEU_VAULT_ID,
) -> ItemFacts:
    item_id = (
        f"{vault_id}/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-app;vm-app-01"
        "/protectedItems/VM;iaasvmcontainerv2;rg-app;vm-app-01"
    )
    return ItemFacts(
        id=item_id,
        vault_id=vault_id,
        policy_id=f"{vault_id}/backupPolicies/{policy}" if policy else "",
        protection_state=state,
        soft_deleted=soft_deleted,
        last_backup_status="Completed",
        last_backup_time=None,
        last_recovery_point=None,
        health="Passed",
        vm_id=_vm().id,
    )


def _names(decision: Decision) -> tuple[str | None, str | None]:
    return (
        decision.vault.name if decision.vault else None,
        decision.policy.name if decision.policy else None,
    )


# --- new VMs -----------------------------------------------------------------------------------


def test_gold_in_westeurope_is_protected_in_the_westeurope_vault(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None)
    assert decision.kind is Kind.PROTECTED
    assert decision.change == "enable"
    assert _names(decision) == ("rsv-autopilot-weu", "gold")
    assert decision.first_backup is True
    assert "protect in vault rsv-autopilot-weu under policy gold" in decision.reason


def test_gold_in_eastus_is_protected_in_the_eastus_vault(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", location="eastus"), None)
    assert decision.kind is Kind.PROTECTED
    assert decision.change == "enable"
    assert _names(decision) == ("rsv-autopilot-eus", "gold")
    assert decision.first_backup is True


def test_silver_selects_the_silver_policy(rules: Rules) -> None:
    decision = decide(rules, _vm("silver"), None)
    assert (decision.kind, _names(decision)) == (Kind.PROTECTED, ("rsv-autopilot-weu", "silver"))


def test_tag_key_and_value_in_another_letter_case_still_select(rules: Rules) -> None:
    decision = decide(rules, _vm(tags={"Backup-Policy": "GOLD"}), None)
    assert (decision.kind, _names(decision)) == (Kind.PROTECTED, ("rsv-autopilot-weu", "gold"))


def test_first_backup_off_in_the_rules(rules: Rules) -> None:
    changed = _rules_with("firstBackup:\n  enabled: true", "firstBackup:\n  enabled: false")
    decision = decide(changed, _vm("gold"), None)
    assert decision.kind is Kind.PROTECTED
    assert decision.first_backup is False


def test_no_tag_is_not_selected(rules: Rules) -> None:
    decision = decide(rules, _vm(None), None)
    assert decision.kind is Kind.NOT_SELECTED
    assert decision.change == ""
    assert "no tags" in decision.reason


def test_unknown_tag_value_is_not_selected(rules: Rules) -> None:
    decision = decide(rules, _vm("platinum"), None)
    assert decision.kind is Kind.NOT_SELECTED
    assert decision.change == ""


def test_none_opts_out(rules: Rules) -> None:
    decision = decide(rules, _vm("none"), None)
    assert decision.kind is Kind.OPTED_OUT
    assert decision.change == ""
    assert "Opted out" in decision.reason


def test_region_without_vault_needs_attention_naming_the_region(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", location="northeurope"), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert "region northeurope" in decision.reason
    assert "'northeurope'" in decision.remedy
    assert decision.details["region"] == "northeurope"


def test_vault_of_another_subscription_is_not_used(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", subscription="11111111-2222-3333-4444-555555555555"), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.vault is None


def test_subscription_id_in_upper_case_finds_the_vault(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", subscription=SUB.upper()), None)
    assert (decision.kind, _names(decision)) == (Kind.PROTECTED, ("rsv-autopilot-weu", "gold"))


# --- pre-flight problems -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_type", "guidance", "other"),
    [
        ("Linux", LINUX_AGENT_GUIDANCE, WINDOWS_AGENT_GUIDANCE),
        ("Windows", WINDOWS_AGENT_GUIDANCE, LINUX_AGENT_GUIDANCE),
    ],
)
def test_missing_agent_still_enables_protection_with_the_os_guidance(
    rules: Rules, os_type: str, guidance: str, other: str
) -> None:
    decision = decide(rules, _vm("gold", os_type=os_type, agent_status="Missing", agent_version=""), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == "enable"
    assert _names(decision) == ("rsv-autopilot-weu", "gold")
    assert guidance in decision.remedy
    assert other not in decision.remedy
    assert "no VM agent" in decision.reason
    assert decision.first_backup is False  # it would fail without the agent
    assert decision.details["problems"] == ["VmAgentMissing"]


def test_agent_not_ready_enables_protection_and_reports(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", agent_status="NotReady"), None)
    assert (decision.kind, decision.change) == (Kind.NEEDS_ATTENTION, "enable")
    assert [p.code for p in decision.problems] == ["VmAgentNotReady"]
    assert LINUX_AGENT_GUIDANCE in decision.remedy


def test_failed_provisioning_blocks_protection(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", provisioning_state="Failed"), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert decision.first_backup is False
    assert "failed provisioning state" in decision.reason
    assert [p.code for p in decision.problems] == ["VmProvisioningFailed"]


def test_trusted_launch_with_gold_uses_the_enhanced_sibling(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", trusted_launch=True), None)
    assert decision.kind is Kind.PROTECTED
    assert decision.change == "enable"
    assert _names(decision) == ("rsv-autopilot-weu", "gold-enhanced")


def test_trusted_launch_with_a_standard_policy_without_sibling_is_blocked() -> None:
    rules = _rules_with("      daily: 14\n    trustedLaunch: silver-enhanced\n", "      daily: 14\n")
    decision = decide(rules, _vm("silver", trusted_launch=True), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert decision.reason.startswith("not protected: ")
    assert "Trusted Launch" in decision.reason
    assert "policy 'silver' is a standard policy" in decision.reason
    assert "trustedLaunch" in decision.remedy
    assert [p.code for p in decision.problems] == ["TrustedLaunchNeedsEnhancedPolicy"]


@pytest.mark.parametrize("version", ["2.6.1198.717", "2.6.1198.9", "2.5.9999.9999", "2.6"])
def test_old_windows_agent_is_too_old(rules: Rules, version: str) -> None:
    decision = decide(rules, _vm("gold", os_type="Windows", agent_version=version), None)
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == "enable"
    assert [p.code for p in decision.problems] == ["VmAgentTooOld"]
    assert version in decision.reason


@pytest.mark.parametrize("version", ["2.6.1198.718", "2.7.41491.949", "2.6.1199.0"])
def test_recent_windows_agent_is_fine(rules: Rules, version: str) -> None:
    decision = decide(rules, _vm("gold", os_type="Windows", agent_version=version), None)
    assert decision.kind is Kind.PROTECTED
    assert decision.problems == ()


def test_agent_version_rule_applies_to_windows_only(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", os_type="Linux", agent_version="2.2.10"), None)
    assert decision.kind is Kind.PROTECTED


def test_a_stopped_vm_is_protected_all_the_same(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", power_state="deallocated"), None)
    assert (decision.kind, decision.change) == (Kind.PROTECTED, "enable")


# --- VMs that already have a protected item ------------------------------------------------------


def test_already_protected_under_gold_writes_nothing(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), _item("gold"))
    assert decision.kind is Kind.ALREADY_PROTECTED
    assert decision.change == ""
    assert decision.first_backup is False


def test_policy_name_from_azure_in_another_letter_case_is_the_same_policy(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), _item("GOLD"))
    assert decision.kind is Kind.ALREADY_PROTECTED


def test_protected_under_silver_while_tagged_gold_changes_the_policy(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), _item("silver"))
    assert decision.kind is Kind.POLICY_UPDATED
    assert decision.change == "change-policy"
    assert _names(decision) == ("rsv-autopilot-weu", "gold")
    assert "from silver to gold" in decision.reason
    assert decision.first_backup is False


def test_wrong_policy_is_reported_when_the_rules_say_report() -> None:
    rules = _rules_with("onWrongPolicy: fix", "onWrongPolicy: report")
    decision = decide(rules, _vm("gold"), _item("silver"))
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert "policy silver" in decision.reason


def test_stopped_protection_is_resumed(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), _item("gold", state="ProtectionStopped"))
    assert decision.kind is Kind.RESUMED
    assert decision.change == "resume"
    assert _names(decision) == ("rsv-autopilot-weu", "gold")


def test_soft_deleted_item_is_undeleted_and_resumed(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), _item("gold", state="ProtectionStopped", soft_deleted=True))
    assert decision.kind is Kind.RESUMED
    assert decision.change == "undelete-resume"
    assert "soft-deleted" in decision.reason


def test_stopped_protection_is_reported_when_the_rules_say_report() -> None:
    rules = _rules_with("onStoppedProtection: resume", "onStoppedProtection: report")
    decision = decide(rules, _vm("gold"), _item("gold", state="ProtectionStopped"))
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert "is stopped" in decision.reason
    assert "onStoppedProtection: resume" in decision.remedy


def test_opt_out_while_protected_is_reported(rules: Rules) -> None:
    decision = decide(rules, _vm("none"), _item("gold"))
    assert decision.kind is Kind.NEEDS_ATTENTION  # the sandbox rules say onOptOut: report
    assert decision.change == ""
    assert "still protected in vault rsv-autopilot-weu under policy gold" in decision.reason


def test_opt_out_while_protected_stops_protection_when_the_rules_say_so() -> None:
    rules = _rules_with("onOptOut: report", "onOptOut: stopProtection")
    decision = decide(rules, _vm("none"), _item("gold"))
    assert decision.kind is Kind.PROTECTION_STOPPED
    assert decision.change == "stop"
    assert decision.vault is not None and decision.vault.name == "rsv-autopilot-weu"


def test_opt_out_with_stopped_protection_is_left_alone(rules: Rules) -> None:
    decision = decide(rules, _vm("none"), _item("gold", state="ProtectionStopped"))
    assert decision.kind is Kind.OPTED_OUT
    assert decision.change == ""


def test_protected_vm_whose_agent_went_missing_is_reported_without_a_write(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", agent_status="Missing"), _item("gold"))
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert decision.reason.startswith("protected in vault rsv-autopilot-weu under policy gold, but ")


def test_failed_provisioning_of_a_protected_vm_does_not_claim_it_is_unprotected(rules: Rules) -> None:
    decision = decide(rules, _vm("gold", provisioning_state="Failed"), _item("gold"))
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert "not protected" not in decision.reason


# --- another vault -------------------------------------------------------------------------------


def test_protected_in_another_vault_needs_attention_naming_it(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None, elsewhere=(OTHER_VAULT_ID, "x"))
    assert decision.kind is Kind.NEEDS_ATTENTION
    assert decision.change == ""
    assert "already protected by vault rsv-legacy (policy x)" in decision.reason
    assert "rsv-legacy" in decision.remedy
    assert decision.details["otherVault"] == OTHER_VAULT_ID
    assert decision.first_backup is False


def test_elsewhere_that_is_our_own_vault_in_another_letter_case_is_not_another_vault(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None, elsewhere=(WEU_VAULT_ID.upper(), "gold"))
    assert decision.kind is Kind.PROTECTED
    assert decision.change == "enable"


def test_elsewhere_without_policy_name_says_unknown(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None, elsewhere=(OTHER_VAULT_ID, ""))
    assert "(policy unknown)" in decision.reason


# --- disks ---------------------------------------------------------------------------------------


def test_shared_disk_and_tagged_luns_are_excluded_and_said(rules: Rules) -> None:
    vm = _vm(tags={"backup-policy": "gold", "backup-exclude-luns": "3;1"})
    decision = decide(rules, vm, None, shared_disk_luns=[2])
    assert decision.kind is Kind.PROTECTED
    assert decision.selection is not None and decision.selection.excluded_luns == (1, 2, 3)
    assert "(data disks at LUN 1, 2, 3 excluded)" in decision.reason


def test_shared_disk_alone_is_excluded(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None, shared_disk_luns=(4,))
    assert "(data disks at LUN 4 excluded)" in decision.reason


def test_no_exclusion_says_nothing_about_disks(rules: Rules) -> None:
    decision = decide(rules, _vm("gold"), None)
    assert "LUN" not in decision.reason


def test_a_lun_tag_that_is_not_a_lun_list_is_reported(rules: Rules) -> None:
    vm = _vm(tags={"backup-policy": "gold", "backup-exclude-luns": "data"})
    decision = decide(rules, vm, None)
    assert "not a LUN list" in decision.reason + decision.remedy


# -- vault sets ------------------------------------------------------------------------------------
WEU2_VAULT_ID = WEU_VAULT_ID + "-2"


def _counting(counts: dict[str, int], capacity: VaultCapacity) -> tuple[VaultRoom, list[str]]:
    """A VaultRoom whose vaults hold `counts` VMs (vault name -> items), recording what it listed."""
    counted: list[str] = []

    def list_vms(vault: VaultSpec) -> list[str]:
        counted.append(vault.name)
        return [f"{vault.name}/vm-{n}" for n in range(counts[vault.name])]

    return VaultRoom(list_vms, capacity), counted


def test_a_new_vm_goes_to_the_first_vault_of_the_set_with_room(rules: Rules) -> None:
    room, counted = _counting({"rsv-autopilot-weu": 1000, "rsv-autopilot-weu-2": 10}, VaultCapacity())
    placement = room.place(rules.vault_set(SUB, "westeurope"))
    decision = decide(rules, _vm("gold"), None, placement=placement)
    assert decision.kind is Kind.PROTECTED and decision.change == "enable"
    assert decision.vault is not None and decision.vault.resource_id == WEU2_VAULT_ID
    assert counted == ["rsv-autopilot-weu", "rsv-autopilot-weu-2"]
    assert placement.free == {WEU_VAULT_ID.lower(): 0, WEU2_VAULT_ID.lower(): 990}


def test_the_first_vault_with_room_is_counted_alone(rules: Rules) -> None:
    room, counted = _counting({"rsv-autopilot-weu": 3, "rsv-autopilot-weu-2": 0}, VaultCapacity())
    assert room.place(rules.vault_set(SUB, "westeurope")).vault is not None
    assert counted == ["rsv-autopilot-weu"]


def test_headroom_keeps_places_free_and_protections_of_this_instance_count(rules: Rules) -> None:
    room, counted = _counting({"rsv-autopilot-weu": 948, "rsv-autopilot-weu-2": 0}, VaultCapacity(1000, 50))
    vaults = rules.vault_set(SUB, "westeurope")
    first = room.place(vaults, "vm-949").vault  # the 949th item: 1 place left below the headroom of 50
    assert first is not None and first.name == "rsv-autopilot-weu"
    assert room.place(vaults, "vm-950").vault == first
    room.release(first, "vm-950")  # not protected after all: its place is free again
    assert room.place(vaults, "vm-951").vault == first
    second = room.place(vaults, "vm-952").vault
    assert second is not None and second.name == "rsv-autopilot-weu-2"
    assert counted == ["rsv-autopilot-weu", "rsv-autopilot-weu-2"]  # listed once each, then kept
    assert room.holder(vaults, "VM-951") == first and room.holder(vaults, "vm-950") is None
    assert room.holder(vaults, "vm-952") == second


def test_a_vm_whose_set_is_full_needs_attention_naming_the_set_and_the_remedy(rules: Rules) -> None:
    room, _ = _counting({"rsv-autopilot-weu": 1000, "rsv-autopilot-weu-2": 1000}, VaultCapacity())
    decision = decide(rules, _vm("gold"), None, placement=room.place(rules.vault_set(SUB, "westeurope")))
    assert decision.kind is Kind.NEEDS_ATTENTION and not decision.change
    assert (
        "every vault of its region's set is full (rsv-autopilot-weu, rsv-autopilot-weu-2" in decision.reason
    )
    assert "Add a vault to the set for region 'westeurope'" in decision.remedy
    assert decision.details["vaultSetFull"] is True
    assert decision.details["vaultSet"] == [WEU_VAULT_ID, WEU2_VAULT_ID]


def test_a_vm_stays_in_the_vault_of_the_set_that_holds_it(rules: Rules) -> None:
    room, _ = _counting({"rsv-autopilot-weu": 0, "rsv-autopilot-weu-2": 1000}, VaultCapacity())
    placement = room.place(rules.vault_set(SUB, "westeurope"))
    decision = decide(rules, _vm("silver"), _item("gold", vault_id=WEU2_VAULT_ID), placement=placement)
    assert decision.change == "change-policy"
    assert decision.vault is not None and decision.vault.resource_id == WEU2_VAULT_ID


def test_concurrent_placements_never_overfill_a_vault(rules: Rules) -> None:
    from concurrent.futures import ThreadPoolExecutor

    room, _ = _counting({"rsv-autopilot-weu": 0, "rsv-autopilot-weu-2": 0}, VaultCapacity(20, 0))
    vaults = rules.vault_set(SUB, "westeurope")
    with ThreadPoolExecutor(16) as pool:
        placed = list(pool.map(lambda n: room.place(vaults, f"vm-{n}").vault, range(50)))
    names = [v.name if v else None for v in placed]
    assert names.count("rsv-autopilot-weu") == 20 and names.count("rsv-autopilot-weu-2") == 20
    assert names.count(None) == 10
    assert room.items(vaults[0]) == 20 and room.items(vaults[1]) == 20
