"""The command line. It reads the same settings as the app, from the environment, or from a
local.settings.json given with --settings (as the Functions host reads it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autopilot.rules import RulesError, validate_file
from autopilot.settings import Settings, SettingsError


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int] | None = None
) -> str:
    """A plain text table; long cells are cut to the given widths."""
    cells = [[str(c) for c in row] for row in rows]
    if widths is None:
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v[:w].ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if args.settings:
        values = json.loads(Path(args.settings).read_text()).get("Values", {})
        env = {**values, **{k: v for k, v in env.items() if k not in values}}
        for key in ("REQUESTS_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
            if values.get(key):
                os.environ[key] = values[key]
    if args.rules:
        env["AUTOPILOT_RULES"] = args.rules
    return Settings.from_env(env)


def _autopilot(args: argparse.Namespace) -> Any:
    from autopilot.app import Autopilot

    return Autopilot.from_settings(_settings(args))


def cmd_validate(args: argparse.Namespace) -> int:
    path = args.rules or os.environ.get("AUTOPILOT_RULES")
    if not path:
        print("autopilot validate: give --rules PATH or set AUTOPILOT_RULES", file=sys.stderr)
        return 2
    rules = validate_file(path)
    print(
        f"{path}: valid. {len(rules.vaults)} vault(s), {len(rules.policies)} policies, {len(rules.selection)} selection rule(s)."
    )
    for vault in rules.vaults:
        print(
            f"  vault  {vault.region:<16} {vault.name} ({vault.storage_redundancy}) in {vault.resource_group}"
        )
    for policy in rules.policies:
        print(f"  policy {policy.name:<16} {policy.describe()}")
    for warning in rules.warnings():
        print(f"  warning: {warning}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from autopilot.sweep.inventory import plan, read_inventory

    autopilot = _autopilot(args)
    inventory = read_inventory(autopilot.azure, autopilot.rules, autopilot.subscriptions())
    decisions = plan(autopilot.rules, inventory)
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "vmId": vm.id,
                        "outcome": d.kind.value,
                        "change": d.change,
                        "reason": d.reason,
                        "remedy": d.remedy,
                    }
                    for vm, d in decisions
                ],
                indent=2,
            )
        )
    else:
        rows = [(vm.name, vm.location, d.change or "-", d.kind.value, d.reason) for vm, d in decisions]
        print(table(["VM", "REGION", "CHANGE", "OUTCOME", "WHY"], rows, [24, 14, 16, 18, 90]))
        changes = sum(1 for _, d in decisions if d.change)
        print(f"\n{len(decisions)} VM(s); {changes} would change. Nothing was changed.")
    for scope, error in inventory.errors.items():
        print(f"could not read {scope}: {error}", file=sys.stderr)
    return 0


def cmd_protect(args: argparse.Namespace) -> int:
    from autopilot.protect.carry_out import protect_vm

    outcome = protect_vm(_autopilot(args), args.vm, source="cli")
    print(json.dumps(outcome.as_dict(), indent=2))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """The same operation as POST /api/backups, from the command line."""
    import datetime as dt
    import time
    import uuid

    from autopilot.backup_now.request import parse_request
    from autopilot.backup_now.start import request_backup
    from autopilot.backup_now.status import FINAL_STATUSES, backup_status
    from autopilot.kernel.problems import Problem

    autopilot = _autopilot(args)
    body: dict[str, Any] = {"vm": args.vm, "requestId": args.request_id or f"cli-{uuid.uuid4().hex[:12]}"}
    if args.retain_until:
        body["retainUntil"] = args.retain_until
    if args.reason:
        body["reason"] = args.reason
    if args.protect_if_needed:
        body["protectIfNeeded"] = True
    try:
        request = parse_request(
            json.dumps(body).encode(), autopilot.settings.backup_retain_days, dt.datetime.now(dt.UTC)
        )
        _, view = request_backup(autopilot, request, source="cli")
        while args.wait and view["status"] not in FINAL_STATUSES:
            time.sleep(5)
            view = backup_status(autopilot, view["id"])
    except Problem as problem:
        print(f"autopilot backup: {problem.title}: {problem.detail}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2, default=str))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """The whole sweep in this process, with progress on stderr and the report on stdout."""
    from autopilot.sweep.report import render_csv, render_html
    from autopilot.sweep.run import sweep_all

    autopilot = _autopilot(args)
    dry_run = args.dry_run or autopilot.settings.sweep_dry_run

    def progress(done: int, total: int, text: str) -> None:
        width = 30
        filled = round(width * done / total) if total else width
        end = "\n" if done == total else ""
        print(
            f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total} units  {text[:60]:<60}",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    report = sweep_all(autopilot, dry_run, progress if sys.stderr.isatty() or args.verbose else None)
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    elif args.format == "html":
        print(render_html(report))
    elif args.format == "csv":
        print(render_csv(report), end="")
    else:
        summary = report["summary"]
        inventory = summary.get("inventory") or {}
        print(
            f"Sweep {summary['runId']}{' (dry run: nothing changed)' if dry_run else ''}: {summary['vms']} VMs, "
            f"{summary['selected']} selected by the rules, {summary['compliant']} protected as they say "
            f"({summary['compliancePercent']} %), {summary['findings']} finding(s)."
        )
        print(
            f"Inventory: {inventory.get('source', 'arm')}, read at {inventory.get('readAt', '?')}"
            + (f" ({inventory['reason']})" if inventory.get("reason") else "")
            + (
                "; Resource Graph trails ARM by seconds to minutes, fixes re-read from ARM first"
                if inventory.get("source") == "resourcegraph"
                else ""
            )
        )
        rows = [
            (f["severity"], f["kind"], f["name"], f["resourceGroup"], f["action"], f["reason"])
            for f in report["findings"]
        ]
        print(
            table(
                ["SEVERITY", "KIND", "ABOUT", "RESOURCE GROUP", "ACTION", "WHY"],
                rows,
                [9, 26, 24, 20, 12, 90],
            )
        )
    return 0


def cmd_ensure_policies(args: argparse.Namespace) -> int:
    from autopilot.protect.policies import ensure_policies

    results = ensure_policies(_autopilot(args), source="cli", dry_run=args.dry_run)
    print(
        table(
            ["VAULT", "POLICY", "RESULT", "DIFFERENCES"],
            [(r.vault, r.policy, r.action, "; ".join(r.differences)) for r in results],
        )
    )
    return 0


# `python -m autopilot drill VM_ID [--wait] --format json|table`: a restore drill of one VM, as POST
# /api/drills starts it. Without --wait the drill is queued for the app (its drill queue carries it
# on); with --wait this process carries it to the end and prints the outcome.
def cmd_drill(args: argparse.Namespace) -> int:
    from autopilot.drills.api import enqueue, run_to_end, start
    from autopilot.drills.view import view
    from autopilot.kernel.problems import Problem

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
    print(json.dumps(shown, indent=2) if args.format == "json" else _drill_table(shown))
    return 0 if shown.get("status") != "Failed" else 3


def _drill_table(drill: dict[str, Any]) -> str:
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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--settings", help="read app settings from this local.settings.json, as the host does"
    )
    common.add_argument("--rules", help="the rules file (default: AUTOPILOT_RULES)")
    common.add_argument("--verbose", action="store_true")
    parser = argparse.ArgumentParser(
        prog="python -m autopilot", description="Backup Autopilot for Azure VMs."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, parents=[common])
        sub.set_defaults(run=run)
        return sub

    command("validate", "check the rules file and say what it holds", cmd_validate)
    plan_parser = command("plan", "what would be done to each VM, and why; changes nothing", cmd_plan)
    plan_parser.add_argument("--format", choices=["table", "json"], default="table")
    protect_parser = command("protect", "protect one VM now, as the rules say", cmd_protect)
    protect_parser.add_argument("vm", help="the VM's resource id")
    backup_parser = command(
        "backup", "back up one VM now, with a retain-until date (as POST /api/backups)", cmd_backup
    )
    backup_parser.add_argument("vm", help="the VM's resource id")
    backup_parser.add_argument("--retain-until", help="date (2026-12-31) or UTC date-time; default: 30 days")
    backup_parser.add_argument(
        "--request-id", help="idempotency key (e.g. the ticket number); default: a new one"
    )
    backup_parser.add_argument("--reason", help="why (kept in the audit table)")
    backup_parser.add_argument(
        "--protect-if-needed", action="store_true", help="protect the VM first if the rules select it"
    )
    backup_parser.add_argument(
        "--wait", action="store_true", help="wait until the job ends and show its phases"
    )
    sweep_parser = command(
        "sweep", "check the whole estate, fix what the rules allow, report the rest", cmd_sweep
    )
    sweep_parser.add_argument("--dry-run", action="store_true", help="change nothing; say what would be done")
    sweep_parser.add_argument("--format", choices=["table", "json", "html", "csv"], default="table")
    ensure_parser = command(
        "ensure-policies", "create or update the rules' policies in every vault", cmd_ensure_policies
    )
    ensure_parser.add_argument("--dry-run", action="store_true")
    drill_parser = command(
        "drill", "restore drill of one VM: restore its disks, verify them, delete them", cmd_drill
    )
    drill_parser.add_argument("vm", help="the VM's resource id")
    drill_parser.add_argument("--wait", action="store_true", help="run the drill here until it ends")
    drill_parser.add_argument("--reason", default="", help="why (kept in the audit table)")
    drill_parser.add_argument("--format", choices=["table", "json"], default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(args))
    except (RulesError, SettingsError) as error:
        print(f"autopilot {args.command}: {error}", file=sys.stderr)
        return 1
