"""The base of every service's response class: one method per operation, routed by a table.

A service's `responses.py` holds

    ROUTES = (
        Endpoint("GET", VM, "VirtualMachines_Get", "get_vm", COMPUTE_API, VM_TYPE),
        ...
    )

    class ComputeResponses(Responses["ComputeBackend"]):
        def get_vm(self, request: Request) -> Response: ...

and its backend's `register(router)` mounts them: `router.mount(ComputeResponses(self), ROUTES)`.
The server authenticates, throttles, checks the api-version and takes the world lock before a
method runs; a method reads `request.params` (the template's placeholders), calls the backend and
answers a Response, or raises an ArmError.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from armsim.core.http import Endpoint, Handler
from armsim.core.world import Provider, World

B = TypeVar("B", bound=Provider)


class Responses(Generic[B]):
    def __init__(self, backend: B) -> None:
        self.backend: B = backend
        self.world: World = backend.world

    def bind(self, endpoint: Endpoint) -> Handler:
        """The callable that answers `endpoint`: its method. A service whose every answer needs the
        same wrapping (the control API's 400 on bad input, Blob's XML errors) overrides this."""
        handler: Handler = getattr(self, endpoint.handler)
        return handler
