"""The sweep's report: JSON for machines, and a self-contained HTML page for people (tables per
region, per policy and per kind of finding, every finding with its reason and remedy, and a chart
of compliance over the last runs, drawn as inline SVG: no scripts, no external files)."""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autopilot.sweep import Finding, UnitResult


def build_report(
    run_id: str,
    results: list[UnitResult],
    findings: list[Finding],
    new_keys: set[str],
    history: list[dict[str, Any]],
    dry_run: bool,
    inventory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    selected = sum(r.selected for r in results)
    compliant = sum(r.compliant for r in results)
    by_region: dict[str, dict[str, int]] = {}
    by_policy: dict[str, dict[str, int]] = {}
    for result in results:
        for table, rows in ((by_region, result.by_region), (by_policy, result.by_policy)):
            for key, counts in rows.items():
                row = table.setdefault(key, {})
                for name, value in counts.items():
                    row[name] = row.get(name, 0) + value
    kinds = Counter(f.kind for f in findings)
    fixed_vms = sum(
        1
        for f in findings
        if f.action == "fixed" and f.kind in ("unprotected", "wrong-policy", "protection-stopped")
    )
    actions = Counter(f.action for f in findings)
    summary = {
        "runId": run_id,
        "dryRun": dry_run,
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "units": len(results),
        "failedUnits": [r.unit for r in results if r.error],
        "vms": sum(r.vms for r in results),
        "selected": selected,
        "compliant": compliant,
        "compliancePercent": round(100 * compliant / selected, 1) if selected else 100.0,
        "compliancePercentAfterFixes": round(100 * min(selected, compliant + fixed_vms) / selected, 1)
        if selected
        else 100.0,
        "findings": len(findings),
        "newFindings": len(new_keys),
        "byKind": dict(sorted(kinds.items())),
        "byAction": dict(sorted(actions.items())),
        "inventory": inventory or {"source": "arm", "reason": ""},
    }
    return {
        "summary": summary,
        "byRegion": dict(sorted(by_region.items())),
        "byPolicy": dict(sorted(by_policy.items())),
        "findings": [
            {**asdict(f), "new": f.key in new_keys}
            for f in sorted(findings, key=lambda f: (f.kind, f.target.lower()))
        ],
        "units": [
            {"unit": r.unit, "vms": r.vms, "selected": r.selected, "compliant": r.compliant, "error": r.error}
            for r in results
        ],
        "history": history,
    }


def _table(headers: list[str], rows: list[list[object]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="empty">none</td></tr>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _chart(history: list[dict[str, Any]]) -> str:
    """Compliance over the last runs as an inline SVG line chart (0 to 100 %), the first and the
    last run's date under it. Presentation attributes only (no style attributes): the page's CSP
    allows the one inline style sheet and nothing else."""
    width, height = 640, 200
    left, right, top, bottom = 48, 16, 12, 34  # room for the axis labels, right-aligned at `left`
    points = [(h["at"], 100 * h["compliant"] / h["selected"] if h["selected"] else 100.0) for h in history]
    if not points:
        return '<p class="empty">No earlier runs yet.</p>'

    def y_of(percent: float) -> float:
        return height - bottom - percent / 100 * (height - top - bottom)

    step = (width - left - right) / max(1, len(points) - 1)
    coords = [(left + i * step, y_of(value)) for i, (_, value) in enumerate(points)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{html.escape(at)}: {value:.1f} %</title></circle>'
        for (x, y), (at, value) in zip(coords, points, strict=True)
    )
    grid = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{y_of(p):.1f}" y2="{y_of(p):.1f}" class="grid"/>'
        f'<text x="{left - 8}" y="{y_of(p) + 4:.1f}" text-anchor="end">{p} %</text>'
        for p in (0, 50, 100)
    )
    dates = [(left, "start", points[0][0])]
    if len(points) > 1:
        dates.append((width - right, "end", points[-1][0]))
    axis = "".join(
        f'<text x="{x}" y="{height - 8}" text-anchor="{anchor}" class="date">{html.escape(at[:16].replace("T", " "))}</text>'
        for x, anchor, at in dates
    )
    return (
        f'<svg id="compliance-chart" role="img" aria-label="Compliance over the last {len(points)} runs" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f'{grid}{axis}<polyline points="{line}" class="line"/>{dots}</svg>'
    )


STYLE = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#1b1b1b;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;min-width:30rem}
th,td{border:1px solid #c8c8c8;padding:.3rem .6rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f0f3f7}td.empty{color:#777;font-style:italic}
.findings{width:100%}.findings td{overflow-wrap:anywhere}
.findings td:nth-child(1),.findings td:nth-child(3),.findings td:nth-child(4){white-space:nowrap}
.history,.history-summary{width:100%}.history th,.history td,.history-summary th,.history-summary td{font-size:.8rem;overflow-wrap:anywhere;padding:.25rem .4rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #c8c8c8;border-radius:6px;padding:.8rem 1.2rem}
.card b{display:block;font-size:1.6rem}.dry{background:#fff4ce;padding:.5rem 1rem;border:1px solid #e0c060}
svg .line{fill:none;stroke:#0a64a4;stroke-width:2.5}svg circle{fill:#0a64a4}svg .grid{stroke:#ddd}
svg text{font-size:11px;fill:#555}
"""


def _job_history_html(history: dict[str, Any] | None) -> list[str]:
    """Backup history over the last 30 days (from Azure Monitor Logs), worst success rate first."""
    if not history:
        return []
    summary = history["summary"]
    rows = history["rows"]
    headers = list(rows[0]) if rows else ["VM", "Success rate"]
    return [
        "<h2>Backup history, last 30 days (Azure Monitor Logs)</h2>",
        _table(list(summary), [list(summary.values())], "history-summary"),
        _table(headers, [[row.get(h, "") for h in headers] for row in rows], "history"),
    ]


def render_html(report: dict[str, Any]) -> str:
    summary = report["summary"]
    cards = "".join(
        f'<div class="card"><b>{html.escape(str(value))}</b>{html.escape(label)}</div>'
        for label, value in (
            ("compliance found", f"{summary['compliancePercent']} %"),
            ("after the sweep's fixes", f"{summary['compliancePercentAfterFixes']} %"),
            ("VMs", summary["vms"]),
            ("selected by the rules", summary["selected"]),
            ("protected as the rules say", summary["compliant"]),
            ("findings", summary["findings"]),
            ("new findings", summary["newFindings"]),
        )
    )
    region_rows = [
        [k, v.get("vms", 0), v.get("selected", 0), v.get("compliant", 0)]
        for k, v in report["byRegion"].items()
    ]
    policy_rows = [[k, v.get("selected", 0), v.get("compliant", 0)] for k, v in report["byPolicy"].items()]
    kind_rows = [[k, v] for k, v in summary["byKind"].items()]
    finding_rows = [
        [
            f["kind"],
            f["target"].rsplit("/", 1)[-1],
            f["action"],
            "yes" if f["new"] else "",
            f["reason"],
            f["remedy"],
        ]
        for f in report["findings"]
    ]
    failed = summary["failedUnits"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Backup Autopilot sweep {html.escape(summary['runId'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Backup Autopilot: sweep {html.escape(summary['runId'])}</h1>",
        f"<p>Finished {html.escape(summary['finished'])}; {summary['units']} unit(s) of work.</p>",
        '<p class="dry">Dry run: nothing was changed; actions say what would be done.</p>'
        if summary["dryRun"]
        else "",
        f'<p class="dry">Units that failed: {html.escape(", ".join(failed))}</p>' if failed else "",
        f'<div class="cards">{cards}</div>',
        "<h2>Compliance over the last runs</h2>",
        _chart(report["history"]),
        "<h2>Per region</h2>",
        _table(["region", "VMs", "selected", "compliant"], region_rows, "by-region"),
        "<h2>Per policy</h2>",
        _table(["policy", "selected", "compliant"], policy_rows, "by-policy"),
        "<h2>Findings per kind</h2>",
        _table(["kind", "count"], kind_rows, "by-kind"),
        *_job_history_html(report.get("jobHistory")),
        "<h2>Findings</h2>",
        _table(["kind", "about", "action", "new", "reason", "remedy"], finding_rows, "findings"),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
