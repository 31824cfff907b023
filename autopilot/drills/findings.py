"""What the sweep's report says of restore drills: findings (a restore that failed, with its error's
class and remedy; a verification that failed; a VM from the restored disks that did not boot; a restore slower than its policy's objective; a VM not
drilled within the rotation period; no recovery point to drill) and the report's drills section (per
policy: success rate, restore times against the objective; per VM: when it was last proven)."""

from __future__ import annotations

import datetime as dt
import html
import statistics
from typing import TYPE_CHECKING, Any

from autopilot.drills import engine

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.kernel.findings import Finding
    from autopilot.sweep.results import UnitResult

PROGRAMME = "programme"  # the drill-round row that says since when drills run
_OUTCOME_KIND = {
    "restore-failed": "drill-restore-failed",
    "restore-refused": "drill-restore-failed",
    "verify-failed": "drill-verify-failed",
    "boot-failed": "drill-boot-failed",
    "no-recovery-point": "drill-no-recovery-point",
}
VM_ID, POLICY, PROTECTION = 0, 6, 8  # columns of the report's VM rows (report.VM_COLUMNS)


def _recent(autopilot: Autopilot, now: dt.datetime) -> list[dict[str, Any]]:
    """Drills that ended within the rotation period, oldest first."""
    drills = autopilot.rules.drills
    assert drills is not None
    since = now - dt.timedelta(days=drills.rotation_days)
    rows = autopilot.state.rows(engine.KIND, "Finished ge @since", {"since": since})
    return sorted((r for r in rows if r.get("Status") in engine.FINAL), key=lambda r: r["Finished"])


def drill_findings(autopilot: Autopilot, results: list[UnitResult], now: dt.datetime) -> list[Finding]:
    if autopilot.rules.drills is None:
        return []
    latest: dict[str, dict[str, Any]] = {}
    for record in _recent(autopilot, now):
        latest[str(record["VmId"]).lower()] = record
    findings = [f for record in latest.values() if (f := _finding(record)) is not None]
    return findings + _overdue(autopilot, results, now)


def _finding(record: dict[str, Any]) -> Finding | None:
    from autopilot.azure.errorcodes import classify
    from autopilot.kernel.findings import Finding

    outcome = str(record.get("Outcome", ""))
    kind = _OUTCOME_KIND.get(outcome)
    drill = f"restore drill {record['Id']} ({record.get('Finished'):%Y-%m-%d %H:%M} UTC)"
    common = {
        "target": str(record["VmId"]),
        "action": "reported",
        "vault": str(record.get("Vault", "")),
        "policy": str(record.get("Policy", "")),
    }
    if kind == "drill-restore-failed":
        code = str(record.get("ErrorCode") or "")
        remedy = str(record.get("Remedy") or classify(code).remedy)
        reason = f"{drill}: the restore failed with {code or 'no error code'} ({record.get('ErrorClass') or 'unknown class'})"
        return Finding(kind, reason=reason, remedy=remedy, detail=code, **common)
    if kind == "drill-boot-failed":
        from autopilot.drills.boot import REMEDY

        remedy = str(record.get("Remedy") or REMEDY)
        return Finding(
            kind, reason=f"{drill}: {record.get('Why', outcome)}", remedy=remedy, detail=outcome, **common
        )
    if kind is not None:
        remedy = (
            "Check the VM's backups: protect it and let a backup of the drills' tier complete."
            if kind == "drill-no-recovery-point"
            else "Look at the drill's checks (GET /api/drills/{id}); restore the VM by hand to confirm, and open a support case with Azure Backup if the disks differ."
        )
        return Finding(
            kind, reason=f"{drill}: {record.get('Why', outcome)}", remedy=remedy, detail=outcome, **common
        )
    seconds, objective = record.get("RestoreSeconds"), int(record.get("ObjectiveSeconds") or 0)
    if outcome == "passed" and objective and isinstance(seconds, int | float) and seconds > objective:
        return Finding(
            "drill-slow-restore",
            reason=f"{drill}: the restore took {_duration(seconds)}, over the objective of {_duration(objective)}",
            remedy="Restore from the snapshot tier (instant restore) where the objective is tight, or revise the objective in the rules.",
            detail="slow",
            **common,
        )
    return None


def _overdue(autopilot: Autopilot, results: list[UnitResult], now: dt.datetime) -> list[Finding]:
    """Protected VMs a policy sample covers, not proven within the rotation period, once drills have
    run for a whole period (before that, a VM not yet drilled is not late)."""
    from autopilot.drills.rounds import ROUND
    from autopilot.kernel.findings import Finding

    drills = autopilot.rules.drills
    assert drills is not None
    since = (autopilot.state.get(ROUND, PROGRAMME) or {}).get("Since")
    period = dt.timedelta(days=drills.rotation_days)
    if not isinstance(since, dt.datetime) or now - since < period:
        return []
    proven = {str(r.get("Key", "")).lower(): r.get("LastProven") for r in autopilot.state.rows(engine.LAST)}
    out = []
    for result in results:
        for row in result.vm_rows:
            if row[PROTECTION] not in ("Protected", "IRPending") or not row[POLICY]:
                continue
            sample = drills.sample_of(row[POLICY], {})
            last = proven.get(row[VM_ID].lower())
            if sample is None or (isinstance(last, dt.datetime) and now - last <= period):
                continue
            when = f"last proven {last:%Y-%m-%d}" if isinstance(last, dt.datetime) else "never proven"
            out.append(
                Finding(
                    "drill-overdue",
                    row[VM_ID],
                    f"not proven by a restore drill in {drills.rotation_days} days ({when})",
                    "Check that drill rounds run (the drill timer) and that the samples' sizes cover the VMs within the rotation period; or drill it now: POST /api/drills.",
                    "reported",
                    region=row[4],
                    policy=row[POLICY],
                )
            )
    return out


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return (
        f"{seconds // 3600} h {seconds % 3600 // 60} min"
        if seconds >= 3600
        else f"{seconds // 60} min {seconds % 60} s"
    )


def drills_summary(autopilot: Autopilot, now: dt.datetime) -> dict[str, Any] | None:
    """The report's drills section: per policy, drills, passed, success rate, restore times (median,
    worst), the objective and, where verify: boot ran, the time to a booted VM (median, worst); per VM drilled, its last drill and when it was last proven."""
    drills = autopilot.rules.drills
    if drills is None:
        return None
    records = _recent(autopilot, now)
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_policy.setdefault(str(record.get("Policy", "")), []).append(record)
    policies = []
    for policy, rows in sorted(by_policy.items()):
        times = [
            float(r["RestoreSeconds"])
            for r in rows
            if isinstance(r.get("RestoreSeconds"), int | float) and r.get("JobId")
        ]
        booted = [
            float(r["RestoreSeconds"])
            for r in rows
            if isinstance(r.get("RestoreSeconds"), int | float)
            and isinstance(r.get("BootSeconds"), int | float)
            and r.get("Outcome") == "passed"
        ]
        passed = sum(1 for r in rows if r.get("Status") == "Passed")
        objective = drills.policy(policy).restore_objective_seconds
        policies.append(
            {
                "policy": policy,
                "drills": len(rows),
                "passed": passed,
                "successPercent": round(100 * passed / len(rows), 1),
                "medianRestoreSeconds": round(statistics.median(times), 1) if times else None,
                "worstRestoreSeconds": round(max(times), 1) if times else None,
                "objectiveSeconds": objective,
                "withinObjective": (max(times) <= objective) if times and objective else None,
                "bootDrills": sum(1 for r in rows if r.get("VerifyBoot")),
                "medianTimeToBootedVmSeconds": round(statistics.median(booted), 1) if booted else None,
                "worstTimeToBootedVmSeconds": round(max(booted), 1) if booted else None,
            }
        )
    last = autopilot.state.rows(engine.LAST)
    vms = [
        {
            "vm": str(r.get("Key", "")),
            "policy": r.get("Policy", ""),
            "lastDrill": _iso(r.get("LastDrillAt")),
            "lastOutcome": r.get("LastOutcome", ""),
            "lastProven": _iso(r.get("LastProven")),
        }
        for r in sorted(last, key=lambda r: str(r.get("Key", "")).lower())
    ]
    return {
        "rotationDays": drills.rotation_days,
        "since": _iso(now - dt.timedelta(days=drills.rotation_days)),
        "byPolicy": policies,
        "vms": vms,
    }


def _iso(value: object) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, dt.datetime) else None


def drills_html(section: dict[str, Any] | None) -> list[str]:
    """The report page's drills section (no scripts; text escaped)."""
    if not section:
        return []

    def cell(value: object) -> str:
        return html.escape("" if value is None else str(value))

    def seconds(value: object) -> str:
        return _duration(float(value)) if isinstance(value, int | float) else ""

    policy_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell(v)}</td>"
            for v in (
                p["policy"],
                p["drills"],
                p["passed"],
                f"{p['successPercent']} %",
                seconds(p["medianRestoreSeconds"]),
                seconds(p["worstRestoreSeconds"]),
                seconds(p["objectiveSeconds"]) or "none",
                {True: "yes", False: "NO", None: ""}[p["withinObjective"]],
                seconds(p.get("medianTimeToBootedVmSeconds"))
                or ("none booted" if p.get("bootDrills") else ""),
            )
        )
        + "</tr>"
        for p in section["byPolicy"]
    )
    vm_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{cell(v)}</td>"
            for v in (
                v["vm"].rsplit("/", 1)[-1],
                v["vm"].split("/")[4] if v["vm"].count("/") > 4 else "",
                v["policy"],
                v["lastDrill"],
                v["lastOutcome"],
                v["lastProven"] or "never",
            )
        )
        + "</tr>"
        for v in section["vms"][:1500]
    )
    policy_head = "".join(
        f"<th>{h}</th>"
        for h in (
            "policy",
            "drills",
            "passed",
            "success rate",
            "median restore",
            "worst restore",
            "objective",
            "within objective",
            "time to a booted VM",
        )
    )
    vm_head = "".join(
        f"<th>{h}</th>" for h in ("VM", "resource group", "policy", "last drill", "outcome", "last proven")
    )
    return [
        '<section id="drills">',
        f"<h2>Restore drills (the last {section['rotationDays']} days)</h2>",
        f'<table class="drills-by-policy"><thead><tr>{policy_head}</tr></thead><tbody>{policy_rows}</tbody></table>',
        "<h3>When each VM was last proven</h3>",
        f'<table class="drills-by-vm"><thead><tr>{vm_head}</tr></thead><tbody>{vm_rows}</tbody></table>',
        "</section>",
    ]
