"""Vendor the real Azure interactions the tests use into tests/fixtures/azure-recordings/.

The source is a folder of VCR cassettes recorded by the Azure CLI's test suite against live Azure in
2019 (MIT; see SOURCES.md in that folder). Only the interactions listed in SELECTION below are kept,
trimmed to what the tests read: the request's method, URI and parsed body; the response's status, the
headers that matter (LRO headers, rate limits, content type) and its parsed JSON body. Each one keeps
its cassette, its index in the cassette and the line where it starts, so it can be found again.

    .venv/bin/python scripts/vendor_recordings.py --source DIR [--check]

`--source` names a copy of the recorded cassettes (where they come from: the SOURCES.md this writes).
`--check` writes nothing
and exits 1 when the vendored files differ from what the source gives. Tests never run this: they read
the vendored files only (tests/recordings.py).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "tests" / "fixtures" / "azure-recordings"
SUBFOLDER = "azure-cli-2019"
KEPT_HEADERS = ("location", "azure-asyncoperation", "retry-after", "content-type")
KEPT_HEADER_PREFIXES = ("x-ms-ratelimit-",)
UPSTREAM = {
    "repository": "https://github.com/Azure/azure-cli",
    "commit": "6ca41c444ed65c210fcfefde90618db2ef66a7ce",
    "folder": "src/azure-cli/azure/cli/command_modules/backup/tests/latest/recordings",
    "licence": "MIT",
}


@dataclass(frozen=True)
class Pick:
    cassette: str  # file stem, e.g. "test_backup_job"
    index: int  # position in the cassette's `interactions` list (0-based)
    shows: str  # what the interaction is evidence of


# -- the selection: reviewable here, in cassette order --------------------------------------------
SELECTION: tuple[Pick, ...] = (
    # test_backup_disk_exclusion.yaml: 30 Dec 2019, southeastasia, Windows VM with three data disks
    Pick("test_backup_disk_exclusion", 0, "Vaults_CreateOrUpdate (2016-06-01): 201, synchronous, body with etag and provisioningState Succeeded"),
    Pick("test_backup_disk_exclusion", 11, "BackupResourceVaultConfigs_Get: enhancedSecurityState, softDeleteFeatureState Enabled, isSoftDeleteFeatureStateEditable"),
    Pick("test_backup_disk_exclusion", 12, "BackupResourceVaultConfigs_Update (PATCH softDeleteFeatureState Disabled): 200 with the config"),
    Pick("test_backup_disk_exclusion", 8, "VirtualMachines_Get $expand=instanceView right after the VM was created: agent Not Ready (vmAgentVersion Unknown, ProvisioningState/Unavailable, 'VM status blob is found but not yet populated.'), hyperVGeneration V1; header x-ms-ratelimit-remaining-resource"),
    Pick("test_backup_disk_exclusion", 25, "VirtualMachines_Get: three managed data disks at LUNs 0-2 (mydisk1-3), toBeDetached false"),
    Pick("test_backup_disk_exclusion", 26, "Vaults_Get (2016-06-01)"),
    Pick("test_backup_disk_exclusion", 28, "BackupProtectableItems_List before refreshContainers: empty"),
    Pick("test_backup_disk_exclusion", 29, "ProtectionContainers_Refresh: 202 with Location (operationResults) and Azure-AsyncOperation (operationsStatus), no Retry-After"),
    Pick("test_backup_disk_exclusion", 30, "ProtectionContainerRefreshOperationResults_Get while running: 202 with Location, no body"),
    Pick("test_backup_disk_exclusion", 39, "ProtectionContainerRefreshOperationResults_Get when done: 204"),
    Pick("test_backup_disk_exclusion", 40, "BackupProtectableItems_List after refresh: name without 'VM;', id ending 'protectableItems/vm;iaasvmcontainerv2;...', resourceGroup, virtualMachineVersion"),
    Pick("test_backup_disk_exclusion", 41, "ProtectedItems_CreateOrUpdate enabling protection with an inclusion list (LUNs 0, 1): 202, headers echo the request's 'vm;' item name"),
    Pick("test_backup_disk_exclusion", 42, "BackupOperationStatuses_Get of that configure: InProgress, endTime 0001-01-01T00:00:00, no properties"),
    Pick("test_backup_disk_exclusion", 61, "BackupOperationStatuses_Get of that configure: Succeeded with properties.jobId (OperationStatusJobExtendedInfo)"),
    Pick("test_backup_disk_exclusion", 62, "JobDetails_Get ConfigureBackup Completed (Dec 2019): containerName, tasksList [], propertyBag VM Name + Policy Name"),
    Pick("test_backup_disk_exclusion", 63, "BackupProtectedItems_List: IRPending item with diskExclusionProperties (inclusion list), lastBackupStatus '' and lastBackupTime 2001-01-01T00:00:00Z"),
    Pick("test_backup_disk_exclusion", 65, "ProtectedItems_CreateOrUpdate changing the disk exclusion to exclude LUN 1: 202"),
    Pick("test_backup_disk_exclusion", 73, "BackupOperationStatuses_Get of that change: Succeeded with jobId"),
    Pick("test_backup_disk_exclusion", 74, "JobDetails_Get of that change: a ConfigureBackup job"),
    Pick("test_backup_disk_exclusion", 77, "Backups_Trigger with recoveryPointExpiryTimeInUTC: 202 with Location and Azure-AsyncOperation, no Retry-After"),
    Pick("test_backup_disk_exclusion", 78, "BackupOperationStatuses_Get of the trigger: InProgress, endTime 0001-01-01T00:00:00"),
    Pick("test_backup_disk_exclusion", 79, "BackupOperationStatuses_Get of the trigger: Succeeded with jobId"),
    Pick("test_backup_disk_exclusion", 80, "JobDetails_Get Backup InProgress: Take Snapshot InProgress, 'Transfer Data to Vault' NotStarted, propertyBag 'Recovery Point Expiry Time in UTC': '1/29/2020 12:00:00 AM', actionsInfo, internalPropertyBag"),
    Pick("test_backup_disk_exclusion", 97, "JobDetails_Get Backup InProgress: snapshot Completed, transfer NotStarted"),
    Pick("test_backup_disk_exclusion", 103, "JobDetails_Get Backup InProgress: transfer InProgress"),
    Pick("test_backup_disk_exclusion", 219, "JobDetails_Get Backup Completed: propertyBag Backup Size, Backed-up disk(s), Excluded disk(s); duration PT1H11M17.4030139S"),
    Pick("test_backup_disk_exclusion", 220, "BackupProtectedItems_List: Protected item with exclusion (LUN 1 excluded), healthDetails IaasVmHealthGreenDefault, lastRecoveryPoint"),
    Pick("test_backup_disk_exclusion", 221, "RecoveryPoints_List: recoveryPointTierDetails as numbers, disk counts only"),
    Pick("test_backup_disk_exclusion", 226, "RecoveryPoints_Get: includedDiskList (OS disk at lun -1) and excludedDiskList"),
    Pick("test_backup_disk_exclusion", 229, "StorageAccounts_GetProperties (2016-01-01) of the staging account: region, sku, kind, endpoints"),
    Pick("test_backup_disk_exclusion", 230, "Restores_Trigger RestoreDisks with targetResourceGroupId and restoreDiskLunList []: 202 with Location and Azure-AsyncOperation of the item, no Retry-After"),
    Pick("test_backup_disk_exclusion", 231, "BackupOperationStatuses_Get of that restore: Succeeded at once (endTime = startTime) with jobId"),
    Pick("test_backup_disk_exclusion", 232, "JobDetails_Get Restore InProgress: task 'Transfer data from vault'"),
    Pick("test_backup_disk_exclusion", 240, "JobDetails_Get Restore Completed: propertyBag of a disk restore"),
    Pick("test_backup_disk_exclusion", 250, "Restores_Trigger RestoreDisks without restoreDiskLunList: 202"),
    Pick("test_backup_disk_exclusion", 252, "JobDetails_Get Restore InProgress (Dec 2019): no dynamicErrorMessage"),
    Pick("test_backup_disk_exclusion", 260, "JobDetails_Get Restore InProgress while finishing: task Completed with taskExecutionDetails, progressPercentage 99, estimatedRemainingDuration PT2M"),
    Pick("test_backup_disk_exclusion", 261, "JobDetails_Get Restore Completed: Config Blob Name/Container/Uri, Template Blob Uri, Restored disk(s) and Backed-up disk(s) (all three), 147 GBs"),
    # test_backup_item.yaml: 25 Oct 2019, southeastasia
    Pick("test_backup_item", 27, "ProtectionPolicies_Get DefaultPolicy: lower-case id, instantRPDetails {}"),
    Pick("test_backup_item", 41, "ProtectedItems_CreateOrUpdate enabling protection with a lower-case policyId: 202"),
    Pick("test_backup_item", 147, "ProtectionPolicies_CreateOrUpdate of a new policy with DefaultPolicy's body (protectedItemsCount 2 in the request): 200, protectedItemsCount 0, instantRPDetails {} added"),
    Pick("test_backup_item", 150, "BackupProtectedItems_List: two IRPending items, lower-case ids, policyId as sent"),
    Pick("test_backup_item", 153, "ProtectedItems_Get: IRPending item, no lastRecoveryPoint"),
    Pick("test_backup_item", 160, "ProtectedItems_CreateOrUpdate changing the policy: 202"),
    Pick("test_backup_item", 161, "BackupOperationStatuses_Get of the policy change: InProgress"),
    Pick("test_backup_item", 171, "BackupOperationStatuses_Get of the policy change: Succeeded with jobId"),
    Pick("test_backup_item", 172, "JobDetails_Get of the policy change: ConfigureBackup Completed, Policy Name the new policy, containerName ';iaasvmcontainerv2;...' (leading ';')"),
    # test_backup_job.yaml: 3 Jul 2019, westus
    Pick("test_backup_job", 20, "ProtectionContainers_Refresh (Jul 2019): 202 with Location only"),
    Pick("test_backup_job", 84, "JobDetails_Get ConfigureBackup Completed (Jul 2019): no containerName"),
    Pick("test_backup_job", 87, "Backups_Trigger: 202, item names 'IaasVMContainer;...'/'VM;...' in the headers"),
    Pick("test_backup_job", 88, "BackupOperationStatuses_Get of the trigger: InProgress"),
    Pick("test_backup_job", 89, "BackupOperationStatuses_Get of the trigger: Succeeded with jobId"),
    Pick("test_backup_job", 90, "JobDetails_Get Backup InProgress (Jul 2019): 'Transfer data to vault' NotStarted"),
    Pick("test_backup_job", 113, "JobDetails_Get Backup InProgress: transfer InProgress"),
    Pick("test_backup_job", 228, "JobDetails_Get Backup Completed: Backup Size, 'Recovery Point Expiry Time in UTC': '8/2/2019 12:00:00 AM'"),
    Pick("test_backup_job", 229, "BackupProtectedItems_List: Protected, lastBackupStatus Completed, healthDetails"),
    Pick("test_backup_job", 231, "RecoveryPoints_List without disk exclusion: no recoveryPointDiskConfiguration"),
    Pick("test_backup_job", 236, "RecoveryPoints_Get without disk exclusion"),
    Pick("test_backup_job", 242, "JobDetails_Get Restore InProgress (Jul 2019)"),
    Pick("test_backup_job", 244, "BackupJobs_List without $filter: Restore, Backup, ConfigureBackup; no containerName, no extendedInfo"),
    Pick("test_backup_job", 245, "BackupJobs_List $filter=status eq 'InProgress'"),
    Pick("test_backup_job", 246, "BackupJobs_List $filter=operation eq 'Restore'"),
    Pick("test_backup_job", 247, "BackupJobs_List $filter=operation eq 'Restore' and status eq 'InProgress'"),
    # test_backup_policy.yaml: 10 Sep 2019, southeastasia
    Pick("test_backup_policy", 2, "ProtectionPolicies_CreateOrUpdate V1 daily 20:30 UTC, 30 days, instant restore 2 days: 200 with the policy"),
    Pick("test_backup_policy", 105, "BackupPolicies_List: the vault's policies (DefaultPolicy and created ones)"),
    # test_backup_protection.yaml: 7 Aug 2019, westus, and a real vault with many items
    Pick("test_backup_protection", 19, "BackupProtectedItems_List of a real vault: protectionState ProtectionError"),
    Pick("test_backup_protection", 28, "BackupProtectedItems_List of a real vault: ten items, Protected / ProtectionStopped, Completed / Failed, healthDetails of several kinds"),
    Pick("test_backup_protection", 34, "BackupProtectedItems_List of a real vault: ActionSuggested (UserErrorGuestAgentVersionUnsupported), ActionRequired (ResourceNotFound)"),
    Pick("test_backup_protection", 101, "ProtectedItems_CreateOrUpdate stopping protection (protectionState ProtectionStopped, policyId ''): 202"),
    Pick("test_backup_protection", 102, "BackupOperationStatuses_Get of the stop: InProgress"),
    Pick("test_backup_protection", 107, "BackupOperationStatuses_Get of the stop: Succeeded with jobId"),
    Pick("test_backup_protection", 108, "JobDetails_Get DisableBackup Completed: no containerName, propertyBag Policy Name ''"),
    Pick("test_backup_protection", 109, "BackupProtectedItems_List: ProtectionStopped with policyId '' and policyName ''"),
    # test_backup_restore.yaml: 11 Sep 2019, southeastasia, a restore of a VM's disks to another group
    Pick("test_backup_restore", 284, "StorageAccounts_GetProperties (2016-01-01) of the staging account (Sep 2019)"),
    Pick("test_backup_restore", 285, "Restores_Trigger RestoreDisks into another resource group: 202 with the item's Location and Azure-AsyncOperation"),
    Pick("test_backup_restore", 286, "BackupOperationStatuses_Get of that restore: Succeeded at once with jobId"),
    Pick("test_backup_restore", 287, "JobDetails_Get Restore just triggered (0.8 s): task InProgress, progressPercentage 1, dynamicErrorMessage ''"),
    Pick("test_backup_restore", 295, "JobDetails_Get Restore Completed (3 min 6 s): config and template blobs, 127 GBs (an OS disk), no disk lists without exclusion"),
    Pick("test_backup_restore", 298, "StorageAccounts_ListKeys (2019-06-01): two FULL keys"),
    # test_backup_rp.yaml: 4 Jul 2019, westus
    Pick("test_backup_rp", 85, "JobDetails_Get Backup just triggered: both tasks NotStarted"),
    # test_backup_softdelete.yaml: 16 Dec 2019, westus
    Pick("test_backup_softdelete", 88, "ProtectedItems_Delete with soft delete on: 202 with backupOperationResults / backupOperations"),
    Pick("test_backup_softdelete", 89, "BackupOperationStatuses_Get of the delete: InProgress"),
    Pick("test_backup_softdelete", 95, "BackupOperationStatuses_Get of the delete: Succeeded with jobId"),
    Pick("test_backup_softdelete", 96, "JobDetails_Get DeleteBackupData Completed: propertyBag Number of Recovery Points"),
    Pick("test_backup_softdelete", 97, "BackupProtectedItems_List: soft-deleted item, isScheduledForDeferredDelete true, deferredDeleteTimeInUTC = the deletion time, deferredDeleteTimeRemaining 13.23:59:43.3699681"),
    Pick("test_backup_softdelete", 99, "ProtectedItems_CreateOrUpdate undelete (isRehydrate true, protectionState ProtectionStopped, policyId ''): 202"),
    Pick("test_backup_softdelete", 100, "BackupOperationStatuses_Get of the undelete: InProgress"),
    Pick("test_backup_softdelete", 106, "BackupOperationStatuses_Get of the undelete: Succeeded with jobId"),
    Pick("test_backup_softdelete", 107, "JobDetails_Get Undelete Completed: propertyBag Undelete flag"),
    Pick("test_backup_softdelete", 108, "BackupResourceVaultConfigs_Get (Dec 2019): soft delete Enabled"),
    Pick("test_backup_softdelete", 109, "BackupResourceVaultConfigs_Update (PATCH softDeleteFeatureState Disabled): 200 with the config"),
    Pick("test_backup_softdelete", 110, "BackupProtectedItems_List after the undelete: ProtectionStopped, no isScheduledForDeferredDelete"),
    # test_backup_vault.yaml: 17 Dec 2019, westus
    Pick("test_backup_vault", 6, "BackupResourceVaultConfigs_Get of a new vault: soft delete Enabled, editable"),
    Pick("test_backup_vault", 7, "BackupResourceStorageConfigsNonCRR_Get: GeoRedundant, Unlocked, dedupState, xcoolState, crossRegionRestoreFlag"),
    Pick("test_backup_vault", 8, "BackupResourceStorageConfigsNonCRR_Update (PUT storageModelType LocallyRedundant): 200 with the config"),
    Pick("test_backup_vault", 10, "BackupResourceStorageConfigsNonCRR_Get after the change: LocallyRedundant"),
)  # fmt: skip


# -- reading a cassette ---------------------------------------------------------------------------
def interaction_lines(text: str) -> list[int]:
    """1-based line of each top-level `- request:` (where each interaction starts)."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.startswith("- request:")]


def unwrap(body: Any) -> str | None:
    """The request body as text: that recorder wrote some bodies as (nested) b'...' reprs."""
    if body is None:
        return None
    text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
    while re.fullmatch(r"b(['\"]).*\1", text.strip(), re.S):
        value = ast.literal_eval(text.strip())
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return text


def parse(text: str | None) -> tuple[Any, str | None]:
    """(parsed JSON or None, the text when it is not JSON)."""
    if text is None or text == "":
        return None, None
    try:
        return json.loads(text), None
    except json.JSONDecodeError:
        return None, text


def kept_headers(headers: dict[str, Any]) -> dict[str, str]:
    kept = {}
    for name in sorted(headers, key=str.lower):
        lower = name.lower()
        if lower in KEPT_HEADERS or lower.startswith(KEPT_HEADER_PREFIXES):
            values = headers[name]
            kept[lower] = ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)
    return kept


def vendor(source: Path) -> dict[str, str]:
    """File name -> content of every vendored file."""
    folder = source / SUBFOLDER
    by_cassette: dict[str, list[Pick]] = {}
    for pick in SELECTION:
        by_cassette.setdefault(pick.cassette, []).append(pick)
    files: dict[str, str] = {}
    rows: list[str] = []
    for cassette, picks in sorted(by_cassette.items()):
        text = (folder / f"{cassette}.yaml").read_text(encoding="utf-8")
        recorded = yaml.safe_load(text)["interactions"]
        lines = interaction_lines(text)
        assert len(lines) == len(recorded), (
            f"{cassette}: {len(lines)} '- request:' lines, {len(recorded)} interactions"
        )
        out = []
        for pick in sorted(picks, key=lambda p: p.index):
            request, response = recorded[pick.index]["request"], recorded[pick.index]["response"]
            request_body, request_text = parse(unwrap(request.get("body")))
            response_body, response_text = parse((response.get("body") or {}).get("string"))
            entry: dict[str, Any] = {
                "cassette": f"{cassette}.yaml",
                "interaction": pick.index,
                "line": lines[pick.index],
                "shows": pick.shows,
                "request": {"method": request["method"], "uri": request["uri"], "body": request_body},
                "response": {
                    "status": response["status"]["code"],
                    "headers": kept_headers(response.get("headers") or {}),
                    "body": response_body,
                },
            }
            if request_text is not None:
                entry["request"]["bodyText"] = request_text
            if response_text is not None:
                entry["response"]["bodyText"] = response_text
            out.append(entry)
            path = request["uri"].split("management.azure.com", 1)[-1].split("?", 1)[0]
            rows.append(
                f"| {cassette}.json | {pick.index} | {lines[pick.index]} | {request['method']} | "
                f"`…{_short(path)}` | {response['status']['code']} | {pick.shows} |"
            )
        files[f"{cassette}.json"] = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    files["README.md"] = README.format(count=len(SELECTION), rows="\n".join(rows))
    files["SOURCES.md"] = SOURCES.format(
        **UPSTREAM, cassettes=", ".join(f"{c}.yaml" for c in sorted(by_cassette))
    )
    files["LICENSE"] = (folder / "LICENSE").read_text(encoding="utf-8")
    return files


def _short(path: str) -> str:
    """The tail of a path that names the operation (after the vault or the VM), URL-decoded."""
    path = unquote(path)
    for marker in ("/vaults/", "/virtualMachines/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return marker + tail.split("/", 1)[0] + ("/" + tail.split("/", 1)[1] if "/" in tail else "")
    return path


README = """# Real Azure interactions (trimmed)

{count} interactions with live Azure, recorded in 2019 by the Azure CLI's test suite, kept for the tests
(provenance and licence: SOURCES.md, LICENSE). Generated by `scripts/vendor_recordings.py` from its
SELECTION list; do not edit by hand. Read them with `tests/recordings.py`.

Each `<cassette>.json` is a list of interactions:
`{{"cassette", "interaction" (index in the cassette, 0-based), "line" (where it starts in the YAML),
"shows", "request": {{"method", "uri", "body"}}, "response": {{"status", "headers", "body"}}}}`. Bodies
are parsed JSON (null when empty); headers are only `location`, `azure-asyncoperation`,
`retry-after`, `content-type` and `x-ms-ratelimit-*`, lower case, as recorded.

| File | Interaction | Line | Method | Path | Status | Shows |
|---|---|---|---|---|---|---|
{rows}
"""

SOURCES = """# Source of the vendored interactions

- What: HTTP sessions with live Azure (Azure Backup, Recovery Services, Compute) recorded by the Azure
  CLI's own test suite as VCR cassettes (`az backup ...` against real subscriptions, July to
  December 2019; api-versions 2016-06-01, 2016-12-01, 2019-05-13, 2019-06-15, Compute 2019-07-01 and
  Storage 2016-01-01 and 2019-06-01). Nobody on this project wrote them.
- Repository: {repository}, folder `{folder}/`.
- Commit: {commit} (2020-02-14). The VM cassettes were removed upstream in July 2020; these copies
  were read from a public fork carrying the same history (eimajtrebor/azure-cli), `git show
  6ca41c44:<path>`, into a read-only copy outside the repository that this folder was vendored from.
- Cassettes used: {cassettes}.
- Licence: {licence} (the LICENSE file in this folder, copied from the cassettes' folder).

## What was trimmed

Only the interactions listed in README.md are kept (those the tests use), chosen in
`scripts/vendor_recordings.py` (SELECTION), which regenerates this folder. Of each interaction:

- kept: the request's method and URI (as recorded, subscription ids already zeroed by the recorder),
  its body parsed as JSON (the recorder wrapped some bodies in nested `b'...'` reprs; they are
  unwrapped), the response's status code, its headers `location`, `azure-asyncoperation`,
  `retry-after`, `content-type` and `x-ms-ratelimit-*`, and its body parsed as JSON;
- dropped: every request header (User-Agent, CommandName, ParameterSetName, ...), the other response
  headers (date, cache-control, server, strict-transport-security, ...), the status message, and every
  interaction not listed (Network, deployments, Blob data-plane requests, repeated polls).

Values are unchanged: names, their case, times, durations and ids are as Azure answered them.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="a copy of the recorded cassettes")
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    args = parser.parse_args(argv)
    if not (args.source / SUBFOLDER).is_dir():
        print(f"no cassettes in {args.source / SUBFOLDER}", file=sys.stderr)
        return 2
    files = vendor(args.source)
    if args.check:
        stale = [
            name
            for name, content in files.items()
            if not (TARGET / name).exists() or (TARGET / name).read_text(encoding="utf-8") != content
        ]
        extra = sorted(p.name for p in TARGET.iterdir() if p.name not in files) if TARGET.is_dir() else []
        for name in stale:
            print(f"differs from the source: {name}", file=sys.stderr)
        for name in extra:
            print(f"not produced by the selection: {name}", file=sys.stderr)
        return 1 if stale or extra else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (TARGET / name).write_text(content, encoding="utf-8")
    print(f"wrote {len(files)} files ({len(SELECTION)} interactions) to {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
