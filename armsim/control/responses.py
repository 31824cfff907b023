"""Routes of the control API under /_armsim/: health, reset, seeding, clock, settings, faults,
statistics, events, and the App Service style managed-identity token endpoint.

Every control route is `/_armsim{path}`, counted as operation `Control_{path}`; a request whose
body lacks something or holds a wrong value (ValueError, KeyError, TypeError in its method) is
answered 400 InvalidControlRequest "{path}: {the error}".
"""

from __future__ import annotations

import functools
import hmac
from typing import Any

from armsim.backup.models import BackupBackend
from armsim.compute.models import ComputeBackend
from armsim.control.models import ControlBackend
from armsim.core.auth import issue_token
from armsim.core.clock import parse_iso
from armsim.core.errors import BadRequest, ResourceNotFound, Unauthorized
from armsim.core.http import Endpoint, Handler, Request, Response
from armsim.core.responses import Responses
from armsim.eventgrid.models import EventGridBackend
from armsim.resourcegraph.models import ResourceGraphBackend
from armsim.resources.models import ResourcesBackend

PREFIX = "/_armsim"


def _control(method: str, path: str, handler: str) -> Endpoint:
    return Endpoint(method, PREFIX + path, f"Control_{path}", handler, None, service="none")


ROUTES = (
    _control("GET", "/health", "health"),
    _control("POST", "/reset", "reset"),
    _control("GET", "/identity/token", "identity_token"),
    _control("GET", "/clock", "get_clock"),
    _control("POST", "/clock", "set_clock"),
    _control("GET", "/config", "get_config"),
    _control("POST", "/config", "set_config"),
    _control("GET", "/throttling", "get_throttling"),
    _control("POST", "/throttling/refill", "refill_throttling"),
    _control("GET", "/faults", "get_faults"),
    _control("POST", "/faults", "set_faults"),
    _control("GET", "/stats", "get_stats"),
    _control("POST", "/stats/reset", "reset_stats"),
    _control("POST", "/subscriptions", "add_subscription"),
    _control("POST", "/seed", "seed"),
    _control("POST", "/vms/state", "set_vm_state"),
    _control("POST", "/jobs/outcomes", "plan_job_outcomes"),
    _control("POST", "/vms/boot", "plan_vm_boot"),
    _control("GET", "/events", "get_events"),
    _control("POST", "/eventgrid/subscriptions", "add_event_subscription"),
    _control("GET", "/eventgrid/subscriptions", "list_event_subscriptions"),
    _control("DELETE", "/eventgrid/subscriptions/{name}", "delete_event_subscription"),
    _control("POST", "/eventgrid/topics", "add_topic"),
    _control("GET", "/eventgrid/topics/{name}", "get_topic"),
)


class ControlResponses(Responses[ControlBackend]):
    def bind(self, endpoint: Endpoint) -> Handler:
        """Bad input to a control route is 400 InvalidControlRequest, naming the route."""
        return functools.partial(_guarded, super().bind(endpoint), endpoint.template.removeprefix(PREFIX))

    def health(self, request: Request) -> Response:
        return Response(200, {"status": "ready", "clock": self.world.clock.describe()})

    def reset(self, request: Request) -> Response:
        self.world.reset()
        return Response(200, {"status": "reset"})

    def identity_token(self, request: Request) -> Response:
        presented = request.headers.get("x-identity-header", "")
        expected = self.backend.identity_header
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Unauthorized("Unauthorized", "The X-IDENTITY-HEADER header is missing or wrong.")
        resource = request.query.get("resource") or request.query.get("scope")
        if not resource:
            raise BadRequest("BadRequest", "The 'resource' query parameter is required.")
        # A user-assigned identity is chosen by client_id, principal_id (object_id) or mi_res_id, as
        # on App Service; each is a principal of its own (ARM throttles per principal).
        chosen = {
            k: request.query[k]
            for k in ("client_id", "principal_id", "object_id", "mi_res_id")
            if request.query.get(k)
        }
        return Response(200, issue_token(resource, identity=chosen or None))

    # -- the clock, settings, throttling, faults and statistics ----------------------------------
    def get_clock(self, request: Request) -> Response:
        return Response(200, self.world.clock.describe())

    def set_clock(self, request: Request) -> Response:
        world = self.world
        data = _body(request)
        if "speed" in data:
            world.clock.set_speed(float(data["speed"]))
        if "set" in data:
            world.clock.set(parse_iso(str(data["set"])))
        if "advanceSeconds" in data:
            world.clock.advance(float(data["advanceSeconds"]))
        world.tick()
        return Response(200, world.clock.describe())

    def get_config(self, request: Request) -> Response:
        return Response(200, self.world.config)

    def set_config(self, request: Request) -> Response:
        self.world.configure(_body(request))
        return Response(200, self.world.config)

    def get_throttling(self, request: Request) -> Response:
        return Response(
            200, {"settings": self.world.config["throttling"], "buckets": self.world.throttle.describe()}
        )

    def refill_throttling(self, request: Request) -> Response:
        self.world.throttle.refill()
        return Response(
            200, {"settings": self.world.config["throttling"], "buckets": self.world.throttle.describe()}
        )

    def get_faults(self, request: Request) -> Response:
        return Response(200, self.world.faults.describe())

    def set_faults(self, request: Request) -> Response:
        self.world.faults.configure(_body(request))
        return Response(200, self.world.faults.describe())

    def get_stats(self, request: Request) -> Response:
        return Response(200, self.world.stats.snapshot(include_log=request.query.get("log") in ("1", "true")))

    def reset_stats(self, request: Request) -> Response:
        self.world.stats.reset()
        return Response(200, self.world.stats.snapshot())

    # -- the estate ------------------------------------------------------------------------------
    def add_subscription(self, request: Request) -> Response:
        data = _body(request)
        return Response(
            200,
            self.world.backend(ResourcesBackend).add_subscription(
                str(data["subscriptionId"]), str(data.get("displayName", ""))
            ),
        )

    def seed(self, request: Request) -> Response:
        from armsim.control.seed import apply_seed

        answer = apply_seed(self.world, _body(request))
        self.world.backend(
            ResourceGraphBackend
        ).seeded()  # a seeded estate is history: Resource Graph has indexed it already
        return Response(200, answer)

    def set_vm_state(self, request: Request) -> Response:
        data = _body(request)
        compute = self.world.backend(ComputeBackend)
        record = compute.find_vm(str(data["id"]))
        if record is None:
            raise ResourceNotFound(f"No VM {data['id']}")
        for field in ("agent", "power", "provisioningState", "agentVersion"):
            if field in data:
                record["sim"][field] = data[field]
        if "agent" in data:
            record["sim"].pop("agentReadyAt", None)  # a state set explicitly holds at once
        self.world.changed()
        return Response(200, compute.instance_view(record))

    def plan_job_outcomes(self, request: Request) -> Response:
        data = _body(request)
        backup = self.world.backend(BackupBackend)
        operation = str(data.get("operation", "Backup"))
        if operation == "Restore":
            from armsim.backup import restore

            queued = restore.force_outcomes(
                backup,
                str(data["vm"]),
                str(data["outcome"]),
                data.get("errorCode"),
                int(data.get("count", 1)),
            )
            return Response(200, {"queued": queued})
        if operation != "Backup":
            raise ValueError("operation must be Backup or Restore")
        backup.force_outcomes(
            str(data["vm"]), str(data["outcome"]), data.get("errorCode"), int(data.get("count", 1))
        )
        return Response(200, {"queued": len(backup.forced.get(str(data["vm"]).lower(), []))})

    def plan_vm_boot(self, request: Request) -> Response:
        data = _body(request)
        seconds = data.get("bootSeconds")
        queued = self.world.backend(ComputeBackend).plan_boot(
            str(data["source"]) if data.get("source") else None,
            str(data.get("outcome", "Boots")),
            None if seconds is None else float(seconds),
            int(data.get("count", 1)),
        )
        self.world.changed()
        return Response(200, {"queued": queued})

    # -- Event Grid ------------------------------------------------------------------------------
    def get_events(self, request: Request) -> Response:
        eventgrid = self.world.backend(EventGridBackend)
        return Response(
            200,
            {
                "resourceEvents": eventgrid.resource_events,
                "deliveries": eventgrid.deliveries,
                "deadLetters": eventgrid.dead_letters,
                "topics": {t["name"]: [e["event"] for e in t["events"]] for t in eventgrid.topics.values()},
            },
        )

    def add_event_subscription(self, request: Request) -> Response:
        return Response(201, self.world.backend(EventGridBackend).add_subscription(_body(request)))

    def list_event_subscriptions(self, request: Request) -> Response:
        return Response(200, {"value": list(self.world.backend(EventGridBackend).subscriptions.values())})

    def delete_event_subscription(self, request: Request) -> Response:
        self.world.backend(EventGridBackend).remove_subscription(request.params["name"])
        return Response(204)

    def add_topic(self, request: Request) -> Response:
        topic = self.world.backend(EventGridBackend).add_topic(str(_body(request)["name"]))
        return Response(201, _topic_view(request, topic))

    def get_topic(self, request: Request) -> Response:
        topic = self.world.backend(EventGridBackend).topic(request.params["name"])
        view = _topic_view(request, topic)
        view["events"] = [e["event"] for e in topic["events"]]
        return Response(200, view)


def _guarded(handler: Handler, path: str, request: Request) -> Response:
    try:
        return handler(request)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("InvalidControlRequest", f"{path}: {exc}") from None


def _body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    data = request.json()
    return data if isinstance(data, dict) else {}


def _topic_view(request: Request, topic: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": topic["name"],
        "endpoint": f"{request.base_url}/eventgrid/topics/{topic['name']}/api/events",
        "key": topic["key"],
    }
