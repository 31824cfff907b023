"""The control API under /_armsim/ (its routes: armsim/control/responses.py): it has no state of its
own; it reaches the other providers'."""

from __future__ import annotations

from typing import Any

from armsim.core.http import Router
from armsim.core.world import Provider


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
