"""Fixtures for devhost's tests: the sample app in a temporary directory, a journal of what its
functions received, hosts that stop after each test, and Azurite for the queue tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from devhost_support import SAMPLE_APP, Journal, StartHost, sample_settings

from devhost import Host
from devhost.azurite import Azurite


@pytest.fixture(scope="session")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample") / "app"
    shutil.copytree(SAMPLE_APP, directory, ignore=shutil.ignore_patterns("__pycache__"))
    settings = {"IsEncrypted": False, "Values": sample_settings(directory / "journal")}
    (directory / "local.settings.json").write_text(json.dumps(settings, indent=2))
    return directory


@pytest.fixture
def journal(app_dir: Path) -> Journal:
    journal = Journal(app_dir / "journal")
    journal.clear()
    return journal


@pytest.fixture
def start_host(app_dir: Path) -> Iterator[StartHost]:
    """Start a Host for the sample app (or ``app_dir=...``); every one is stopped after the test."""
    hosts: list[Host] = []

    def start(directory: Path | None = None, **options: Any) -> Host:
        host = Host(directory or app_dir, **options)
        host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop(timeout=10)


@pytest.fixture
def host(start_host: StartHost, journal: Journal) -> Host:
    return start_host()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as emulator:
        yield emulator
