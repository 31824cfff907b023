"""Event Grid: the subscription's system topic (resource events to webhooks) and custom topics.

Resource writes and deletes become Microsoft.Resources.ResourceWriteSuccess / ResourceDeleteSuccess
events in the Event Grid schema. Webhook subscriptions get them with Event Grid's delivery rules:
the validation handshake when a subscription is created, the aeg-* headers, batches, retries with
backoff on failure, dead-lettering of 400/401/413 answers, at-least-once delivery. Fault injection
can deliver every event more than once and shuffle the order.

Custom topics take CloudEvents or Event Grid events from the real EventGridPublisherClient (key or
token auth), keep them for inspection, and forward them to the topic's webhook subscriptions.

Deliveries run concurrently: up to `eventConcurrency` batches (8 by default) are in flight at once per
event subscription, each on a thread of its own, so a slow endpoint receives overlapping requests as
it does from Event Grid; more wait, oldest first.
"""

from __future__ import annotations

import collections
import heapq
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

from armsim.core.clock import iso
from armsim.core.errors import BadRequest, NotFound, ResourceNotFound
from armsim.core.http import Router
from armsim.core.world import Provider

log = logging.getLogger("armsim.eventgrid")

TENANT = "72f988bf-0000-4000-8000-00000000a7e5"
SUCCESS = range(200, 205)
NO_RETRY = (400, 401, 413)
DEFAULT_TOPIC = "autopilot-events"


class _Deliveries:
    """The deliveries of one generation (a reset starts a new one; attempts still running for an old
    one record nothing): due times, those ready per event subscription, and those in flight."""

    def __init__(self) -> None:
        self.wake = threading.Condition()
        self.queue: list[tuple[float, int, dict[str, Any]]] = []  # (due, seq, delivery)
        self.seq = 0
        self.ready: dict[str, collections.deque[dict[str, Any]]] = {}  # subscription -> due, waiting
        self.in_flight: dict[str, int] = {}  # subscription -> attempts running


class EventGridBackend(Provider):
    name = "eventgrid"

    def reset(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}  # name -> webhook subscription
        self.topics: dict[str, dict[str, Any]] = {}
        self.resource_events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []
        old = getattr(self, "_state", None)
        self._state = _Deliveries()
        if old is not None:
            with old.wake:
                old.wake.notify_all()
        self.add_topic(DEFAULT_TOPIC)

    def register(self, router: Router) -> None:
        from armsim.eventgrid.responses import ROUTES, EventGridResponses

        router.mount(EventGridResponses(self), ROUTES)

    # -- the delivery worker ---------------------------------------------------------------
    def start(self) -> None:
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._deliver_loop, name="armsim-eventgrid", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        state = self._state
        with state.wake:
            state.wake.notify_all()
        self._worker.join(timeout=5)

    def _enqueue(
        self, delivery: dict[str, Any], delay: float = 0.0, state: _Deliveries | None = None
    ) -> None:
        state = state or self._state
        with state.wake:
            state.seq += 1
            heapq.heappush(state.queue, (time.time() + delay, state.seq, delivery))
            state.wake.notify_all()

    def _deliver_loop(self) -> None:
        """Moves due deliveries to their subscription's line and starts as many as its share of
        concurrent deliveries allows, each on a thread of its own."""
        while not self._stopping.is_set():
            state = self._state
            starts: list[tuple[str, dict[str, Any]]] = []
            with state.wake:
                now = time.time()
                while state.queue and state.queue[0][0] <= now:
                    _, _, delivery = heapq.heappop(state.queue)
                    line = state.ready.setdefault(delivery["subscription"].lower(), collections.deque())
                    line.append(delivery)
                limit = max(1, int(self.world.config.get("eventConcurrency", 8)))
                for name, line in state.ready.items():
                    while line and state.in_flight.get(name, 0) < limit:
                        state.in_flight[name] = state.in_flight.get(name, 0) + 1
                        starts.append((name, line.popleft()))
                if not starts:
                    wait = min(0.5, state.queue[0][0] - now) if state.queue else 0.5
                    state.wake.wait(max(wait, 0.001))
                    continue
            for name, delivery in starts:
                threading.Thread(
                    target=self._run,
                    args=(state, name, delivery),
                    name=f"armsim-eventgrid-{name}",
                    daemon=True,
                ).start()

    def _run(self, state: _Deliveries, name: str, delivery: dict[str, Any]) -> None:
        try:
            self._attempt(delivery, state)
        except Exception:
            log.exception("Event Grid delivery to %s failed in armsim", name)
        finally:
            with state.wake:
                state.in_flight[name] -= 1
                state.wake.notify_all()

    def in_flight(self) -> int:
        """Deliveries being attempted now, over every event subscription."""
        state = self._state
        with state.wake:
            return sum(state.in_flight.values())

    def _attempt(self, delivery: dict[str, Any], state: _Deliveries | None = None) -> None:
        state = state or self._state
        subscription = self._find_subscription(delivery["subscription"])
        if subscription is None:
            return
        attempt = delivery["attempt"]
        headers = {
            "Content-Type": "application/json",
            "aeg-event-type": "Notification",
            "aeg-subscription-name": subscription["name"].upper(),
            "aeg-delivery-count": str(attempt),
            "aeg-data-version": str(delivery["events"][0].get("dataVersion", "")),
            "aeg-metadata-version": "1",
        }
        started = time.time()
        status, error = _post(subscription["endpoint"], delivery["events"], headers)
        if state is not self._state:
            return  # armsim was reset meanwhile: this attempt belongs to a world that is gone
        record = {
            "subscription": subscription["name"],
            "eventIds": [e["id"] for e in delivery["events"]],
            "attempt": attempt,
            "status": status,
            "error": error,
            "started": started,
            "time": time.time(),
        }
        self.deliveries.append(record)
        if status in SUCCESS:
            return
        retries = self.world.config["eventRetrySeconds"]
        if status in NO_RETRY or attempt + 1 >= self.world.config["eventMaxAttempts"]:
            self.dead_letters.append(
                {
                    **record,
                    "events": delivery["events"],
                    "deadLetterReason": "NonRetriableStatus"
                    if status in NO_RETRY
                    else "MaxDeliveryAttemptsExceeded",
                }
            )
            return
        delay = retries[min(attempt, len(retries) - 1)]
        self._enqueue({**delivery, "attempt": attempt + 1}, delay, state)

    # -- webhook subscriptions -------------------------------------------------------------
    def _find_subscription(self, name: str) -> dict[str, Any] | None:
        return self.subscriptions.get(name.lower())

    def add_subscription(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a webhook subscription; the endpoint must pass the validation handshake first."""
        name = str(spec.get("name") or "")
        endpoint = str(spec.get("endpoint") or "")
        if not name or not endpoint or urlsplit(endpoint).scheme not in ("http", "https"):
            raise BadRequest(
                "InvalidRequest", "An event subscription needs a 'name' and an http(s) 'endpoint'."
            )
        source = str(
            spec.get("topic") or ""
        )  # "" = every subscription's system topic; or a custom topic name
        if source and source.lower() not in self.topics:
            raise ResourceNotFound(f"The topic '{source}' does not exist.")
        code = str(uuid.uuid4())
        validation = [
            {
                "id": str(uuid.uuid4()),
                "topic": f"/subscriptions/{spec.get('subscriptionId', '')}",
                "subject": "",
                "data": {"validationCode": code, "validationUrl": ""},
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "eventTime": iso(self.world.clock.now()),
                "metadataVersion": "1",
                "dataVersion": "1",
            }
        ]
        status, answer = _post(
            endpoint,
            validation,
            {
                "Content-Type": "application/json",
                "aeg-event-type": "SubscriptionValidation",
                "aeg-subscription-name": name.upper(),
                "aeg-delivery-count": "0",
                "aeg-data-version": "1",
                "aeg-metadata-version": "1",
            },
        )
        try:
            response_code = json.loads(answer or "{}").get("validationResponse")
        except ValueError:
            response_code = None
        if status != 200 or response_code != code:
            raise BadRequest(
                "Url validation",
                f"Webhook validation handshake failed for {endpoint.split('?', maxsplit=1)[0]}: HTTP {status}, expected "
                '{"validationResponse": "<code>"}.',
            )
        subscription = {
            "name": name,
            "endpoint": endpoint,
            "topic": source.lower(),
            "subscriptionId": str(spec.get("subscriptionId") or "").lower(),
            "includedEventTypes": list(spec.get("includedEventTypes") or []),
            "subjectBeginsWith": str(spec.get("subjectBeginsWith") or ""),
            "advancedFilters": list(spec.get("advancedFilters") or []),
            "maxEventsPerBatch": int(spec.get("maxEventsPerBatch") or 1),
            "provisioningState": "Succeeded",
        }
        self.subscriptions[name.lower()] = subscription
        return subscription

    def remove_subscription(self, name: str) -> None:
        if self.subscriptions.pop(name.lower(), None) is None:
            raise ResourceNotFound(f"The event subscription '{name}' does not exist.")

    def _matches(self, subscription: dict[str, Any], event: dict[str, Any]) -> bool:
        types = subscription["includedEventTypes"]
        event_type = event.get("eventType") or event.get("type")
        if types and event_type not in types:
            return False
        if not str(event.get("subject", "")).lower().startswith(subscription["subjectBeginsWith"].lower()):
            return False
        return all(_advanced_match(f, event) for f in subscription["advancedFilters"])

    def _fan_out(self, topic: str, events: list[dict[str, Any]], subscription_id: str = "") -> None:
        faults = self.world.faults
        for subscription in list(self.subscriptions.values()):
            if subscription["topic"] != topic:
                continue
            if (
                not topic
                and subscription["subscriptionId"]
                and subscription["subscriptionId"] != subscription_id.lower()
            ):
                continue
            matching = [e for e in events if self._matches(subscription, e)]
            copies = [e for e in matching for _ in range(max(1, faults.event_duplicates))]
            if faults.event_shuffle:
                faults.random.shuffle(copies)
            size = subscription["maxEventsPerBatch"]
            for start in range(0, len(copies), size):
                delay = faults.random.random() * 0.5 if faults.event_shuffle else 0.0
                self._enqueue(
                    {
                        "subscription": subscription["name"],
                        "events": copies[start : start + size],
                        "attempt": 0,
                    },
                    delay,
                )

    # -- resource events (system topic of the subscription) --------------------------------
    def resource_event(self, resource_id: str, kind: str, resource_type: str) -> None:
        subscription_id = resource_id.strip("/").split("/")[1]
        provider = resource_type.split("/", maxsplit=1)[0]
        action = "write" if kind == "write" else "delete"
        operation = f"{_type_of(resource_id)}/{action}"
        event = {
            "subject": resource_id,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess"
            if kind == "write"
            else "Microsoft.Resources.ResourceDeleteSuccess",
            "eventTime": iso(self.world.clock.now()),
            "id": str(uuid.uuid4()),
            "data": {
                "authorization": {
                    "scope": resource_id,
                    "action": operation,
                    "evidence": {"role": "Contributor"},
                },
                "claims": _caller_claims(self.world.now()),
                "correlationId": str(uuid.uuid4()),
                "resourceProvider": provider,
                "resourceUri": resource_id,
                "operationName": operation,
                "status": "Succeeded",
                "subscriptionId": subscription_id,
                "tenantId": TENANT,
            },
            "dataVersion": "2",
            "metadataVersion": "1",
            "topic": f"/subscriptions/{subscription_id}",
        }
        self.resource_events.append(event)
        self._fan_out("", [event], subscription_id)

    # -- custom topics (the product's outcome events) --------------------------------------
    def add_topic(self, name: str) -> dict[str, Any]:
        key = name.lower()
        if key not in self.topics:
            self.topics[key] = {"name": name, "key": secrets.token_urlsafe(32), "events": []}
        return self.topics[key]

    def topic(self, name: str) -> dict[str, Any]:
        topic = self.topics.get(name.lower())
        if topic is None:
            raise NotFound("NotFound", f"The topic '{name}' does not exist.")
        return topic

    def publish(self, name: str, events: list[dict[str, Any]]) -> None:
        topic = self.topic(name)
        for event in events:
            topic["events"].append({"received": iso(self.world.clock.now()), "event": event})
        self._fan_out(name.lower(), events)

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"subscriptions": self.subscriptions, "topics": self.topics}

    def load(self, data: dict[str, Any]) -> None:
        self.subscriptions = data.get("subscriptions", {})
        self.topics = data.get("topics", self.topics)


def _caller_claims(now: float) -> dict[str, str]:
    """The claims of the caller's token as ARM puts them in resource events: the sandbox's service
    principal (managed identity). An interactive user's token would add name, upn, puid, ipaddr, ..."""
    from armsim.core.auth import SANDBOX_PRINCIPAL_ID

    issued = str(int(now) - 300)
    return {
        "aud": "https://management.azure.com/",
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": issued,
        "nbf": issued,
        "exp": str(int(now) + 3300),
        "aio": "armsim",
        "appid": SANDBOX_PRINCIPAL_ID,
        "appidacr": "2",
        "http://schemas.microsoft.com/identity/claims/identityprovider": f"https://sts.windows.net/{TENANT}/",
        "http://schemas.microsoft.com/identity/claims/objectidentifier": SANDBOX_PRINCIPAL_ID,
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": SANDBOX_PRINCIPAL_ID,
        "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }


def _type_of(resource_id: str) -> str:
    """'Microsoft.Compute/virtualMachines' (or '.../virtualMachines/extensions') of a resource id."""
    parts = resource_id.strip("/").split("/")
    index = [p.lower() for p in parts].index("providers")
    rest = parts[index + 1 :]
    return "/".join([rest[0], *rest[1::2]])


def _advanced_match(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    value: Any = event
    for part in str(rule.get("key", "")).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    text = str(value or "").lower()
    values = [str(v).lower() for v in rule.get("values") or []]
    operator = rule.get("operatorType")
    if operator == "StringIn":
        return text in values
    if operator == "StringNotIn":
        return text not in values
    if operator == "StringBeginsWith":
        return any(text.startswith(v) for v in values)
    if operator == "StringEndsWith":
        return any(text.endswith(v) for v in values)
    if operator == "StringContains":
        return any(v in text for v in values)
    raise BadRequest("InvalidRequest", f"armsim does not simulate the advanced filter operator '{operator}'.")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")  # noqa: S310 - configured webhook
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)
