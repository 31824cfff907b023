"""The sweep's report: JSON for machines (every finding and every VM), a CSV of every VM for auditors,
and a self-contained HTML page for people, bounded at estate scale (no scripts, no external files).

The page puts problems first: the findings by severity with what each kind means and what to do, then
the findings themselves (VMs named with their resource group and subscription), at most
HTML_FINDINGS of them (the rest are in the JSON and the CSV); then the tables per region and per policy,
the compliance chart (inline SVG) and the backup history, and last what every label means. VMs with
nothing to act on have no row on the page: they are in the JSON (`vms`) and the CSV.

About 550 lines because the page is written here as plain HTML with its styles (no template engine, so
no script or external file reaches the page); each section is a short function of its own."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from azure.mgmt.core.tools import parse_resource_id

from autopilot.drills.findings import drills_html
from autopilot.kernel.findings import KINDS, kind_of
from autopilot.kernel.problems import Problem, printable

if TYPE_CHECKING:
    from autopilot.kernel.findings import Finding
    from autopilot.sweep.results import UnitResult


HTML_FINDINGS = 1500  # findings on the page at most (100,000 VMs stay under 2 MB); all are in the JSON
VM_COLUMNS = (
    "vmId",
    "vm",
    "resourceGroup",
    "subscription",
    "region",
    "status",
    "policy",
    "vault",
    "protectionState",
    "lastRecoveryPoint",
    "findings",
)
SEVERITIES = ("critical", "warning", "info")
ACTIONS = {
    "fixed": "the sweep fixed it",
    "would-fix": "a dry run: the sweep would fix it",
    "fix-failed": "the sweep tried to fix it and failed (see the reason)",
    "retried": "the sweep started one automatic retry",
    "would-retry": "a dry run: the sweep would retry it once",
    "reported": "reported only: a person decides",
}


def severity(kind: str) -> str:
    return kind_of(kind).severity


def named(target: str) -> tuple[str, str, str]:
    """(name, resource group, subscription) of a finding's target, as a person reads them: a VM by
    its name; a backup item by its VM's name; a policy or vault by its name."""
    parts = parse_resource_id(target)
    subscription = str(parts.get("subscription", ""))
    if not subscription:
        return target.replace("policy:", "policy "), "", ""
    group = str(parts.get("resource_group", ""))
    last = str(parts.get("resource_name") or parts.get("name") or group)
    children = {
        str(parts.get(f"child_type_{n}", "")).lower(): str(parts.get(f"child_name_{n}", ""))
        for n in (1, 2, 3)
    }
    if "protectioncontainers" in children:  # IaasVMContainer;iaasvmcontainerv2;<group>;<vm>
        bits = children["protectioncontainers"].split(";")
        vm_group, vm = (bits[-2], bits[-1]) if len(bits) >= 3 else (group, last)
        return f"{vm} (backup item)", vm_group, subscription
    if "backuppolicies" in children:
        return f"policy {last} in vault {parts['name']}", group, subscription
    if not last:
        return f"subscription {subscription}", "", subscription
    return last, group, subscription


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
    by_severity = Counter(severity(f.kind) for f in findings)
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
        "bySeverity": {level: by_severity.get(level, 0) for level in SEVERITIES},
        "inventory": inventory or {"source": "arm", "reason": ""},
    }
    rank = {level: n for n, level in enumerate(SEVERITIES)}

    def order(f: Finding) -> tuple[int, str, str, str, str]:
        name, group, sub = named(f.target)
        return (rank[severity(f.kind)], f.kind, sub.lower(), group.lower(), name.lower())

    listed = []
    for f in sorted(findings, key=order):
        name, group, sub = named(f.target)
        listed.append(
            {
                **asdict(f),
                "new": f.key in new_keys,
                "severity": severity(f.kind),
                "name": name,
                "resourceGroup": group,
                "subscription": sub,
            }
        )
    return {
        "summary": summary,
        "byRegion": dict(sorted(by_region.items())),
        "byPolicy": dict(sorted(by_policy.items())),
        "findings": listed,
        "units": [
            {
                "unit": r.unit,
                "vms": r.vms,
                "selected": r.selected,
                "compliant": r.compliant,
                "error": r.error,
                "inventory": r.inventory,
            }
            for r in results
        ],
        "history": history,
        "vmColumns": list(VM_COLUMNS),
        "vms": [row for r in results for row in r.vm_rows],
        "posture": posture_rows(results),
    }


POSTURE_COLUMNS = (
    "vaultId",
    "vault",
    "resourceGroup",
    "subscription",
    "region",
    "level",
    "azureLevel",
    "minimumLevel",
    "softDelete",
    "softDeleteRetentionDays",
    "immutability",
    "multiUserAuthorization",
    "crossRegionRestore",
    "publicNetworkAccess",
    "redundancy",
    "missing",
    "fixed",
    "note",
)


def posture_rows(results: list[UnitResult]) -> list[dict[str, Any]]:
    """Every vault's security posture, vaults with something missing first (below the minimum first)."""
    rows = [row for r in results for row in r.posture]
    return sorted(
        rows,
        key=lambda row: (
            not row.get("belowMinimum"),
            not row.get("missing"),
            str(row.get("vaultId", "")).lower(),
        ),
    )


def posture_csv_bytes(report: dict[str, Any]) -> bytes:
    """The vaults' security posture, one row a vault (POSTURE_COLUMNS), for auditors."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POSTURE_COLUMNS)
    for row in report.get("posture") or []:
        writer.writerow(
            "; ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
            for v in (row.get(c) for c in POSTURE_COLUMNS)
        )
    return out.getvalue().encode()


def _posture_html(report: dict[str, Any]) -> list[str]:
    rows = report.get("posture") or []
    if not rows:
        return []
    below = sum(1 for row in rows if row.get("belowMinimum"))
    table = [
        [
            row.get("vault", ""),
            row.get("resourceGroup", ""),
            row.get("subscription", ""),
            f"{row.get('level', '')} (minimum {row.get('minimumLevel', '')})",
            f"{row.get('softDelete', '')}, {row.get('softDeleteRetentionDays', '')} days",
            row.get("immutability", ""),
            "on" if row.get("multiUserAuthorization") else "off",
            "on" if row.get("crossRegionRestore") else "off",
            row.get("publicNetworkAccess", ""),
            row.get("redundancy", ""),
            ", ".join(row.get("missing") or []) or "nothing",
            ", ".join(row.get("fixed") or []),
        ]
        for row in rows
    ]
    return [
        f"<h2>Vault security posture ({below} of {len(rows)} below the rules' minimum)</h2>",
        '<p class="more">Security level as Azure Business Continuity Center grades it (Excellent: immutability'
        " Locked or soft delete always-on, and multi-user authorization; Good: the irreversible protection;"
        " Fair: multi-user authorization; Poor: neither). Settings as read before the sweep's fixes; the"
        " findings above name each missing control and its remedy (GET /api/report?format=posture-csv).</p>",
        _table(
            [
                "vault",
                "resource group",
                "subscription",
                "level",
                "soft delete",
                "immutability",
                "multi-user authorization",
                "cross-region restore",
                "public access",
                "redundancy",
                "missing",
                "fixed now",
            ],
            table,
            "posture",
        ),
    ]


def render_csv(report: dict[str, Any]) -> str:
    """Every VM of the run, one row each, for auditors (the columns of VM_COLUMNS)."""
    return csv_bytes(report).decode()


def csv_bytes(report: dict[str, Any]) -> bytes:
    """The CSV as UTF-8, written straight to bytes (no text copy of it is held at 100,000 VMs)."""
    out = io.BytesIO()
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(report.get("vmColumns") or VM_COLUMNS)
    writer.writerows(report.get("vms") or [])
    text.detach()
    return out.getvalue()


def json_bytes(report: dict[str, Any]) -> bytes:
    """The report as UTF-8 JSON, encoded piece by piece (indented only when small)."""
    import json

    large = len(report.get("vms") or []) > 5000
    encoder = json.JSONEncoder(separators=(",", ":")) if large else json.JSONEncoder(indent=1)
    out = io.BytesIO()
    for chunk in encoder.iterencode(report):
        out.write(chunk.encode())
    return out.getvalue()


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
.findings{width:100%}.findings td{overflow-wrap:anywhere}.findings td:nth-child(8){min-width:12rem}
.findings td:nth-child(9){min-width:9rem}.findings td:nth-child(5){font-size:.75rem}
.inventory{color:#333;font-size:.9rem}.more{color:#555;font-size:.85rem}
.glossary dt{font-weight:600;margin-top:.4rem}.glossary dd{margin:0 0 0 1.2rem;font-size:.9rem}
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


def _inventory_html(summary: dict[str, Any]) -> str:
    info = summary.get("inventory") or {}
    source = info.get("source", "arm")
    when = str(info.get("readAt", ""))[:19].replace("T", " ")
    if source == "resourcegraph":
        what = (
            f"Read from Azure Resource Graph at {html.escape(when)} UTC"
            f" ({info.get('pages', '?')} pages, {info.get('rows', '?')} rows)."
            " Resource Graph trails Azure Resource Manager by seconds to minutes: every fix re-read the VM,"
            " policy or vault from Resource Manager first, and a VM created since then is the event path's."
        )
    else:
        what = f"Read from Azure Resource Manager in pages, subscription by subscription, from {html.escape(when)} UTC."
    reason = f" Why: {html.escape(str(info.get('reason', '')))}." if info.get("reason") else ""
    return f'<p class="inventory" id="inventory">Inventory: {what}{reason}</p>'


def _legend(summary: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for kind, count in sorted(
        summary["byKind"].items(), key=lambda kv: (SEVERITIES.index(severity(kv[0])), kv[0])
    ):
        rows.append([severity(kind), kind, count, kind_of(kind).meaning])
    return rows


def _glossary() -> str:
    terms = [
        ("severity", "critical: data is not being protected or cannot be; warning: protection works but "
         "differs from the rules or needs care; info: nothing is wrong yet."),
        ("about", "the VM (or backup item, policy, vault) the finding is about, by name; with its resource "
         "group and subscription, as VMs of one name live in several resource groups."),
        ("action", "; ".join(f"{k}: {v}" for k, v in ACTIONS.items()) + "."),
        ("new", "yes: first seen in this run (an event was published); empty: seen before."),
        ("reason / remedy", "why the sweep says so, from Azure's facts and the rules; what to do about it."),
        ("VMs", "every VM of the subscriptions in scope."),
        ("selected", "VMs the rules select for a policy (not opted out)."),
        ("compliant", "selected VMs protected as the rules say (right vault set, policy and disks)."),
        ("compliance", "compliant / selected; after the sweep's fixes: counting the VMs it fixed."),
        ("policy (none)", "selected VMs for which no policy could be named (e.g. no vault in their region)."),
        *((kind.name, kind.meaning) for kind in KINDS.values()),
    ]  # fmt: skip
    items = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in terms)
    return f'<dl class="glossary">{items}</dl>'


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
    policy_rows = [
        [k if k != "-" else "(none)", v.get("selected", 0), v.get("compliant", 0)]
        for k, v in report["byPolicy"].items()
    ]
    kind_rows = [[k, v] for k, v in summary["byKind"].items()]
    shown = report["findings"][:HTML_FINDINGS]
    finding_rows = [
        [
            f.get("severity") or severity(f["kind"]),
            f["kind"],
            f.get("name") or named(f["target"])[0],
            f.get("resourceGroup", ""),
            f.get("subscription", ""),
            f["action"],
            "yes" if f["new"] else "",
            f["reason"],
            f["remedy"],
        ]
        for f in shown
    ]
    more = len(report["findings"]) - len(shown)
    failed = summary["failedUnits"]
    counts = summary.get("bySeverity") or {}
    problems = ", ".join(f"{counts.get(level, 0)} {level}" for level in SEVERITIES)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Backup Autopilot sweep {html.escape(summary['runId'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Backup Autopilot: sweep {html.escape(summary['runId'])}</h1>",
        f"<p>Finished {html.escape(summary['finished'])}; {summary['units']} unit(s) of work.</p>",
        _inventory_html(summary),
        '<p class="dry">Dry run: nothing was changed; actions say what would be done.</p>'
        if summary["dryRun"]
        else "",
        f'<p class="dry">Units that failed: {html.escape(", ".join(failed))}</p>' if failed else "",
        f'<div class="cards">{cards}</div>',
        f"<h2>Problems first: {html.escape(problems)}</h2>",
        _table(["severity", "kind", "count", "what it means"], _legend(summary), "by-severity"),
        f"<h2>Findings ({len(report['findings'])})</h2>",
        f'<p class="more">The first {len(shown)} of {len(report["findings"])}, most severe first; every finding'
        " is in the JSON report (GET /api/report?format=json) and every VM in the CSV"
        " (GET /api/report?format=csv).</p>"
        if more > 0
        else "",
        _table(
            [
                "severity",
                "kind",
                "about",
                "resource group",
                "subscription",
                "action",
                "new",
                "reason",
                "remedy",
            ],
            finding_rows,
            "findings",
        ),
        *_posture_html(report),
        "<h2>Per region</h2>",
        _table(["region", "VMs", "selected", "compliant"], region_rows, "by-region"),
        "<h2>Per policy</h2>",
        _table(["policy", "selected", "compliant"], policy_rows, "by-policy"),
        "<h2>Findings per kind</h2>",
        _table(["kind", "count"], kind_rows, "by-kind"),
        "<h2>Compliance over the last runs</h2>",
        _chart(report["history"]),
        *_job_history_html(report.get("jobHistory")),
        *drills_html(report.get("drills")),
        "<h2>What the labels mean</h2>",
        _glossary(),
        f'<p class="more">VMs with nothing to act on have no row here: all {summary["vms"]} VMs are in the JSON'
        " report (vms) and the CSV export (GET /api/report?format=csv).</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


# The files of the latest run that GET /api/report serves, by its `format` parameter.
LATEST = {
    "html": ("latest.html", "text/html", ""),
    "json": ("latest.json", "application/json", ""),
    "csv": ("latest.csv", "text/csv", "backup-autopilot-vms.csv"),
    "posture-csv": ("latest-posture.csv", "text/csv", "backup-autopilot-vault-posture.csv"),
}


def latest_report(reports: Any, report_format: str | None) -> tuple[bytes, str, dict[str, str]]:
    """(body, media type, headers) of the latest run's report in a format of LATEST (html when none
    is asked for), read from the reports container; a Problem when the format is unknown (400) or
    no sweep has finished yet (404)."""
    from azure.core.exceptions import ResourceNotFoundError

    wanted = report_format or "html"
    if wanted not in LATEST:
        raise Problem(
            400,
            "bad-format",
            "Unknown report format",
            f"format={printable(wanted[:40])!r} is not a report format; use one of {', '.join(LATEST)}.",
            field="format",
        )
    name, media_type, download = LATEST[wanted]
    try:
        body = reports.download_blob(name).readall()
    except ResourceNotFoundError:
        raise Problem(404, "no-report", "No report yet", "No sweep has finished yet.") from None
    headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    if download:  # every VM (or vault) of the latest run, for auditors: a download
        headers["Content-Disposition"] = f'attachment; filename="{download}"'
    return bytes(body), media_type, headers
