"""The Event Grid trigger webhook at the Functions host's path."""

import json
from typing import Any

import requests
from devhost_support import EVENTGRID_KEY, FUNCTION_KEY, MASTER_KEY, Journal

from devhost import Host

WEBHOOK = "/runtime/webhooks/eventgrid"


def event(number: int, subject: str | None = None) -> dict[str, Any]:
    return {
        "id": f"event-{number}",
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
        "subject": subject
        or f"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{number}",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2025-01-03T10:00:00.1234567Z",
        "data": {"operationName": "Microsoft.Compute/virtualMachines/write", "number": number},
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def deliver(
    http: requests.Session, host: Host, body: object, event_type: str = "Notification", **kwargs: Any
) -> requests.Response:
    params = {"functionName": "on_event", "code": EVENTGRID_KEY, **kwargs.pop("params", {})}
    headers = {"aeg-event-type": event_type, "Content-Type": "application/json", **kwargs.pop("headers", {})}
    return http.post(f"{host.url}{WEBHOOK}", params=params, headers=headers, data=json.dumps(body), **kwargs)


def test_subscription_validation_handshake(host: Host, http: requests.Session, journal: Journal) -> None:
    validation = {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/x",
        "subject": "",
        "data": {
            "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
            "validationUrl": "https://example",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2025-01-03T10:00:00Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
    response = deliver(http, host, [validation], event_type="SubscriptionValidation")
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert journal.entries("on_event") == []  # the handshake does not run the function


def test_notification_batch_invokes_once_per_event(
    host: Host, http: requests.Session, journal: Journal
) -> None:
    response = deliver(http, host, [event(1), event(2), event(3)])
    assert response.status_code == 200
    entries = sorted(journal.entries("on_event"), key=lambda e: e["id"])  # run at once: in any order
    assert [e["id"] for e in entries] == ["event-1", "event-2", "event-3"]
    first = entries[0]
    assert first["schema"] == "eventgrid"
    assert first["event_type"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert first["subject"].endswith("/virtualMachines/vm1")
    assert first["topic"] == "/subscriptions/00000000-0000-0000-0000-000000000000"
    assert first["data"] == {"operationName": "Microsoft.Compute/virtualMachines/write", "number": 1}
    assert first["data_version"] == "2"
    assert first["event_time"] == "2025-01-03 10:00:00.123456+00:00"


def test_a_failing_event_answers_500_so_event_grid_retries(
    host: Host, http: requests.Session, journal: Journal
) -> None:
    response = deliver(http, host, [event(1), event(2, subject="/please/fail"), event(3)])
    assert response.status_code == 500
    assert "1 of 3 events failed" in response.text
    assert "cannot handle" not in response.text
    assert sorted(e["id"] for e in journal.entries("on_event")) == ["event-1", "event-2", "event-3"]


def test_webhook_keys(host: Host, http: requests.Session, journal: Journal) -> None:
    assert deliver(http, host, [event(1)], params={"code": ""}).status_code == 401
    assert deliver(http, host, [event(1)], params={"code": FUNCTION_KEY}).status_code == 401
    assert deliver(http, host, [event(1)], params={"code": MASTER_KEY}).status_code == 200
    assert deliver(http, host, [event(2)]).status_code == 200
    assert len(journal.entries("on_event")) == 2


def test_unknown_or_non_event_grid_function_is_404(host: Host, http: requests.Session) -> None:
    assert deliver(http, host, [event(1)], params={"functionName": "nope"}).status_code == 404
    assert deliver(http, host, [event(1)], params={"functionName": "hello"}).status_code == 404


def test_bad_requests(host: Host, http: requests.Session, journal: Journal) -> None:
    url = f"{host.url}{WEBHOOK}?functionName=on_event&code={EVENTGRID_KEY}"
    not_json = http.post(url, data=b"{not json", headers={"aeg-event-type": "Notification"})
    assert not_json.status_code == 400
    assert deliver(http, host, [1, 2]).status_code == 400
    assert deliver(http, host, [event(1)], event_type="").status_code == 400
    assert deliver(http, host, [event(1)], event_type="SubscriptionValidation").status_code == 400
    assert journal.entries("on_event") == []


def test_cloudevents_schema(host: Host, http: requests.Session, journal: Journal) -> None:
    url = f"{host.url}{WEBHOOK}?functionName=on_event&code={EVENTGRID_KEY}"
    handshake = http.options(url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert handshake.status_code == 200
    assert handshake.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    cloud_event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/x/resourceGroups/rg",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "subject": "/vm/one",
        "time": "2025-01-03T10:00:00Z",
        "data": {"n": 1},
    }
    single = http.post(
        url,
        data=json.dumps(cloud_event),
        headers={"Content-Type": "application/cloudevents+json; charset=utf-8"},
    )
    assert single.status_code == 200
    batch = http.post(
        url,
        data=json.dumps([{**cloud_event, "id": "ce-2"}, {**cloud_event, "id": "ce-3"}]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert batch.status_code == 200
    entries = sorted(journal.entries("on_event"), key=lambda e: e["id"])  # a batch's run at once
    assert [e["id"] for e in entries] == ["ce-1", "ce-2", "ce-3"]
    assert entries[0] == {
        "schema": "cloudevents",
        "id": "ce-1",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "source": "/subscriptions/x/resourceGroups/rg",
        "subject": "/vm/one",
        "data": {"n": 1},
    }
