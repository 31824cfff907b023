"""infra/: every Bicep file parses; azd conventions; hardened defaults checkov does not check in Bicep."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.infra.infra_support import (
    INFRA,
    ROOT,
    bicep_files,
    function,
    modules,
    parameter,
    parse,
    resource,
    resources,
    variable,
)

MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_every_module_and_loaded_file_exists() -> None:
    for path in bicep_files():
        for declared in modules(path):
            target = path.parent / declared.declaration["detail"]["path"]
            assert target.is_file(), f"{path.name}: module {declared.symbol} -> {target} is missing"
        for loaded in re.findall(r"load(?:Json|Text)Content\('([^']+)'\)", path.read_text(encoding="utf-8")):
            assert (path.parent / loaded).is_file(), f"{path.name} loads {loaded}, which is missing"


def test_azure_yaml() -> None:
    azure = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert azure["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert azure["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    for hook, script in (("preprovision", "infra/scripts/preprovision.sh"), ("postup", "scripts/post-up.sh")):
        assert azure["hooks"][hook]["posix"]["run"] == f"./{script}"
        assert os.access(ROOT / script, os.X_OK), f"{script} must be executable"


def test_main_is_subscription_scoped_and_creates_its_resource_group() -> None:
    parsed = parse(MAIN)
    assert parsed["globals"]["scope"]["value"] == "subscription"
    group = resource(MAIN, "rg")
    assert group.type == "Microsoft.Resources/resourceGroups"
    text = MAIN.read_text(encoding="utf-8")
    assert "var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))" in text
    tags = {key.strip("'"): value for key, value in variable(MAIN, "tags").items()}
    assert tags == {"azd-env-name": "environmentName"}
    for declared in modules(MAIN):
        assert "tags" in json.dumps(declared.body.get("params", {})) or declared.symbol.startswith("rbac")


def test_outputs_are_upper_snake_case() -> None:
    outputs = parse(MAIN)["outputs"]
    assert {"AZURE_LOCATION", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME"} <= set(outputs)
    for name in outputs:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", name), name


def test_names_come_from_the_abbreviations() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    used = set(re.findall(r"abbrs\.(\w+)", MAIN.read_text(encoding="utf-8")))
    assert used, "main.bicep names nothing from abbreviations.json"
    assert used <= set(abbreviations), f"unknown abbreviations: {used - set(abbreviations)}"


def test_the_parameters_file_feeds_main() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert parameters["environmentName"] == {"value": "${AZURE_ENV_NAME}"}
    assert parameters["location"] == {"value": "${AZURE_LOCATION}"}
    declared = parse(MAIN)["parameters"]
    assert set(parameters) <= set(declared)
    required = {name for name, value in declared.items() if "default" not in value}
    assert required <= set(parameters)


def test_storage_is_hardened() -> None:
    account = resource(MODULES / "storage.bicep", "account").body["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False  # checkov does not flag this one in Bicep
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    containers = resource(MODULES / "storage.bicep", "blobContainers").body
    assert containers["properties"]["publicAccess"] == "None"


def test_no_shared_keys_or_connection_strings_anywhere() -> None:
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        for forbidden in ("listKeys(", "AccountKey=", "SharedAccessSignature", "InstrumentationKey="):
            assert forbidden not in text, f"{path.name} uses {forbidden}"


def test_the_function_app_runs_on_flex_consumption_with_its_identity() -> None:
    plan = resource(MODULES / "function-app.bicep", "plan").body
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    app = resource(MODULES / "function-app.bicep", "app").body
    assert app["identity"]["type"] == "UserAssigned"
    properties = app["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    # No ftpsState: Flex Consumption has no FTP endpoint to disable, and ARM rejects the property on
    # Flex sites (BadRequest 51021); the Bicep says so where it would be, and checkov's FTP check is
    # skipped with that reason.
    assert "ftpsState" not in properties["siteConfig"]
    source = (MODULES / "function-app.bicep").read_text(encoding="utf-8")
    assert "No ftpsState" in source and "51021" in source
    assert "checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP endpoint" in source
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert app["tags"]["function"]["type"] == "union" and "azd-service-name" in json.dumps(app["tags"])


def test_monitoring_accepts_entra_id_only() -> None:
    components = resource(MODULES / "monitoring.bicep", "appInsights").body["properties"]
    assert components["DisableLocalAuth"] is True
    assert components["WorkspaceResourceId"] != ""
    workspace = resource(MODULES / "monitoring.bicep", "workspace").body["properties"]
    assert workspace["features"]["disableLocalAuth"] is True


def test_every_api_version_is_pinned_and_no_registry_module_is_used() -> None:
    for declared in resources():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", declared.declaration["api_version"]), (
            declared.symbol
        )
    for path in bicep_files():
        for declared in modules(path):
            assert not declared.declaration["detail"]["path"].startswith("br"), "plain resources only"


def test_the_failure_alert_watches_every_function() -> None:
    alert = resource(MODULES / "alerts.bicep", "functionFailures").body
    assert alert["kind"] == "LogAlert"
    (criterion,) = alert["properties"]["criteria"]["allOf"]
    assert criterion["query"].startswith("requests | where success == false")
    assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
    assert alert["properties"]["scopes"] == ["appInsightsId"]
    dead_letters = resource(MODULES / "alerts.bicep", "deadLetters").body
    assert dead_letters["properties"]["criteria"]["allOf"][0]["metricName"] == "DeadLetteredCount"


def workbook() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((MODULES / "workbook.json").read_text(encoding="utf-8"))
    return loaded


def test_the_workbook_covers_compliance_jobs_and_findings() -> None:
    document = workbook()
    assert document["version"] == "Notebook/1.0"
    items = {item["name"]: item for item in document["items"]}  # type: ignore[attr-defined]
    queries = {name: item["content"]["query"] for name, item in items.items() if item["type"] == 3}
    assert {"compliance-now", "compliance-trend", "jobs-list", "jobs-by-code", "findings-by-type"} <= set(
        queries
    )
    assert "AddonAzureBackupJobs" in queries["jobs-list"]
    assert '"Failed", "CompletedWithWarnings"' in queries["jobs-list"]
    assert "event_type" in queries["findings-by-type"]
    assert items["compliance-trend"]["content"]["visualization"] == "timechart"
    for name, item in items.items():
        if item["type"] == 3:
            assert item["content"]["crossComponentResources"] == ["__WORKSPACE_ID__"], name
            assert item["content"]["timeContextFromParameter"] == "TimeRange", name


def test_the_workbook_is_bound_to_the_workspace() -> None:
    book = resource(MODULES / "workbook.bicep", "workbook").body
    data = function(book["properties"]["serializedData"])
    assert data is not None and data["type"] == "replace"
    assert data["parameters"]["old_string"] == "__WORKSPACE_ID__"
    assert book["properties"]["sourceId"] == "workspaceId"
    assert parameter(MODULES / "workbook.bicep", "workspaceId")["type"] == "string"
