"""One source of truth: the vaults and policies Bicep deploys are those of the rules file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autopilot.rules import RulesError, load_rules, parse_rules
from scripts import rules_to_bicep_params as generator
from tests.infra.infra_support import INFRA, ROOT, function, module, modules, resource, variable

GENERATED = INFRA / "rules.generated.json"
MAIN = INFRA / "main.bicep"
VAULTS_MAIN = INFRA / "vaults.bicep"
VAULTS = INFRA / "modules" / "vaults.bicep"


def generated() -> dict[str, object]:
    document: dict[str, object] = json.loads(GENERATED.read_text(encoding="utf-8"))
    return document


def test_the_generated_file_is_what_its_rules_file_gives() -> None:
    source = generated()["source"]
    assert isinstance(source, str)
    assert (ROOT / source).is_file(), f"{source} named by {GENERATED.name} does not exist"
    assert GENERATED.read_text(encoding="utf-8") == generator.generate(ROOT / source), (
        f"{GENERATED.name} is stale: run python scripts/rules_to_bicep_params.py --rules {source}"
    )


def test_the_check_command_agrees() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/rules_to_bicep_params.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("rules_file", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_vaults_and_policies_match_the_rules(rules_file: Path) -> None:
    rules = load_rules(str(rules_file))
    document = json.loads(generator.generate(rules_file))

    deployed = {
        (
            group["subscriptionId"],
            group["resourceGroup"],
            vault["name"],
            vault["region"],
            vault["storageRedundancy"],
        )
        for group in document["vaultGroups"]
        for vault in group["vaults"]
    }
    declared = {
        (v.subscription_id.lower(), v.resource_group, v.name, v.region, v.storage_redundancy)
        for v in rules.vaults
    }
    assert deployed == declared

    # One group per (subscription, resource group): one module per vault resource group.
    keys = [(g["subscriptionId"], g["resourceGroup"].lower()) for g in document["vaultGroups"]]
    assert len(keys) == len(set(keys))

    assert [p["name"] for p in document["policies"]] == list(rules.policy_names)
    for policy in document["policies"]:
        assert policy["properties"] == rules.policy(policy["name"]).to_arm_properties()


def test_a_changed_rules_file_changes_what_is_deployed() -> None:
    text = (ROOT / "rules" / "sandbox.yaml").read_text(encoding="utf-8")
    before = generator.build(parse_rules(text), "rules/sandbox.yaml")
    changed = text.replace("storageRedundancy: GeoRedundant", "storageRedundancy: LocallyRedundant", 1)
    changed = changed.replace("daily: 14", "daily: 21")
    after = generator.build(parse_rules(changed), "rules/sandbox.yaml")
    redundancies = [v["storageRedundancy"] for g in after["vaultGroups"] for v in g["vaults"]]
    assert "LocallyRedundant" in redundancies
    assert before["policies"] != after["policies"]
    silver = next(p for p in after["policies"] if p["name"] == "silver")
    assert silver["properties"]["retentionPolicy"]["dailySchedule"]["retentionDuration"]["count"] == 21


def test_vaults_in_other_subscriptions_are_listed_as_skipped() -> None:
    document = json.loads(generator.generate(ROOT / "rules" / "example.yaml"))
    lines = generator.summary(document, "66666666-7777-8888-9999-000000000000", other_subscriptions=False)
    assert any(line.startswith("deployed:") and "rsv-dev-weu" in line for line in lines)
    assert any(line.startswith("skipped:") and "rsv-prod-weu" in line for line in lines)
    everything = generator.summary(document, "66666666-7777-8888-9999-000000000000", other_subscriptions=True)
    assert all(line.startswith("deployed:") for line in everything)


def test_bicep_deploys_the_generated_vaults_and_policies() -> None:
    for path in (MAIN, VAULTS_MAIN):
        called = function(variable(path, "rules"))
        assert called is not None and called["parameters"]["file_path"] == "rules.generated.json"
    vaults = module(VAULTS_MAIN, "vaults")
    assert vaults.declaration["detail"]["path"] == "modules/vaults.bicep"
    assert vaults.declaration["config"]["loop_type"]["detail"]["array_name"] == "vaultGroups"
    params = vaults.body["params"]
    assert params["vaults"] == accessor("g", "vaults")
    assert params["policies"] == accessor("rules", "policies")
    scope = function(vaults.body["scope"])
    assert scope is not None and scope["type"] == "resource_group"
    # The vaults' resource groups are created in their own subscriptions.
    groups = module(VAULTS_MAIN, "vaultResourceGroups")
    scope = function(groups.body["scope"])
    assert scope == {
        "type": "subscription",
        "parameters": {"subscription_id": accessor("g", "subscriptionId")},
    }


def test_vaults_are_outside_the_azd_deployment() -> None:
    """`azd down` deletes every resource group main.bicep's deployment touched: nothing of main.bicep
    may be in a vault's resource group, and nothing of vaults.bicep may carry azd's tag."""
    assert "vaultGroups" not in MAIN.read_text(encoding="utf-8")
    used = {Path(d.declaration["detail"]["path"]).name for d in modules(MAIN)}
    assert not used & {"vaults.bicep", "resource-group.bicep"}, used
    for declared in modules(MAIN):
        scope = declared.body.get("scope")
        assert scope == "rg" or (function(scope) or {}).get("type") == "subscription", declared.symbol
    assert not re.search(r"'azd-env-name'\s*:", VAULTS_MAIN.read_text(encoding="utf-8"))
    assert variable(VAULTS_MAIN, "tags") == {"'backup-autopilot'": "environmentName"}


def accessor(operand: object, name: str) -> dict[str, object]:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": operand, "operand_2": name}}}


def index(collection: str, kind: str) -> dict[str, object]:
    position = {"operator": {"type": kind, "operands": {"operand_1": "i", "operand_2": "policyCount"}}}
    return {
        "operator": {"type": "index_accessor", "operands": {"operand_1": collection, "operand_2": position}}
    }


def test_each_vault_has_the_rules_redundancy_and_soft_delete() -> None:
    vault = resource(VAULTS, "vault")
    assert vault.body["name"] == accessor("v", "name")
    assert vault.body["location"] == accessor("v", "region")
    properties = vault.body["properties"]
    assert properties["redundancySettings"]["standardTierStorageRedundancy"] == accessor(
        "v", "storageRedundancy"
    )
    soft_delete = properties["securitySettings"]["softDeleteSettings"]
    assert soft_delete["softDeleteState"] == "Enabled"
    assert soft_delete["softDeleteRetentionPeriodInDays"] == accessor(
        "posture", "softDeleteRetentionPeriodInDays"
    )


@pytest.mark.parametrize("rules_file", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_new_vaults_get_the_rules_posture_and_never_a_lock(rules_file: Path) -> None:
    """The generated posture (autopilot/posture/grading.py new_vault_settings) that modules/vaults.bicep gives new
    vaults: the rules' soft-delete retention, immutability Unlocked only when `immutability` is required
    (never Locked, never always-on), cross-region restore and closed public access when required."""
    rules = load_rules(str(rules_file))
    posture = json.loads(generator.generate(rules_file))["posture"]
    wanted = rules.posture.require if rules.posture else ()
    days = rules.posture.soft_delete_retention_days if rules.posture else 14
    assert posture == {
        "softDeleteState": "Enabled",
        "softDeleteRetentionPeriodInDays": days,
        "immutabilityState": "Unlocked" if "immutability" in wanted else "",
        "crossRegionRestore": "Enabled" if "crossRegionRestore" in wanted else "Disabled",
        "publicNetworkAccess": "Disabled" if "publicNetworkAccessDisabled" in wanted else "Enabled",
    }
    text = VAULTS.read_text(encoding="utf-8")
    assert "'Locked'" not in text and "'AlwaysON'" not in text
    assert "posture: rules.posture" in VAULTS_MAIN.read_text(encoding="utf-8")


def test_every_policy_goes_into_every_vault_one_at_a_time() -> None:
    policy = resource(VAULTS, "policy")
    assert policy.type == "Microsoft.RecoveryServices/vaults/backupPolicies"
    assert policy.body["parent"] == index("vault", "divide")
    assert policy.body["name"] == accessor(index("policies", "modulo"), "name")
    assert policy.body["properties"] == accessor(index("policies", "modulo"), "properties")
    assert "range(0, createVaults ? length(vaults) * policyCount : 0)" in policy.text
    assert policy.declaration["decorators"] == [{"type": "batchSize", "argument": 1}]


def test_vault_diagnostics_send_the_resource_specific_backup_tables() -> None:
    categories = set(variable(VAULTS, "backupLogCategories"))
    assert {
        "CoreAzureBackup",
        "AddonAzureBackupJobs",
        "AddonAzureBackupPolicy",
        "AddonAzureBackupProtectedInstance",
    } <= categories
    diagnostics = resource(VAULTS, "backupLogs")
    assert diagnostics.type == "Microsoft.Insights/diagnosticSettings"
    assert diagnostics.body["properties"]["logAnalyticsDestinationType"] == "Dedicated"
    assert diagnostics.body["properties"]["workspaceId"] == "workspaceId"


STAGING = INFRA / "modules" / "drill-staging.bicep"


@pytest.mark.parametrize("rules_file", sorted((ROOT / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_the_staging_places_are_where_drills_restore_to(rules_file: Path) -> None:
    """For every vault's subscription and region, the staging group and account a drill of that
    vault restores to (DrillRules.staging_for) is deployed, in the vault's region, and nothing else."""
    rules = load_rules(str(rules_file))
    document = json.loads(generator.generate(rules_file))
    deployed = {
        (s["subscriptionId"], s["region"], s["resourceGroup"], s["storageAccount"])
        for s in document["staging"]
    }
    expected = set()
    if rules.drills is not None:
        for vault in rules.vaults:
            spec = rules.drills.staging_for(vault.subscription_id, vault.region)
            if spec is not None:
                expected.add(
                    (vault.subscription_id.lower(), vault.region, spec.resource_group, spec.storage_account)
                )
    assert deployed == expected
    if rules.drills is not None:
        assert deployed, f"{rules_file.name} has drills but no staging place is deployed"


def test_the_example_deploys_a_staging_place_per_vault_subscription_and_region() -> None:
    staging = generated()["staging"]
    assert isinstance(staging, list)
    pairs = {(s["subscriptionId"], s["region"]) for s in staging}
    assert pairs == {
        ("11111111-2222-3333-4444-555555555555", "westeurope"),
        ("11111111-2222-3333-4444-555555555555", "northeurope"),
        ("66666666-7777-8888-9999-000000000000", "westeurope"),
    }


def test_one_storage_account_name_in_two_subscriptions_is_refused() -> None:
    """A staging entry without `subscription` applies to every vault subscription of its region; a
    storage account name is global in Azure, so that cannot be deployed twice."""
    text = (ROOT / "rules" / "example.yaml").read_text(encoding="utf-8")
    head, _, _ = text.partition("drills:")
    shared = (
        head
        + "drills:\n  schedule: '0 0 2 * * *'\n  rotationDays: 30\n  sample:\n    - {policy: gold, count: 1}\n"
        + "  staging:\n    - {region: westeurope, resourceGroup: rg-drills-weu, storageAccount: stdrillsweu}\n"
    )
    with pytest.raises(RulesError, match=r"stdrillsweu.*unique in all of Azure"):
        generator.build(parse_rules(shared), "rules/example.yaml")


def test_bicep_deploys_the_staging_places_outside_azd() -> None:
    assert "staging" not in MAIN.read_text(encoding="utf-8").lower()
    assert variable(VAULTS_MAIN, "stagingPlaces") is not None
    groups = module(VAULTS_MAIN, "stagingResourceGroups")
    assert groups.declaration["config"]["loop_type"]["detail"]["array_name"] == "stagingPlaces"
    assert function(groups.body["scope"]) == {
        "type": "subscription",
        "parameters": {"subscription_id": accessor("s", "subscriptionId")},
    }
    assert groups.body["params"]["location"] == accessor("s", "region")
    staging = module(VAULTS_MAIN, "staging")
    assert staging.declaration["detail"]["path"] == "modules/drill-staging.bicep"
    assert staging.body["params"]["name"] == accessor("s", "storageAccount")
    assert staging.body["params"]["location"] == accessor("s", "region")
    scope = function(staging.body["scope"])
    assert scope is not None and scope["type"] == "resource_group"


def test_the_staging_account_is_what_azure_backup_accepts_and_no_more_open() -> None:
    """Azure Backup's staging location of a disk restore: a standard general-purpose account, not
    zone-redundant nor premium, in the vault's region, reached by the service with shared keys."""
    account = resource(STAGING, "account")
    assert account.type == "Microsoft.Storage/storageAccounts"
    assert account.body["kind"] == "StorageV2"
    assert account.body["sku"] == {"name": "Standard_LRS"}
    assert account.body["location"] == "location"
    properties = account.body["properties"]
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["allowSharedKeyAccess"] is True
    assert properties["allowCrossTenantReplication"] is False
