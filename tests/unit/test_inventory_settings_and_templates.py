"""The settings of the sweep's inventory (AUTOPILOT_INVENTORY, AUTOPILOT_SUBSCRIPTIONS=*,
AUTOPILOT_MANAGEMENT_GROUPS), the rules' vault templates, and the Resource Graph rows the inventory
turns into facts."""

from __future__ import annotations

import pytest

from autopilot.azure.resourcegraph import item_facts, jobs_query, vm_facts
from autopilot.rules import RulesError, SubscriptionFacts, parse_rules
from autopilot.settings import Settings, SettingsError

A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
TAIL = """
policies: {gold: {}}
selection:
  - {name: g, priority: 1, match: {tag: backup-policy, equals: gold}, policy: gold}
"""


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_inventory_defaults_to_arm_and_takes_the_three_sources() -> None:
    assert settings().inventory == "arm"
    for source in ("arm", "resourcegraph", "auto", "AUTO"):
        assert settings(AUTOPILOT_INVENTORY=source).inventory == source.lower()
    with pytest.raises(SettingsError, match="AUTOPILOT_INVENTORY='graph' is not an inventory source"):
        settings(AUTOPILOT_INVENTORY="graph")


def test_star_means_every_subscription_and_does_not_mix_with_ids() -> None:
    star = settings(AUTOPILOT_SUBSCRIPTIONS="*")
    assert star.all_subscriptions and star.subscriptions == ()
    with pytest.raises(SettingsError, match="mixes '\\*' with subscription ids"):
        settings(AUTOPILOT_SUBSCRIPTIONS=f"*,{A}")


def test_management_groups_need_resource_graph_and_no_subscription_list() -> None:
    assert settings(
        AUTOPILOT_MANAGEMENT_GROUPS="mg-a, mg-b", AUTOPILOT_INVENTORY="auto"
    ).management_groups == (
        "mg-a",
        "mg-b",
    )
    with pytest.raises(SettingsError, match="needs Azure Resource Graph"):
        settings(AUTOPILOT_MANAGEMENT_GROUPS="mg-a")
    with pytest.raises(SettingsError, match="both set the scope"):
        settings(AUTOPILOT_MANAGEMENT_GROUPS="mg-a", AUTOPILOT_SUBSCRIPTIONS=A, AUTOPILOT_INVENTORY="auto")
    with pytest.raises(SettingsError, match="is not a management group id"):
        settings(AUTOPILOT_MANAGEMENT_GROUPS="mg a", AUTOPILOT_INVENTORY="auto")


def test_a_template_gives_each_selected_subscription_a_vault_set_per_region() -> None:
    rules = parse_rules(
        """
vaultTemplates:
  - subscriptions: "*"
    excludeSubscriptions: ["""
        + B
        + """]
    regions: [westeurope, East US]
    resourceGroup: rg-backup-{region}
    name: rsv-{subscriptionShort}-{region}-{n}
    count: 2
    storageRedundancy: LocallyRedundant
"""
        + TAIL
    )
    (first, second) = rules.vault_set(A, "West Europe")
    assert (first.name, second.name, first.resource_group) == (
        "rsv-11111111-westeurope-1",
        "rsv-11111111-westeurope-2",
        "rg-backup-westeurope",
    )
    assert first.storage_redundancy == "LocallyRedundant" and first.subscription_id == A
    assert rules.vault_set(B, "westeurope") == ()
    assert len(rules.vaults_for([A, B])) == 4
    assert rules.vault_by_id(second.resource_id) == second


def test_listed_vaults_win_over_templates_and_name_or_group_templates_need_facts() -> None:
    rules = parse_rules(
        f"""
vaults:
  - {{subscription: {A}, resourceGroup: rg-own, name: rsv-own, region: westeurope}}
vaultTemplates:
  - subscriptions: {{namePattern: "prod-*"}}
    regions: [westeurope, northeurope]
    resourceGroup: rg-backup
    name: rsv-{{region}}
  - subscriptions: {{managementGroup: mg-lz}}
    regions: [uksouth]
    resourceGroup: rg-backup
    name: rsv-lz
"""
        + TAIL
    )
    assert [v.name for v in rules.vault_set(A, "westeurope")] == ["rsv-own"]
    assert rules.vault_set(A, "northeurope") == ()  # its name is not known yet
    known = rules.with_facts({A: SubscriptionFacts("Prod-Shop", ("mg-lz",))})
    assert [v.name for v in known.vault_set(A, "westeurope")] == ["rsv-own"]
    assert [v.name for v in known.vault_set(A, "northeurope")] == ["rsv-northeurope"]
    assert [v.name for v in known.vault_set(A, "uksouth")] == ["rsv-lz"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("subscriptions: '*'\n    regions: [westeurope, eastus]\n    resourceGroup: rg\n    name: rsv-one",
         "put {region} in it"),
        ("subscriptions: '*'\n    regions: [westeurope]\n    resourceGroup: rg\n    name: rsv-x\n    count: 2",
         "must contain {n} once"),
        ("subscriptions: '*'\n    regions: [westeurope]\n    resourceGroup: rg\n    name: '1rsv-{region}'",
         "is not a valid vault name"),
        ("subscriptions: [not-a-guid]\n    regions: [westeurope]\n    resourceGroup: rg\n    name: rsv",
         "is not a subscription id"),
        ("subscriptions: {namePattern: a, managementGroup: b}\n    regions: [westeurope]\n    resourceGroup: rg\n    name: rsv",
         "exactly one of namePattern and managementGroup"),
    ],
)  # fmt: skip
def test_template_mistakes_are_reported_with_the_line(template: str, message: str) -> None:
    with pytest.raises(RulesError) as error:
        parse_rules("vaultTemplates:\n  - " + template + "\n" + TAIL, "rules.yaml")
    assert message in str(error.value) and str(error.value).startswith("rules.yaml:")


def test_rules_need_vaults_or_templates() -> None:
    with pytest.raises(RulesError, match="missing key 'vaults'"):
        parse_rules(TAIL)


def test_resource_graph_rows_become_the_facts_arm_pages_give() -> None:
    vm = vm_facts(
        {
            "id": f"/subscriptions/{A}/resourceGroups/RG-App/providers/Microsoft.Compute/virtualMachines/web",
            "location": "West Europe",
            "tags": {"backup-policy": "gold"},
            "osType": "Linux",
            "security": "TrustedLaunch",
            "provisioning": "Succeeded",
            "created": "2026-01-01T10:00:00Z",
            "power": "PowerState/deallocated",
            "dataDisks": [{"lun": 1, "name": "d1", "managedDisk": {"id": "/disk/1"}}],
        }
    )
    assert (vm.resource_group, vm.location, vm.power_state, vm.agent_status) == (
        "RG-App",
        "westeurope",
        "deallocated",
        "Unknown",
    )
    assert vm.trusted_launch and vm.data_disks[0].managed_disk_id == "/disk/1" and vm.time_created is not None
    item = item_facts(
        f"/subscriptions/{A}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v/backupFabrics/Azure/x",
        {
            "currentProtectionState": "SoftDeleted",
            "lastBackupTime": "2001-01-01T00:00:00Z",
            "policyId": "/p/gold",
        },
    )
    assert item.soft_deleted and item.last_backup_time is None and item.policy_name == "gold"
    assert item.vault_id.endswith("/vaults/v")


def test_the_jobs_query_keeps_open_alerts_and_quotes_names() -> None:
    import datetime as dt

    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert "status != 'Completed'\n" in jobs_query(since, set())
    text = jobs_query(since, {"v|o'brien"})
    assert "'v|o''brien'" in text and "datetime(2026-01-01T00:00:00Z)" in text
    assert "status != 'Completed'" not in jobs_query(since, None)
