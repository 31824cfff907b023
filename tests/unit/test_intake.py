"""Which Event Grid events concern the product: VM writes in the subscriptions in scope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.azure.vms import vm_id_from_subject
from autopilot.protect.intake import WRITE_SUCCESS, Intake, describe, vm_from_event
from tests.examples_support import example_path

SUB = "00000000-0000-0000-0000-000000000001"
OTHER_SUB = "11111111-2222-3333-4444-555555555555"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01"
SCOPE = (SUB,)


@pytest.fixture
def sample() -> dict[str, Any]:
    """The official ResourceWriteSuccess sample (a storage account write), as Event Grid sends it."""
    path = example_path("eventgrid", "event-grid-schema", "resource_write_success.json")
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return event


def _write_event(
    sample: dict[str, Any],
    subject: str = VM_ID,
    operation: str = "Microsoft.Compute/virtualMachines/write",
    subscription: str = SUB,
) -> dict[str, Any]:
    """The sample turned into a write of `subject`: every field that names the resource replaced."""
    event = json.loads(json.dumps(sample))
    event["subject"] = subject
    event["topic"] = f"/subscriptions/{subscription}"
    data = event["data"]
    data["resourceUri"] = subject
    data["operationName"] = operation
    data["resourceProvider"] = operation.split("/", 1)[0]
    data["subscriptionId"] = subscription
    data["authorization"]["scope"] = subject
    data["authorization"]["action"] = operation
    return event


def _intake(event: dict[str, Any], scope: tuple[str, ...] = SCOPE) -> Intake:
    return vm_from_event(event.get("eventType"), event.get("subject"), event.get("data"), scope)


def test_sample_is_a_storage_write_and_is_ignored(sample: dict[str, Any]) -> None:
    assert sample["eventType"] == WRITE_SUCCESS
    intake = _intake(sample)
    assert intake.vm_id is None
    assert "not a virtual machine" in intake.reason


def test_vm_write_in_scope_names_the_vm(sample: dict[str, Any]) -> None:
    intake = _intake(_write_event(sample))
    assert intake == Intake(VM_ID, "VM write")


def test_vm_write_with_lower_case_resource_groups_gives_the_canonical_id(sample: dict[str, Any]) -> None:
    subject = VM_ID.replace("resourceGroups", "resourcegroups")  # as ARM writes it in events
    intake = _intake(_write_event(sample, subject=subject))
    assert intake.vm_id == VM_ID


def test_operation_name_is_compared_case_insensitively(sample: dict[str, Any]) -> None:
    intake = _intake(_write_event(sample, operation="MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE"))
    assert intake.vm_id == VM_ID


def test_scope_subscription_in_upper_case_still_matches(sample: dict[str, Any]) -> None:
    intake = _intake(_write_event(sample), scope=(SUB.upper(),))
    assert intake.vm_id == VM_ID


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.Resources.ResourceDeleteSuccess",
        "Microsoft.Resources.ResourceWriteFailure",
        "Microsoft.Resources.ResourceActionSuccess",
        "microsoft.resources.resourcewritesuccess",
        "",
        None,
        42,
    ],
)
def test_other_event_types_are_ignored(sample: dict[str, Any], event_type: object) -> None:
    event = _write_event(sample)
    event["eventType"] = event_type
    intake = _intake(event)
    assert intake.vm_id is None
    assert "is not Microsoft.Resources.ResourceWriteSuccess" in intake.reason


def test_extension_write_is_ignored(sample: dict[str, Any]) -> None:
    subject = f"{VM_ID}/extensions/AzureBackupLinuxExtension"
    intake = _intake(
        _write_event(sample, subject=subject, operation="Microsoft.Compute/virtualMachines/extensions/write")
    )
    assert intake.vm_id is None
    assert "child resources are ignored" in intake.reason


def test_vm_subject_with_another_operation_is_ignored(sample: dict[str, Any]) -> None:
    # e.g. an extension write reported with the VM as its subject
    intake = _intake(_write_event(sample, operation="Microsoft.Compute/virtualMachines/extensions/write"))
    assert intake.vm_id is None
    assert "is not a VM write" in intake.reason


def test_resource_uri_naming_another_vm_is_ignored(sample: dict[str, Any]) -> None:
    event = _write_event(sample)
    event["data"]["resourceUri"] = VM_ID.replace("vm-web-01", "vm-web-02")
    intake = _intake(event)
    assert intake.vm_id is None
    assert "resourceUri does not match" in intake.reason


def test_resource_uri_in_another_letter_case_is_accepted(sample: dict[str, Any]) -> None:
    event = _write_event(sample)
    event["data"]["resourceUri"] = VM_ID.lower()
    assert _intake(event).vm_id == VM_ID


def test_missing_resource_uri_is_accepted(sample: dict[str, Any]) -> None:
    event = _write_event(sample)
    del event["data"]["resourceUri"]
    assert _intake(event).vm_id == VM_ID


def test_vm_in_a_foreign_subscription_is_ignored(sample: dict[str, Any]) -> None:
    subject = VM_ID.replace(SUB, OTHER_SUB)
    intake = _intake(_write_event(sample, subject=subject, subscription=OTHER_SUB))
    assert intake.vm_id is None
    assert f"subscription {OTHER_SUB} is not in scope" in intake.reason


def test_nothing_is_in_scope_when_no_subscription_is(sample: dict[str, Any]) -> None:
    assert _intake(_write_event(sample), scope=()).vm_id is None


@pytest.mark.parametrize("data", [None, "a string", ["operationName"], 42, b"{}"], ids=repr)
def test_data_that_is_not_a_mapping_is_ignored(sample: dict[str, Any], data: object) -> None:
    event = _write_event(sample)
    event["data"] = data
    intake = _intake(event)
    assert intake.vm_id is None
    assert intake.reason == "the event has no data object"


def test_missing_operation_name_is_ignored(sample: dict[str, Any]) -> None:
    event = _write_event(sample)
    del event["data"]["operationName"]
    intake = _intake(event)
    assert intake.vm_id is None
    assert "is not a VM write" in intake.reason


def test_missing_subject_is_ignored(sample: dict[str, Any]) -> None:
    event = _write_event(sample)
    del event["subject"]
    assert _intake(event).vm_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("operationName", 1),
        ("operationName", ["Microsoft.Compute/virtualMachines/write"]),
        ("operationName", None),
        ("resourceUri", 1),
        ("resourceUri", {"id": VM_ID}),
    ],
)
def test_fields_of_the_wrong_type_are_ignored(sample: dict[str, Any], field: str, value: object) -> None:
    event = _write_event(sample)
    event["data"][field] = value
    assert _intake(event).vm_id is None


@pytest.mark.parametrize("subject", [42, None, [VM_ID], {"id": VM_ID}], ids=repr)
def test_subject_of_the_wrong_type_is_ignored(sample: dict[str, Any], subject: object) -> None:
    event = _write_event(sample)
    event["subject"] = subject
    assert _intake(event).vm_id is None


def test_reason_quotes_a_long_subject_only_in_part(sample: dict[str, Any]) -> None:
    event = _write_event(sample, subject="/x" * 5000)
    intake = _intake(event)
    assert intake.vm_id is None
    assert len(intake.reason) < 500


def test_describe_is_short_and_safe() -> None:
    line = describe({"id": "x" * 1000, "eventType": None})
    assert len(line) < 200
    assert "type='None'" in line


# --- arbitrary payloads --------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
SUBJECTS = st.one_of(
    st.sampled_from(
        [
            VM_ID,
            VM_ID.lower(),
            VM_ID.replace(SUB, OTHER_SUB),
            f"{VM_ID}/extensions/x",
            VM_ID.replace("virtualMachines", "disks"),
        ]
    ),
    JSON,
)
DATA = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "operationName": st.sampled_from(["Microsoft.Compute/virtualMachines/write", "x"]) | JSON,
            "resourceUri": st.sampled_from([VM_ID, VM_ID.lower(), ""]) | JSON,
            "subscriptionId": st.sampled_from([SUB, OTHER_SUB]) | JSON,
        },
    ),
    JSON,
)


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from([WRITE_SUCCESS, "Microsoft.Resources.ResourceDeleteSuccess"]) | JSON,
    subject=SUBJECTS,
    data=DATA,
    scope=st.lists(st.sampled_from([SUB, OTHER_SUB, SUB.upper()]) | st.text(max_size=40), max_size=3),
)
def test_arbitrary_payloads_never_raise(
    event_type: object, subject: object, data: object, scope: list[str]
) -> None:
    intake = vm_from_event(event_type, subject, data, scope)
    assert isinstance(intake.reason, str) and intake.reason
    if intake.vm_id is not None:
        # Only a VM write in scope gets through, and it names the subject's VM.
        assert event_type == WRITE_SUCCESS
        assert intake.vm_id == vm_id_from_subject(subject)
        assert intake.vm_id.split("/")[2].lower() in {s.lower() for s in scope}
        assert isinstance(data, dict)
        assert str(data["operationName"]).lower() == "microsoft.compute/virtualmachines/write"


MISSING = object()


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from([WRITE_SUCCESS, "Microsoft.Resources.ResourceDeleteSuccess"]),
    subject=st.sampled_from(
        [VM_ID, VM_ID.lower(), VM_ID.replace(SUB, OTHER_SUB), f"{VM_ID}/extensions/x", VM_ID + "/"]
    ),
    operation=st.sampled_from(
        ["Microsoft.Compute/virtualMachines/write", "microsoft.compute/virtualmachines/WRITE", "x", None]
    ),
    resource_uri=st.sampled_from([MISSING, VM_ID, VM_ID.upper(), VM_ID.replace("01", "02"), 7]),
    scope=st.lists(st.sampled_from([SUB, OTHER_SUB, SUB.upper()]), max_size=2),
)
def test_near_valid_events_are_accepted_exactly_when_every_check_holds(
    event_type: str, subject: str, operation: str | None, resource_uri: object, scope: list[str]
) -> None:
    data: dict[str, object] = {"operationName": operation}
    if resource_uri is not MISSING:
        data["resourceUri"] = resource_uri
    expected = (
        event_type == WRITE_SUCCESS
        and vm_id_from_subject(subject) is not None
        and str(operation).lower() == "microsoft.compute/virtualmachines/write"
        and (resource_uri is MISSING or str(resource_uri).lower() == subject.lower())
        and subject.split("/")[2] in {s.lower() for s in scope}
    )
    intake = vm_from_event(event_type, subject, data, scope)
    assert (intake.vm_id is not None) == expected, intake.reason
    if expected:
        assert intake.vm_id == vm_id_from_subject(subject)
