"""armsim's route tables: each service's `responses.py` declares ROUTES and one response class; every
declared route names a method of it, every public method is routed, and no two routes collide."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

import pytest

import armsim
from armsim.core.http import Endpoint, Route, Router
from armsim.core.responses import Responses
from armsim.registry import build_world


def _service_modules() -> list[ModuleType]:
    names = sorted(
        info.name
        for info in pkgutil.walk_packages(armsim.__path__, "armsim.")
        if info.name.endswith(".responses") and info.name != "armsim.core.responses"
    )
    return [importlib.import_module(name) for name in names]


SERVICES = _service_modules()


def _responses_class(module: ModuleType) -> type[Responses[Any]]:
    classes = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Responses)
        and value is not Responses
        and value.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__} holds one response class, not {classes}"
    return classes[0]


def _public_methods(cls: type) -> set[str]:
    base = set(dir(Responses))
    return {
        name
        for name, value in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in base
    }


def _mounted_routes() -> list[Route]:
    world = build_world(None)
    router = Router()
    for provider in world.providers.values():
        provider.register(router)
    return router.routes


def test_every_service_module_is_found() -> None:
    names = {module.__name__.split(".")[1] for module in SERVICES}
    assert names >= {
        "backup",
        "compute",
        "control",
        "eventgrid",
        "loganalytics",
        "resourcegraph",
        "resources",
        "storage",
        "vaults",
    }


@pytest.mark.parametrize("module", SERVICES, ids=lambda m: m.__name__)
def test_every_route_names_a_method_and_every_method_is_routed(module: ModuleType) -> None:
    routes = module.ROUTES
    assert isinstance(routes, tuple)
    assert routes
    assert all(isinstance(route, Endpoint) for route in routes)
    cls = _responses_class(module)
    for route in routes:
        handler = getattr(cls, route.handler, None)
        assert callable(handler), f"{route.operation}: {cls.__name__} has no method {route.handler}"
        assert list(inspect.signature(handler).parameters) == ["self", "request"], route.handler
    unrouted = _public_methods(cls) - {route.handler for route in routes}
    assert not unrouted, f"{cls.__name__}'s public methods without a route: {sorted(unrouted)}"


@pytest.mark.parametrize("module", SERVICES, ids=lambda m: m.__name__)
def test_routes_are_well_formed(module: ModuleType) -> None:
    for route in module.ROUTES:
        assert route.method in {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"}, route
        assert route.template.startswith("/"), route
        assert route.service in {"arm", "arg", "eventgrid", "logs", "none"}, route
        if route.service in ("arm", "arg"):
            assert route.api_versions, f"{route.operation}: an ARM route needs its api-versions"
            assert route.resource_type, f"{route.operation}: an ARM route needs its resource type"


def test_every_declared_route_is_mounted_once() -> None:
    mounted = _mounted_routes()
    declared = [route for module in SERVICES for route in module.ROUTES]
    assert len(mounted) == len(declared)
    key = lambda r: (r.method, r.template, r.operation)  # noqa: E731
    assert sorted(map(key, mounted)) == sorted(map(key, declared))


def test_no_two_routes_collide() -> None:
    """A path made from each route's template (its placeholders filled in) is matched by that route
    alone among those of its method: which route answers never depends on the order of the tables."""
    routes = _mounted_routes()
    for route in routes:
        path = re.sub(r"\{(\w+)\}", lambda m: f"sample-{m.group(1)}", route.template)
        matching = [other for other in routes if other.method == route.method and other.regex.match(path)]
        assert matching == [route], (
            f"{route.method} {route.template} collides with "
            f"{[f'{r.method} {r.template}' for r in matching if r is not route]}"
        )


def test_router_answers_by_the_table() -> None:
    router = Router()
    for provider in build_world(None).providers.values():
        provider.register(router)
    route, params, _ = router.match(
        "GET",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v1/backupJobs",
    )
    assert route is not None
    assert route.operation == "BackupJobs_List"
    assert route.handler.__name__ == "list_jobs"  # type: ignore[attr-defined]
    assert params == {"subscriptionId": "s1", "resourceGroupName": "rg", "vaultName": "v1"}


def test_world_gives_each_backend_by_its_type() -> None:
    from armsim.compute.models import ComputeBackend
    from armsim.core.operations import Operations
    from armsim.core.world import Provider, World

    world = build_world(None)
    compute = world.backend(ComputeBackend)
    assert isinstance(compute, ComputeBackend)
    assert compute is world.providers["compute"]
    assert world.backend(Operations) is world.providers["operations"]

    class Elsewhere(Provider):
        name = "elsewhere"

    with pytest.raises(LookupError, match="no Elsewhere"):
        world.backend(Elsewhere)
    with pytest.raises(LookupError):
        World().backend(ComputeBackend)
