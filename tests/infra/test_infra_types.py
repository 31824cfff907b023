"""Every Bicep resource of infra/ against Azure's published resource types (Azure/bicep-types-az).

The definitions are vendored in tests/infra/types/ (scripts/refresh_bicep_types.py writes them,
SOURCES.json says where each comes from); tests/infra/bicep_types.py walks the bodies. A missing
definition fails, it never skips. The meta-tests at the end make sure the checker does catch what
it is meant to catch, so that a green run means something.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pycep.transformer import BicepElement

from scripts import refresh_bicep_types as refresh
from tests.infra.bicep_types import (
    LANGUAGE_KEYS,
    TYPES,
    Checker,
    Declaration,
    MissingTypes,
    Problem,
    alternatives,
    check,
    declarations,
    load,
    merged_objects,
    target_scope_of,
    vendored_path,
)
from tests.infra.infra_support import INFRA, ROOT, Expression, body, parse_text

DECLARATIONS = list(declarations())


def declared_pairs() -> set[tuple[str, str]]:
    return {(d.resource_type, d.api_version) for d in DECLARATIONS}


def test_every_resource_type_and_api_version_is_vendored() -> None:
    missing = sorted(
        f"{d.label} -> {vendored_path(d.resource_type, d.api_version).relative_to(ROOT)}"
        for d in DECLARATIONS
        if not vendored_path(d.resource_type, d.api_version).is_file()
    )
    assert not missing, "no vendored definitions (run scripts/refresh_bicep_types.py):\n" + "\n".join(missing)


def test_only_what_infra_uses_is_vendored() -> None:
    vendored = {
        path.relative_to(TYPES / "azure").as_posix().removesuffix(".json")
        for path in (TYPES / "azure").rglob("*.json")
    }
    used = {f"{resource_type}@{api_version}" for resource_type, api_version in declared_pairs()}
    assert vendored == used, f"stale: {sorted(vendored - used)}; missing: {sorted(used - vendored)}"


def test_the_refresh_script_sees_the_same_declarations_as_the_parser() -> None:
    assert set(refresh.declared_types()) == declared_pairs()
    assert len(DECLARATIONS) >= 50, len(DECLARATIONS)


@pytest.mark.parametrize("declared", DECLARATIONS, ids=lambda d: f"{d.path.name}:{d.symbol}")
def test_each_resource_fits_azure_published_type(declared: Declaration) -> None:
    checker = check(declared)
    assert not checker.problems, "\n".join(str(problem) for problem in checker.problems)
    if not declared.declaration.get("existing"):
        assert checker.keys_checked >= 1, f"{declared.label}: nothing was checked"


def test_the_rules_policies_and_vault_redundancy_fit_azure_types() -> None:
    """vaults.bicep passes the policy bodies and redundancies of rules.generated.json as expressions;
    their values are literal JSON, checked here against the same types."""
    rules = json.loads((INFRA / "rules.generated.json").read_text(encoding="utf-8"))
    policies = load("Microsoft.RecoveryServices/vaults/backupPolicies", "2024-04-01")
    checker = Checker(
        policies, "infra/rules.generated.json (Microsoft.RecoveryServices/vaults/backupPolicies)"
    )
    properties = policies.resolve(policies.body["properties"]["properties"]["type"])
    for policy in rules["policies"]:
        checker.value(properties, policy["properties"], f"policies[{policy['name']}].properties")
    vaults = load("Microsoft.RecoveryServices/vaults", "2024-04-01")
    vault_checker = Checker(vaults, "infra/rules.generated.json (Microsoft.RecoveryServices/vaults)")
    redundancy = vaults.resolve(
        vaults.resolve(vaults.body["properties"]["properties"]["type"])["properties"]["redundancySettings"][
            "type"
        ]
    )
    for group in rules["vaultGroups"]:
        for vault in group["vaults"]:
            vault_checker.value(
                redundancy,
                {
                    "standardTierStorageRedundancy": vault["storageRedundancy"],
                    "crossRegionRestore": "Disabled",
                },
                f"vaults[{vault['name']}].redundancySettings",
            )
    problems = checker.problems + vault_checker.problems
    assert not problems, "\n".join(map(str, problems))
    assert checker.keys_checked >= 10 * len(rules["policies"]), checker.keys_checked


# -- provenance of the vendored files -------------------------------------------------------------


def sources() -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = json.loads((TYPES / "SOURCES.json").read_text(encoding="utf-8"))[
        "files"
    ]
    return files


def test_every_vendored_file_has_its_provenance_and_is_unchanged() -> None:
    listed = sources()
    present = {
        path.relative_to(TYPES).as_posix()
        for path in TYPES.rglob("*")
        if path.is_file()
        and path.name not in ("README.md", "SOURCES.json")
        and not path.name.startswith("LICENSE")
    }
    assert present == set(listed), (
        f"unlisted: {sorted(present - set(listed))}; absent: {sorted(set(listed) - present)}"
    )
    readme = (TYPES / "README.md").read_text(encoding="utf-8")
    for name, entry in listed.items():
        assert entry["repository"] in refresh.LICENSES, name
        assert entry["license"] == refresh.LICENSES[entry["repository"]], name
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]), name
        assert entry["path"], name
        digest = hashlib.sha256((TYPES / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{name} differs from what the refresh script wrote"
        assert f"`{name}` | {entry['repository']} | `{entry['commit']}` | `{entry['path']}`" in readme, name
        licence = TYPES / f"LICENSE.{entry['repository'].split('/')[1]}"
        assert licence.is_file(), f"{licence.name} (the licence of {entry['repository']}) is missing"
        if name.startswith("azure/"):
            document = json.loads((TYPES / name).read_text(encoding="utf-8"))
            assert document["source"]["commit"] == entry["commit"]
            assert document["source"]["path"] == entry["path"]
            assert document["resourceType"] == name.removeprefix("azure/").removesuffix(".json")
    assert "MIT License" in (TYPES / "LICENSE.bicep-types-az").read_text(encoding="utf-8")


def test_the_trimmed_graph_keeps_every_reachable_type_and_renumbers_references() -> None:
    types: list[dict[str, Any]] = [
        {"$type": "StringType"},
        {"$type": "ObjectType", "name": "Unrelated", "properties": {}},
        {
            "$type": "ResourceType",
            "name": "A/b@1",
            "body": {"$ref": "#/3"},
            "functions": {"x": {"$ref": "#/1"}},
        },
        {"$type": "ObjectType", "name": "A/b", "properties": {"name": {"type": {"$ref": "#/0"}, "flags": 9}}},
    ]
    graph = refresh.reachable_graph(types, 2)
    assert graph == [
        {"$type": "ResourceType", "name": "A/b@1", "body": {"$ref": "#/1"}},
        {"$type": "ObjectType", "name": "A/b", "properties": {"name": {"type": {"$ref": "#/2"}, "flags": 9}}},
        {"$type": "StringType"},
    ]


# -- meta-tests: the checker catches what it must -----------------------------------------------

WRONG = """
param location string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stmeta01'
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    madeUpKey: true
    primaryEndpoints: {}
    MinimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: 'no'
    accessTier: 'Lukewarm'
    networkAcls: {
      defaultAction: location
      bypass: 'AzureServices'
    }
  }
}

resource alert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'meta'
  location: 'global'
  properties: {
    severity: 2
    enabled: true
    scopes: []
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.NoSuchCriteria'
    }
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid('meta')
  properties: {
    principalId: 'p'
    principalType: 'Robot'
  }
}

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-meta'
  location: location
}
"""


def problems_in(text: str) -> list[Problem]:
    """The checker's findings on Bicep source deployed at resource group scope."""
    found: list[Problem] = []
    for symbol, declaration in parse_text(text)["resources"].items():
        checker = Checker(load(declaration["type"], declaration["api_version"]), f"meta.bicep: {symbol}")
        checker.resource(declaration, "resourceGroup")
        found.extend(checker.problems)
    return found


def test_the_checker_catches_wrong_properties() -> None:
    found = {(p.where.split(": ")[1], p.path): p.message for p in problems_in(WRONG)}
    expected = {
        ("account", "properties.madeUpKey"): "unknown property",
        ("account", "properties.primaryEndpoints"): "read-only",
        ("account", "properties.MinimumTlsVersion"): "Azure declares this property as 'minimumTlsVersion'",
        ("account", "properties.allowBlobPublicAccess"): "Azure declares bool",
        (
            "account",
            "properties.accessTier",
        ): "'Lukewarm' is not one of Azure's values ['Hot', 'Cool', 'Premium', 'Cold']",
        (
            "alert",
            "properties.criteria.odata.type",
        ): "'Microsoft.Azure.Monitor.NoSuchCriteria' is not one of Azure's",
        ("assignment", "properties.principalType"): "'Robot' is not one of Azure's values",
        ("assignment", "properties.roleDefinitionId"): "missing: Azure declares it required",
        ("group", "scope"): "deployed at resourceGroup scope; Azure allows subscription",
    }
    for where, words in expected.items():
        assert where in found, f"the checker missed {where}: {words}"
        assert words in found[where], f"{where}: {found[where]}"
    # An expression's value is not judged (defaultAction: location), a literal that fits is fine.
    assert set(found) == set(expected), sorted(set(found) - set(expected))


CONDITIONAL = """
param immutable string
param geo bool
param base object
param name string

resource vault 'Microsoft.RecoveryServices/vaults@2024-04-01' = {
  name: 'rsv-meta'
  location: 'westeurope'
  sku: {
    name: 'RS0'
    tier: 'Standard'
  }
  properties: {
    publicNetworkAccess: geo ? 'Disabled' : 'enabled'
    securitySettings: {
      immutabilitySettings: empty(immutable) ? {
        stat: 'Unlocked'
      } : {
        state: immutable
      }
      softDeleteSettings: geo ? (empty(immutable) ? {
        softDeleteState: 'Enabled'
      } : {
        softDeleteRetentionPeriodInDays: 'fourteen'
      }) : {}
    }
    redundancySettings: {
      crossRegionRestore: !empty(immutable) ? 'Enabled' : 'Disable'
      standardTierStorageRedundancy: name == 'geo' ? 'GeoRedundant' : 'LocallyRedundant'
    }
    monitoringSettings: immutable ?? {
      azureMonitorAlertSettings: {
        alertsForAllJobFailure: 'Enabled'
      }
    }
  }
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stmeta02'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: union(base, {
    minimumTlsVersion: 'TLS1_2'
    madeUpKey: true
  })
}
"""


def test_the_checker_looks_inside_conditionals_coalesces_and_unions() -> None:
    """A typo in either branch of `c ? {...} : {...}` (nested, or behind pycep's precedence-less
    parse of `!x ? a : b`), in a coalesce, or in an object merged with union(...) is reported; the
    fitting branches are not, nor the required properties a union's other argument may bring."""
    found = {(p.where.split(": ")[1], p.path): p.message for p in problems_in(CONDITIONAL)}
    expected = {
        ("vault", "properties.publicNetworkAccess"): "'enabled' differs in case from Azure's 'Enabled'",
        ("vault", "properties.securitySettings.immutabilitySettings.stat"): "unknown property",
        (
            "vault",
            "properties.securitySettings.softDeleteSettings.softDeleteRetentionPeriodInDays",
        ): '"fourteen" does not fit; Azure declares int',
        ("vault", "properties.redundancySettings.crossRegionRestore"): "'Disable' is not one of Azure's",
        (
            "vault",
            "properties.monitoringSettings.azureMonitorAlertSettings.alertsForAllJobFailure",
        ): "unknown property",
        ("account", "properties.madeUpKey"): "unknown property",
    }
    for where, words in expected.items():
        assert where in found, f"the checker missed {where}: {words}"
        assert words in found[where], f"{where}: {found[where]}"
    assert set(found) == set(expected), sorted(set(found) - set(expected))


def test_a_missing_definition_fails_and_does_not_skip() -> None:
    declared = DECLARATIONS[0]
    ghost = Declaration(declared.path, declared.symbol, {**declared.declaration, "api_version": "1999-01-01"})
    with pytest.raises(MissingTypes, match=r"no vendored type definitions for .*@1999-01-01"):
        check(ghost)
    assert issubclass(MissingTypes, AssertionError)


def literal_leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Literal values, also inside a conditional's branches and union(...)'s object arguments."""
    if isinstance(node, Expression):
        for inner, branch in [*alternatives(node), *merged_objects(node)]:
            yield from literal_leaves(branch, (*path, *inner))
        return
    if isinstance(node, BicepElement) or node is None:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("loop_type", "condition", "__start_line__", "__end_line__"):
                continue
            yield from literal_leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from literal_leaves(value, (*path, index))
    else:
        yield path, node


def object_keys(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Object keys, also inside a conditional's branches (not union(...)'s arguments: in infra/ they
    are tags, a map that takes any key)."""
    if isinstance(node, Expression):
        for inner, branch in alternatives(node):
            yield from object_keys(branch, (*path, *inner))
        return
    if isinstance(node, BicepElement):
        return
    if isinstance(node, dict):
        loop = "loop_type" in node
        for key, value in node.items():
            if key in ("loop_type", "condition", "__start_line__", "__end_line__"):
                continue
            if not (loop and key == "config"):
                yield path, key
            yield from object_keys(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from object_keys(value, (*path, index))


def at(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        root = root[step]
    return root


def recheck(declared: Declaration, declaration: dict[str, Any]) -> list[Problem]:
    checker = Checker(load(declared.resource_type, declared.api_version), declared.label)
    checker.resource(declaration, target_scope_of(declared.path))
    return checker.problems


def test_every_literal_value_in_infra_is_checked() -> None:
    """Each literal value of every resource, replaced by one of the wrong type, is reported."""
    tried, missed = 0, []
    for declared in DECLARATIONS:
        if declared.declaration.get("existing"):
            continue
        for path, leaf in literal_leaves(body(declared.declaration)):
            mutated = copy.deepcopy(declared.declaration)
            at(body(mutated), path[:-1])[path[-1]] = 12345 if isinstance(leaf, str) else "not-a-valid-value"
            tried += 1
            if not recheck(declared, mutated):
                missed.append(f"{declared.label}: {'.'.join(map(str, path))} = {leaf!r}")
    assert tried >= 150, tried
    assert not missed, "values the checker does not look at:\n" + "\n".join(missed)


def test_every_property_key_in_infra_is_checked() -> None:
    """Each property key of every resource, renamed to a made-up one, is reported (the keys of maps
    such as userAssignedIdentities, computed here, take any name)."""
    tried, missed = 0, []
    for declared in DECLARATIONS:
        for path, key in object_keys(body(declared.declaration)):
            if (not path and key in LANGUAGE_KEYS) or "${" in key:
                continue
            mutated = copy.deepcopy(declared.declaration)
            parent = at(body(mutated), path)
            parent["madeUpKey"] = parent.pop(key)
            tried += 1
            if not any(p.path.endswith("madeUpKey") for p in recheck(declared, mutated)):
                missed.append(f"{declared.label}: {'.'.join(map(str, (*path, key)))}")
    assert tried >= 350, tried
    assert not missed, "keys the checker does not look at:\n" + "\n".join(missed)
