"""The control API under /_armsim/: health, reset, seeding, clock, settings, faults, statistics,
events, and the App Service style managed-identity token endpoint."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from armsim.core.auth import issue_token
from armsim.core.clock import parse_iso
from armsim.core.errors import ArmError
from armsim.core.http import Request, Response, Router
from armsim.core.world import Provider

if TYPE_CHECKING:
    from armsim.backup.models import BackupBackend
    from armsim.compute.models import ComputeBackend
    from armsim.eventgrid.models import EventGridBackend
    from armsim.resources.models import ResourcesBackend
    from armsim.vaults.models import VaultsBackend


class ControlBackend(Provider):
    name = "control"
    identity_header = ""  # set by the server: the value clients send in X-IDENTITY-HEADER

    def reset(self) -> None:
        """The control API has no state of its own."""

    def to_dict(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        """Nothing to load."""

    def register(self, router: Router) -> None:
        world = self.world

        def control(method: str, path: str) -> Callable[[Callable[[Request], Response]], Any]:
            def wrap(handler: Callable[[Request], Response]) -> Any:
                def guarded(request: Request) -> Response:
                    try:
                        return handler(request)
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ArmError(400, "InvalidControlRequest", f"{path}: {exc}") from None

                return router.add(method, f"/_armsim{path}", f"Control_{path}", None, service="none")(guarded)

            return wrap

        def body(request: Request) -> dict[str, Any]:
            if not request.body.strip():
                return {}
            data = request.json()
            return data if isinstance(data, dict) else {}

        @control("GET", "/health")
        def health(request: Request) -> Response:
            return Response(200, {"status": "ready", "clock": world.clock.describe()})

        @control("POST", "/reset")
        def reset(request: Request) -> Response:
            world.reset()
            return Response(200, {"status": "reset"})

        @control("GET", "/identity/token")
        def token(request: Request) -> Response:
            presented = request.headers.get("x-identity-header", "")
            if not self.identity_header or not hmac.compare_digest(
                presented.encode(), self.identity_header.encode()
            ):
                raise ArmError(401, "Unauthorized", "The X-IDENTITY-HEADER header is missing or wrong.")
            resource = request.query.get("resource") or request.query.get("scope")
            if not resource:
                raise ArmError(400, "BadRequest", "The 'resource' query parameter is required.")
            # A user-assigned identity is chosen by client_id, principal_id (object_id) or mi_res_id, as
            # on App Service; each is a principal of its own (ARM throttles per principal).
            chosen = {
                k: request.query[k]
                for k in ("client_id", "principal_id", "object_id", "mi_res_id")
                if request.query.get(k)
            }
            return Response(200, issue_token(resource, identity=chosen or None))

        @control("GET", "/clock")
        def get_clock(request: Request) -> Response:
            return Response(200, world.clock.describe())

        @control("POST", "/clock")
        def set_clock(request: Request) -> Response:
            data = body(request)
            if "speed" in data:
                world.clock.set_speed(float(data["speed"]))
            if "set" in data:
                world.clock.set(parse_iso(str(data["set"])))
            if "advanceSeconds" in data:
                world.clock.advance(float(data["advanceSeconds"]))
            world.tick()
            return Response(200, world.clock.describe())

        @control("GET", "/config")
        def get_config(request: Request) -> Response:
            return Response(200, world.config)

        @control("POST", "/config")
        def set_config(request: Request) -> Response:
            world.configure(body(request))
            return Response(200, world.config)

        @control("GET", "/throttling")
        def get_throttling(request: Request) -> Response:
            return Response(
                200, {"settings": world.config["throttling"], "buckets": world.throttle.describe()}
            )

        @control("POST", "/throttling/refill")
        def refill_throttling(request: Request) -> Response:
            world.throttle.refill()
            return Response(
                200, {"settings": world.config["throttling"], "buckets": world.throttle.describe()}
            )

        @control("GET", "/faults")
        def get_faults(request: Request) -> Response:
            return Response(200, world.faults.describe())

        @control("POST", "/faults")
        def set_faults(request: Request) -> Response:
            world.faults.configure(body(request))
            return Response(200, world.faults.describe())

        @control("GET", "/stats")
        def stats(request: Request) -> Response:
            return Response(200, world.stats.snapshot(include_log=request.query.get("log") in ("1", "true")))

        @control("POST", "/stats/reset")
        def reset_stats(request: Request) -> Response:
            world.stats.reset()
            return Response(200, world.stats.snapshot())

        @control("POST", "/subscriptions")
        def add_subscription(request: Request) -> Response:
            data = body(request)
            return Response(
                200,
                self.resources.add_subscription(
                    str(data["subscriptionId"]), str(data.get("displayName", ""))
                ),
            )

        @control("POST", "/seed")
        def seed(request: Request) -> Response:
            from armsim.control.seed import apply_seed

            answer = apply_seed(world, body(request))
            graph = world.providers.get("resourcegraph")
            if graph is not None:
                graph.seeded()  # type: ignore[attr-defined]  # a seeded estate is history: Resource Graph has indexed it already
            return Response(200, answer)

        @control("POST", "/vms/state")
        def vm_state(request: Request) -> Response:
            data = body(request)
            record = self.compute.find_vm(str(data["id"]))
            if record is None:
                raise ArmError(404, "ResourceNotFound", f"No VM {data['id']}")
            for field in ("agent", "power", "provisioningState", "agentVersion"):
                if field in data:
                    record["sim"][field] = data[field]
            if "agent" in data:
                record["sim"].pop("agentReadyAt", None)  # a state set explicitly holds at once
            world.changed()
            return Response(200, self.compute.instance_view(record))

        @control("POST", "/jobs/outcomes")
        def job_outcomes(request: Request) -> Response:
            data = body(request)
            operation = str(data.get("operation", "Backup"))
            if operation == "Restore":
                from armsim.backup import restore

                queued = restore.force_outcomes(
                    self.backup,
                    str(data["vm"]),
                    str(data["outcome"]),
                    data.get("errorCode"),
                    int(data.get("count", 1)),
                )
                return Response(200, {"queued": queued})
            if operation != "Backup":
                raise ValueError("operation must be Backup or Restore")
            self.backup.force_outcomes(
                str(data["vm"]), str(data["outcome"]), data.get("errorCode"), int(data.get("count", 1))
            )
            return Response(200, {"queued": len(self.backup.forced.get(str(data["vm"]).lower(), []))})

        @control("POST", "/vms/boot")
        def vm_boot(request: Request) -> Response:
            data = body(request)
            seconds = data.get("bootSeconds")
            queued = self.compute.plan_boot(
                str(data["source"]) if data.get("source") else None,
                str(data.get("outcome", "Boots")),
                None if seconds is None else float(seconds),
                int(data.get("count", 1)),
            )
            world.changed()
            return Response(200, {"queued": queued})

        @control("GET", "/events")
        def events(request: Request) -> Response:
            eventgrid = self.eventgrid
            return Response(
                200,
                {
                    "resourceEvents": eventgrid.resource_events,
                    "deliveries": eventgrid.deliveries,
                    "deadLetters": eventgrid.dead_letters,
                    "topics": {
                        t["name"]: [e["event"] for e in t["events"]] for t in eventgrid.topics.values()
                    },
                },
            )

        @control("POST", "/eventgrid/subscriptions")
        def add_event_subscription(request: Request) -> Response:
            return Response(201, self.eventgrid.add_subscription(body(request)))

        @control("GET", "/eventgrid/subscriptions")
        def list_event_subscriptions(request: Request) -> Response:
            return Response(200, {"value": list(self.eventgrid.subscriptions.values())})

        @control("DELETE", "/eventgrid/subscriptions/{name}")
        def delete_event_subscription(request: Request) -> Response:
            self.eventgrid.remove_subscription(request.params["name"])
            return Response(204)

        @control("POST", "/eventgrid/topics")
        def add_topic(request: Request) -> Response:
            topic = self.eventgrid.add_topic(str(body(request)["name"]))
            return Response(201, self._topic_view(request, topic))

        @control("GET", "/eventgrid/topics/{name}")
        def get_topic(request: Request) -> Response:
            topic = self.eventgrid.topic(request.params["name"])
            view = self._topic_view(request, topic)
            view["events"] = [e["event"] for e in topic["events"]]
            return Response(200, view)

    def _topic_view(self, request: Request, topic: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": topic["name"],
            "endpoint": f"{request.base_url}/eventgrid/topics/{topic['name']}/api/events",
            "key": topic["key"],
        }

    @property
    def resources(self) -> ResourcesBackend:
        backend: ResourcesBackend = self.world.provider("resources")
        return backend

    @property
    def compute(self) -> ComputeBackend:
        backend: ComputeBackend = self.world.provider("compute")
        return backend

    @property
    def vaults(self) -> VaultsBackend:
        backend: VaultsBackend = self.world.provider("vaults")
        return backend

    @property
    def backup(self) -> BackupBackend:
        backend: BackupBackend = self.world.provider("backup")
        return backend

    @property
    def eventgrid(self) -> EventGridBackend:
        backend: EventGridBackend = self.world.provider("eventgrid")
        return backend
