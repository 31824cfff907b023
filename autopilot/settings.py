"""The app's settings: one frozen object, read lazily from app settings (environment variables).

Nothing here runs at import time. `get_settings()` reads the environment once per process;
`Settings.from_env(mapping)` builds one from any mapping (tests, the CLI).
Every setting is documented in README.md ("Settings").
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from azure.core import AzureClouds
from azure.mgmt.core.tools import get_arm_endpoints

from autopilot.names import MANAGEMENT_GROUP, SUBSCRIPTION_ID

# Names accepted for AUTOPILOT_ARM_ENDPOINT besides a URL (those of `az cloud list`).
CLOUD_NAMES: dict[str, AzureClouds] = {
    "azurecloud": AzureClouds.AZURE_PUBLIC_CLOUD,
    "azurepubliccloud": AzureClouds.AZURE_PUBLIC_CLOUD,
    "azureusgovernment": AzureClouds.AZURE_US_GOVERNMENT,
    "azurechinacloud": AzureClouds.AZURE_CHINA_CLOUD,
}

# A management group id: up to 90 letters, digits, hyphens, underscores, periods and parentheses.
INVENTORY_SOURCES = ("arm", "resourcegraph", "auto")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says how to fix it."""


@dataclass(frozen=True)
class StorageSettings:
    """Where tables, queues and blobs live: a connection string (Azurite) or identity-based URIs."""

    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None


@dataclass(frozen=True)
class Settings:
    arm_endpoint: str
    arm_scope: str
    cloud: AzureClouds | None
    subscriptions: tuple[str, ...]  # lower-case ids; empty: those of the rules' vaults
    rules_path: str | None
    storage: StorageSettings
    events_endpoint: str | None = None
    logs_endpoint: str | None = None
    logs_workspace_id: str | None = None
    audit_table: str = "autopilotaudit"
    state_table: str = "autopilotstate"
    sweep_queue: str = "autopilot-sweep"
    first_backup_queue: str = "autopilot-first-backup"
    agent_recheck_seconds: int = 60  # how long a first backup waits before it looks at the VM agent again
    agent_wait_minutes: int = 30  # how long after a VM's creation its first backup waits for the agent
    reports_container: str = "autopilot-reports"
    sweep_dry_run: bool = False
    backup_retain_days: int = 30
    backup_daily_cap: int = 4
    backup_scope_resource_groups: tuple[str, ...] = ()
    backup_scope_tag: tuple[str, str] | None = None
    hmac_secret: str | None = field(default=None, repr=False)
    callback_allowed_hosts: tuple[str, ...] = ()
    callback_http_allowed: tuple[str, ...] = ()  # address ranges callbacks may reach over plain http
    allowed_hosts: tuple[str, ...] = ()
    otel_console: bool = False
    dst_warn_days: int = 14
    rpo_grace_hours: int = 6
    policy_edits_per_day: int = 45  # per vault; Azure allows 50 in 24 hours through ARM and clients
    arm_pacing: bool = True
    polling_interval: int = 5  # seconds between polls when Azure sends no Retry-After
    retry_total: int = 6
    retry_backoff_max: int = 60
    # Lifetimes of the rows of the audit and state tables (autopilot/retention.py, docs/STATE.md).
    audit_retention_days: int = 400
    backup_record_retention_days: int = 90
    sweep_retention_days: int = 30
    # Where the sweep reads the estate: ARM pages per subscription, Azure Resource Graph, or Resource
    # Graph when the identity may query it (autopilot/sweep/inventory.py, autopilot/azure/resourcegraph.py).
    inventory: str = "arm"
    all_subscriptions: bool = False  # AUTOPILOT_SUBSCRIPTIONS=*: every subscription the identity can see
    management_groups: tuple[str, ...] = ()  # AUTOPILOT_MANAGEMENT_GROUPS: the scope as management groups
    # Restore drills (autopilot/drills/): their queue, how often a running drill is looked at, and
    # after how long without progress a drill counts as abandoned (its runner died) and is taken over.
    drill_queue: str = "autopilot-drills"
    drill_poll_seconds: int = 30
    drill_stale_seconds: int = 900

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        arm_endpoint, arm_scope, cloud = _arm(env)
        subscriptions = _csv(env.get("AUTOPILOT_SUBSCRIPTIONS", ""))
        all_subscriptions = subscriptions == ("*",)
        if all_subscriptions:
            subscriptions = ()
        elif "*" in subscriptions:
            raise SettingsError(
                "AUTOPILOT_SUBSCRIPTIONS mixes '*' with subscription ids; write '*' alone (every subscription "
                "the app's identity can see) or a comma-separated list of ids."
            )
        for sub in subscriptions:
            if not SUBSCRIPTION_ID.match(sub):
                raise SettingsError(
                    f"AUTOPILOT_SUBSCRIPTIONS has {sub!r}, which is not a subscription id "
                    "(a GUID such as 00000000-0000-0000-0000-000000000000); separate ids with commas."
                )

        scope_tag = _scope_tag(env)

        inventory = _text(env, "AUTOPILOT_INVENTORY", "arm").lower()
        if inventory not in INVENTORY_SOURCES:
            raise SettingsError(
                f"AUTOPILOT_INVENTORY={env.get('AUTOPILOT_INVENTORY')!r} is not an inventory source; use arm (ARM "
                "pages per subscription), resourcegraph (Azure Resource Graph) or auto (Resource Graph when the "
                "identity may query it, else ARM pages)."
            )
        groups = _csv(env.get("AUTOPILOT_MANAGEMENT_GROUPS", ""))
        for group in groups:
            if not MANAGEMENT_GROUP.match(group):
                raise SettingsError(
                    f"AUTOPILOT_MANAGEMENT_GROUPS has {group!r}, which is not a management group id (up to 90 "
                    "letters, digits, hyphens, underscores, periods and parentheses); separate ids with commas."
                )
        if groups and (subscriptions or all_subscriptions):
            raise SettingsError(
                "AUTOPILOT_MANAGEMENT_GROUPS and AUTOPILOT_SUBSCRIPTIONS both set the scope; set one of them."
            )
        if groups and inventory == "arm":
            raise SettingsError(
                "AUTOPILOT_MANAGEMENT_GROUPS needs Azure Resource Graph to find the groups' subscriptions; set "
                "AUTOPILOT_INVENTORY to resourcegraph or auto, or list the subscriptions in AUTOPILOT_SUBSCRIPTIONS."
            )

        allowed_hosts = {urlsplit(arm_endpoint).hostname or ""}
        for name in ("AUTOPILOT_EVENTS_ENDPOINT", "AUTOPILOT_LOGS_ENDPOINT"):
            if env.get(name):
                allowed_hosts.add(urlsplit(env[name]).hostname or "")

        return cls(
            arm_endpoint=arm_endpoint,
            arm_scope=arm_scope,
            cloud=cloud,
            subscriptions=tuple(s.lower() for s in subscriptions),
            rules_path=_rules_path(env),
            storage=_storage(env),
            events_endpoint=env.get("AUTOPILOT_EVENTS_ENDPOINT") or None,
            logs_endpoint=env.get("AUTOPILOT_LOGS_ENDPOINT") or None,
            logs_workspace_id=env.get("AUTOPILOT_LOGS_WORKSPACE_ID") or None,
            audit_table=_text(env, "AUTOPILOT_AUDIT_TABLE", "autopilotaudit"),
            state_table=_text(env, "AUTOPILOT_STATE_TABLE", "autopilotstate"),
            sweep_queue=_text(env, "SWEEP_QUEUE", "autopilot-sweep"),
            first_backup_queue=_text(env, "FIRST_BACKUP_QUEUE", "autopilot-first-backup"),
            agent_recheck_seconds=_int(env, "AUTOPILOT_AGENT_RECHECK_SECONDS", 60, 1, 3600),
            agent_wait_minutes=_int(env, "AUTOPILOT_AGENT_WAIT_MINUTES", 30, 0, 24 * 60),
            reports_container=_text(env, "AUTOPILOT_REPORTS_CONTAINER", "autopilot-reports"),
            sweep_dry_run=_bool(env, "AUTOPILOT_SWEEP_DRY_RUN", False),
            backup_retain_days=_int(env, "AUTOPILOT_BACKUP_RETAIN_DAYS", 30, 1, 99 * 365),
            backup_daily_cap=_int(env, "AUTOPILOT_BACKUP_DAILY_CAP", 4, 1, 9),
            backup_scope_resource_groups=tuple(
                g.lower() for g in _csv(env.get("AUTOPILOT_BACKUP_SCOPE_RESOURCE_GROUPS", ""))
            ),
            backup_scope_tag=scope_tag,
            hmac_secret=env.get("AUTOPILOT_HMAC_SECRET") or None,
            callback_allowed_hosts=tuple(
                h.lower() for h in _csv(env.get("AUTOPILOT_CALLBACK_ALLOWED_HOSTS", ""))
            ),
            callback_http_allowed=_networks(env, "AUTOPILOT_CALLBACK_HTTP_ALLOWED"),
            allowed_hosts=tuple(sorted(h for h in allowed_hosts if h)),
            otel_console=_bool(env, "AUTOPILOT_OTEL_CONSOLE", False),
            dst_warn_days=_int(env, "AUTOPILOT_DST_WARN_DAYS", 14, 0, 366),
            rpo_grace_hours=_int(env, "AUTOPILOT_RPO_GRACE_HOURS", 6, 0, 24 * 14),
            policy_edits_per_day=_int(env, "AUTOPILOT_POLICY_EDITS_PER_DAY", 45, 1, 50),
            arm_pacing=_bool(env, "AUTOPILOT_ARM_PACING", True),
            retry_total=_int(env, "AUTOPILOT_RETRY_TOTAL", 6, 0, 20),
            retry_backoff_max=_int(env, "AUTOPILOT_RETRY_BACKOFF_MAX", 60, 1, 3600),
            audit_retention_days=_int(env, "AUTOPILOT_AUDIT_RETENTION_DAYS", 400, 1, 3650),
            backup_record_retention_days=_int(env, "AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS", 90, 1, 3650),
            sweep_retention_days=_int(env, "AUTOPILOT_SWEEP_RETENTION_DAYS", 30, 1, 3650),
            inventory=inventory,
            all_subscriptions=all_subscriptions,
            management_groups=tuple(groups),
            drill_queue=_text(env, "DRILL_QUEUE", "autopilot-drills"),
            drill_poll_seconds=_int(env, "AUTOPILOT_DRILL_POLL_SECONDS", 30, 1, 3600),
            drill_stale_seconds=_int(env, "AUTOPILOT_DRILL_STALE_SECONDS", 900, 1, 24 * 3600),
        )


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of address ranges (CIDR), each checked."""
    entries = _csv(env.get(name, ""))
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"{name} has {entry!r}, which is not an address range; write ranges such as 10.1.2.0/24 or "
                "127.0.0.1/32, separated by commas."
            ) from None
    return tuple(entries)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env(os.environ)


def _rules_path(env: Mapping[str, str]) -> str | None:
    """AUTOPILOT_RULES; a relative path is taken from the app's root (AzureWebJobsScriptRoot, set by
    the Functions host: the working directory is not guaranteed to be the app's root)."""
    path = (env.get("AUTOPILOT_RULES") or "").strip()
    if not path:
        return None
    root = (env.get("AzureWebJobsScriptRoot") or "").strip()
    if root and not os.path.isabs(path):
        return os.path.join(root, path)
    return path


def _arm(env: Mapping[str, str]) -> tuple[str, str, AzureClouds | None]:
    """(ARM endpoint, token scope, cloud) from AUTOPILOT_ARM_ENDPOINT: a cloud name or an https URL."""
    endpoint_setting = _text(env, "AUTOPILOT_ARM_ENDPOINT", "AzureCloud")
    cloud: AzureClouds | None = CLOUD_NAMES.get(endpoint_setting.lower())
    if cloud is not None:
        endpoints = get_arm_endpoints(cloud)
        arm_endpoint = endpoints["resource_manager"]
        arm_scope = endpoints["credential_scopes"][0]
    else:
        parts = urlsplit(endpoint_setting)
        if parts.scheme != "https" or not parts.hostname:
            raise SettingsError(
                f"AUTOPILOT_ARM_ENDPOINT={endpoint_setting!r} is neither a cloud name "
                f"({', '.join(sorted(CLOUD_NAMES))}) nor an https:// URL; "
                "set it to e.g. 'AzureCloud' or 'https://127.0.0.1:8443'."
            )
        arm_endpoint = endpoint_setting
        audience = _text(env, "AUTOPILOT_ARM_AUDIENCE", "https://management.azure.com/")
        arm_scope = audience.rstrip("/") + "/.default"
    return arm_endpoint, arm_scope, cloud


def _scope_tag(env: Mapping[str, str]) -> tuple[str, str] | None:
    """AUTOPILOT_BACKUP_SCOPE_TAG as (key, value), or None when it is not set."""
    if not env.get("AUTOPILOT_BACKUP_SCOPE_TAG"):
        return None
    key, sep, value = env["AUTOPILOT_BACKUP_SCOPE_TAG"].partition("=")
    if not sep or not key.strip():
        raise SettingsError(
            "AUTOPILOT_BACKUP_SCOPE_TAG must look like 'key=value', e.g. 'backup-now=allowed'."
        )
    return (key.strip(), value.strip())


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    """A text setting; unset and empty both mean the default (app settings are often set empty)."""
    return (env.get(name) or "").strip() or default


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false.")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number; use a number from {low} to {high}."
        ) from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range; use a number from {low} to {high}.")
    return value


def _storage(env: Mapping[str, str]) -> StorageSettings:
    """AzureWebJobsStorage as the Functions host reads it: a connection string, or identity-based
    `AzureWebJobsStorage__accountName` / `__blobServiceUri` / `__queueServiceUri` / `__tableServiceUri`."""
    conn = env.get("AzureWebJobsStorage", "").strip()
    if conn:
        if conn.lower() == "usedevelopmentstorage=true":
            raise SettingsError(
                "AzureWebJobsStorage=UseDevelopmentStorage=true is not supported by the table client; "
                "give Azurite's full connection string (make serve writes it into local.settings.json)."
            )
        return StorageSettings(connection_string=conn)
    account = env.get("AzureWebJobsStorage__accountName", "").strip()

    def uri(service: str) -> str | None:
        explicit = env.get(f"AzureWebJobsStorage__{service}ServiceUri", "").strip()
        if explicit:
            return explicit
        return f"https://{account}.{service}.core.windows.net" if account else None

    return StorageSettings(blob_uri=uri("blob"), queue_uri=uri("queue"), table_uri=uri("table"))
