"""Shared fixtures: the sandbox (armsim) in both modes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.armsim_support import Sandbox, sdk_clients, start_cli, start_inprocess
from tests.examples_support import example_path

_SAVED_ENV = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER")}


@pytest.fixture(scope="session")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sandbox]]:
    """Started on first use: armsim in-process and armsim from its CLI, sharing one CA."""
    started: dict[str, Sandbox] = {}
    inprocess = start_inprocess(tmp_path_factory.mktemp("armsim-inprocess"))
    started["inprocess"] = inprocess
    try:
        started["cli"] = start_cli(tmp_path_factory.mktemp("armsim-cli"), certs_from=inprocess.data_dir)
        yield started
    finally:
        for sandbox in started.values():
            sandbox.stop()
        for key, value in _SAVED_ENV.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(params=["inprocess", "cli"])
def arm(request: pytest.FixtureRequest, sandboxes: dict[str, Sandbox]) -> Sandbox:
    """A freshly reset sandbox; every test using it runs in both modes."""
    sandbox = sandboxes[request.param]
    sandbox.reset()
    sandbox.activate()
    return sandbox


@pytest.fixture
def sim(sandboxes: dict[str, Sandbox]) -> Sandbox:
    """The in-process sandbox only, freshly reset (for tests that need not run twice)."""
    sandbox = sandboxes["inprocess"]
    sandbox.reset()
    sandbox.activate()
    return sandbox


@pytest.fixture
def sdk(arm: Sandbox) -> dict[str, Any]:
    """The real management clients against `arm` (both modes), without retries: "resources",
    "compute", "network", "vaults" and "backup"."""
    return sdk_clients(arm)


@pytest.fixture
def rest_examples() -> Path:
    """The vendored official REST examples folder (tests/examples_support.py); fails the test when it
    is missing. Tests take it through the `needs_examples` marker."""
    return example_path()


def pytest_configure(config: pytest.Config) -> None:
    Path(config.rootpath, ".run").mkdir(exist_ok=True)
