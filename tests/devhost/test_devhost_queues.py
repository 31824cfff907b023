"""Queue triggers and queue output bindings against a real Azurite."""

import contextlib
import time

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from devhost_support import MASTER_KEY, Journal, StartHost

from devhost import Host
from devhost.azurite import Azurite

pytestmark = pytest.mark.azurite

QUEUES = ("work", "work-poison", "results", "doomed", "doomed-poison")


def queue(azurite: Azurite, name: str, *, base64: bool = True) -> QueueClient:
    """A client as an application would use one: writing base64 text, as the Functions host expects."""
    if not base64:
        return QueueClient.from_connection_string(azurite.connection_string, name)
    return QueueClient.from_connection_string(
        azurite.connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


def peek(client: QueueClient) -> list[str]:
    try:
        return [message.content for message in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:  # a poison queue is created with its first message
        return []


def wait_for_messages(client: QueueClient, count: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(messages := peek(client)) < count:
        assert time.monotonic() < deadline, f"{client.queue_name} holds {len(messages)} messages, not {count}"
        time.sleep(0.1)
    return messages


def wait_until_empty(client: QueueClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get_queue_properties().approximate_message_count:
        assert time.monotonic() < deadline, f"{client.queue_name} is not empty"
        time.sleep(0.1)


@pytest.fixture
def queue_host(azurite: Azurite, start_host: StartHost, journal: Journal) -> Host:
    for name in QUEUES:
        with contextlib.suppress(ResourceNotFoundError):
            queue(azurite, name).delete_queue()
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "AzureWebJobs.on_work.Disabled": "false",
        "AzureWebJobs.always_fails.Disabled": "false",
    }
    return start_host(settings=settings)


def test_message_is_processed_deleted_and_output_written(
    queue_host: Host, azurite: Azurite, journal: Journal
) -> None:
    work = queue(azurite, "work")  # created by devhost at start-up
    work.send_message("hello")
    [entry] = journal.wait_for("on_work", 1)
    assert entry["body"] == "hello"
    assert entry["dequeue_count"] == 1
    assert entry["inserted"] is True
    assert entry["invocation_id"]
    assert wait_for_messages(queue(azurite, "results"), 1) == ["done:hello"]
    wait_until_empty(work)


def test_always_failing_message_ends_in_the_poison_queue(
    queue_host: Host, azurite: Azurite, journal: Journal
) -> None:
    queue(azurite, "doomed").send_message("cannot work")
    entries = journal.wait_for("always_fails", 3)  # host.json maxDequeueCount: 3
    assert [e["dequeue_count"] for e in entries] == [1, 2, 3]
    assert wait_for_messages(queue(azurite, "doomed-poison"), 1) == ["cannot work"]
    wait_until_empty(queue(azurite, "doomed"))
    time.sleep(1.5)  # longer than host.json visibilityTimeout: no fourth attempt
    assert len(journal.entries("always_fails")) == 3


def test_message_that_is_not_base64_is_never_given_to_the_function(
    queue_host: Host, azurite: Azurite, journal: Journal
) -> None:
    queue(azurite, "work", base64=False).send_message("plain text, not base64!")
    poison = queue(azurite, "work-poison", base64=False)
    assert wait_for_messages(poison, 1) == ["plain text, not base64!"]
    assert journal.entries("on_work") == []


def test_admin_run_of_a_queue_function_writes_its_output(
    queue_host: Host, azurite: Azurite, journal: Journal
) -> None:
    response = requests.post(
        f"{queue_host.url}/admin/functions/on_work",
        headers={"x-functions-key": MASTER_KEY},
        json={"input": "from admin"},
        timeout=5,
    )
    assert response.status_code == 202
    [entry] = journal.wait_for("on_work", 1)
    assert (entry["body"], entry["dequeue_count"]) == ("from admin", 1)
    assert wait_for_messages(queue(azurite, "results"), 1) == ["done:from admin"]
