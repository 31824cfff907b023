"""Shared by devhost's tests: the sample app's settings, its journal, small app writers."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devhost import Host

StartHost = Callable[..., Host]  # the start_host fixture

SAMPLE_APP = Path(__file__).parent / "sample_app"
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"
EVENTGRID_KEY = "test-eventgrid-key"


def sample_settings(journal_dir: Path) -> dict[str, str]:
    """local.settings.json Values of the sample app (written by the tests: the file is git-ignored)."""
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
        "DEVHOST_MASTER_KEY": MASTER_KEY,
        "DEVHOST_EVENTGRID_KEY": EVENTGRID_KEY,
        "TICK_SCHEDULE": "0 0 0 1 1 *",
        "WORK_QUEUE": "work",
        "GREETING": "from local.settings.json",
        "SAMPLE_JOURNAL_DIR": str(journal_dir),
        # the queue functions need Azurite: the queue tests enable them
        "AzureWebJobs.on_work.Disabled": "true",
        "AzureWebJobs.always_fails.Disabled": "true",
    }


class Journal:
    """What the sample app's functions recorded, one list of entries per function."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)

    def entries(self, function: str) -> list[dict[str, Any]]:
        path = self.directory / f"{function}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def wait_for(self, function: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``function`` recorded at least ``count`` entries; returns them."""
        deadline = time.monotonic() + timeout
        while len(entries := self.entries(function)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{function} recorded {len(entries)} entries, expected {count}: {entries}"
                )
            time.sleep(0.05)
        return entries


def write_app(
    directory: Path, code: str, values: dict[str, str] | None = None, host_json: Any = None
) -> Path:
    """A one-file function app in ``directory`` (for the start-up refusal tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "function_app.py").write_text(code)
    (directory / "host.json").write_text(json.dumps(host_json or {"version": "2.0"}))
    if values is not None:
        (directory / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return directory
