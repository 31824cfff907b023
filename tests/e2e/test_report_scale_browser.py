"""The report of an estate of 100,000 VMs in 200 subscriptions, as a person opens it: the page stays
under 2 MB, headless Chromium loads it and builds its tables, problems come first (the legend by
severity, then the findings most severe first, each VM named with its resource group and subscription),
the page names where the rest is (the JSON and the CSV), and its screenshot is styled.

The report is built by the report's own code from unit results shaped as the sweep makes them (the
benchmark, bench/inventory.py, sweeps such an estate through armsim; here the page is what is tested).
Without Chromium these tests fail and say how to install it."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from autopilot.kernel.findings import Finding
from autopilot.sweep.report import HTML_FINDINGS, build_report, render_csv, render_html
from autopilot.sweep.results import UnitResult
from tests.browser_support import dump_dom, require_chromium, screenshot

VMS, SUBSCRIPTIONS, REGIONS = 100_000, 200, 10
HEADER = (0xF0, 0xF3, 0xF7)
WHITE = (0xFF, 0xFF, 0xFF)


def sub(index: int) -> str:
    return f"{index + 1:08x}-0000-4000-8000-00000000b00c"


def vm_id(s: str, group: str, name: str) -> str:
    return f"/subscriptions/{s}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def estate() -> dict[str, Any]:
    """Unit results and findings as a dry-run sweep of such an estate gives them: a quarter of the VMs
    untagged or opted out, of the selected ones a tenth unprotected, a few failed jobs, stale points and
    orphans, and per vault a drifted policy now and then."""
    results, findings = [], []
    per_sub = VMS // SUBSCRIPTIONS
    for s_index in range(SUBSCRIPTIONS):
        s = sub(s_index)
        unit = UnitResult("run-scale", s, True, "2026-01-01T00:00:00+00:00", inventory="resourcegraph")
        for i in range(per_sub):
            index = s_index * per_sub + i
            group, name = (
                f"rg-apps-{index % 20:02d}",
                f"fleet-{index % 5000:04d}",
            )  # names repeat across groups
            region = ("westeurope", "eastus", "northeurope", "uksouth", "japaneast")[index % 5]
            target = vm_id(s, group, name)
            status, kind = "protected as the rules say", ""
            if index % 4 == 3:
                status = "not selected"
            elif index % 10 == 0:
                status, kind = "to act on", "unprotected"
                findings.append(
                    Finding(
                        "unprotected",
                        target,
                        f"Rule 'gold' (priority 10) selects policy 'gold': tag 'backup-policy' is 'gold'; protect in "
                        f"vault rsv-{s[:8]}-{region} under policy gold",
                        "The sweep protects it; if that fails, see the reason.",
                        "would-fix",
                        region=region,
                    )
                )
            elif index % 97 == 0:
                kind = "job-failed"
                findings.append(
                    Finding(
                        "job-failed",
                        target,
                        f"backup job 5f3c-{index} of {name} failed with UserErrorFsFreezeFailed: Failed to freeze "
                        "one or more mount-points of the VM to take a file-system consistent snapshot. [person]",
                        "Unmount devices whose state is not reflected in /etc/fstab, or set the file system to "
                        "be skipped in the freeze configuration; then run a backup.",
                        "reported",
                        region=region,
                        detail="UserErrorFsFreezeFailed",
                    )
                )
            elif index % 211 == 0:
                kind = "rpo-breach"
                findings.append(
                    Finding(
                        "rpo-breach",
                        target,
                        "the last recovery point is 3.0 days old (2025-12-29 22:00 UTC); policy gold promises one "
                        "every 24 hours",
                        "Look at the VM's failed backup jobs (the sweep lists them) and run a backup now once fixed.",
                        "reported",
                        region=region,
                    )
                )
            unit.vm_rows.append(
                [
                    target,
                    name,
                    group,
                    s,
                    region,
                    status,
                    "gold",
                    f"rsv-{s[:8]}-{region}",
                    "Protected",
                    "",
                    kind,
                ]
            )
        unit.vms = per_sub
        unit.selected = per_sub * 3 // 4
        unit.compliant = unit.selected - per_sub // 10
        unit.by_region = {
            "westeurope": {"vms": per_sub, "selected": unit.selected, "compliant": unit.compliant}
        }
        unit.by_policy = {"gold": {"selected": unit.selected, "compliant": unit.compliant}}
        results.append(unit)
        if s_index % 7 == 0:
            vault = f"/subscriptions/{s}/resourceGroups/rg-backup-westeurope/providers/Microsoft.RecoveryServices/vaults/rsv-{s[:8]}-westeurope"
            findings.append(
                Finding(
                    "policy-drift",
                    f"{vault}/backupPolicies/gold",
                    "policy gold in vault rsv-westeurope differs from the rules: instant restore 1 days, rules 2",
                    "The sweep makes it match the rules (actions.onPolicyDrift: fix).",
                    "would-fix",
                    vault=vault,
                )
            )
    findings.append(
        Finding(
            "dst-change-ahead",
            "policy:silver",
            "policy silver runs at 22:00 W. Europe Standard Time",
            "-",
            "reported",
        )
    )
    inventory = {"source": "resourcegraph", "reason": "AUTOPILOT_INVENTORY=auto: the identity may query Resource Graph",
                 "readAt": "2026-01-01T00:00:00+00:00", "pages": 114, "rows": 110_000}  # fmt: skip
    report = build_report("run-scale", results, findings, set(), [], True, inventory)
    return report


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    report = estate()
    text = render_html(report)
    path = tmp_path_factory.mktemp("scale") / "report.html"
    path.write_text(text, encoding="utf-8")
    return path, report, text


def test_the_page_of_100000_vms_stays_under_2_mb_and_the_csv_has_every_vm(
    page: tuple[Path, dict[str, Any], str],
) -> None:
    path, report, _ = page
    assert report["summary"]["vms"] == VMS and len(report["findings"]) > HTML_FINDINGS
    assert path.stat().st_size <= 2_000_000, f"{path.stat().st_size} bytes"
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0][:4] == ["vmId", "vm", "resourceGroup", "subscription"] and len(rows) == VMS + 1
    assert len({(r[1], r[2], r[3]) for r in rows[1:]}) == VMS, "a VM is named by name, group and subscription"


def test_chromium_loads_it_problems_first(page: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    chromium = require_chromium()
    path, report, _ = page
    dom, _ = dump_dom(chromium, path.as_uri())
    headings = [h.text() for h in dom.find_all("h2")]
    assert headings[0].startswith("Problems first: ") and headings[1].startswith("Findings ("), headings
    legend = dom.find("table", class_="by-severity").rows()
    assert [r[0] for r in legend] == sorted((r[0] for r in legend), key=["critical", "warning", "info"].index)
    assert all(r[3] for r in legend), "every kind is explained"
    findings = dom.find("table", class_="findings").rows()
    assert len(findings) == HTML_FINDINGS
    assert findings[0][0] == "critical" and all(r[3] and r[4] for r in findings[:100])
    assert [r[:7] for r in findings[:20]] == [
        [f["severity"], f["kind"], f["name"], f["resourceGroup"], f["subscription"], f["action"], ""]
        for f in report["findings"][:20]
    ]
    more = [p.text() for p in dom.find_all("p", class_="more")]
    assert any("format=json" in m and "format=csv" in m for m in more), more
    assert "Azure Resource Graph" in dom.find("p", class_="inventory").text()
    png, _ = screenshot(chromium, path.as_uri(), tmp_path / "scale.png", 1000, 1600)
    assert png.where(HEADER), "the style sheet applied"
    assert png.rows_not(WHITE) > png.height // 2, "the first screen is the page's content"
