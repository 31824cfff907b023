"""Routes of the Event Grid data plane (publishing to a custom topic)."""

from __future__ import annotations

import hmac
from typing import Any

from armsim.core.errors import BadRequest, PayloadTooLarge, Unauthorized
from armsim.core.http import Endpoint, Request, Response
from armsim.core.responses import Responses
from armsim.eventgrid.models import EventGridBackend

EVENTGRID_DATA_API = ("2018-01-01",)
CLOUD_EVENT_REQUIRED = ("id", "source", "specversion", "type")
EVENTGRID_REQUIRED = ("id", "subject", "eventType", "eventTime", "data", "dataVersion")
MAX_BATCH_BYTES = 1024 * 1024


ROUTES = (
    Endpoint(
        "POST", "/eventgrid/topics/{topicName}/api/events", "EventGrid_Publish", "publish", EVENTGRID_DATA_API,
        "Microsoft.EventGrid/topics", service="eventgrid",
    ),
)  # fmt: skip


class EventGridResponses(Responses[EventGridBackend]):
    def publish(self, request: Request) -> Response:
        topic = self.backend.topic(request.params["topicName"])
        key = request.headers.get("aeg-sas-key")
        if key is not None and not hmac.compare_digest(key.encode(), topic["key"].encode()):
            raise Unauthorized(
                "Unauthorized", "The request authorization key is not authorized for this topic."
            )
        if len(request.body) > MAX_BATCH_BYTES:
            raise PayloadTooLarge("PayloadTooLarge", "The maximum size of an event batch is 1 MB.")
        events = _events(request)
        self.backend.publish(request.params["topicName"], events)
        return Response(200)


def _events(request: Request) -> list[dict[str, Any]]:
    import json

    try:
        body = json.loads(request.body or b"null")
    except ValueError as exc:
        raise BadRequest("BadRequest", f"The request body is not valid JSON: {exc}") from None
    events = body if isinstance(body, list) else [body]
    if not events or not all(isinstance(e, dict) for e in events):
        raise BadRequest("BadRequest", "The request body must be an event or an array of events.")
    cloud = "cloudevents" in request.headers.get("content-type", "")
    required = CLOUD_EVENT_REQUIRED if cloud else EVENTGRID_REQUIRED
    for event in events:
        missing = [field for field in required if field not in event]
        if missing:
            raise BadRequest("BadRequest", f"An event is missing the required properties {missing}.")
        if cloud and event.get("specversion") != "1.0":
            raise BadRequest("BadRequest", "Only CloudEvents specversion 1.0 is accepted.")
    return events
