"""Real Azure interactions, recorded in 2019 and vendored trimmed in tests/fixtures/azure-recordings/
(README.md there lists each one and what it shows; scripts/vendor_recordings.py regenerates them).

    from tests.recordings import recorded, interactions, select

    job = recorded("test_backup_disk_exclusion", 219)  # or recorded("disk_exclusion", 219)
    job.body["properties"]["extendedInfo"]["propertyBag"]  # a fresh copy on every access
    job.status, job.header("Location"), job.operation, job.source
    select(operation="JobDetails_Get", cassette="job")  # every recorded job GET of test_backup_job
    select("GET", r"/backupJobs$")  # by method and a regular expression on the URL-decoded path

Interactions are frozen; `body` and `request_body` are parsed anew on each access, so a test may change
what it gets. A missing fixture file, or an interaction that is not vendored, fails the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "azure-recordings"
# The vendored cassettes (file stems); each is tests/fixtures/azure-recordings/<stem>.json.
CASSETTES = (
    "test_backup_disk_exclusion",
    "test_backup_item",
    "test_backup_job",
    "test_backup_policy",
    "test_backup_protection",
    "test_backup_restore",
    "test_backup_rp",
    "test_backup_softdelete",
    "test_backup_vault",
)
OTHER_FILES = ("README.md", "SOURCES.md", "LICENSE")

_VM = r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/virtualmachines/[^/]+"
_VAULT = r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.recoveryservices/vaults/[^/]+"
_ITEM = _VAULT + r"/backupfabrics/[^/]+/protectioncontainers/[^/]+/protecteditems/[^/]+"
_STORAGE = r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.storage/storageaccounts/[^/]+"
# Operation ids (as in the REST specs and armsim's statistics) -> (method, pattern of the whole
# URL-decoded path, case-insensitive).
OPERATIONS: dict[str, tuple[str, str]] = {
    "VirtualMachines_Get": ("GET", _VM),
    "Vaults_CreateOrUpdate": ("PUT", _VAULT),
    "Vaults_Get": ("GET", _VAULT),
    "BackupResourceStorageConfigsNonCRR_Get": ("GET", _VAULT + "/backupstorageconfig/vaultstorageconfig"),
    "BackupResourceStorageConfigsNonCRR_Update": ("PUT", _VAULT + "/backupstorageconfig/vaultstorageconfig"),
    "BackupPolicies_List": ("GET", _VAULT + "/backuppolicies"),
    "ProtectionPolicies_Get": ("GET", _VAULT + "/backuppolicies/[^/]+"),
    "ProtectionPolicies_CreateOrUpdate": ("PUT", _VAULT + "/backuppolicies/[^/]+"),
    "ProtectionContainers_Refresh": ("POST", _VAULT + "/backupfabrics/[^/]+/refreshcontainers"),
    "ProtectionContainerRefreshOperationResults_Get": ("GET", _VAULT + "/backupfabrics/[^/]+/operationresults/[^/]+"),
    "ProtectionContainerRefreshOperationStatuses_Get": ("GET", _VAULT + "/backupfabrics/[^/]+/operationsstatus/[^/]+"),
    "BackupProtectableItems_List": ("GET", _VAULT + "/backupprotectableitems"),
    "BackupProtectedItems_List": ("GET", _VAULT + "/backupprotecteditems"),
    "ProtectedItems_Get": ("GET", _ITEM),
    "ProtectedItems_CreateOrUpdate": ("PUT", _ITEM),
    "ProtectedItems_Delete": ("DELETE", _ITEM),
    "ProtectedItemOperationResults_Get": ("GET", _ITEM + "/operationresults/[^/]+"),
    "ProtectedItemOperationStatuses_Get": ("GET", _ITEM + "/operationsstatus/[^/]+"),
    "Backups_Trigger": ("POST", _ITEM + "/backup"),
    "RecoveryPoints_List": ("GET", _ITEM + "/recoverypoints"),
    "RecoveryPoints_Get": ("GET", _ITEM + "/recoverypoints/[^/]+"),
    "BackupOperationResults_Get": ("GET", _VAULT + "/backupoperationresults/[^/]+"),
    "BackupOperationStatuses_Get": ("GET", _VAULT + "/backupoperations/[^/]+"),
    "BackupJobs_List": ("GET", _VAULT + "/backupjobs"),
    "JobDetails_Get": ("GET", _VAULT + "/backupjobs/[^/]+"),
    "Restores_Trigger": ("POST", _ITEM + "/recoverypoints/[^/]+/restore"),
    "BackupResourceVaultConfigs_Get": ("GET", _VAULT + "/backupconfig/vaultconfig"),
    "BackupResourceVaultConfigs_Update": ("PATCH", _VAULT + "/backupconfig/vaultconfig"),
    "StorageAccounts_GetProperties": ("GET", _STORAGE),
    "StorageAccounts_ListKeys": ("POST", _STORAGE + "/listkeys"),
}  # fmt: skip


@dataclass(frozen=True)
class Interaction:
    """One recorded request and Azure's answer (trimmed: see the folder's SOURCES.md)."""

    cassette: str  # file stem, e.g. "test_backup_job"
    index: int  # position in the original cassette, 0-based
    line: int  # line of the original YAML where the interaction starts
    shows: str  # what it is evidence of
    method: str
    uri: str
    status: int
    headers: Mapping[str, str] = field(repr=False)  # lower-case names
    _request: str = field(repr=False)  # JSON text
    _body: str = field(repr=False)  # JSON text

    @property
    def source(self) -> str:
        return f"{self.cassette}.yaml#{self.index} (line {self.line})"

    @property
    def body(self) -> Any:
        """The response body (parsed JSON, None when empty), a fresh copy."""
        return json.loads(self._body)

    @property
    def request_body(self) -> Any:
        return json.loads(self._request)

    @property
    def path(self) -> str:
        """The URL path, decoded (';' instead of '%3B')."""
        return unquote(urlsplit(self.uri).path)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.uri).query).items()}

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    @property
    def operation(self) -> str:
        """The REST operation id, or '' for one tests/recordings.py does not name."""
        return operation_of(self.method, self.path)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def operation_of(method: str, path: str) -> str:
    for operation, (op_method, pattern) in OPERATIONS.items():
        if method.upper() == op_method and re.fullmatch(pattern, path, re.IGNORECASE):
            return operation
    return ""


def stem(cassette: str) -> str:
    """'job', 'test_backup_job' or 'test_backup_job.yaml' -> 'test_backup_job'."""
    name = cassette.removesuffix(".yaml").removesuffix(".json")
    return name if name.startswith("test_backup_") else f"test_backup_{name}"


def fixture_path(cassette: str) -> Path:
    return FIXTURES / f"{stem(cassette)}.json"


def missing(path: Path, what: str = "") -> NoReturn:
    relative = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    pytest.fail(
        f"the recorded Azure interactions {relative}{what} are missing from the checkout; restore them with "
        f"`git checkout -- {relative}`, or regenerate the folder with `scripts/vendor_recordings.py` "
        "--source <a copy of the recorded cassettes> (their provenance: tests/fixtures/azure-recordings/SOURCES.md)",
        pytrace=False,
    )


@cache
def _load(path: Path) -> tuple[Interaction, ...]:
    if not path.is_file():
        missing(path)
    entries = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Interaction(
            cassette=entry["cassette"].removesuffix(".yaml"),
            index=entry["interaction"],
            line=entry["line"],
            shows=entry["shows"],
            method=entry["request"]["method"],
            uri=entry["request"]["uri"],
            status=entry["response"]["status"],
            headers=MappingProxyType(dict(entry["response"]["headers"])),
            _request=json.dumps(entry["request"]["body"]),
            _body=json.dumps(entry["response"]["body"]),
        )
        for entry in entries
    )


def interactions(cassette: str) -> tuple[Interaction, ...]:
    """Every vendored interaction of one cassette, in recorded order."""
    return _load(fixture_path(cassette))


def recorded(cassette: str, index: int) -> Interaction:
    """The interaction at `index` (its position in the original cassette)."""
    for interaction in interactions(cassette):
        if interaction.index == index:
            return interaction
    missing(fixture_path(cassette), f" (interaction {index} of {stem(cassette)}.yaml is not vendored)")


def select(
    method: str | None = None,
    pattern: str | None = None,
    *,
    operation: str | None = None,
    cassette: str | None = None,
    status: int | None = None,
) -> tuple[Interaction, ...]:
    """The vendored interactions that match: `method`, `pattern` (a regular expression searched in the
    URL-decoded path, case-insensitive), `operation` (an id of OPERATIONS), `cassette`, `status`."""
    if operation is not None and operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    pool = interactions(cassette) if cassette else tuple(i for c in CASSETTES for i in interactions(c))
    return tuple(
        i
        for i in pool
        if (method is None or i.method == method.upper())
        and (pattern is None or re.search(pattern, i.path, re.IGNORECASE))
        and (operation is None or i.operation == operation)
        and (status is None or i.status == status)
    )
