"""The one client factory: every Azure SDK client the product uses is built here.

The ARM endpoint, its token scope, retries and the credential come from Settings, so switching
between Azure public cloud, a sovereign cloud and the sandbox is one setting. No code path asks
which of them it talks to. Clients are built on first use and then reused (they are thread-safe).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError

from autopilot.azure.pacing import ArmPacer
from autopilot.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineRequest
    from azure.data.tables import TableClient
    from azure.eventgrid import EventGridPublisherClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.recoveryservices import RecoveryServicesClient
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.monitor.query import LogsQueryClient
    from azure.storage.blob import BlobClient, ContainerClient
    from azure.storage.queue import QueueClient

USER_AGENT = "backup-autopilot/0.1"
T = TypeVar("T")


class OutboundHostError(AzureError):
    """A request was about to leave for a host that no setting names. Not a connection error: it is
    neither retried by azure-core nor treated as transient."""


class Clients:
    """Builds and caches SDK clients for one Settings object."""

    def __init__(self, settings: Settings, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        # One pacer for every management client of the process: ARM's buckets are per subscription
        # and principal, whichever client sends the request.
        self.pacer = ArmPacer() if settings.arm_pacing else None
        # Resource Graph has a quota of its own (per user, not per subscription): one for the process.
        from autopilot.azure.resourcegraph import GraphQuota

        self.graph_quota = GraphQuota()

    @property
    def credential(self) -> TokenCredential:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            with self._lock:
                if self._credential is None:
                    self._credential = DefaultAzureCredential()
        return self._credential

    def _cached(self, kind: str, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            client = self._cache.get((kind, key))
        if client is None:
            client = build()
            with self._lock:
                client = self._cache.setdefault((kind, key), client)
        return client

    def _check_host(self, request: PipelineRequest) -> None:
        host = (urlsplit(request.http_request.url).hostname or "").lower()
        if host not in self.settings.allowed_hosts:
            raise OutboundHostError(
                f"refusing a request to {host!r}: only {', '.join(self.settings.allowed_hosts)} are configured"
            )

    def _arm_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.settings.arm_endpoint,
            "credential_scopes": [self.settings.arm_scope],
            "retry_total": self.settings.retry_total,
            # azure-core also caps retries per kind (3 by default); let the setting govern them all.
            "retry_status": self.settings.retry_total,
            "retry_connect": self.settings.retry_total,
            "retry_read": self.settings.retry_total,
            "retry_backoff_max": self.settings.retry_backoff_max,
            "user_agent": USER_AGENT,
            "raw_request_hook": self._check_host,
        }
        if self.pacer is not None:
            kwargs["per_retry_policies"] = [self.pacer]
        if self.settings.cloud is not None:
            kwargs["cloud_setting"] = self.settings.cloud
        return kwargs

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        return self._cached(
            "compute",
            subscription_id,
            lambda: ComputeManagementClient(self.credential, subscription_id, **self._arm_kwargs()),
        )

    def network(self, subscription_id: str) -> NetworkManagementClient:
        """Microsoft.Network: the isolated network of a drill's boot step."""
        from azure.mgmt.network import NetworkManagementClient

        return self._cached(
            "network",
            subscription_id,
            lambda: NetworkManagementClient(self.credential, subscription_id, **self._arm_kwargs()),
        )

    def backup(self, subscription_id: str) -> RecoveryServicesBackupClient:
        from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

        return self._cached(
            "backup",
            subscription_id,
            lambda: RecoveryServicesBackupClient(self.credential, subscription_id, **self._arm_kwargs()),
        )

    def vaults(self, subscription_id: str) -> RecoveryServicesClient:
        from azure.mgmt.recoveryservices import RecoveryServicesClient

        return self._cached(
            "vaults",
            subscription_id,
            lambda: RecoveryServicesClient(self.credential, subscription_id, **self._arm_kwargs()),
        )

    def resource_graph(self) -> ResourceGraphClient:
        """Azure Resource Graph (reached through ARM with ARM's token), paced by its user quota
        instead of ARM's token buckets."""
        from azure.mgmt.resourcegraph import ResourceGraphClient

        def build() -> ResourceGraphClient:
            kwargs = self._arm_kwargs()
            kwargs["per_retry_policies"] = [self.graph_quota]
            return ResourceGraphClient(self.credential, **kwargs)

        return self._cached("graph", "", build)

    def send_arm(self, method: str, path: str) -> Any:
        """A plain ARM request (GET /subscriptions and the like) through the management pipeline:
        its JSON answer."""
        from azure.core.rest import HttpRequest

        client = self.resource_graph()
        url = path if path.startswith("https://") else self.settings.arm_endpoint.rstrip("/") + path
        response = client._client.send_request(HttpRequest(method, url))
        response.raise_for_status()
        return response.json()

    def events(self) -> EventGridPublisherClient | None:
        """The publisher for outcome events, or None when no topic is configured."""
        endpoint = self.settings.events_endpoint
        if not endpoint:
            return None
        from azure.eventgrid import EventGridPublisherClient

        return self._cached(
            "events",
            endpoint,
            lambda: EventGridPublisherClient(
                endpoint, self.credential, retry_total=self.settings.retry_total, user_agent=USER_AGENT
            ),
        )

    def logs(self) -> LogsQueryClient | None:
        """The Log Analytics query client, or None when no workspace is configured."""
        if not self.settings.logs_workspace_id:
            return None
        from azure.monitor.query import LogsQueryClient

        endpoint = self.settings.logs_endpoint or "https://api.loganalytics.io/v1"
        return self._cached(
            "logs",
            endpoint,
            lambda: LogsQueryClient(
                self.credential,
                endpoint=endpoint,
                audience="https://api.loganalytics.io",
                retry_total=self.settings.retry_total,
                user_agent=USER_AGENT,
            ),
        )

    def table(self, name: str) -> TableClient:
        from azure.data.tables import TableClient

        storage = self.settings.storage

        def build() -> TableClient:
            if storage.connection_string:
                return TableClient.from_connection_string(storage.connection_string, table_name=name)
            if not storage.table_uri:
                raise _no_storage()
            return TableClient(storage.table_uri, table_name=name, credential=self.credential)

        return self._cached("table", name, build)

    def queue(self, name: str) -> QueueClient:
        """A queue the app's own triggers read: messages in base64, as the Functions host expects
        (host.json messageEncoding, base64 by default)."""
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        storage = self.settings.storage

        def build() -> QueueClient:
            if storage.connection_string:
                return QueueClient.from_connection_string(
                    storage.connection_string,
                    name,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                )
            if not storage.queue_uri:
                raise _no_storage()
            return QueueClient(
                storage.queue_uri,
                name,
                credential=self.credential,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )

        return self._cached("queue", name, build)

    def blob_container(self, name: str) -> ContainerClient:
        from azure.storage.blob import ContainerClient

        storage = self.settings.storage

        def build() -> ContainerClient:
            if storage.connection_string:
                return ContainerClient.from_connection_string(storage.connection_string, name)
            if not storage.blob_uri:
                raise _no_storage()
            return ContainerClient(storage.blob_uri, name, credential=self.credential)

        return self._cached("blob", name, build)

    def blob_at(self, url: str) -> BlobClient:
        """A blob that Azure named by URL (a restore's configuration blob in a staging account),
        read with the app's identity; only https, and only Blob storage's hosts or a configured one."""
        from azure.storage.blob import BlobClient

        self._check_storage_url(url)
        return BlobClient.from_blob_url(
            url, credential=self.credential, retry_total=self.settings.retry_total
        )

    def container_at(self, url: str) -> ContainerClient:
        """A blob container that Azure named by URL (a restore's container in a staging account)."""
        from azure.storage.blob import ContainerClient

        self._check_storage_url(url)
        return ContainerClient.from_container_url(
            url, credential=self.credential, retry_total=self.settings.retry_total
        )

    def _check_storage_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not (
            host in self.settings.allowed_hosts or any(host.endswith(s) for s in BLOB_SUFFIXES)
        ):
            raise OutboundHostError(
                f"refusing blob URL on {host!r}: not https Blob storage or a configured host"
            )


# Blob storage's hosts in Azure's clouds (public, US Government, China).
BLOB_SUFFIXES = (".blob.core.windows.net", ".blob.core.usgovcloudapi.net", ".blob.core.chinacloudapi.cn")


def _no_storage() -> Exception:
    from autopilot.settings import SettingsError

    return SettingsError(
        "no storage configured: set AzureWebJobsStorage (a connection string) or "
        "AzureWebJobsStorage__accountName for identity-based access."
    )
