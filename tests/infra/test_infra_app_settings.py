"""The app settings Bicep gives the app name the same keys as local.settings.template.json."""

from __future__ import annotations

import json
import re

from tests.infra.infra_support import INFRA, ROOT, function, module, parameter, resource, variable

MAIN = INFRA / "main.bicep"
TEMPLATE = ROOT / "local.settings.template.json"

# Keys of the local template that only make sense locally (the sandbox, devhost, Core Tools).
LOCAL_ONLY = {
    "FUNCTIONS_WORKER_RUNTIME",  # Flex Consumption takes the runtime from functionAppConfig, not a setting
    "REQUESTS_CA_BUNDLE",  # the sandbox's CA certificate
    "IDENTITY_ENDPOINT",  # the sandbox's managed identity endpoint; Azure sets it itself
    "IDENTITY_HEADER",
}
LOCAL_ONLY_PREFIXES = ("DEVHOST_",)  # the local Functions host stand-in

# Locally a connection string (Azurite); in Azure the identity-based connection below.
LOCAL_CONNECTION = "AzureWebJobsStorage"
IDENTITY_CONNECTION = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
}

# Keys only Azure needs: the identity DefaultAzureCredential picks, and telemetry.
AZURE_ONLY = IDENTITY_CONNECTION | {
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}


def template_keys() -> set[str]:
    return set(json.loads(TEMPLATE.read_text(encoding="utf-8"))["Values"])


def bicep_settings() -> dict[str, object]:
    settings = variable(MAIN, "appSettings")
    assert isinstance(settings, dict)
    return settings


def is_local_only(key: str) -> bool:
    return key in LOCAL_ONLY or key.startswith(LOCAL_ONLY_PREFIXES)


def test_bicep_and_the_local_template_name_the_same_settings() -> None:
    local = {key for key in template_keys() if not is_local_only(key)} - {LOCAL_CONNECTION}
    azure = set(bicep_settings()) - AZURE_ONLY
    assert sorted(azure - local) == [], "in Bicep but not in local.settings.template.json"
    assert sorted(local - azure) == [], "in local.settings.template.json but not in Bicep (infra/main.bicep)"


def test_the_exception_lists_are_not_stale() -> None:
    keys = template_keys()
    assert keys >= LOCAL_ONLY
    assert LOCAL_CONNECTION in keys
    assert set(bicep_settings()) >= AZURE_ONLY
    assert not any(is_local_only(key) for key in bicep_settings())
    assert LOCAL_CONNECTION not in bicep_settings(), "no connection string in Azure: identity-based only"


def test_storage_connection_is_identity_based() -> None:
    settings = bicep_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for key in ("AzureWebJobsStorage__clientId", "AZURE_CLIENT_ID"):
        assert "identity" in json.dumps(settings[key]) and "clientId" in json.dumps(settings[key])
    assert "Authorization=AAD" in str(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])


def test_telemetry_is_configured_once_by_the_app() -> None:
    # autopilot/kernel/telemetry.py configures the Azure Monitor distro when the connection string is set;
    # the worker's own switch would configure it a second time (every span and log twice).
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in bicep_settings()
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in bicep_settings()
    assert "PYTHON_ENABLE_OPENTELEMETRY" not in bicep_settings()


def test_the_hmac_secret_is_a_key_vault_reference() -> None:
    value = json.dumps(bicep_settings()["AUTOPILOT_HMAC_SECRET"])
    assert "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.hmacSecretUri})" in value
    keyvault = resource(INFRA / "modules" / "keyvault.bicep", "vault").body["properties"]
    assert keyvault["enableRbacAuthorization"] is True
    assert keyvault["enableSoftDelete"] is True
    assert keyvault["enablePurgeProtection"] is True
    app = resource(INFRA / "modules" / "function-app.bicep", "app").body["properties"]
    assert app["keyVaultReferenceIdentity"] == "identityId", (
        "references resolve with the user-assigned identity"
    )


def test_schedules_and_names_come_from_settings_with_the_template_defaults() -> None:
    settings = bicep_settings()
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))["Values"]
    for key, param in {
        "SWEEP_SCHEDULE": "sweepSchedule",
        "PRUNE_SCHEDULE": "pruneSchedule",
        "SWEEP_QUEUE": "sweepQueueName",
        "AUTOPILOT_AUDIT_TABLE": "auditTableName",
        "AUTOPILOT_STATE_TABLE": "stateTableName",
        "AUTOPILOT_REPORTS_CONTAINER": "reportsContainerName",
    }.items():
        assert settings[key] == param
        assert parameter(MAIN, param)["default"] == template[key], key
    assert settings["BACKUP_FOLLOWUP_SCHEDULE"] == "backupFollowupSchedule"


# Settings whose Azure default differs from the local one on purpose.
AZURE_DEFAULTS = {
    "BACKUP_FOLLOWUP_SCHEDULE": "0 */5 * * * *",  # every 5 minutes: each run is a billed execution
    "AUTOPILOT_LOGS_ENDPOINT": "https://api.loganalytics.io/v1",  # a workspace exists in Azure
    # A real VM's agent takes a minute or more to report after creation; the sandbox's takes seconds.
    "AUTOPILOT_AGENT_RECHECK_SECONDS": "60",
    # A real restore takes minutes; the sandbox's seconds.
    "AUTOPILOT_DRILL_POLL_SECONDS": "30",
}


def test_parameter_defaults_are_the_template_values() -> None:
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))["Values"]
    checked = 0
    for key, value in bicep_settings().items():
        if not isinstance(value, str) or key not in template:
            continue
        try:
            declared = parameter(MAIN, value)
        except AssertionError:
            continue  # a literal, not a parameter
        expected = AZURE_DEFAULTS.get(key, template[key])
        assert declared.get("default") == expected, (
            f"{key}: parameter {value} defaults to {declared.get('default')!r}"
        )
        checked += 1
    assert checked >= 15


def test_the_queues_tables_and_containers_the_settings_name_are_created() -> None:
    params = module(MAIN, "storage").body["params"]
    # Every queue a trigger reads (the host does not create a trigger's queue; the app's own
    # QueueClient.send_message needs it too), each with its poison queue.
    settings = bicep_settings()
    for key in ("SWEEP_QUEUE", "FIRST_BACKUP_QUEUE", "DRILL_QUEUE"):
        name = settings[key]
        assert name in params["queues"], f"{key}: queue {name} is not created"
        assert any(f"${{{name}}}-poison" in json.dumps(queue) for queue in params["queues"]), key
    assert set(params["tables"]) == {"auditTableName", "stateTableName"}
    assert {"reportsContainerName", "deploymentContainerName", "deadLetterContainerName"} <= set(
        params["containers"]
    )


def test_the_rules_setting_is_the_file_the_vaults_came_from() -> None:
    assert json.dumps(bicep_settings()["AUTOPILOT_RULES"]) == json.dumps(
        {"operator": {"type": "property_accessor", "operands": {"operand_1": "rules", "operand_2": "source"}}}
    )
    called = function(variable(MAIN, "rules"))
    assert called is not None and called["type"] == "load_json_content"


def test_every_setting_and_connection_the_triggers_name_is_set_in_azure() -> None:
    settings = set(bicep_settings())
    sources = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "handlers").glob("*.py")))
    named = set(re.findall(r"%([A-Za-z0-9_]+)%", sources))
    assert named, "no %SETTING% found in handlers/"
    assert sorted(named - settings) == []
    for connection in set(re.findall(r'connection="([A-Za-z0-9_]+)"', sources)):
        assert any(key.startswith(f"{connection}__") for key in settings), connection
