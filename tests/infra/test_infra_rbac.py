"""Least privilege: which roles the app's identity gets, where, and why.

On the subscriptions in scope the identity holds one custom role, Backup Autopilot VM protection
(infra/rbac-subscription.bicep), with exactly the actions the app's calls need (docs/DEPLOY.md has
the table); on each restore drills' staging resource group and its storage account, one custom role
each (infra/rbac-drills.bicep), defined in and assignable only in that group; built-in roles
elsewhere, each on the narrowest scope. No broad built-in role anywhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.infra.infra_support import (
    INFRA,
    ROLE_ASSIGNMENT,
    ROOT,
    Declared,
    function,
    guids,
    lines,
    module,
    parse,
    resources,
    variable,
)

RBAC = INFRA / "rbac.bicep"
RBAC_SUBSCRIPTION = INFRA / "rbac-subscription.bicep"
RBAC_DRILLS = INFRA / "rbac-drills.bicep"
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
}
CUSTOM_ROLE = "Backup Autopilot VM protection"
DRILL_GROUP_ROLE = "Backup Autopilot drill staging group"
DRILL_ACCOUNT_ROLE = "Backup Autopilot drill staging account"
# The custom roles: (file, symbol of the definition) -> name.
CUSTOM_ROLES = {
    (RBAC_SUBSCRIPTION, "vmProtectionRole"): CUSTOM_ROLE,
    (RBAC_DRILLS, "stagingGroupRole"): DRILL_GROUP_ROLE,
    (RBAC_DRILLS, "stagingAccountRole"): DRILL_ACCOUNT_ROLE,
}

# Broad built-in roles: none may be assigned, nor named in infra/.
FORBIDDEN = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "b24988ac-6180-42ce-ab88-20d7014aab7c": "Contributor (as the issue's brief spells it)",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
}

# The custom role's actions, exactly: each is a call of autopilot/azure/gateway.py on the VM side.
VM_PROTECTION_ACTIONS = [
    "Microsoft.Compute/virtualMachines/read",  # get_vm (with instanceView), list_vms (statusOnly)
    "Microsoft.Compute/virtualMachines/write",  # Azure Backup's check on protectedItems PUT
    "Microsoft.Compute/disks/read",  # shared_disk_luns, shared_disks
    "Microsoft.RecoveryServices/locations/backupStatus/action",  # backup_status
    "Microsoft.ResourceGraph/resources/read",  # the sweep's Resource Graph queries (resources)
    # the posture check's resource_guard_proxies.get (autopilot/posture/vaults.py): not in Backup Contributor
    "Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read",
    # restore drills: the status URL disks.begin_delete polls (subscription-scoped, so the staging
    # group's role does not cover it)
    "Microsoft.Compute/locations/diskOperations/read",
    # boot drills: the Azure-AsyncOperation URLs (subscription-scoped) that virtual_machines.begin_delete
    # and virtual_networks/network_interfaces begin_create_or_update and begin_delete poll
    "Microsoft.Compute/locations/operations/read",
    "Microsoft.Network/locations/operations/read",
]

# Restore drills (autopilot/drills/azure.py), on the staging resource group: Azure Backup's check on
# the target group of a managed-disk restore (Restores_Trigger), and delete_disk.
DRILL_GROUP_ACTIONS = [
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.Compute/disks/delete",
    # ... and the boot step (autopilot/drills/boot.py) in the staging group: ARM's linked access check
    # of the VM's PUT on each disk it attaches, delete_vm, boot_state's instance view
    "Microsoft.Compute/disks/write",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Compute/virtualMachines/instanceView/read",
    # make_network's VNet (PUT, its poller's final GET), clean_up's delete; the NIC's PUT joins its subnet
    "Microsoft.Network/virtualNetworks/write",
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/virtualNetworks/delete",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    # make_network's NIC (PUT, its poller's final GET), clean_up's delete; the VM's PUT joins the NIC
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/networkInterfaces/delete",
    "Microsoft.Network/networkInterfaces/join/action",
]
# ... and on the staging storage account: Azure Backup's check on the staging account
# (Restores_Trigger), delete_container (Delete Container), blob_exists (Get Blob Properties).
DRILL_ACCOUNT_ACTIONS = [
    "Microsoft.Storage/storageAccounts/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
]
DRILL_ACCOUNT_DATA_ACTIONS = ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]

# The boot step's SDK calls (autopilot/drills/boot.py) and the ARM requests each one sends with the
# installed azure-mgmt-compute / azure-mgmt-network and azure-core's ARMPolling, with the action each
# request needs and the role that holds it ("group": the staging group role, on the staging group;
# "subscription": Backup Autopilot VM protection). A PUT's poller reads the Azure-AsyncOperation URL
# and then GETs the resource; a DELETE's poller reads the Azure-AsyncOperation URL only (no final GET,
# and never the Location URL, locations/operationResults, when Azure-AsyncOperation is given); the
# VM's PUT is sent with polling=False. Linked: ARM's linked access check on a resource the body names.
BOOT_CALLS = {
    ("virtual_networks", "begin_create_or_update"): {
        "Microsoft.Network/virtualNetworks/write": "group",
        "Microsoft.Network/locations/operations/read": "subscription",
        "Microsoft.Network/virtualNetworks/read": "group",
    },
    ("network_interfaces", "begin_create_or_update"): {
        "Microsoft.Network/networkInterfaces/write": "group",
        "Microsoft.Network/virtualNetworks/subnets/join/action": "group",  # linked: the subnet
        "Microsoft.Network/locations/operations/read": "subscription",
        "Microsoft.Network/networkInterfaces/read": "group",
    },
    ("disks", "get"): {"Microsoft.Compute/disks/read": "subscription"},  # the restored OS disk's osType
    ("virtual_machines", "get"): {"Microsoft.Compute/virtualMachines/read": "subscription"},  # source size
    ("virtual_machines", "begin_create_or_update"): {
        "Microsoft.Compute/virtualMachines/write": "subscription",
        "Microsoft.Network/networkInterfaces/join/action": "group",  # linked: the NIC
        "Microsoft.Compute/disks/write": "group",  # linked: each attached disk
    },
    ("virtual_machines", "instance_view"): {"Microsoft.Compute/virtualMachines/instanceView/read": "group"},
    ("virtual_machines", "begin_delete"): {
        "Microsoft.Compute/virtualMachines/delete": "group",
        "Microsoft.Compute/locations/operations/read": "subscription",
    },
    ("network_interfaces", "begin_delete"): {
        "Microsoft.Network/networkInterfaces/delete": "group",
        "Microsoft.Network/locations/operations/read": "subscription",
    },
    ("virtual_networks", "begin_delete"): {
        "Microsoft.Network/virtualNetworks/delete": "group",
        "Microsoft.Network/locations/operations/read": "subscription",
    },
}
BOOT = ROOT / "autopilot" / "drills" / "boot.py"

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
    CUSTOM_ROLE: (RBAC_SUBSCRIPTION, None),
    DRILL_GROUP_ROLE: (RBAC_DRILLS, None),
    DRILL_ACCOUNT_ROLE: (RBAC_DRILLS, "stagingAccount"),
}
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"


def assignments() -> list[Declared]:
    return [declared for declared in resources() if declared.type == ROLE_ASSIGNMENT]


def custom_role(path: Path = RBAC_SUBSCRIPTION, symbol: str = "vmProtectionRole") -> Declared:
    (declared,) = [d for d in resources(path) if d.type == ROLE_DEFINITION and d.symbol == symbol]
    return declared


def custom_name(declared: Declared) -> str | None:
    """The custom role an assignment assigns (roleDefinitionId: <definition>.id in its file), if any."""
    value = declared.body["properties"]["roleDefinitionId"]
    operator = value.get("operator") if isinstance(value, dict) else None
    for (path, symbol), name in CUSTOM_ROLES.items():
        if path == declared.path and operator == {
            "type": "property_accessor",
            "operands": {"operand_1": symbol, "operand_2": "id"},
        }:
            return name
    return None


def is_custom(declared: Declared) -> bool:
    return custom_name(declared) is not None


def role_name(declared: Declared) -> str:
    return custom_name(declared) or ROLES.get(role_guid(declared), role_guid(declared))


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
    assert {declared.path for declared in found} == {RBAC, RBAC_SUBSCRIPTION, RBAC_DRILLS}
    definitions = [d for d in resources() if d.type == ROLE_DEFINITION]
    assert sorted((d.path, d.symbol) for d in definitions) == sorted(CUSTOM_ROLES)


def test_no_broad_built_in_role_anywhere() -> None:
    """Owner, Contributor, User Access Administrator, Virtual Machine Contributor, Reader: not
    assigned, not named by GUID or by name in infra/ (comments may explain why not)."""
    for declared in assignments():
        if not is_custom(declared):
            assert role_guid(declared) not in FORBIDDEN, (
                f"{declared.symbol} assigns {FORBIDDEN[role_guid(declared)]}"
            )
    for path in sorted(INFRA.rglob("*")):
        if path.is_file() and path.suffix in (".bicep", ".json", ".sh"):
            text = path.read_text(encoding="utf-8")
            for guid in guids(text):
                assert guid not in FORBIDDEN, f"{path.relative_to(INFRA)} names {FORBIDDEN[guid]} ({guid})"
            for name in FORBIDDEN.values():
                assert f"'{name}'" not in text, f"{path.relative_to(INFRA)} names the role '{name}'"


def test_the_roles_are_exactly_the_reviewed_ones_on_their_scopes() -> None:
    seen: dict[str, tuple[object, object]] = {}
    for declared in assignments():
        role = role_name(declared)
        assert role in EXPECTED_SCOPES, f"{declared.symbol}: role {role} is not one of the reviewed roles"
        assert role not in seen, f"{role} is assigned twice"
        scope = declared.body.get("scope")
        seen[role] = (declared.path, scope)
    assert seen == EXPECTED_SCOPES


def test_the_custom_role_holds_exactly_the_actions_the_app_calls() -> None:
    declared = custom_role()
    properties = declared.body["properties"]
    assert variable(RBAC_SUBSCRIPTION, "vmProtectionActions") == VM_PROTECTION_ACTIONS
    (permission,) = properties["permissions"]
    assert permission == {
        "actions": "vmProtectionActions",
        "notActions": [],
        "dataActions": [],
        "notDataActions": [],
    }
    assert properties["type"] == "CustomRole"
    assert str(properties["roleName"]).startswith(f"{CUSTOM_ROLE} (")  # plus the subscription id
    # Assignable in its own subscription only; its GUID is fixed per subscription.
    this_subscription = {
        "function": {"type": "subscription", "parameters": {"subscription_id": None}, "property_name": "id"}
    }
    assert properties["assignableScopes"] == [this_subscription]
    name = function(declared.body["name"])
    assert name is not None and name["type"] == "guid"
    # No wildcard, no delete, no extension, run command, key listing or role writes.
    for action in VM_PROTECTION_ACTIONS:
        assert "*" not in action
        assert not re.search(r"delete|extensions|runCommand|listKeys|Microsoft\.Authorization", action, re.I)


def test_the_actions_are_documented_call_by_call() -> None:
    """docs/DEPLOY.md has a table of each call and the action it needs; the Bicep says why each is there."""
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    source = RBAC_SUBSCRIPTION.read_text(encoding="utf-8")
    for action in VM_PROTECTION_ACTIONS:
        assert re.search(rf"^\|[^\n]*`{re.escape(action)}`", deploy, re.M), (
            f"DEPLOY.md: no table row for {action}"
        )
        assert f"// - {action}:" in source, f"rbac-subscription.bicep does not say why {action} is needed"
    for call in (
        "virtual_machines.get",
        "list_all",
        "disks.get",
        "disks.list",
        "backup_status.get",
        "protected_items",
        "ResourceGraphClient.resources",
        "resource_guard_proxies.get",
    ):
        assert call in deploy, f"DEPLOY.md does not name the call {call}"


@pytest.mark.parametrize("declared", assignments(), ids=lambda d: f"{d.path.name}:{d.symbol}")
def test_each_assignment_is_named_by_guid_and_justified(declared: Declared) -> None:
    role = role_name(declared)
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
    if is_custom(declared):
        return
    guid = role_guid(declared)
    written = [line for line in lines(declared.path) if guid in line.lower()]
    assert written and all(line.rstrip().endswith(f"// {role}") for line in written), (
        f"{guid} must be commented with '// {role}'"
    )


def test_the_custom_role_assignment_names_every_action() -> None:
    (declared,) = [d for d in assignments() if custom_name(d) == CUSTOM_ROLE]
    comment = declared.comment_above()
    for action in VM_PROTECTION_ACTIONS:
        assert action in comment, f"the comment above {declared.symbol} must name {action}"


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


@pytest.mark.parametrize(
    ("symbol", "variables", "actions", "data_actions"),
    [
        ("stagingGroupRole", ("stagingGroupActions", None), DRILL_GROUP_ACTIONS, []),
        (
            "stagingAccountRole",
            ("stagingAccountActions", "stagingAccountDataActions"),
            DRILL_ACCOUNT_ACTIONS,
            DRILL_ACCOUNT_DATA_ACTIONS,
        ),
    ],
)
def test_the_drill_roles_hold_exactly_the_actions_the_drills_need(
    symbol: str, variables: tuple[str, str | None], actions: list[str], data_actions: list[str]
) -> None:
    """Restore drills: no Contributor on the staging group, no Storage Account Contributor (listKeys)
    or Storage Blob Data Contributor (blob writes) on the staging account; each custom role defined in
    the staging group and assignable there only."""
    declared = custom_role(RBAC_DRILLS, symbol)
    properties = declared.body["properties"]
    actions_variable, data_variable = variables
    assert variable(RBAC_DRILLS, actions_variable) == actions
    if data_variable:
        assert variable(RBAC_DRILLS, data_variable) == data_actions
    (permission,) = properties["permissions"]
    assert permission == {
        "actions": actions_variable,
        "notActions": [],
        "dataActions": data_variable or [],
        "notDataActions": [],
    }
    assert properties["type"] == "CustomRole"
    this_group = {
        "function": {
            "type": "resource_group",
            "parameters": {"resource_group_name": None, "subscription_id": None},
            "property_name": "id",
        }
    }
    assert properties["assignableScopes"] == [this_group]
    name = function(declared.body["name"])
    assert name is not None and name["type"] == "guid"
    for action in actions + data_actions:
        assert "*" not in action
        assert not re.search(r"listKeys|Microsoft\.Authorization|blobs/write|blobs/delete", action, re.I)
    source = RBAC_DRILLS.read_text(encoding="utf-8")
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    for action in actions + data_actions:
        assert f"// - {action}" in source, f"rbac-drills.bicep does not say why {action} is needed"
        assert re.search(rf"^\|[^\n]*`{re.escape(action)}`", deploy, re.M), f"DEPLOY.md: no row for {action}"


def test_the_drill_roles_go_to_every_staging_group_of_the_rules() -> None:
    declared = module(VAULTS_MAIN, "rbacDrills")
    assert declared.declaration["detail"]["path"] == "rbac-drills.bicep"
    assert declared.declaration["config"]["loop_type"]["detail"]["array_name"] == "stagingPlaces"
    scope = function(declared.body["scope"])
    assert scope is not None and scope["type"] == "resource_group"
    assert declared.body["params"]["principalId"] == "principalId"
    # The account assignment is on the staging storage account, never on the group or wider.
    (account,) = [d for d in assignments() if custom_name(d) == DRILL_ACCOUNT_ROLE]
    assert account.body["scope"] == "stagingAccount"
    (group,) = [d for d in assignments() if custom_name(d) == DRILL_GROUP_ROLE]
    assert "scope" not in group.body
    text = RBAC_DRILLS.read_text(encoding="utf-8")
    assert "targetScope" not in text  # a resource group file: it cannot reach the subscription


def _sdk_calls(path: Path) -> set[tuple[str, str]]:
    """(operations group, method) of every `<x>.<group>.<method>(...)` call on an ARM client's group."""
    groups = {group for group, _ in BOOT_CALLS}
    return {
        (node.func.value.attr, node.func.attr)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr in groups
    }


def test_the_boot_steps_calls_are_the_reviewed_ones() -> None:
    """A new ARM call in the boot step needs its actions reviewed here (BOOT_CALLS) before it ships."""
    assert _sdk_calls(BOOT) == set(BOOT_CALLS)


def test_every_action_of_the_boot_step_is_held_on_its_scope_and_documented() -> None:
    """Each request of the boot step is covered: the staging group's writes, deletes, joins and reads by
    the staging group role (on the group only), the subscription-scoped status URLs and what the
    subscription role grants anyway (the VM PUT, disk and VM reads) by Backup Autopilot VM protection.
    Nothing the boot step needs is granted twice, and DEPLOY.md's drills table has a row for each."""
    held = {"group": set(DRILL_GROUP_ACTIONS), "subscription": set(VM_PROTECTION_ACTIONS)}
    needed: dict[str, set[str]] = {"group": set(), "subscription": set()}
    for call, actions in BOOT_CALLS.items():
        for action, role in actions.items():
            assert action in held[role], f"{call}: {action} is not in the {role} role"
            needed[role].add(action)
    assert not set(DRILL_GROUP_ACTIONS) & set(VM_PROTECTION_ACTIONS), "an action granted in both roles"
    # The group role is the restore's two actions plus exactly what the boot step needs there.
    assert set(DRILL_GROUP_ACTIONS) == needed["group"] | {
        "Microsoft.Resources/subscriptions/resourceGroups/write",
        "Microsoft.Compute/disks/delete",
    }
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    section = deploy.split("### Restore drills", 1)[1].split("\n## ", 1)[0]
    for (group, method), actions in BOOT_CALLS.items():
        rows = [row for row in section.splitlines() if row.startswith("|") and f"{group}.{method}" in row]
        assert rows, f"DEPLOY.md's drills table has no row for {group}.{method}"
        for action in actions:
            assert any(f"`{action}`" in row for row in rows), f"DEPLOY.md: {group}.{method} needs {action}"
