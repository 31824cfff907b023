"""How a job's error code is classed and what remedy the product reports (docs/AZURE_BACKUP_FACTS.md §3)."""

from __future__ import annotations

from autopilot.azure.errorcodes import ErrorClass, classify


def test_a_known_code_is_classed_whatever_its_case() -> None:
    assert classify("usererrorfsfreezefailed").error_class is ErrorClass.NEEDS_PERSON
    assert classify("BackUpOperationFailedV2").error_class is ErrorClass.TRANSIENT
    assert classify("GuestAgentSnapshotTaskStatusError").error_class is ErrorClass.EITHER


def test_a_numeric_code_is_looked_up_as_text() -> None:
    assert classify(380008).error_class is ErrorClass.NEEDS_PERSON
    assert "agent" in classify(380008).remedy


def test_an_unknown_code_reports_azures_own_recommendations() -> None:
    info = classify("UserErrorSomethingNew", (" Restart the VM. ", "", "Then retry."))
    assert info.error_class is ErrorClass.UNKNOWN
    assert info.code == "UserErrorSomethingNew"
    assert info.remedy == "Azure recommends: Restart the VM. Then retry."


def test_an_unknown_code_without_recommendations_points_to_the_guide() -> None:
    info = classify("UserErrorSomethingNew")
    assert info.error_class is ErrorClass.UNKNOWN and "troubleshooting guide" in info.remedy
    assert classify(None).error_class is ErrorClass.UNKNOWN


def test_recommendations_do_not_replace_the_remedy_of_a_known_code() -> None:
    assert (
        classify("UserErrorFsFreezeFailed", ("something else",)).remedy
        == classify("UserErrorFsFreezeFailed").remedy
    )
