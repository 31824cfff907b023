"""The one client factory: endpoint and token scope from the settings, caching, and the host guard.

No network: the ARM endpoint is 127.0.0.1 on a closed port, and "another host" is 127.0.0.2 (also
loopback, also closed), so a request the guard failed to stop ends as "connection refused".
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ServiceRequestError
from azure.core.rest import HttpRequest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.recoveryservices import RecoveryServicesClient
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

from autopilot.azure.clients import Clients, OutboundHostError
from autopilot.azure.failures import is_transient
from autopilot.settings import Settings, SettingsError

SUB = "00000000-0000-0000-0000-000000000001"
SUB2 = "00000000-0000-0000-0000-000000000002"
AUDIENCE = "https://armsim.test/"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _closed_port()


class FakeCredential:
    """Hands out a token and remembers which scopes were asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        self.scopes.append(scopes)
        return AccessTokenInfo("fake-token", int(time.time()) + 3600)


def _settings(**extra: str) -> Settings:
    env = {
        "AUTOPILOT_ARM_ENDPOINT": f"https://127.0.0.1:{PORT}",
        "AUTOPILOT_ARM_AUDIENCE": AUDIENCE,
        "AUTOPILOT_RETRY_TOTAL": "0",
        **extra,
    }
    return Settings.from_env(env)


BUILDERS: dict[str, Callable[[Clients, str], Any]] = {
    "compute": lambda clients, sub: clients.compute(sub),
    "backup": lambda clients, sub: clients.backup(sub),
    "vaults": lambda clients, sub: clients.vaults(sub),
}
TYPES = {
    "compute": ComputeManagementClient,
    "backup": RecoveryServicesBackupClient,
    "vaults": RecoveryServicesClient,
}


# --- built from the settings ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_arm_clients_use_the_settings_endpoint_and_scope(kind: str) -> None:
    client = BUILDERS[kind](Clients(_settings(), FakeCredential()), SUB)
    assert isinstance(client, TYPES[kind])
    assert client._config.base_url == f"https://127.0.0.1:{PORT}"
    assert client._config.credential_scopes == [f"{AUDIENCE}.default"]
    assert client._config.subscription_id == SUB


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_arm_clients_use_the_named_cloud(kind: str) -> None:
    settings = Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": "AzureUSGovernment"})
    client = BUILDERS[kind](Clients(settings, FakeCredential()), SUB)
    assert client._config.base_url == "https://management.usgovcloudapi.net/"
    assert client._config.credential_scopes == ["https://management.core.usgovcloudapi.net/.default"]


def test_retry_settings_reach_the_client() -> None:
    client = Clients(
        _settings(AUTOPILOT_RETRY_TOTAL="3", AUTOPILOT_RETRY_BACKOFF_MAX="7"), FakeCredential()
    ).compute(SUB)
    retry = client._config.retry_policy
    assert (retry.total_retries, retry.backoff_max) == (3, 7)


def test_token_is_asked_for_the_configured_scope() -> None:
    credential = FakeCredential()
    client = Clients(_settings(), credential).compute(SUB)
    with pytest.raises(ServiceRequestError):
        client._client.send_request(
            HttpRequest("GET", f"https://127.0.0.1:{PORT}/subscriptions?api-version=2022-12-01")
        )
    assert credential.scopes == [(f"{AUDIENCE}.default",)]


# --- caching -------------------------------------------------------------------------------------


def test_clients_are_cached_per_subscription() -> None:
    clients = Clients(_settings(), FakeCredential())
    assert clients.compute(SUB) is clients.compute(SUB)
    assert clients.compute(SUB) is not clients.compute(SUB2)
    assert clients.compute(SUB2)._config.subscription_id == SUB2


def test_each_kind_of_client_has_its_own_cache_entry() -> None:
    clients = Clients(_settings(), FakeCredential())
    built = {kind: BUILDERS[kind](clients, SUB) for kind in BUILDERS}
    assert len({id(client) for client in built.values()}) == 3
    assert all(BUILDERS[kind](clients, SUB) is client for kind, client in built.items())


def test_given_credential_is_used_and_none_is_built() -> None:
    credential = FakeCredential()
    clients = Clients(_settings(), credential)
    assert clients.credential is credential
    assert clients.compute(SUB)._config.credential is credential


def test_optional_clients_are_none_when_not_configured() -> None:
    clients = Clients(_settings(), FakeCredential())
    assert clients.events() is None
    assert clients.logs() is None


def test_storage_clients_without_storage_settings_say_what_to_set() -> None:
    clients = Clients(_settings(), FakeCredential())
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        clients.table("autopilotaudit")


def test_table_client_from_identity_based_settings() -> None:
    clients = Clients(_settings(AzureWebJobsStorage__accountName="stautopilot"), FakeCredential())
    table = clients.table("autopilotaudit")
    assert table.table_name == "autopilotaudit"
    assert table.url.startswith("https://stautopilot.table.core.windows.net")
    assert clients.table("autopilotaudit") is table


# --- the outbound host guard ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_request_to_another_host_is_refused(kind: str) -> None:
    client = BUILDERS[kind](Clients(_settings(), FakeCredential()), SUB)
    request = HttpRequest("GET", f"https://127.0.0.2:{PORT}/subscriptions/{SUB}?api-version=2022-12-01")
    with pytest.raises(OutboundHostError, match=re.escape("refusing a request to '127.0.0.2'")):
        client._client.send_request(request)


def test_request_to_the_configured_host_passes_the_guard() -> None:
    client = Clients(_settings(), FakeCredential()).compute(SUB)
    request = HttpRequest("GET", f"https://127.0.0.1:{PORT}/subscriptions/{SUB}?api-version=2022-12-01")
    with pytest.raises(ServiceRequestError) as caught:
        client._client.send_request(request)
    assert not isinstance(caught.value, OutboundHostError)  # it got as far as the closed port


def test_host_comparison_ignores_letter_case() -> None:
    settings = Settings.from_env(
        {"AUTOPILOT_ARM_ENDPOINT": f"https://LOCALHOST:{PORT}", "AUTOPILOT_RETRY_TOTAL": "0"}
    )
    client = Clients(settings, FakeCredential()).compute(SUB)
    with pytest.raises(ServiceRequestError) as caught:
        client._client.send_request(HttpRequest("GET", f"https://localhost:{PORT}/x"))
    assert not isinstance(caught.value, OutboundHostError)


def test_sdk_operation_to_the_sandbox_goes_to_the_configured_host() -> None:
    client = Clients(_settings(), FakeCredential()).compute(SUB)
    with pytest.raises(ServiceRequestError) as caught:
        client.virtual_machines.get("rg", "vm1")
    assert not isinstance(caught.value, OutboundHostError)


def test_host_no_setting_names_is_refused_with_an_events_endpoint_set() -> None:
    settings = _settings(AUTOPILOT_EVENTS_ENDPOINT=f"https://127.0.0.3:{PORT}/api/events")
    client = Clients(settings, FakeCredential()).compute(SUB)
    with pytest.raises(OutboundHostError):
        client._client.send_request(HttpRequest("GET", f"https://127.0.0.2:{PORT}/x"))


def test_refused_host_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.pipeline.transport import RequestsTransport

    sleeps: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: sleeps.append(seconds))
    settings = _settings(AUTOPILOT_RETRY_TOTAL="6")  # the default
    client = Clients(settings, FakeCredential()).compute(SUB)
    with pytest.raises(OutboundHostError):
        client._client.send_request(HttpRequest("GET", f"https://127.0.0.2:{PORT}/x"))
    assert sleeps == []


def test_refused_host_is_not_transient() -> None:
    assert is_transient(OutboundHostError("refusing a request to 'elsewhere.example'")) is False
