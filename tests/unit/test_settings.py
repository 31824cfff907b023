"""The app's settings: defaults, clouds, the sandbox, storage, and errors that name the setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core import AzureClouds
from azure.mgmt.core.tools import get_arm_endpoints

from autopilot.settings import Settings, SettingsError, StorageSettings, get_settings

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-000000000001"
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def _error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    return str(caught.value)


# --- endpoints and clouds ------------------------------------------------------------------------


def test_defaults_are_azure_public_cloud() -> None:
    settings = Settings.from_env({})
    assert settings.arm_endpoint == "https://management.azure.com/"
    assert settings.arm_scope == "https://management.azure.com/.default"
    assert settings.cloud is AzureClouds.AZURE_PUBLIC_CLOUD
    assert settings.allowed_hosts == ("management.azure.com",)


def test_other_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.subscriptions == ()
    assert settings.rules_path is None
    assert settings.sweep_dry_run is False
    assert (settings.backup_retain_days, settings.backup_daily_cap) == (30, 4)
    assert (settings.audit_table, settings.state_table, settings.sweep_queue) == (
        "autopilotaudit",
        "autopilotstate",
        "autopilot-sweep",
    )
    assert settings.storage == StorageSettings()


@pytest.mark.parametrize(
    ("name", "cloud"),
    [
        ("AzureUSGovernment", AzureClouds.AZURE_US_GOVERNMENT),
        ("AzureChinaCloud", AzureClouds.AZURE_CHINA_CLOUD),
        ("azurecloud", AzureClouds.AZURE_PUBLIC_CLOUD),
        (" AzurePublicCloud ", AzureClouds.AZURE_PUBLIC_CLOUD),
    ],
)
def test_named_clouds_take_the_sdk_endpoints_and_scopes(name: str, cloud: AzureClouds) -> None:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": name})
    endpoints = get_arm_endpoints(cloud)
    assert settings.cloud is cloud
    assert settings.arm_endpoint == endpoints["resource_manager"]
    assert settings.arm_scope == endpoints["credential_scopes"][0]


def test_us_government_scope_is_not_derived_from_its_endpoint() -> None:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": "AzureUSGovernment"})
    assert settings.arm_endpoint == "https://management.usgovcloudapi.net/"
    assert settings.arm_scope == "https://management.core.usgovcloudapi.net/.default"
    assert settings.allowed_hosts == ("management.usgovcloudapi.net",)


def test_china_cloud_endpoint_and_scope() -> None:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": "AzureChinaCloud"})
    assert settings.arm_endpoint == "https://management.chinacloudapi.cn/"
    assert settings.arm_scope == "https://management.chinacloudapi.cn/.default"


def test_sandbox_url_keeps_the_public_cloud_audience() -> None:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": "https://127.0.0.1:8443"})
    assert settings.arm_endpoint == "https://127.0.0.1:8443"
    assert settings.cloud is None
    assert settings.arm_scope == "https://management.azure.com/.default"
    assert settings.allowed_hosts == ("127.0.0.1",)


def test_sandbox_url_with_its_own_audience() -> None:
    settings = Settings.from_env(
        {
            "AUTOPILOT_ARM_ENDPOINT": "https://127.0.0.1:8443",
            "AUTOPILOT_ARM_AUDIENCE": "https://armsim.local/",
        }
    )
    assert settings.arm_scope == "https://armsim.local/.default"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8443",
        "http://management.azure.com/",
        "127.0.0.1:8443",
        "AzureMoonCloud",
        "https://",
    ],
)
def test_endpoint_that_is_no_https_url_nor_cloud_is_refused(endpoint: str) -> None:
    message = _error({"AUTOPILOT_ARM_ENDPOINT": endpoint})
    assert "AUTOPILOT_ARM_ENDPOINT" in message
    assert "https://" in message
    assert "AzureCloud" in message or "azurecloud" in message


def test_allowed_hosts_include_the_events_and_logs_endpoints() -> None:
    settings = Settings.from_env(
        {
            "AUTOPILOT_ARM_ENDPOINT": "https://127.0.0.1:8443",
            "AUTOPILOT_EVENTS_ENDPOINT": "https://Topic-1.westeurope-1.eventgrid.azure.net/api/events",
            "AUTOPILOT_LOGS_ENDPOINT": "https://api.loganalytics.io/v1",
        }
    )
    assert settings.allowed_hosts == (
        "127.0.0.1",
        "api.loganalytics.io",
        "topic-1.westeurope-1.eventgrid.azure.net",
    )


def test_empty_events_endpoint_adds_no_host() -> None:
    settings = Settings.from_env({"AUTOPILOT_EVENTS_ENDPOINT": ""})
    assert settings.events_endpoint is None
    assert settings.allowed_hosts == ("management.azure.com",)


# --- subscriptions, booleans, numbers --------------------------------------------------------------


def test_subscriptions_are_a_comma_separated_list_in_lower_case() -> None:
    other = "ABCDEF01-2345-6789-ABCD-EF0123456789"
    settings = Settings.from_env({"AUTOPILOT_SUBSCRIPTIONS": f" {SUB} , {other},"})
    assert settings.subscriptions == (SUB, other.lower())


@pytest.mark.parametrize(
    "value",
    [
        "not-a-guid",
        "00000000-0000-0000-0000-00000000000",  # one digit short
        "00000000000000000000000000000001",
        "/subscriptions/00000000-0000-0000-0000-000000000001",
        f"{SUB};{SUB}",
    ],
)
def test_bad_subscription_id_is_refused_naming_the_setting(value: str) -> None:
    message = _error({"AUTOPILOT_SUBSCRIPTIONS": value})
    assert "AUTOPILOT_SUBSCRIPTIONS" in message
    assert "not a subscription id" in message


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("TRUE", True), ("1", True), ("no", False), ("off", False)]
)
def test_booleans(raw: str, value: bool) -> None:
    assert Settings.from_env({"AUTOPILOT_SWEEP_DRY_RUN": raw}).sweep_dry_run is value


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_bad_boolean_is_refused_naming_the_setting(raw: str) -> None:
    message = _error({"AUTOPILOT_SWEEP_DRY_RUN": raw})
    assert f"AUTOPILOT_SWEEP_DRY_RUN={raw!r} is not a boolean" in message


def test_numbers_are_read() -> None:
    settings = Settings.from_env({"AUTOPILOT_BACKUP_RETAIN_DAYS": "90", "AUTOPILOT_BACKUP_DAILY_CAP": "9"})
    assert (settings.backup_retain_days, settings.backup_daily_cap) == (90, 9)


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("AUTOPILOT_BACKUP_DAILY_CAP", "ten", "is not a whole number"),
        ("AUTOPILOT_BACKUP_DAILY_CAP", "10", "is out of range"),  # Azure allows 9 a day
        ("AUTOPILOT_BACKUP_DAILY_CAP", "0", "is out of range"),
        ("AUTOPILOT_BACKUP_RETAIN_DAYS", "1.5", "is not a whole number"),
        ("AUTOPILOT_RETRY_TOTAL", "-1", "is out of range"),
        ("AUTOPILOT_RETRY_BACKOFF_MAX", "", None),
    ],
)
def test_bad_number_is_refused_naming_the_setting(name: str, raw: str, fragment: str | None) -> None:
    if fragment is None:  # empty means the default
        assert Settings.from_env({name: raw}).retry_backoff_max == 60
        return
    message = _error({name: raw})
    assert name in message
    assert fragment in message
    assert "use a number from" in message


@pytest.mark.parametrize("value", ["backup-now", "=allowed", "  =x"])
def test_bad_scope_tag_is_refused(value: str) -> None:
    assert "AUTOPILOT_BACKUP_SCOPE_TAG" in _error({"AUTOPILOT_BACKUP_SCOPE_TAG": value})


def test_scope_tag_and_resource_groups() -> None:
    settings = Settings.from_env(
        {
            "AUTOPILOT_BACKUP_SCOPE_TAG": " backup-now = allowed ",
            "AUTOPILOT_BACKUP_SCOPE_RESOURCE_GROUPS": "RG-App, rg-db",
        }
    )
    assert settings.backup_scope_tag == ("backup-now", "allowed")
    assert settings.backup_scope_resource_groups == ("rg-app", "rg-db")


def test_hmac_secret_is_not_in_the_repr() -> None:
    settings = Settings.from_env({"AUTOPILOT_HMAC_SECRET": "s3cr3t-value"})
    assert settings.hmac_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


# --- storage -------------------------------------------------------------------------------------


def test_storage_connection_string() -> None:
    storage = Settings.from_env({"AzureWebJobsStorage": AZURITE}).storage
    assert storage == StorageSettings(connection_string=AZURITE)


def test_identity_based_storage_from_the_account_name() -> None:
    storage = Settings.from_env({"AzureWebJobsStorage__accountName": "stautopilot"}).storage
    assert storage.connection_string is None
    assert storage.blob_uri == "https://stautopilot.blob.core.windows.net"
    assert storage.queue_uri == "https://stautopilot.queue.core.windows.net"
    assert storage.table_uri == "https://stautopilot.table.core.windows.net"


def test_identity_based_storage_with_explicit_service_uris() -> None:
    storage = Settings.from_env(
        {
            "AzureWebJobsStorage__accountName": "stautopilot",
            "AzureWebJobsStorage__tableServiceUri": "https://stautopilot.table.core.usgovcloudapi.net",
        }
    ).storage
    assert storage.table_uri == "https://stautopilot.table.core.usgovcloudapi.net"
    assert storage.queue_uri == "https://stautopilot.queue.core.windows.net"


def test_connection_string_wins_over_the_account_name() -> None:
    storage = Settings.from_env(
        {"AzureWebJobsStorage": AZURITE, "AzureWebJobsStorage__accountName": "stautopilot"}
    ).storage
    assert storage.connection_string == AZURITE
    assert storage.table_uri is None


@pytest.mark.parametrize(
    "value", ["UseDevelopmentStorage=true", "usedevelopmentstorage=TRUE", " UseDevelopmentStorage=true "]
)
def test_use_development_storage_is_refused_with_guidance(value: str) -> None:
    message = _error({"AzureWebJobsStorage": value})
    assert "AzureWebJobsStorage" in message
    assert "Azurite's full connection string" in message


def test_empty_storage_setting_means_no_storage() -> None:
    assert Settings.from_env({"AzureWebJobsStorage": "  "}).storage == StorageSettings()


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.arm_endpoint = "https://elsewhere.example"  # type: ignore[misc]


# --- the template ----------------------------------------------------------------------------------


def test_local_settings_template_is_valid_settings() -> None:
    import json

    values = json.loads((ROOT / "local.settings.template.json").read_text(encoding="utf-8"))["Values"]
    settings = Settings.from_env(values)
    assert settings.cloud is AzureClouds.AZURE_PUBLIC_CLOUD
    assert settings.rules_path == "rules/example.yaml"


# --- lazy, once per process ----------------------------------------------------------------------


def test_importing_the_settings_module_reads_no_environment() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        import azure.core, azure.mgmt.core.tools  # the module's dependencies, imported first
        read = []
        original = os._Environ.__getitem__
        def spy(self, key):
            read.append(key)
            return original(self, key)
        os._Environ.__getitem__ = spy
        import autopilot.settings
        os._Environ.__getitem__ = original
        assert autopilot.settings.get_settings.cache_info().currsize == 0
        print(sorted(set(read)))
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AUTOPILOT_ARM_ENDPOINT": "http://refused",
        "AUTOPILOT_SUBSCRIPTIONS": "bad",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings_cache")
def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPILOT_ARM_ENDPOINT", "https://127.0.0.1:8443")
    monkeypatch.setenv("AUTOPILOT_SUBSCRIPTIONS", SUB)
    first = get_settings()
    monkeypatch.setenv("AUTOPILOT_ARM_ENDPOINT", "AzureChinaCloud")
    second = get_settings()
    assert second is first
    assert second.arm_endpoint == "https://127.0.0.1:8443"
    assert second.subscriptions == (SUB,)


@pytest.mark.usefixtures("fresh_settings_cache")
def test_get_settings_error_names_the_setting_and_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPILOT_ARM_ENDPOINT", "http://127.0.0.1:8443")
    with pytest.raises(SettingsError, match="AUTOPILOT_ARM_ENDPOINT"):
        get_settings()
    monkeypatch.setenv("AUTOPILOT_ARM_ENDPOINT", "https://127.0.0.1:8443")
    assert get_settings().arm_endpoint == "https://127.0.0.1:8443"
