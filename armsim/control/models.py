"""The control API under /_armsim/ (its routes: armsim/control/responses.py): it has no state of its
own; it reaches the other providers'."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.core.http import Router
from armsim.core.world import Provider

if TYPE_CHECKING:
    from armsim.backup.models import BackupBackend
    from armsim.compute.models import ComputeBackend
    from armsim.eventgrid.models import EventGridBackend
    from armsim.resources.models import ResourcesBackend
    from armsim.vaults.models import VaultsBackend


class ControlBackend(Provider):
    name = "control"
    identity_header = ""  # set by the server: the value clients send in X-IDENTITY-HEADER

    def reset(self) -> None:
        """The control API has no state of its own."""

    def to_dict(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        """Nothing to load."""

    def register(self, router: Router) -> None:
        from armsim.control.responses import ROUTES, ControlResponses

        router.mount(ControlResponses(self), ROUTES)

    @property
    def resources(self) -> ResourcesBackend:
        backend: ResourcesBackend = self.world.provider("resources")
        return backend

    @property
    def compute(self) -> ComputeBackend:
        backend: ComputeBackend = self.world.provider("compute")
        return backend

    @property
    def vaults(self) -> VaultsBackend:
        backend: VaultsBackend = self.world.provider("vaults")
        return backend

    @property
    def backup(self) -> BackupBackend:
        backend: BackupBackend = self.world.provider("backup")
        return backend

    @property
    def eventgrid(self) -> EventGridBackend:
        backend: EventGridBackend = self.world.provider("eventgrid")
        return backend
