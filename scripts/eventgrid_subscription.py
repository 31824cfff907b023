"""Render the body of the Event Grid subscription to the function's Event Grid trigger.

The subscription itself is declared in infra/eventgrid-subscription.json (filter, retries,
dead-lettering); what is known only after deployment is filled in here: the webhook URL with the
function's `eventgrid_extension` system key, and the dead-letter storage account and container.
scripts/post-up.sh PUTs the result with `az rest`.

    AUTOPILOT_EVENTGRID_KEY=<key> python scripts/eventgrid_subscription.py --host <app host name> \\
        --deadletter-storage-id <storage account id> --deadletter-container <container>

The key is read from the environment, not the command line, so that it does not show in the
process list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "eventgrid-subscription.json"
FUNCTION_NAME = "protect_on_create"
KEY_ENV = "AUTOPILOT_EVENTGRID_KEY"


class RenderError(ValueError):
    """The inputs cannot make a valid subscription body."""


def endpoint_url(host: str, key: str) -> str:
    """The Functions host's Event Grid webhook for the protect_on_create function."""
    if not host or "/" in host:
        raise RenderError(f"{host!r} is not a host name")
    if not key:
        raise RenderError("the eventgrid_extension system key is empty")
    return (
        f"https://{host}/runtime/webhooks/eventgrid?functionName={FUNCTION_NAME}&code={quote(key, safe='')}"
    )


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme != "https" or parts.path != "/runtime/webhooks/eventgrid":
        raise RenderError("the endpoint must be https://<app>/runtime/webhooks/eventgrid?...")
    if query.get("functionName") != [FUNCTION_NAME] or not query.get("code", [""])[0]:
        raise RenderError(f"the endpoint must name functionName={FUNCTION_NAME} and carry code=<key>")


def _strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_comments(v) for v in value]
    return value


def _replace(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, replacements) for v in value]
    if isinstance(value, str) and value in replacements:
        return replacements[value]
    return value


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _placeholders(v)]
    if isinstance(value, list):
        return [p for v in value for p in _placeholders(v)]
    return [value] if isinstance(value, str) and value.startswith("__") and value.endswith("__") else []


def render(
    template: dict[str, Any],
    endpoint: str,
    deadletter_storage_id: str | None,
    deadletter_container: str | None,
) -> dict[str, Any]:
    """The PUT body: the template with its placeholders filled in and its comments removed.

    Without a dead-letter storage account (a system topic without a managed identity), the body has
    no dead-letter destination: undeliverable events are then dropped after the retries.
    """
    _check_endpoint(endpoint)
    body = _strip_comments(template)
    if not deadletter_storage_id or not deadletter_container:
        body["properties"].pop("deadLetterWithResourceIdentity", None)
    body = _replace(
        body,
        {
            "__ENDPOINT_URL__": endpoint,
            "__DEADLETTER_STORAGE_ID__": deadletter_storage_id or "",
            "__DEADLETTER_CONTAINER__": deadletter_container or "",
        },
    )
    left = _placeholders(body)
    if left:
        raise RenderError(f"placeholders left unfilled: {', '.join(sorted(set(left)))}")
    return body


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the function app's default host name")
    parser.add_argument("--deadletter-storage-id", default="", help="resource id of the storage account")
    parser.add_argument("--deadletter-container", default="", help="blob container for dead letters")
    parser.add_argument("--template", default=str(TEMPLATE), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        body = render(
            load_template(Path(args.template)),
            endpoint_url(args.host, os.environ.get(KEY_ENV, "")),
            args.deadletter_storage_id,
            args.deadletter_container,
        )
    except RenderError as exc:
        print(f"eventgrid_subscription: {exc}", file=sys.stderr)
        return 2
    json.dump(body, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
