"""Outcome events: CloudEvents 1.0 published to the configured Event Grid topic.

Ticketing and chat tools subscribe to the topic. Without a configured topic, events are only logged.
A failure to publish is logged and does not undo or repeat the action it reports.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError
from azure.core.messaging import CloudEvent

from autopilot.kernel.outcomes import EVENT_TYPES, Outcome

if TYPE_CHECKING:
    from azure.eventgrid import EventGridPublisherClient

log = logging.getLogger("autopilot.kernel.events")

SOURCE = "/backup-autopilot"
_LOG_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class EventPublisher:
    def __init__(self, client: EventGridPublisherClient | None) -> None:
        self._client = client

    def publish(self, event_type: str, subject: str, data: dict[str, Any]) -> CloudEvent:
        event = CloudEvent(source=SOURCE, type=event_type, subject=subject, data=data)
        # The workbook reads these fields from the log (traces) in Application Insights.
        simple = {
            k: v
            for k, v in data.items()
            if isinstance(v, str | int | float | bool) and k not in _LOG_RECORD_FIELDS
        }
        log.info(
            "event %s for %s",
            event_type,
            subject,
            extra={"event_type": event_type, "vm_id": subject, **simple},
        )
        if self._client is not None:
            try:
                self._client.send([event])
            except AzureError:
                log.exception("could not publish %s for %s", event_type, subject)
        return event

    def outcome(self, outcome: Outcome) -> CloudEvent | None:
        """The event for an outcome worth telling (protected, needs attention, failed, ...), if any."""
        event_type = EVENT_TYPES.get(outcome.kind)
        if event_type is None:
            return None
        return self.publish(event_type, outcome.vm_id, outcome.as_dict())
