"""Least privilege: which roles the app's identity gets, where, and why."""

from __future__ import annotations

import re

import pytest

from tests.infra.infra_support import (
    INFRA,
    ROLE_ASSIGNMENT,
    Declared,
    function,
    guids,
    lines,
    module,
    parse,
    resources,
)

RBAC = INFRA / "rbac.bicep"
RBAC_SUBSCRIPTION = INFRA / "rbac-subscription.bicep"
MAIN = INFRA / "main.bicep"
VAULTS_MAIN = INFRA / "vaults.bicep"

# Built-in roles (the GUIDs are the same in every tenant).
ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "5e467623-bb1f-42f4-a55d-6e525e11384b": "Backup Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
}

FORBIDDEN = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "b24988ac-6180-42ce-ab88-20d7014aab7c": "Contributor (as the issue's brief spells it)",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}

# Each role on the narrowest scope that works: the symbol of the resource it is scoped to
# (None: the deployment's own scope, i.e. the resource group or the subscription).
EXPECTED_SCOPES = {
    "Storage Blob Data Owner": (RBAC, "storageAccount"),
    "Storage Queue Data Contributor": (RBAC, "storageAccount"),
    "Storage Table Data Contributor": (RBAC, "storageAccount"),
    "Storage Blob Data Contributor": (RBAC, "deadLetterContainer"),
    "EventGrid Data Sender": (RBAC, "topic"),
    "Log Analytics Reader": (RBAC, "workspace"),
    "Monitoring Metrics Publisher": (RBAC, "appInsights"),
    "Key Vault Secrets User": (RBAC, "keyVault"),
    "Backup Contributor": (RBAC, None),
    "Reader": (RBAC_SUBSCRIPTION, None),
    "Virtual Machine Contributor": (RBAC_SUBSCRIPTION, None),
}


def assignments() -> list[Declared]:
    return [declared for declared in resources() if declared.type == ROLE_ASSIGNMENT]


def role_guid(declared: Declared) -> str:
    """The role definition GUID of an assignment: a literal, or a variable holding one."""
    called = function(declared.body["properties"]["roleDefinitionId"])
    assert called is not None and called["type"] == "subscription_resource_id", declared.symbol
    argument = called["parameters"]["resource_name_1"]
    variables = parse(declared.path).get("variables") or {}
    value = variables[argument]["value"] if argument in variables else argument
    found = guids(str(value))
    assert len(found) == 1, f"{declared.path.name}:{declared.symbol}: no role definition GUID in {value!r}"
    return found[0]


def test_role_assignments_are_all_in_the_rbac_files() -> None:
    found = assignments()
    assert found, "no role assignments found"
    assert {declared.path for declared in found} == {RBAC, RBAC_SUBSCRIPTION}


def test_no_owner_contributor_or_user_access_administrator_anywhere() -> None:
    for path in sorted(INFRA.rglob("*")):
        if path.is_file() and path.suffix in (".bicep", ".json", ".sh"):
            text = path.read_text(encoding="utf-8")
            for guid in guids(text):
                assert guid not in FORBIDDEN, f"{path.relative_to(INFRA)} names {FORBIDDEN[guid]} ({guid})"
            for name in ("'Owner'", "'Contributor'", "'User Access Administrator'"):
                assert name not in text, f"{path.relative_to(INFRA)} names the role {name}"


def test_the_roles_are_exactly_the_reviewed_ones_on_their_scopes() -> None:
    seen: dict[str, tuple[object, object]] = {}
    for declared in assignments():
        role = ROLES.get(role_guid(declared))
        assert role is not None, (
            f"{declared.symbol}: role {role_guid(declared)} is not one of the reviewed roles"
        )
        assert role not in seen, f"{role} is assigned twice"
        scope = declared.body.get("scope")
        seen[role] = (declared.path, scope)
    assert seen == EXPECTED_SCOPES


@pytest.mark.parametrize("declared", assignments(), ids=lambda d: f"{d.path.name}:{d.symbol}")
def test_each_assignment_is_named_by_guid_and_justified(declared: Declared) -> None:
    role = ROLES[role_guid(declared)]
    name = function(declared.body["name"])
    assert name is not None and name["type"] == "guid", f"{declared.symbol}: the name must be guid(...)"
    assert declared.body["properties"]["principalType"] == "ServicePrincipal"

    # The comment above names the role and says which calls need it.
    comment = declared.comment_above()
    assert comment.startswith(role), f"{declared.symbol}: the comment must start with the role name '{role}'"
    assert "Needed" in comment, f"{declared.symbol}: the comment must say what needs the role"
    assert re.search(r"Microsoft\.\w+/|Put Blob|Get Messages|Insert Entity", comment), (
        f"{declared.symbol}: the comment must name the operations that need the role"
    )

    # The role definition GUID is commented with its role name where it is written.
    guid = role_guid(declared)
    written = [line for line in lines(declared.path) if guid in line.lower()]
    assert written and all(line.rstrip().endswith(f"// {role}") for line in written), (
        f"{guid} must be commented with '// {role}'"
    )


def test_virtual_machine_contributor_is_explained_by_the_backup_extension() -> None:
    (declared,) = [d for d in assignments() if ROLES[role_guid(d)] == "Virtual Machine Contributor"]
    comment = declared.comment_above()
    assert "Microsoft.Compute/virtualMachines/write" in comment
    assert "extension" in comment


def test_subscription_roles_go_to_every_subscription_in_scope() -> None:
    assert parse(RBAC_SUBSCRIPTION)["globals"]["scope"]["value"] == "subscription"
    declared = module(MAIN, "rbacSubscriptions")
    loop = declared.declaration["config"]["loop_type"]["detail"]
    assert loop["array_name"] == "scopeSubscriptions"
    assert function(declared.body["scope"]) == {
        "type": "subscription",
        "parameters": {"subscription_id": "sub"},
    }
    # The same list feeds the app setting, so the app acts exactly where it holds its roles.
    assert "AUTOPILOT_SUBSCRIPTIONS: join(scopeSubscriptions, ',')" in MAIN.read_text(encoding="utf-8")


def test_backup_contributor_goes_to_every_vault_resource_group() -> None:
    declared = module(VAULTS_MAIN, "rbacVaults")
    assert declared.declaration["detail"]["path"] == "rbac.bicep"
    assert declared.declaration["config"]["loop_type"]["detail"]["array_name"] == "vaultGroups"
    assert declared.body["params"]["assignBackupContributor"] is True
    assert declared.body["params"]["assignAppRoles"] is False
    scope = function(declared.body["scope"])
    assert scope is not None and scope["type"] == "resource_group"


def test_the_app_roles_are_assigned_on_the_app_resource_group_only() -> None:
    declared = module(MAIN, "rbacApp")
    assert declared.body["params"]["assignAppRoles"] is True
    assert declared.body["params"]["assignBackupContributor"] is False
    assert declared.body["scope"] == "rg"
