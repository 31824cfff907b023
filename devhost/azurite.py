"""Start and stop Azurite (the local Azure Storage emulator) from the repository's ``.tools``."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "AzuriteError", "connection_string"]

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = Path(".tools/node_modules/.bin/azurite")  # relative to the repository root
# The well-known development account of Azurite and the Storage Emulator: public, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    """Azurite is missing or did not start."""


def connection_string(host: str, blob_port: int, queue_port: int, table_port: int) -> str:
    """The storage connection string of an Azurite on ``host`` with these ports."""
    endpoints = {"Blob": blob_port, "Queue": queue_port, "Table": table_port}
    parts = [
        "DefaultEndpointsProtocol=http",
        f"AccountName={ACCOUNT_NAME}",
        f"AccountKey={ACCOUNT_KEY}",
        *(f"{kind}Endpoint=http://{host}:{port}/{ACCOUNT_NAME}" for kind, port in endpoints.items()),
    ]
    return ";".join(parts) + ";"


class Azurite:
    """One Azurite process with blob, queue and table services on ``host``.

    Ports 0 are replaced by free ports. Data lives in memory unless ``location`` names a directory.
    """

    def __init__(
        self,
        *,
        blob_port: int = 0,
        queue_port: int = 0,
        table_port: int = 0,
        location: str | Path | None = None,
        host: str = "127.0.0.1",
        repo_root: str | Path = REPO_ROOT,
    ) -> None:
        self.host = host
        self.location = Path(location) if location is not None else None
        self.executable = Path(repo_root) / AZURITE_BIN
        self.blob_port, self.queue_port, self.table_port = _free_ports(
            host, [blob_port, queue_port, table_port]
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._output = tempfile.TemporaryFile()  # noqa: SIM115  # closed in stop()

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.blob_port, self.queue_port, self.table_port)

    def start(self, timeout: float = 30.0) -> Azurite:
        """Start Azurite and wait until its three ports accept connections."""
        if not self.executable.exists():
            raise AzuriteError(f"Azurite is not installed ({self.executable} is missing): run `make setup`")
        if shutil.which("node") is None:
            raise AzuriteError("Azurite needs Node.js (`node`) on the PATH")
        command = [
            str(self.executable),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
            *("--blobHost", self.host, "--blobPort", str(self.blob_port)),
            *("--queueHost", self.host, "--queuePort", str(self.queue_port)),
            *("--tableHost", self.host, "--tablePort", str(self.table_port)),
        ]
        if self.location is None:
            command.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            command += ["--location", str(self.location)]
        self._process = process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops Azurite after the app
        )
        deadline = time.monotonic() + timeout
        waiting = [self.blob_port, self.queue_port, self.table_port]
        while waiting:
            if process.poll() is not None:
                output = self._tail()
                self.stop()
                raise AzuriteError(f"Azurite exited with code {process.returncode}:\n{output}")
            if time.monotonic() > deadline:
                output = self._tail()
                self.stop()
                raise AzuriteError(f"Azurite did not open ports {waiting} within {timeout:.0f} s:\n{output}")
            waiting = [port for port in waiting if not _accepts(self.host, port)]
            if waiting:
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Azurite (in-memory data is gone)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._output.close()

    def _tail(self, limit: int = 4000) -> str:
        self._output.flush()
        self._output.seek(0)
        return self._output.read().decode(errors="replace")[-limit:]

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _free_ports(host: str, wanted: list[int]) -> list[int]:
    """``wanted`` with each 0 replaced by a port that was free a moment ago (all different)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for port in wanted:
            if port:
                ports.append(port)
                continue
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(probe.getsockname()[1])
        return ports


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
