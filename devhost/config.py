"""What devhost reads from the app directory: local.settings.json, host.json, %SETTING% names."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HostError",
    "HostOptions",
    "QueueOptions",
    "load_host_json",
    "load_local_settings",
    "parse_timespan",
    "resolve_setting_names",
]


class HostError(Exception):
    """devhost cannot start the app; the message says why and what to change."""


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str]
    http_port: int | None  # "Host": {"LocalHttpPort": ...}, as Core Tools reads it


@dataclass(frozen=True)
class QueueOptions:
    """host.json ``extensions.queues``, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: batch_size // 2 (the host's N*batchSize/2 with N = 1)
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # delay before a failed message is visible again
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"  # or "none"

    @property
    def threshold(self) -> int:
        """Another batch is fetched once this few messages (or fewer) are being processed."""
        return self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold


@dataclass(frozen=True)
class HostOptions:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()


def load_local_settings(app_dir: Path) -> LocalSettings:
    """Read ``local.settings.json`` (optional: settings may come from the environment)."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return LocalSettings({}, None)
    document = _read_json(path)
    if document.get("IsEncrypted"):
        raise HostError(f"{path}: IsEncrypted is true; devhost reads only unencrypted settings")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise HostError(f"{path}: 'Values' must be an object of setting names to strings")
    for name, value in values.items():
        if not isinstance(value, str):
            raise HostError(f"{path}: Values.{name} must be a string, got {type(value).__name__}")
    port = (document.get("Host") or {}).get("LocalHttpPort")
    if port is not None and not isinstance(port, int):
        raise HostError(f"{path}: Host.LocalHttpPort must be a number")
    return LocalSettings(dict(values), port)


def load_host_json(app_dir: Path) -> HostOptions:
    """Read ``host.json`` (required, version 2.0) for the options devhost honours."""
    path = app_dir / "host.json"
    if not path.exists():
        raise HostError(f"{path} not found: is {app_dir} a Functions app directory?")
    document = _read_json(path)
    if document.get("version") != "2.0":
        raise HostError(f"{path}: 'version' must be \"2.0\"")
    extensions = document.get("extensions") or {}
    http = extensions.get("http") or {}
    queues = extensions.get("queues") or {}
    defaults = QueueOptions()

    def timespan(key: str, default: float) -> float:
        value = queues.get(key)
        if value is None:
            return default
        try:
            return parse_timespan(value)
        except ValueError as error:
            raise HostError(f"{path}: extensions.queues.{key}: {error}") from None

    def positive(key: str, default: int) -> int:
        value = queues.get(key, default)
        if not isinstance(value, int) or value < 1:
            raise HostError(f"{path}: extensions.queues.{key} must be a whole number of 1 or more")
        return value

    threshold = queues.get("newBatchThreshold")
    if threshold is not None and (
        not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0
    ):
        raise HostError(f"{path}: extensions.queues.newBatchThreshold must be a whole number of 0 or more")
    encoding = str(queues.get("messageEncoding", defaults.message_encoding)).lower()
    if encoding not in ("base64", "none"):
        raise HostError(f"{path}: extensions.queues.messageEncoding must be 'base64' or 'none'")
    return HostOptions(
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        queues=QueueOptions(
            batch_size=min(positive("batchSize", defaults.batch_size), 32),
            new_batch_threshold=threshold,
            max_dequeue_count=positive("maxDequeueCount", defaults.max_dequeue_count),
            visibility_timeout=timespan("visibilityTimeout", defaults.visibility_timeout),
            max_polling_interval=timespan("maxPollingInterval", defaults.max_polling_interval),
            message_encoding=encoding,
        ),
    )


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timespan(text: Any) -> float:
    """A .NET TimeSpan as host.json writes it (``[d.]hh:mm:ss[.fff]``), in seconds."""
    match = _TIMESPAN.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a time span like '00:00:30'")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


_SETTING_NAME = re.compile(r"%([^%]+)%")


def resolve_setting_names(text: str, what: str, environ: Mapping[str, str] = os.environ) -> str:
    """Replace each ``%NAME%`` with the app setting NAME, as the host resolves binding values.

    ``what`` says where the text comes from, for the error ("function 'sweep': schedule").
    """

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise HostError(
                f"{what} {text!r} names the app setting {name!r}, which is not set "
                "(add it to Values in local.settings.json or to the environment)"
            )
        return environ[name]

    return _SETTING_NAME.sub(setting, text)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise HostError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise HostError(f"{path}: expected a JSON object")
    return document
