"""What a drill checks of a restore: one managed disk per backed-up disk, excluded LUNs absent,
sizes as the source's, and the job's configuration blob in the staging account. Each check says
what it expected and what it found."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from autopilot.drills import azure as drill_azure

if TYPE_CHECKING:
    from autopilot.app import Autopilot


def _check(name: str, passed: bool, expected: object, found: object) -> dict[str, Any]:
    return {"name": name, "passed": passed, "expected": str(expected), "found": str(found)}


def checks_of(autopilot: Autopilot, record: dict[str, Any]) -> list[dict[str, Any]]:
    disks = [drill_azure.RestoredDisk(**d) for d in json.loads(record.get("Disks") or "[]")]
    excluded = set(json.loads(record.get("ExcludedLuns") or "[]"))
    source = drill_azure.source_disks(autopilot, str(record["VmId"]))
    checks = []
    if source is None:
        checks.append(_check("source VM", False, "the VM to compare with", "the VM no longer exists"))
        source = []
    backed_up = [d for d in source if d.lun not in excluded]
    os_disks = [d for d in disks if d.os_disk]
    data = [d for d in disks if not d.os_disk]
    checks.append(
        _check(
            "one disk per backed-up disk",
            len(os_disks) == 1 and len(disks) == len(backed_up),
            f"{len(backed_up)} disk(s): the OS disk and {len(backed_up) - 1} data disk(s)",
            f"{len(disks)} disk(s): {len(os_disks)} OS disk(s) and {len(data)} data disk(s)",
        )
    )
    restored_luns = {d.lun for d in data if d.lun is not None}
    checks.append(
        _check(
            "excluded LUNs absent",
            not (restored_luns & excluded) and len(data) == len([d for d in backed_up if d.lun >= 0]),
            f"no disk of LUN(s) {sorted(excluded)}" if excluded else "no exclusion",
            f"data disks at LUN(s) {sorted(restored_luns)}" if restored_luns else f"{len(data)} data disk(s)",
        )
    )
    checks.append(_sizes(disks, backed_up))
    uri = str(record.get("ConfigBlobUri") or "")
    present = bool(uri) and drill_azure.blob_exists(autopilot, uri)
    checks.append(
        _check(
            "configuration blob present",
            present,
            "the job's Config Blob Uri in the staging account",
            uri.rsplit("/", 1)[-1] if present else (f"{uri} not found" if uri else "no Config Blob Uri"),
        )
    )
    return checks


def _sizes(disks: list[drill_azure.RestoredDisk], backed_up: list[drill_azure.SourceDisk]) -> dict[str, Any]:
    """The OS disk as big as the source's; the data disks as the source's, LUN by LUN where the
    restored disks' names say their LUN, else as a set of sizes. A source disk whose size Azure does
    not say (0) is not compared, and the check says so."""
    expected = {d.lun: d.size_gb for d in backed_up}
    known = {lun: size for lun, size in expected.items() if size}
    matched = True
    for disk in disks:
        lun = -1 if disk.os_disk else disk.lun
        if lun is not None and lun in known:
            matched = matched and known[lun] == disk.size_gb
    if len(known) == len(expected):
        matched = matched and sorted(d.size_gb for d in disks) == sorted(expected.values())
    describe = ", ".join(
        f"{'OS' if lun == -1 else f'LUN {lun}'} {f'{size} GB' if size else 'size unknown'}"
        for lun, size in sorted(expected.items())
    )
    return _check(
        "sizes as the source",
        matched and bool(known),
        describe,
        ", ".join(f"{d.name} {d.size_gb} GB" for d in disks),
    )
