"""The sweep: the whole estate checked, fixed where the rules allow, and reported.

A run is split into units of work, one per subscription, so that Azure Functions can spread them
over instances through a Storage queue. A unit reads its subscription in pages (VMs with their
instance views, shared disks, each vault's protected items, policies, storage configuration and
backup jobs since the last sweep: no per-VM status calls), finds what is wrong, fixes what it may,
and stores its findings. The unit that finishes last assembles the run's report.

Findings are keyed, so that a problem is announced (one CloudEvent) when it is first seen, not on
every sweep, and forgotten when it is gone. A dry run changes nothing on Azure and announces nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError

from autopilot.azure.resourcegraph import forget
from autopilot.kernel.findings import Finding, kind_of
from autopilot.names import split_id
from autopilot.rules import SubscriptionFacts
from autopilot.sweep.daylight import dst_findings
from autopilot.sweep.inventory import (
    ARM,
    GRAPH,
    Inventory,
    Source,
    choose_source,
    dump_inventory,
    inventory_from_estate,
    load_inventory,
    read_estate,
)
from autopilot.sweep.results import UnitResult
from autopilot.sweep.unit import sweep_subscription

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.azure.resourcegraph import Estate

log = logging.getLogger("autopilot.sweep.run")

SWEEP_COMPLETED = "BackupAutopilot.Sweep.Completed"


UNIT_FAILED = "BackupAutopilot.Sweep.UnitFailed"


# -- runs -------------------------------------------------------------------------------------------
def new_run(autopilot: Autopilot, dry_run: bool) -> tuple[str, list[dict[str, Any]]]:
    """A run id and its queue messages (see _new_run)."""
    run_id, messages, _ = _new_run(autopilot, dry_run)
    return run_id, messages


def _new_run(
    autopilot: Autopilot, dry_run: bool, finish: bool = True
) -> tuple[str, list[dict[str, Any]], dict[str, UnitResult]]:
    """A run id, its queue messages and the units already swept. By ARM pages: one unit of work per
    subscription in scope. By Resource Graph: the whole scope is read at once here, and a unit is queued only for a subscription
    with work to do (fixes, retries, changes left half done); the others are swept here, from what was
    read (they change nothing on Azure)."""
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    source = choose_source(autopilot)
    if source.facts:
        autopilot.rules = autopilot.rules.with_facts(source.facts)
    units = list(source.subscriptions)
    info: dict[str, Any] = {"source": source.name, "reason": source.reason}
    _save_scope(autopilot, run_id, units, source)
    if source.name == ARM:
        info["readAt"] = dt.datetime.now(dt.UTC).isoformat()
        _put_run(autopilot, run_id, dry_run, units, info)
        return run_id, [{"runId": run_id, "subscription": s, "dryRun": dry_run} for s in units], {}
    pending = (
        set()
        if dry_run
        else {split_id(str(row.get("Key", "")))[0].lower() for row in autopilot.state.rows("pending")}
    )
    # Each subscription is swept as soon as Resource Graph has given its VMs (a thread of its own, so
    # that the sweep of one runs while the next pages wait for Resource Graph's quota).
    lock = threading.Lock()
    queued: set[str] = set()
    done: dict[str, UnitResult] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-graph")
    futures: dict[str, Future[None]] = {}
    wanted = {u.lower(): u for u in units}

    def sweep_one(estate: Estate, subscription: str) -> None:
        inventory = inventory_from_estate(autopilot, estate, subscription)
        probe = sweep_subscription(autopilot, subscription, run_id, True, GRAPH, inventory)
        # A dry run changes nothing, so no unit has work; a real one queues the subscriptions with fixes
        # to make, each with what was read (a unit re-reads from ARM what it changes).
        if not dry_run and (subscription.lower() in pending or any(f.action in WORK for f in probe.findings)):
            autopilot.reports.upload_blob(
                f"runs/{run_id}/inventory/{_safe(subscription)}.json",
                json.dumps(dump_inventory(inventory)),
                overwrite=True,
            )
            with lock:
                queued.add(subscription.lower())
            forget(estate, subscription)
            return
        result = (
            probe if dry_run else sweep_subscription(autopilot, subscription, run_id, False, GRAPH, inventory)
        )
        store_unit(autopilot, result)
        with lock:
            done[subscription.lower()] = result

    def complete(estate: Estate, subscription: str) -> None:
        if subscription in wanted and subscription not in futures:
            futures[subscription] = pool.submit(sweep_one, estate, wanted[subscription])

    try:
        estate = read_estate(autopilot, complete=complete)
        for key, unit in wanted.items():  # subscriptions without VMs
            if key not in futures:
                futures[key] = pool.submit(sweep_one, estate, unit)
        for future in futures.values():
            future.result()
    finally:
        pool.shutdown(wait=True)
    info.update(
        readAt=estate.read_at.isoformat(), queries=estate.queries, pages=estate.pages, rows=estate.rows
    )
    _put_run(autopilot, run_id, dry_run, units, info)
    messages = [{"runId": run_id, "subscription": u, "dryRun": dry_run} for u in units if u.lower() in queued]
    log.info(
        "sweep %s: Resource Graph read %d VMs in %d pages; %d of %d subscriptions have work",
        run_id,
        estate.vm_count,
        estate.pages,
        len(messages),
        len(units),
    )
    del estate
    if not messages and finish:
        finish_if_complete(autopilot, run_id)
    return run_id, messages, done


WORK = ("would-fix", "would-retry")  # a dry run's actions that a unit of work must carry out


def _put_run(
    autopilot: Autopilot, run_id: str, dry_run: bool, units: list[str], info: dict[str, Any]
) -> None:
    text = json.dumps(units)
    autopilot.state.put(
        "sweep-run",
        run_id,
        {
            # Many subscriptions do not fit a table property (64 KiB): they are in the run's scope blob.
            "Units": text if len(text) < 30_000 else "",
            "DryRun": dry_run,
            "Started": dt.datetime.now(dt.UTC),
            "Inventory": json.dumps(info),
        },
    )


def _save_scope(autopilot: Autopilot, run_id: str, units: list[str], source: Source) -> None:
    """The run's subscriptions and what templates know of them, for units that run elsewhere."""
    body = {
        "units": units,
        "source": source.name,
        "facts": {k: [v.name, list(v.management_groups)] for k, v in source.facts.items()},
    }
    autopilot.reports.upload_blob(f"runs/{run_id}/scope.json", json.dumps(body), overwrite=True)


def _scope(autopilot: Autopilot, run_id: str, run: dict[str, Any]) -> dict[str, Any]:
    if run.get("Units"):
        units = json.loads(run["Units"])
        info = json.loads(run.get("Inventory") or "{}")
        if not (info.get("source") == GRAPH and autopilot.rules.vault_templates):
            return {"units": units, "source": info.get("source", ARM), "facts": {}}
    try:
        data: dict[str, Any] = json.loads(
            autopilot.reports.download_blob(f"runs/{run_id}/scope.json").readall()
        )
    except ResourceNotFoundError:
        return {"units": json.loads(run.get("Units") or "[]"), "source": ARM, "facts": {}}
    return data


def parse_message(text: str) -> dict[str, Any] | None:
    """A unit of work from a queue message, or None if the message is not one (it is set aside)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"runId", "subscription", "dryRun"}:
        return None
    if not all(isinstance(data[k], str) and 0 < len(data[k]) <= 100 for k in ("runId", "subscription")):
        return None
    if not isinstance(data["dryRun"], bool):
        return None
    return data


def run_unit(autopilot: Autopilot, message: dict[str, Any]) -> UnitResult:
    """The queue function's work: sweep one unit, store its result, finish the run if it was the last."""
    run_id, subscription = message["runId"], message["subscription"]
    run = autopilot.state.get("sweep-run", run_id)
    scope: dict[str, Any] = (
        _scope(autopilot, run_id, run) if run is not None else {"units": [], "source": ARM, "facts": {}}
    )
    if scope["facts"]:
        autopilot.rules = autopilot.rules.with_facts(
            {k: SubscriptionFacts(v[0], tuple(v[1])) for k, v in scope["facts"].items()}
        )
    if subscription.lower() not in {u.lower() for u in scope["units"]}:
        result = UnitResult(
            run_id,
            subscription,
            message["dryRun"],
            dt.datetime.now(dt.UTC).isoformat(),
            error="subscription not in scope",
        )
    else:
        result = sweep_subscription(
            autopilot,
            subscription,
            run_id,
            message["dryRun"],
            scope["source"],
            _unit_inventory(autopilot, run_id, subscription, scope["source"]),
        )
    store_unit(autopilot, result)
    finish_if_complete(autopilot, run_id)
    return result


def _unit_inventory(autopilot: Autopilot, run_id: str, subscription: str, source: str) -> Inventory | None:
    """What the run's Resource Graph read saw of the unit's subscription (None: read it now)."""
    if source != GRAPH:
        return None
    try:
        blob = autopilot.reports.download_blob(f"runs/{run_id}/inventory/{_safe(subscription)}.json")
    except ResourceNotFoundError:
        return None
    return load_inventory(json.loads(blob.readall()))


def store_unit(autopilot: Autopilot, result: UnitResult) -> None:
    container = autopilot.reports
    container.upload_blob(
        f"runs/{result.run_id}/units/{_safe(result.unit)}.json", json.dumps(result.as_dict()), overwrite=True
    )


def fail_unit(autopilot: Autopilot, message_text: str, reason: str) -> None:
    """A unit that kept failing (poison queue): record it so the run can finish without it."""
    message = parse_message(message_text)
    if message is None:
        log.warning("a poisoned sweep message is not a unit of work: %.200s", message_text)
        return
    result = UnitResult(
        message["runId"],
        message["subscription"],
        message["dryRun"],
        dt.datetime.now(dt.UTC).isoformat(),
        error=reason,
    )
    store_unit(autopilot, result)
    autopilot.events.publish(
        UNIT_FAILED,
        f"/subscriptions/{message['subscription']}",
        {
            "runId": message["runId"],
            "reason": reason,
            "remedy": "Look at the function's logs for the unit; the next sweep tries again.",
        },
    )
    finish_if_complete(autopilot, message["runId"])


def finish_if_complete(autopilot: Autopilot, run_id: str) -> dict[str, Any] | None:
    """When every unit of the run has a result, assemble the report (exactly once)."""
    run = autopilot.state.get("sweep-run", run_id)
    if run is None:
        return None
    units = _scope(autopilot, run_id, run)["units"]
    container = autopilot.reports
    stored = {blob.name for blob in container.list_blobs(name_starts_with=f"runs/{run_id}/units/")}
    if any(f"runs/{run_id}/units/{_safe(u)}.json" not in stored for u in units):
        return None
    if not autopilot.state.put_once("sweep-finished", run_id, {"At": dt.datetime.now(dt.UTC)}):
        return None
    results = [
        UnitResult.from_dict(
            json.loads(container.download_blob(f"runs/{run_id}/units/{_safe(u)}.json").readall())
        )
        for u in units
    ]
    inventory = json.loads(run.get("Inventory") or "null")
    return finish_run(autopilot, run_id, results, bool(run.get("DryRun")), inventory)


def finish_run(
    autopilot: Autopilot,
    run_id: str,
    results: list[UnitResult],
    dry_run: bool,
    inventory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from autopilot.sweep.report import build_report, csv_bytes, json_bytes, posture_csv_bytes, render_html

    now = dt.datetime.now(dt.UTC)
    from autopilot.drills.findings import drill_findings, drills_summary

    findings = [f for r in results for f in r.findings] + dst_findings(
        autopilot.rules, now, autopilot.settings.dst_warn_days
    )
    findings += drill_findings(autopilot, results, now)
    new_keys = set() if dry_run else announce(autopilot, findings, complete=not any(r.error for r in results))
    history = [] if dry_run else _compliance_history(autopilot, run_id, results)
    report = build_report(run_id, results, findings, new_keys, history, dry_run, inventory)
    report["jobHistory"] = _job_history(autopilot)
    report["drills"] = drills_summary(autopilot, now)
    container = autopilot.reports
    html = render_html(report)
    # Encoded once and uploaded twice: at 100,000 VMs the JSON and the CSV are tens of MB each.
    text = json_bytes(report)
    table = csv_bytes(report)
    if report["posture"]:  # the vaults' security posture, before the run's page (written last)
        from azure.storage.blob import ContentSettings

        posture = posture_csv_bytes(report)
        for name in (f"runs/{run_id}/posture.csv", "latest-posture.csv"):
            container.upload_blob(
                name, posture, overwrite=True, content_settings=ContentSettings(content_type="text/csv")
            )
    for name, body, content_type in (
        (f"runs/{run_id}/report.json", text, "application/json"),
        (f"runs/{run_id}/vms.csv", table, "text/csv; charset=utf-8"),
        ("latest.json", text, "application/json"),
        ("latest.csv", table, "text/csv; charset=utf-8"),
        ("latest.html", html, "text/html; charset=utf-8"),
        # The run's page last: whoever waits for it finds everything else written.
        (f"runs/{run_id}/report.html", html, "text/html; charset=utf-8"),
    ):
        from azure.storage.blob import ContentSettings

        container.upload_blob(
            name, body, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )
    if not dry_run:
        autopilot.events.publish(SWEEP_COMPLETED, f"/sweeps/{run_id}", report["summary"])
        for row in autopilot.state.rows("sweep-fix", "RunId eq @run", {"run": run_id}):
            autopilot.state.delete("sweep-fix", str(row["Key"]))
    return report


def _job_history(autopilot: Autopilot) -> dict[str, Any] | None:
    """Backup history and success rate over 30 days from Azure Monitor Logs (AddonAzureBackupJobs),
    when a workspace is configured. A Logs error is shown in the report, never fails the sweep."""
    logs = autopilot.clients.logs()
    workspace = autopilot.settings.logs_workspace_id
    if logs is None or not workspace:
        return None
    from autopilot.azure.joblogs import history_rows, history_summary, job_history

    history = job_history(logs, workspace, days=30)
    return {"summary": history_summary(history), "rows": history_rows(history)[:50]}


def _compliance_history(autopilot: Autopilot, run_id: str, results: list[UnitResult]) -> list[dict[str, Any]]:
    selected = sum(r.selected for r in results)
    compliant = sum(r.compliant for r in results)
    autopilot.state.put(
        "sweep-history",
        run_id,
        {"RunId": run_id, "Selected": selected, "Compliant": compliant, "At": dt.datetime.now(dt.UTC)},
    )
    rows = sorted(autopilot.state.rows("sweep-history"), key=lambda r: r["At"])[-30:]
    return [
        {
            "runId": r["RunId"],
            "at": r["At"].isoformat(),
            "selected": r["Selected"],
            "compliant": r["Compliant"],
        }
        for r in rows
    ]


def announce(autopilot: Autopilot, findings: Iterable[Finding], complete: bool) -> set[str]:
    """Publish an event for each finding not seen before; forget findings that are gone (only when
    every unit ran, so that a failed unit does not make its problems look resolved)."""
    new: set[str] = set()
    current = {f.key: f for f in findings}
    for key, finding in current.items():
        if autopilot.state.put_once(
            "finding", key, {"Kind": finding.kind, "Target": finding.target, "Since": dt.datetime.now(dt.UTC)}
        ):
            new.add(key)
            autopilot.events.publish(
                kind_of(finding.kind).event,
                finding.target,
                {
                    "vmId": finding.target,
                    "kind": finding.kind,
                    "reason": finding.reason,
                    "remedy": finding.remedy,
                    "action": finding.action,
                },
            )
    if complete:
        for row in autopilot.state.rows("finding"):
            if row.get("Key") not in current:
                autopilot.state.delete("finding", str(row.get("Key")))
    return new


def _safe(unit: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in unit.lower())


def sweep_all(
    autopilot: Autopilot, dry_run: bool, progress: Callable[[int, int, str], None] | None = None
) -> dict[str, Any]:
    """The whole sweep in this process (the command line): the run's units in turn (by Resource Graph
    only those with work; the rest were swept when the run began), then the report."""
    run_id, messages, results = _new_run(autopilot, dry_run, finish=False)
    run = autopilot.state.get("sweep-run", run_id) or {}
    scope = _scope(autopilot, run_id, run)
    for index, message in enumerate(messages, 1):
        if progress:
            progress(index - 1, len(messages), f"subscription {message['subscription']}")
        result = sweep_subscription(
            autopilot,
            message["subscription"],
            run_id,
            dry_run,
            scope["source"],
            _unit_inventory(autopilot, run_id, message["subscription"], scope["source"]),
        )
        store_unit(autopilot, result)
        results[message["subscription"].lower()] = result
        if progress:
            progress(
                index,
                len(messages),
                f"subscription {message['subscription']}: {result.vms} VMs, {len(result.findings)} findings",
            )
    container = autopilot.reports
    for unit in scope["units"]:
        if unit.lower() not in results:  # swept by new_run, from Resource Graph
            results[unit.lower()] = UnitResult.from_dict(
                json.loads(container.download_blob(f"runs/{run_id}/units/{_safe(unit)}.json").readall())
            )
    ordered = [results[u.lower()] for u in scope["units"]]
    autopilot.state.put_once("sweep-finished", run_id, {"At": dt.datetime.now(dt.UTC)})
    inventory = json.loads(run.get("Inventory") or "null")
    return finish_run(autopilot, run_id, ordered, dry_run, inventory)
