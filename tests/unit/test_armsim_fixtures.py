"""The ground truth the armsim tests compare with is in the repository and complete: the official REST
examples (tests/fixtures/azure-rest-examples/) and the trimmed real Azure recordings
(tests/fixtures/azure-recordings/). A missing file fails, never skips."""

from __future__ import annotations

import json

import pytest

from tests import recordings
from tests.examples_support import EXAMPLES, REPO, example_path, optional_example


def test_every_vendored_example_parses_and_is_listed_in_sources() -> None:
    files = sorted(EXAMPLES.rglob("*.json"))
    assert len(files) == 57, [str(f.relative_to(EXAMPLES)) for f in files]
    sources = (EXAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))
        assert f"| {path.relative_to(EXAMPLES)} |" in sources, f"{path.name} is not in SOURCES.md"
    assert "MIT License" in (EXAMPLES / "LICENSE").read_text(encoding="utf-8")


def test_examples_live_in_the_repository() -> None:
    assert EXAMPLES.is_relative_to(REPO)
    assert example_path() == EXAMPLES
    assert (
        optional_example("compute", "VirtualMachine_Get.json")
        == EXAMPLES / "compute" / "VirtualMachine_Get.json"
    )


@pytest.mark.parametrize("lookup", [example_path, optional_example])
def test_a_missing_example_fails_the_test_and_says_how_to_restore_it(lookup: object) -> None:
    assert callable(lookup)
    with pytest.raises(pytest.fail.Exception) as failure:
        lookup("recoveryservicesbackup", "NoSuchExample.json")
    message = str(failure.value)
    assert "tests/fixtures/azure-rest-examples/recoveryservicesbackup/NoSuchExample.json" in message
    assert "git checkout" in message


# -- the recorded Azure interactions ---------------------------------------------------------------
@pytest.mark.parametrize("cassette", recordings.CASSETTES)
def test_every_vendored_cassette_exists_parses_and_names_its_operations(cassette: str) -> None:
    path = recordings.fixture_path(cassette)
    assert path.is_file(), f"{path} is missing"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(raw, list) and raw
    loaded = recordings.interactions(cassette)
    assert len(loaded) == len(raw)
    indexes = [i.index for i in loaded]
    assert indexes == sorted(set(indexes)), "interactions are unique and in recorded order"
    readme = (recordings.FIXTURES / "README.md").read_text(encoding="utf-8")
    for interaction in loaded:
        assert interaction.cassette == cassette
        assert interaction.operation, (
            f"{interaction.source}: {interaction.method} {interaction.path} names no operation"
        )
        assert interaction.uri.startswith("https://management.azure.com/")
        assert interaction.api_version
        assert interaction.line > 0 and interaction.shows
        assert 200 <= interaction.status < 600
        assert all(name == name.lower() for name in interaction.headers)
        interaction.body, interaction.request_body  # noqa: B018 - both parse
        assert f"| {cassette}.json | {interaction.index} | {interaction.line} |" in readme


def test_the_recordings_folder_has_its_provenance_and_nothing_else() -> None:
    expected = {f"{c}.json" for c in recordings.CASSETTES} | set(recordings.OTHER_FILES)
    assert {p.name for p in recordings.FIXTURES.iterdir()} == expected
    sources = (recordings.FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    assert "6ca41c444ed65c210fcfefde90618db2ef66a7ce" in sources and "Azure/azure-cli" in sources
    assert "MIT License" in (recordings.FIXTURES / "LICENSE").read_text(encoding="utf-8")


def test_the_loader_gives_frozen_interactions_and_fresh_bodies() -> None:
    job = recordings.recorded("disk_exclusion", 219)
    assert job is recordings.recorded("test_backup_disk_exclusion.yaml", 219)
    assert (job.cassette, job.line, job.method, job.status, job.operation) == (
        "test_backup_disk_exclusion",
        12198,
        "GET",
        200,
        "JobDetails_Get",
    )
    assert job.source == "test_backup_disk_exclusion.yaml#219 (line 12198)"
    bag = job.body["properties"]["extendedInfo"]["propertyBag"]
    assert bag["Recovery Point Expiry Time in UTC"] == "1/29/2020 12:00:00 AM"
    bag.clear()
    assert job.body["properties"]["extendedInfo"]["propertyBag"], "each access parses anew"
    with pytest.raises(AttributeError):
        job.status = 500  # type: ignore[misc]
    with pytest.raises(TypeError):
        job.headers["location"] = "x"  # type: ignore[index]
    trigger = recordings.recorded("job", 87)
    assert trigger.header("Azure-AsyncOperation") == trigger.headers["azure-asyncoperation"]
    assert trigger.request_body == {
        "properties": {
            "recoveryPointExpiryTimeInUTC": "2019-08-02T00:00:00.000Z",
            "objectType": "IaasVMBackupRequest",
        }
    }
    assert ";" in trigger.path and "%3B" not in trigger.path


def test_select_by_operation_method_and_path() -> None:
    lists = recordings.select(operation="BackupJobs_List")
    assert [(i.cassette, i.index) for i in lists] == [("test_backup_job", n) for n in (244, 245, 246, 247)]
    assert recordings.select("GET", r"/backupJobs$", cassette="job") == lists
    assert {i.operation for i in recordings.select(status=202)} >= {
        "Backups_Trigger",
        "ProtectedItems_CreateOrUpdate",
    }
    with pytest.raises(ValueError, match="unknown operation"):
        recordings.select(operation="NoSuch_Operation")


def test_a_missing_recording_fails_the_test_and_says_how_to_restore_it() -> None:
    with pytest.raises(pytest.fail.Exception) as failure:
        recordings.interactions("no_such_cassette")
    assert "tests/fixtures/azure-recordings/test_backup_no_such_cassette.json" in str(failure.value)
    assert "vendor_recordings.py" in str(failure.value)
    with pytest.raises(
        pytest.fail.Exception, match=r"interaction 1 of test_backup_job\.yaml is not vendored"
    ):
        recordings.recorded("job", 1)
