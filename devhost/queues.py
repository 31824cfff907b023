"""Azure Storage queues (Azurite locally): queue triggers and queue output bindings.

Message text is encoded as host.json ``extensions.queues.messageEncoding`` says: ``base64`` (the
host's default) means the message text is the base64 of the UTF-8 body, which is what
azure-storage-queue writes with ``TextBase64EncodePolicy`` and reads with ``TextBase64DecodePolicy``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.decorators.core import Binding
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient, QueueMessage

from .config import HostError, QueueOptions, resolve_setting_names
from .functions import FunctionSpec

__all__ = ["QueueListener", "QueueStore"]

log = logging.getLogger("devhost")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
LEASE_SECONDS = 600  # how long a received message stays invisible while its function runs (as the host)
# The host renews that lease while the function runs, at half of it (WebJobs' queue listener: a timer
# updating the message's visibility): a message is seen again only if its holder is gone.
FIRST_POLL_INTERVAL = 0.1


class QueueStore:
    """Queue clients for the app's bindings, resolved and created once at start-up."""

    def __init__(self, options: QueueOptions, environ: Mapping[str, str] = os.environ) -> None:
        self.options = options
        self._environ = environ
        self._clients: dict[tuple[str, str], QueueClient] = {}  # (function, binding name) -> client
        self._connections: dict[tuple[str, str], str] = {}  # (function, binding name) -> connection string
        self._created: dict[tuple[str, str], QueueClient] = {}  # (connection string, queue) -> client
        self._lock = threading.Lock()

    def register(self, spec: FunctionSpec, binding: Binding) -> QueueClient:
        """Resolve the binding's connection and queue name, and create the queue if it is missing."""
        what = f"function {spec.name!r}: queue binding {binding.name!r}"
        setting = str(getattr(binding, "connection", None) or DEFAULT_CONNECTION)
        connection_string = self._connection_string(setting, what)
        queue_name = resolve_setting_names(str(getattr(binding, "queue_name", "")), f"{what}: queue name")
        client = self.client(connection_string, queue_name.lower(), what)
        self._clients[(spec.name, binding.name)] = client
        self._connections[(spec.name, binding.name)] = connection_string
        return client

    def poison_client(self, spec: FunctionSpec) -> QueueClient:
        """The ``<queue>-poison`` queue of a queue-triggered function, created when first needed."""
        key = (spec.name, spec.trigger.name)
        name = f"{self._clients[key].queue_name}-poison"
        return self.client(self._connections[key], name, f"function {spec.name!r}: poison queue")

    def client(self, connection_string: str, queue_name: str, what: str) -> QueueClient:
        """A client of the queue, which is created if it does not exist yet."""
        key = (connection_string, queue_name)
        with self._lock:
            if key not in self._created:
                client = QueueClient.from_connection_string(
                    connection_string, queue_name, retry_total=2, connection_timeout=5
                )
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
                except (AzureError, ValueError) as error:
                    raise HostError(
                        f"{what}: cannot create queue {queue_name!r} at {client.url}: {error}"
                    ) from None
                self._created[key] = client
            return self._created[key]

    def close(self) -> None:
        with self._lock:
            for client in self._created.values():
                client.close()
            self._created.clear()

    def _connection_string(self, setting: str, what: str) -> str:
        for name in (setting, f"AzureWebJobs{setting}"):
            if self._environ.get(name):
                return self._environ[name]
        if any(key.startswith(f"{setting}__") for key in self._environ):
            raise HostError(
                f"{what}: connection {setting!r} is identity-based ({setting}__...); devhost needs a "
                f"connection string in the setting {setting!r} (for Azurite: UseDevelopmentStorage=true)"
            )
        raise HostError(
            f"{what}: the connection setting {setting!r} is not set; put a storage connection string in it "
            "(for Azurite: UseDevelopmentStorage=true)"
        )

    def encode(self, body: str | bytes) -> str:
        data = body.encode() if isinstance(body, str) else body
        if self.options.message_encoding == "base64":
            return base64.b64encode(data).decode()
        return data.decode()

    def decode(self, text: str) -> bytes:
        """The message body; ValueError when base64 is expected and the text is not base64."""
        if self.options.message_encoding != "base64":
            return text.encode()
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ValueError(
                f"message is not base64 (host.json messageEncoding is base64): {error}"
            ) from None

    def write_output(self, spec: FunctionSpec, binding: Binding, value: Any) -> None:
        """Put what the function set on a queue output binding on its queue."""
        if value is None:
            return
        items = value if isinstance(value, list | tuple) else [value]
        messages: list[str] = []
        for item in items:
            body = item.get_body() if isinstance(item, func.QueueMessage) else item
            if not isinstance(body, str | bytes):
                raise TypeError(
                    f"queue output {binding.name!r} of {spec.name!r} got {type(body).__name__}; "
                    "set a str, bytes or a list of them"
                )
            messages.append(self.encode(body))
        client = self._clients[(spec.name, binding.name)]
        for message in messages:
            client.send_message(message)


Invoke = Callable[[FunctionSpec, Any, str], Any]


class QueueListener:
    """Polls one queue for one function, as the Functions host's queue listener does.

    Receives up to batchSize messages (each invisible for LEASE_SECONDS) and runs them in parallel;
    once no more than newBatchThreshold (default batchSize/2) are still being processed it fetches
    another batch, so up to batchSize + newBatchThreshold run at once, each waiting for a thread of
    the language workers. Deletes each one whose function succeeded; a failed one becomes visible
    again after host.json visibilityTimeout, and after maxDequeueCount failed attempts it moves to
    ``<queue>-poison``. An empty queue is polled less and less often, up to maxPollingInterval.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        store: QueueStore,
        client: QueueClient,
        invoke: Invoke,
        stop: threading.Event,
    ) -> None:
        self.spec = spec
        self._store = store
        self._client = client
        self._invoke = invoke
        self._stop = stop
        self._options = store.options
        self._thread = threading.Thread(target=self._run, name=f"queue-{spec.name}", daemon=True)
        self._settled = threading.Condition()
        self._in_flight = 0  # messages received and not settled yet

    @property
    def queue_name(self) -> str:
        return str(self._client.queue_name)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        interval = FIRST_POLL_INTERVAL
        threshold = self._options.threshold
        with ThreadPoolExecutor(
            self._options.batch_size + threshold, thread_name_prefix=f"queue-{self.spec.name}"
        ) as pool:
            while not self._stop.is_set():
                with self._settled:
                    while self._in_flight > threshold and not self._stop.is_set():
                        self._settled.wait(0.5)
                if self._stop.is_set():
                    break
                try:
                    messages = list(
                        self._client.receive_messages(
                            max_messages=self._options.batch_size,
                            messages_per_page=self._options.batch_size,
                            visibility_timeout=LEASE_SECONDS,
                        )
                    )
                except Exception as error:  # Azurite stopped, network: poll again later
                    log.error("queue %r: receiving failed: %s", self._client.queue_name, error)
                    messages = []
                if messages:
                    interval = FIRST_POLL_INTERVAL
                    with self._settled:
                        self._in_flight += len(messages)
                    for message in messages:
                        pool.submit(self._settle, message)
                    continue
                self._stop.wait(interval)
                interval = min(interval * 2, max(self._options.max_polling_interval, FIRST_POLL_INTERVAL))

    def _settle(self, message: QueueMessage) -> None:
        try:
            self._process(message)
        finally:
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()

    def _process(self, message: QueueMessage) -> None:
        try:
            if message.dequeue_count is not None and message.dequeue_count > self._options.max_dequeue_count:
                self._to_poison(message)
                return
            try:
                body = self._store.decode(message.content or "")
            except ValueError as error:
                log.error("queue %r: message %s: %s", self._client.queue_name, message.id, error)
                self._failed(message)
                return
            trigger_message = TriggerMessage(
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            try:
                with self._leased(message):
                    self._invoke(
                        self.spec,
                        trigger_message,
                        f"New queue message detected on '{self._client.queue_name}'.",
                    )
            except Exception:  # logged by the invoker
                self._failed(message)
                return
            self._client.delete_message(message)
        except Exception:  # a storage error must not stop the listener; the message comes back later
            log.exception("queue %r: message %s could not be settled", self._client.queue_name, message.id)

    @contextlib.contextmanager
    def _leased(self, message: QueueMessage) -> Iterator[None]:
        """Keep the message invisible while the block runs: its visibility is renewed every half
        lease (the message then carries the newest pop receipt)."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LEASE_SECONDS / 2):
                try:
                    updated = self._client.update_message(message, visibility_timeout=LEASE_SECONDS)
                    message.pop_receipt = updated.pop_receipt
                    message.next_visible_on = updated.next_visible_on
                except Exception as error:  # the next renewal or the settling will tell
                    log.warning(
                        "queue %r: renewing the lease of %s failed: %s", self.queue_name, message.id, error
                    )

        renewer = threading.Thread(target=renew, name=f"lease-{message.id}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

    def _failed(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            self._to_poison(message)
        else:
            self._client.update_message(
                message, visibility_timeout=math.ceil(self._options.visibility_timeout)
            )

    def _to_poison(self, message: QueueMessage) -> None:
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self._options.max_dequeue_count,
            f"{self.queue_name}-poison",
        )
        self._store.poison_client(self.spec).send_message(message.content)
        self._client.delete_message(message)
