"""Event Grid: the subscription to the function's trigger selects VM writes and deletes only, retries
and dead-letters; scripts/post-up.sh creates it with the function's system key."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scripts import eventgrid_subscription as subscription
from tests.infra.infra_support import INFRA, ROOT, resource

TEMPLATE = INFRA / "eventgrid-subscription.json"
POST_UP = ROOT / "scripts" / "post-up.sh"
EVENTGRID = INFRA / "modules" / "eventgrid.bicep"

VM_WRITE = "Microsoft.Compute/virtualMachines/write"
VM_DELETE = "Microsoft.Compute/virtualMachines/delete"
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    return loaded


def delivered(filters: dict[str, Any], event: dict[str, Any]) -> bool:
    """Event Grid's filter semantics for what the template uses: included event types, and
    StringIn advanced filters (both case-insensitive), all of which must hold."""
    types = [t.lower() for t in filters.get("includedEventTypes") or []]
    if types and event["eventType"].lower() not in types:
        return False
    for advanced in filters.get("advancedFilters") or []:
        assert advanced["operatorType"] == "StringIn", "only StringIn is modelled here"
        value: Any = event
        for part in advanced["key"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or value.lower() not in [v.lower() for v in advanced["values"]]:
            return False
    return True


def event(event_type: str, operation: str, resource_id: str) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "subject": resource_id,
        "data": {"operationName": operation, "resourceUri": resource_id, "status": "Succeeded"},
    }


VM = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (event(WRITE, VM_WRITE, VM), True),
        (event(DELETE, VM_DELETE, VM), True),
        (event(WRITE, VM_WRITE.lower(), VM.lower()), True),  # ARM's letter case varies
        (event(WRITE, "Microsoft.Compute/virtualMachines/extensions/write", VM + "/extensions/x"), False),
        (event(WRITE, "Microsoft.Compute/disks/write", VM.replace("virtualMachines", "disks")), False),
        (
            event(WRITE, "Microsoft.Storage/storageAccounts/write", "/subscriptions/x/storageAccounts/s"),
            False,
        ),
        (event(WRITE, "Microsoft.Compute/virtualMachineScaleSets/write", VM), False),
        (
            event(
                "Microsoft.Resources.ResourceActionSuccess",
                "Microsoft.Compute/virtualMachines/start/action",
                VM,
            ),
            False,
        ),
        (event("Microsoft.Resources.ResourceWriteFailure", VM_WRITE, VM), False),
    ],
)
def test_the_filter_selects_vm_writes_and_deletes_only(sample: dict[str, Any], expected: bool) -> None:
    assert delivered(template()["properties"]["filter"], sample) is expected


def test_the_filter_is_exactly_the_reviewed_one() -> None:
    filters = template()["properties"]["filter"]
    assert filters["includedEventTypes"] == [WRITE, DELETE]
    assert filters["advancedFilters"] == [
        {"operatorType": "StringIn", "key": "data.operationName", "values": [VM_WRITE, VM_DELETE]}
    ]


def test_retries_and_dead_lettering() -> None:
    properties = template()["properties"]
    assert properties["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert properties["eventDeliverySchema"] == "EventGridSchema"


def test_render_fills_the_endpoint_and_strips_comments() -> None:
    url = subscription.endpoint_url("func-x.azurewebsites.net", "k3y/with+chars==")
    body = subscription.render(template(), url, "/subscriptions/s/storageAccounts/st", "eventgrid-deadletter")
    assert "$comment" not in json.dumps(body)
    endpoint = body["properties"]["destination"]["properties"]["endpointUrl"]
    parts = urlsplit(endpoint)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "func-x.azurewebsites.net",
        "/runtime/webhooks/eventgrid",
    )
    assert parse_qs(parts.query) == {"functionName": ["protect_on_create"], "code": ["k3y/with+chars=="]}
    destination = body["properties"]["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"]
    assert destination == {
        "resourceId": "/subscriptions/s/storageAccounts/st",
        "blobContainerName": "eventgrid-deadletter",
    }


def test_render_without_dead_letter_storage_drops_the_destination() -> None:
    url = subscription.endpoint_url("h.azurewebsites.net", "k")
    body = subscription.render(template(), url, "", "")
    assert "deadLetterWithResourceIdentity" not in body["properties"]
    assert "__" not in json.dumps(body)


@pytest.mark.parametrize(
    "url",
    [
        "http://h/runtime/webhooks/eventgrid?functionName=protect_on_create&code=k",
        "https://h/runtime/webhooks/eventgrid?functionName=backup_now&code=k",
        "https://h/runtime/webhooks/eventgrid?functionName=protect_on_create",
        "https://h/api/protect_on_create?code=k",
    ],
)
def test_render_refuses_a_wrong_endpoint(url: str) -> None:
    with pytest.raises(subscription.RenderError):
        subscription.render(template(), url, "", "")


def test_the_subscribed_function_is_the_apps_event_grid_trigger() -> None:
    tree = ast.parse((ROOT / "handlers" / "protect_on_create.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        calls = {
            d.func.attr: d
            for d in node.decorator_list
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
        }
        name = calls.get("function_name")
        if name is not None and ast.literal_eval(name.args[0]) == subscription.FUNCTION_NAME:
            assert "event_grid_trigger" in calls, f"{subscription.FUNCTION_NAME} is not an Event Grid trigger"
            return
    pytest.fail(f"handlers/protect_on_create.py has no function named {subscription.FUNCTION_NAME}")


def test_the_topics() -> None:
    system = resource(EVENTGRID, "systemTopic").body
    assert system["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    assert system["location"] == "global"
    assert system["identity"] == {"type": "SystemAssigned"}
    topic = resource(EVENTGRID, "topic").body["properties"]
    assert topic["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["disableLocalAuth"] is True


# --- scripts/post-up.sh, with az, curl and sleep stubbed ---------------------------------------

STUB_AZ = r"""#!/usr/bin/env bash
echo "az $*" >> "$CAPTURE/calls"
case "$*" in
  "functionapp keys list"*) [ -n "$STUB_KEY" ] && echo "$STUB_KEY"; exit 0 ;;
  "eventgrid system-topic show"*) echo "$STUB_IDENTITY"; exit 0 ;;
  "rest --method put"*)
    for arg in "$@"; do case "$arg" in @*) cp "${arg#@}" "$CAPTURE/body.json" ;; esac; done
    exit 0 ;;
  "rest --method get"*) echo "Succeeded"; exit 0 ;;
  "account show"*) echo "00000000-0000-0000-0000-00000000000f"; exit 0 ;;
esac
echo "unexpected az call: $*" >&2
exit 3
"""


def _stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"az": STUB_AZ, "curl": "#!/bin/sh\nexit 0\n", "sleep": "#!/bin/sh\nexit 0\n"}.items():
        path = bin_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_post_up(
    tmp_path: Path, key: str, identity: str = "SystemAssigned"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{_stubs(tmp_path)}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CAPTURE": str(tmp_path),
        "STUB_KEY": key,
        "STUB_IDENTITY": identity,
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
        "AZURE_RESOURCE_GROUP": "rg-autopilot",
        "AZURE_FUNCTION_APP_NAME": "func-autopilot-abc",
        "AZURE_FUNCTION_APP_HOSTNAME": "func-autopilot-abc.azurewebsites.net",
        "EVENTGRID_SYSTEM_TOPIC_NAME": "egst-subscription-abc",
        "EVENTGRID_DEADLETTER_STORAGE_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
        "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
    }
    return subprocess.run(
        ["sh", str(POST_UP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_post_up_subscribes_the_trigger_with_its_system_key(tmp_path: Path) -> None:
    done = run_post_up(tmp_path, key="s3cret/key==")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text(encoding="utf-8")
    assert "functionapp keys list --resource-group rg-autopilot --name func-autopilot-abc" in calls
    assert (
        "rest --method put --url /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-autopilot"
        "/providers/Microsoft.EventGrid/systemTopics/egst-subscription-abc/eventSubscriptions/protect-on-create"
        "?api-version=2025-02-15"
    ) in calls
    assert "s3cret" not in calls, "the key must not be on a command line"
    body = json.loads((tmp_path / "body.json").read_text(encoding="utf-8"))
    assert body["properties"]["filter"] == template()["properties"]["filter"]
    endpoint = urlsplit(body["properties"]["destination"]["properties"]["endpointUrl"])
    assert endpoint.netloc == "func-autopilot-abc.azurewebsites.net"
    assert parse_qs(endpoint.query) == {"functionName": ["protect_on_create"], "code": ["s3cret/key=="]}
    assert body["properties"]["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"] == {
        "resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st",
        "blobContainerName": "eventgrid-deadletter",
    }


def test_post_up_without_a_topic_identity_subscribes_without_dead_lettering(tmp_path: Path) -> None:
    done = run_post_up(tmp_path, key="k", identity="None")
    assert done.returncode == 0, done.stderr
    assert "no system-assigned identity" in done.stderr
    body = json.loads((tmp_path / "body.json").read_text(encoding="utf-8"))
    assert "deadLetterWithResourceIdentity" not in body["properties"]


def test_post_up_fails_clearly_when_the_key_never_appears(tmp_path: Path) -> None:
    done = run_post_up(tmp_path, key="")
    assert done.returncode == 1
    assert "no eventgrid_extension system key" in done.stderr
    assert not (tmp_path / "body.json").exists()
