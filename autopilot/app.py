"""The Autopilot: settings, clients, rules, audit, events and state, built once per process on first
use (never at import time: a failing import would drop every function of the app)."""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError

from autopilot.azure.clients import Clients
from autopilot.azure.gateway import AzureGateway
from autopilot.kernel.audit import AuditLog
from autopilot.kernel.events import EventPublisher
from autopilot.kernel.state import StateStore
from autopilot.protect.placement import VaultRoom
from autopilot.protect.policies import PolicyCache
from autopilot.rules import Rules, load_rules
from autopilot.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient


@dataclass
class Autopilot:
    settings: Settings
    clients: Clients
    rules: Rules
    azure: AzureGateway
    policies: PolicyCache = field(default_factory=PolicyCache)

    # Storage and the event topic are reached only by the parts that need them (the plan does not).
    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.clients.table(self.settings.audit_table))

    @cached_property
    def vault_room(self) -> VaultRoom:
        """Items per vault, for placing new VMs in a region's vault set (autopilot/protect/placement.py)."""
        return VaultRoom(self.azure.item_vms, self.rules.vault_capacity)

    @cached_property
    def operation_key(self) -> bytes:
        """A secret of this deployment, made once and kept in the state table: backup-now operation
        ids are keyed with it, so that they cannot be derived from request ids."""
        self.state.put_once("secret", "operation-ids", {"Value": secrets.token_hex(32)})
        row = self.state.get("secret", "operation-ids")
        assert row is not None, "the secret was just written"
        return bytes.fromhex(str(row["Value"]))

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.clients.table(self.settings.state_table))

    @cached_property
    def reports(self) -> ContainerClient:
        """The blob container of sweep results and reports (created on first use)."""
        container = self.clients.blob_container(self.settings.reports_container)
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        return container

    @cached_property
    def events(self) -> EventPublisher:
        return EventPublisher(self.clients.events())

    @classmethod
    def from_settings(
        cls, settings: Settings, clients: Clients | None = None, rules: Rules | None = None
    ) -> Autopilot:
        if rules is None:
            if not settings.rules_path:
                raise SettingsError(
                    "AUTOPILOT_RULES is not set: give the path of the rules file (see docs/RULES.md)."
                )
            rules = load_rules(settings.rules_path)
        clients = clients or Clients(settings)
        return cls(
            settings=settings,
            clients=clients,
            rules=rules,
            azure=AzureGateway(clients),
        )

    def subscriptions(self) -> tuple[str, ...]:
        """The subscriptions in scope: AUTOPILOT_SUBSCRIPTIONS, or those of the rules' vaults."""
        if self.settings.subscriptions:
            return self.settings.subscriptions
        return tuple(sorted({v.subscription_id.lower() for v in self.rules.vaults}))


class _ProcessAutopilot:
    """The process's one Autopilot, from the app settings (telemetry is set up with it). Built once
    even when the first invocations arrive together: two would hold two ARM pacers and two vault
    placements, each blind to the other's requests and places. `cache_clear` makes the next call
    build it anew (settings changed, as tests and devhost do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._autopilot: Autopilot | None = None

    def __call__(self) -> Autopilot:
        with self._lock:
            if self._autopilot is None:
                from autopilot.kernel import telemetry

                settings = get_settings()
                telemetry.setup(settings.otel_console)
                self._autopilot = Autopilot.from_settings(settings)
            return self._autopilot

    @property
    def built(self) -> bool:
        return self._autopilot is not None

    def cache_clear(self) -> None:
        with self._lock:
            self._autopilot = None


get_autopilot = _ProcessAutopilot()
