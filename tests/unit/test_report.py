"""The sweep's report (autopilot/sweep/report.py) on hand-made unit results and findings: the numbers of
build_report, and the page of render_html (tables, chart, escaping, empty states), read back
through an HTML parser rather than by string search."""

from __future__ import annotations

import json
from typing import Any

from autopilot.kernel.findings import Finding
from autopilot.sweep.report import build_report, render_html
from autopilot.sweep.results import UnitResult
from tests.browser_support import Element, parse_html

SUB_A, SUB_B = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"


def vm(name: str, sub: str = SUB_A) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"


def unit(sub: str, **kwargs: Any) -> UnitResult:
    return UnitResult("run-1", sub, False, "2026-01-01T00:00:00+00:00", **kwargs)


def finding(kind: str, target: str, action: str = "reported", **kwargs: Any) -> Finding:
    return Finding(kind, target, f"reason of {kind}", f"remedy of {kind}", action, **kwargs)


def history(*percents: float, selected: int = 200) -> list[dict[str, Any]]:
    return [
        {
            "runId": f"run-{i}",
            "at": f"2026-01-{i + 1:02d}T06:00:00+00:00",
            "selected": selected,
            "compliant": round(selected * p / 100),
        }
        for i, p in enumerate(percents)
    ]


def two_units() -> list[UnitResult]:
    return [
        unit(
            SUB_A,
            vms=10,
            selected=8,
            compliant=6,
            by_region={
                "westeurope": {"vms": 7, "selected": 6, "compliant": 5},
                "eastus": {"vms": 3, "selected": 2, "compliant": 1},
            },
            by_policy={"gold": {"selected": 5, "compliant": 4}, "silver": {"selected": 3, "compliant": 2}},
        ),
        unit(
            SUB_B,
            vms=5,
            selected=4,
            compliant=4,
            by_region={"westeurope": {"vms": 4, "selected": 3, "compliant": 3}, "northeurope": {"vms": 1}},
            by_policy={"gold": {"selected": 4, "compliant": 4}},
        ),
    ]


def page(report: dict[str, Any]) -> Element:
    return parse_html(render_html(report))


def rows(dom: Element, css: str) -> list[list[str]]:
    return dom.find("table", class_=css).rows()


# -- build_report ---------------------------------------------------------------------------------------
def test_totals_and_the_compliance_percent_add_up_over_the_units() -> None:
    report = build_report("run-1", two_units(), [], set(), [], dry_run=False)
    summary = report["summary"]
    assert (summary["units"], summary["vms"], summary["selected"], summary["compliant"]) == (2, 15, 12, 10)
    assert summary["compliancePercent"] == 83.3  # 10 / 12, one decimal
    assert summary["failedUnits"] == [] and summary["findings"] == summary["newFindings"] == 0
    assert summary["runId"] == "run-1" and summary["dryRun"] is False
    assert [u["unit"] for u in report["units"]] == [SUB_A, SUB_B]
    json.dumps(report)  # stored as JSON as it is


def test_compliance_is_100_percent_when_nothing_is_selected() -> None:
    report = build_report("run-1", [unit(SUB_A, vms=3)], [], set(), [], dry_run=True)
    assert report["summary"]["compliancePercent"] == 100.0
    assert report["summary"]["dryRun"] is True


def test_compliance_after_fixes_counts_the_vms_the_sweep_protected() -> None:
    results = [unit(SUB_A, vms=4, selected=4, compliant=1)]
    findings = [
        finding("unprotected", vm("a"), "fixed"),
        finding("wrong-policy", vm("b"), "fix-failed"),
        finding("rpo-breach", vm("c"), "fixed"),  # not a protection fix: does not count
    ]
    summary = build_report("run-1", results, findings, set(), [], dry_run=False)["summary"]
    assert summary["compliancePercent"] == 25.0
    assert summary["compliancePercentAfterFixes"] == 50.0


def test_regions_and_policies_merge_across_units_and_are_sorted() -> None:
    report = build_report("run-1", two_units(), [], set(), [], dry_run=False)
    assert report["byRegion"] == {
        "eastus": {"vms": 3, "selected": 2, "compliant": 1},
        "northeurope": {"vms": 1},
        "westeurope": {"vms": 11, "selected": 9, "compliant": 8},
    }
    assert list(report["byRegion"]) == sorted(report["byRegion"])
    assert report["byPolicy"] == {
        "gold": {"selected": 9, "compliant": 8},
        "silver": {"selected": 3, "compliant": 2},
    }
    # The units' own tables are not changed by the merge.
    assert two_units()[0].by_region["westeurope"] == {"vms": 7, "selected": 6, "compliant": 5}


def test_findings_are_sorted_by_kind_then_target_and_flagged_new() -> None:
    findings = [
        finding("wrong-policy", vm("Zeta"), "fixed"),
        finding("job-failed", vm("beta"), detail="E1"),
        finding("wrong-policy", vm("alpha"), "fixed"),
        finding("job-failed", vm("Alpha"), detail="E2"),
        finding("orphaned-item", "VM;iaasvmcontainerv2;rg;gone"),
    ]
    new = {findings[0].key, findings[3].key}
    report = build_report("run-1", [unit(SUB_A)], findings, new, [], dry_run=False)
    listed = [(f["kind"], f["target"].rsplit("/", 1)[-1], f["new"]) for f in report["findings"]]
    assert listed == [
        ("job-failed", "Alpha", True),
        ("job-failed", "beta", False),
        ("orphaned-item", "VM;iaasvmcontainerv2;rg;gone", False),
        ("wrong-policy", "alpha", False),
        ("wrong-policy", "Zeta", True),
    ]
    summary = report["summary"]
    assert summary["findings"] == 5 and summary["newFindings"] == 2
    assert summary["byKind"] == {"job-failed": 2, "orphaned-item": 1, "wrong-policy": 2}
    assert summary["byAction"] == {"fixed": 2, "reported": 3}
    assert (
        report["findings"][1]["detail"] == "E1" and report["findings"][1]["reason"] == "reason of job-failed"
    )


def test_a_failed_unit_is_named() -> None:
    results = [unit(SUB_A, vms=2), unit(SUB_B, error="500 from ARM")]
    report = build_report("run-1", results, [], set(), [], dry_run=False)
    assert report["summary"]["failedUnits"] == [SUB_B]
    assert report["units"][1]["error"] == "500 from ARM"
    assert SUB_B in page(report).find("p", class_="dry").text()


# -- render_html ----------------------------------------------------------------------------------------
def test_the_page_has_the_tables_of_the_report() -> None:
    findings = [finding("unprotected", vm("web-01"), "fixed"), finding("rpo-breach", vm("db-01"))]
    report = build_report("run-7", two_units(), findings, {findings[0].key}, history(50, 75), dry_run=False)
    dom = page(report)
    assert dom.find("head").find("title").text() == "Backup Autopilot sweep run-7"
    assert dom.find("table", class_="by-region").rows("thead") == [["region", "VMs", "selected", "compliant"]]
    assert rows(dom, "by-region") == [
        ["eastus", "3", "2", "1"],
        ["northeurope", "1", "0", "0"],
        ["westeurope", "11", "9", "8"],
    ]
    assert rows(dom, "by-policy") == [["gold", "9", "8"], ["silver", "3", "2"]]
    assert rows(dom, "by-kind") == [["rpo-breach", "1"], ["unprotected", "1"]]
    # Most severe first (both critical: by kind), each VM named with its resource group and subscription.
    assert rows(dom, "findings") == [
        [
            "critical",
            "rpo-breach",
            "db-01",
            "rg",
            SUB_A,
            "reported",
            "",
            "reason of rpo-breach",
            "remedy of rpo-breach",
        ],
        [
            "critical",
            "unprotected",
            "web-01",
            "rg",
            SUB_A,
            "fixed",
            "yes",
            "reason of unprotected",
            "remedy of unprotected",
        ],
    ]
    assert rows(dom, "by-severity") == [
        [
            "critical",
            "rpo-breach",
            "1",
            "The last recovery point is older than the policy promises (plus the grace).",
        ],
        ["critical", "unprotected", "1", "The rules select the VM and it has no backup."],
    ]
    cards = [c.text() for c in dom.find_all("div", class_="card")]
    assert "83.3 %compliance found" in cards
    assert not dom.find_all("p", class_="dry"), "no banner: not a dry run, no failed unit"


def test_the_page_is_self_contained() -> None:
    report = build_report("run-1", two_units(), [finding("unprotected", vm("a"))], set(), history(1), False)
    dom = page(report)
    assert not dom.find_all("script")
    assert not [e.tag for e in dom.iter() if {"src", "href", "style"} & set(e.attrs)]
    assert not [e for e in dom.iter() if any(a.startswith("on") for a in e.attrs)]
    assert len(dom.find_all("style")) == 1


def test_hostile_strings_are_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    image = '<img src=x onerror="alert(2)">'
    results = [
        unit(
            SUB_A,
            vms=1,
            selected=1,
            by_region={hostile: {"vms": 1, "selected": 1}},
            by_policy={image: {"selected": 1}},
        ),
        unit(f"sub-{hostile}", error="boom"),
    ]
    findings = [
        Finding(hostile, vm(image), f"reason {hostile}", f"remedy {image} & more", "reported", detail=hostile)
    ]
    run_id = f'run"{hostile}'
    hist = [{"runId": run_id, "at": f"2026-01-01{hostile}", "selected": 1, "compliant": 0}]
    text = render_html(build_report(run_id, results, findings, {findings[0].key}, hist, dry_run=False))
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    dom = parse_html(text)
    assert not dom.find_all("script") and not dom.find_all("img")
    assert rows(dom, "by-region") == [[hostile, "1", "1", "0"]]
    assert rows(dom, "by-policy") == [[image, "1", "0"]]
    assert rows(dom, "by-kind") == [[hostile, "1"]]
    assert rows(dom, "findings") == [
        [
            "warning",
            hostile,
            image,
            "rg",
            SUB_A,
            "reported",
            "yes",
            f"reason {hostile}",
            f"remedy {image} & more",
        ]
    ]
    assert dom.find("h1").text() == f"Backup Autopilot: sweep {run_id}"
    assert f"sub-{hostile}" in dom.find("p", class_="dry").text()
    (title,) = [t.text() for t in dom.find("svg", id="compliance-chart").find_all("title")]
    assert title.startswith(f"2026-01-01{hostile}: ")


def test_empty_report_says_none_and_has_no_chart_yet() -> None:
    report = build_report("run-1", [], [], set(), [], dry_run=True)
    assert report["byRegion"] == report["byPolicy"] == {} and report["findings"] == []
    dom = page(report)
    for css, columns in (
        ("by-region", 4),
        ("by-policy", 3),
        ("by-kind", 2),
        ("findings", 9),
        ("by-severity", 4),
    ):
        (cell,) = dom.find("table", class_=css).find_all("td")
        assert (cell.text(), cell.attrs["colspan"], cell.attrs["class"]) == ("none", str(columns), "empty")
    assert not dom.find_all("svg")
    assert [p.text() for p in dom.find_all("p", class_="empty")] == ["No earlier runs yet."]
    assert "Dry run" in dom.find("p", class_="dry").text()


# -- the chart ------------------------------------------------------------------------------------------
def chart(hist: list[dict[str, Any]]) -> tuple[Element, list[tuple[float, float]]]:
    svg = page(build_report("run-1", [], [], set(), hist, dry_run=False)).find("svg", id="compliance-chart")
    return svg, [(float(c.attrs["cx"]), float(c.attrs["cy"])) for c in svg.find_all("circle")]


def grid_lines(svg: Element) -> dict[str, float]:
    """The y of the 0, 50 and 100 % grid lines, by their label."""
    labels = [t.text() for t in svg.find_all("text") if t.text().endswith(" %")]
    lines = [float(line.attrs["y1"]) for line in svg.find_all("line", class_="grid")]
    return dict(zip(labels, lines, strict=True))


def test_the_chart_with_one_run_has_one_dot() -> None:
    svg, points = chart(history(75))
    assert len(points) == 1
    assert svg.attrs["aria-label"] == "Compliance over the last 1 runs"
    assert svg.find("polyline", class_="line").attrs["points"] == f"{points[0][0]:.1f},{points[0][1]:.1f}"
    grid = grid_lines(svg)
    assert grid["0 %"] > points[0][1] > grid["100 %"]
    assert abs(points[0][1] - (grid["0 %"] + 0.75 * (grid["100 %"] - grid["0 %"]))) < 0.2
    assert [t.text() for t in svg.find_all("title")] == ["2026-01-01T06:00:00+00:00: 75.0 %"]


def test_the_chart_with_many_runs_has_a_dot_per_run_in_order_and_in_the_box() -> None:
    percents = [100.0 * (i % 7) / 6 for i in range(30)]
    svg, points = chart(history(*percents, selected=600))
    _, _, width, height = (float(v) for v in svg.attrs["viewbox"].split())
    assert len(points) == 30
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == 30
    assert all(0 < x < width and 0 < y < height for x, y in points)
    line = [tuple(float(v) for v in p.split(",")) for p in svg.find("polyline").attrs["points"].split()]
    assert line == [(round(x, 1), round(y, 1)) for x, y in points]
    grid = grid_lines(svg)
    for (_, y), percent in zip(points, percents, strict=True):
        assert abs(y - (grid["0 %"] + percent / 100 * (grid["100 %"] - grid["0 %"]))) < 0.2
    dates = [t.text() for t in svg.find_all("text", class_="date")]
    assert dates == ["2026-01-01 06:00", "2026-01-30 06:00"]


def test_the_chart_with_two_runs_spans_the_width_and_shows_both_dates() -> None:
    svg, points = chart(history(0, 100))
    grid = grid_lines(svg)
    (x1, y1), (x2, y2) = points
    assert (y1, y2) == (grid["0 %"], grid["100 %"])
    first_line = svg.find_all("line", class_="grid")[0]
    assert (x1, x2) == (float(first_line.attrs["x1"]), float(first_line.attrs["x2"]))
    assert [t.text() for t in svg.find_all("text", class_="date")] == ["2026-01-01 06:00", "2026-01-02 06:00"]


def test_a_run_that_selected_nothing_is_drawn_as_100_percent() -> None:
    svg, points = chart([{"runId": "r", "at": "2026-01-01T00:00:00+00:00", "selected": 0, "compliant": 0}])
    assert points[0][1] == grid_lines(svg)["100 %"]


# -- estate scale -----------------------------------------------------------------------------------------
def test_names_say_resource_group_and_subscription() -> None:
    from autopilot.sweep.report import named

    item = (
        f"/subscriptions/{SUB_A}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv"
        "/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-app;gone/protectedItems"
        "/VM;iaasvmcontainerv2;rg-app;gone"
    )
    assert named(vm("fleet-0000")) == ("fleet-0000", "rg", SUB_A)
    assert named(item) == ("gone (backup item)", "rg-app", SUB_A)
    assert named("policy:silver") == ("policy silver", "", "")
    assert named(f"/subscriptions/{SUB_A}") == (f"subscription {SUB_A}", "", SUB_A)
    vault = f"/subscriptions/{SUB_A}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv"
    assert named(vault) == ("rsv", "rg-backup", SUB_A)
    assert named(vault + "/backupPolicies/gold") == ("policy gold in vault rsv", "rg-backup", SUB_A)
    assert named(f"/subscriptions/{SUB_A}/resourceGroups/rg-app") == ("rg-app", "rg-app", SUB_A)


def test_a_huge_estate_gives_a_bounded_page_problems_first_and_every_vm_in_the_csv() -> None:
    from autopilot.sweep.report import HTML_FINDINGS, render_csv

    results = [unit(SUB_A, vms=100_000, selected=50_000, compliant=30_000)]
    results[0].vm_rows = [[vm(f"vm-{i}"), f"vm-{i}", "rg", SUB_A, "westeurope", "to act on", "gold", "", "", "", ""]
                          for i in range(100_000)]  # fmt: skip
    findings = [finding("unprotected", vm(f"vm-{i}")) for i in range(20_000)]
    findings += [finding("dst-change-ahead", "policy:gold"), finding("job-failed", vm("vm-1"))]
    report = build_report("run-1", results, findings, set(), [], dry_run=True)
    text = render_html(report)
    assert len(text.encode()) < 2_000_000
    dom = parse_html(text)
    shown = rows(dom, "findings")
    assert len(shown) == HTML_FINDINGS
    assert [r[0] for r in shown[:2]] == ["critical", "critical"] and shown[0][1] == "job-failed"
    assert rows(dom, "by-severity")[-1][:3] == ["info", "dst-change-ahead", "1"]
    assert [h.text() for h in dom.find_all("h2")][:2] == [
        "Problems first: 20001 critical, 0 warning, 1 info",
        "Findings (20002)",
    ]
    csv_text = render_csv(report)
    assert csv_text.count("\n") == 100_001 and csv_text.startswith("vmId,vm,resourceGroup,subscription")
