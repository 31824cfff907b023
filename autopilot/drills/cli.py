"""`python -m autopilot drill VM_ID [--wait] --format json|table`: a restore drill of one VM, as POST
/api/drills starts it. Without --wait the drill is queued for the app (its drill queue carries it
on); with --wait this process carries it to the end and prints the outcome."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(command: Any) -> None:
    parser = command(
        "drill", "restore drill of one VM: restore its disks, verify them, delete them", cmd_drill
    )
    parser.add_argument("vm", help="the VM's resource id")
    parser.add_argument("--wait", action="store_true", help="run the drill here until it ends")
    parser.add_argument("--reason", default="", help="why (kept in the audit table)")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def cmd_drill(args: argparse.Namespace) -> int:
    from autopilot.cli import _autopilot
    from autopilot.drills.api import enqueue, run_to_end, start
    from autopilot.drills.view import view
    from autopilot.problems import Problem

    autopilot = _autopilot(args)
    try:
        record, created = start(autopilot, args.vm, source="cli", reason=args.reason)
    except Problem as problem:
        print(f"autopilot drill: {problem.title}: {problem.detail}", file=sys.stderr)
        return 1
    if args.wait:
        shown = run_to_end(autopilot, str(record["Id"]))
    else:
        if created:
            enqueue(autopilot, str(record["Id"]), 0)
        shown = view(record)
    print(json.dumps(shown, indent=2) if args.format == "json" else render_table(shown))
    return 0 if shown.get("status") != "Failed" else 3


def render_table(drill: dict[str, Any]) -> str:
    from autopilot.cli import table

    rows: list[list[object]] = [
        [key, "" if drill.get(key) is None else drill[key]]
        for key in (
            "id",
            "vm",
            "status",
            "outcome",
            "detail",
            "tier",
            "recoveryPoint",
            "jobId",
            "restoreSeconds",
            "objectiveSeconds",
            "withinObjective",
            "cleanedUp",
        )
    ]
    if drill.get("error"):
        rows.append(
            ["error", f"{drill['error']['code']} ({drill['error']['class']}): {drill['error']['remedy']}"]
        )
    for check in drill.get("checks", []):
        rows.append(
            [
                f"check: {check['name']}",
                f"{'passed' if check['passed'] else 'FAILED'}; found {check['found']}",
            ]
        )
    return table(["field", "value"], rows, [24, 100])
