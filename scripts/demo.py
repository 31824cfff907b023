"""`make demo`: a tour of the product on the local sandbox, ending in a report a person can read.

It starts the stack (Azurite, armsim, the app), seeds an estate, shows the plan for it, then creates
new VMs through the Azure SDK while the app runs and shows each one being protected or flagged, with
the reason, as it happens. It stops the stack at the end.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from armsim import SANDBOX_SUBSCRIPTION  # noqa: E402
from autopilot.cli import table  # noqa: E402
from devhost.stack import Stack  # noqa: E402

SUB = SANDBOX_SUBSCRIPTION
WIDTH = 100


def heading(text: str) -> None:
    print(f"\n{'=' * WIDTH}\n{text}\n{'=' * WIDTH}", flush=True)


def vm_spec(name: str, location: str, tags: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": SUB,
        "resourceGroup": f"rg-apps-{location}",
        "name": name,
        "location": location,
        "tags": tags,
        **extra,
    }


ESTATE = [
    vm_spec("erp-db-01", "westeurope", {"backup-policy": "gold", "owner": "finance"}, osType="Windows"),
    vm_spec("erp-app-01", "westeurope", {"backup-policy": "silver"}),
    vm_spec("build-agent-07", "westeurope", {"backup-policy": "none"}),
    vm_spec("scratch-01", "eastus", {}),
    vm_spec("crm-web-01", "eastus", {"backup-policy": "gold"}, agent="NotReady"),
]

NEW_VMS: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
    ("shop-web-01", "westeurope", {"backup-policy": "gold"}, {}),
    ("shop-web-02", "eastus", {"Backup-Policy": "Silver"}, {}),
    ("shop-db-01", "westeurope", {"backup-policy": "gold", "backup-exclude-luns": "1"}, {"dataDisks": 2}),
    ("tl-secure-01", "westeurope", {"backup-policy": "gold"}, {"trustedLaunch": True}),
    ("migrated-01", "eastus", {"backup-policy": "silver"}, {"noAgent": True}),
    ("analytics-01", "northeurope", {"backup-policy": "gold"}, {}),
    ("dev-box-01", "westeurope", {"backup-policy": "none"}, {}),
    ("temp-01", "eastus", {"env": "test"}, {}),
]


def vm_body(name: str, location: str, tags: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    storage: dict[str, Any] = {
        "imageReference": {
            "publisher": "Canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
        },
        "osDisk": {"createOption": "FromImage"},
        "dataDisks": [
            {"lun": lun, "createOption": "Empty", "diskSizeGB": 128}
            for lun in range(options.get("dataDisks", 0))
        ],
    }
    properties: dict[str, Any] = {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": storage,
        "osProfile": {
            "computerName": name[:15],
            "adminUsername": "azureuser",
            "linuxConfiguration": {"provisionVMAgent": not options.get("noAgent", False)},
        },
    }
    if options.get("trustedLaunch"):
        properties["securityProfile"] = {
            "securityType": "TrustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    return {"location": location, "tags": tags, "properties": properties}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_dir = Path(tempfile.mkdtemp(prefix="autopilot-demo-"))
    heading("Backup Autopilot for Azure VMs: a tour on the local sandbox")
    print("Starting Azurite, armsim (the Azure sandbox) and the function app on devhost ...", flush=True)
    # A new VM's agent reports Ready 8 s after its creation here (in Azure: a minute or two).
    stack = Stack.ephemeral(run_dir, snapshotSeconds=2.0, transferSeconds=3.0, agentReadySeconds=8.0)
    try:
        stack.start()
        print(stack.describe(), flush=True)
        return tour(stack)
    finally:
        print("\nStopping the stack ...", flush=True)
        stack.stop()


def tour(stack: Stack) -> int:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from autopilot.app import Autopilot
    from autopilot.settings import Settings
    from autopilot.sweep.inventory import plan, read_inventory

    control = stack._control
    heading("1. An existing estate, seeded in the sandbox")
    control("POST", "/seed", {"vms": ESTATE})
    print(
        table(
            ["VM", "REGION", "TAGS", "NOTE"],
            [
                (v["name"], v["location"], v["tags"] or "-", v.get("agent", "") and f"agent {v['agent']}")
                for v in ESTATE
            ],
        )
    )

    heading(
        "2. The plan for it: what the rules would do, and why (python -m autopilot plan; nothing changes)"
    )
    autopilot = Autopilot.from_settings(Settings.from_env(stack.values))
    inventory = read_inventory(autopilot.azure, autopilot.rules, autopilot.subscriptions())
    rows = [(vm.name, vm.location, d.change or "-", d.reason) for vm, d in plan(autopilot.rules, inventory)]
    print(table(["VM", "REGION", "CHANGE", "WHY"], rows, [16, 12, 8, 60]))

    heading("3. New VMs are created through the Azure SDK; the app protects or flags each within seconds")
    credential = DefaultAzureCredential()
    kwargs = {"base_url": stack.armsim.url, "polling_interval": 0.1}
    resources = ResourceManagementClient(credential, SUB, **kwargs)
    compute = ComputeManagementClient(credential, SUB, **kwargs)
    created: dict[str, float] = {}
    for name, location, tags, options in NEW_VMS:
        resources.resource_groups.create_or_update(f"rg-new-{location}", {"location": location})
        compute.virtual_machines.begin_create_or_update(
            f"rg-new-{location}", name, vm_body(name, location, tags, options)
        ).result()
        created[name] = time.monotonic()
        print(f"  created {name:<14} {location:<12} tags {tags}", flush=True)

    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    silent = {"dev-box-01", "temp-01"}  # opted out / not selected: no event expected
    while time.monotonic() < deadline and len(seen) < len(NEW_VMS) - len(silent):
        for event in control("GET", "/eventgrid/topics/autopilot-events")["events"]:
            name = str(event["subject"]).rsplit("/", 1)[-1]
            if name in created and name not in seen:
                seen[name] = event
                took = time.monotonic() - created[name]
                print(
                    f"  {took:5.1f} s  {name:<14} {event['type'].rsplit('.', 1)[-1]:<16} {event['data']['reason'][:70]}",
                    flush=True,
                )
        time.sleep(0.2)

    heading("4. Backup now, as a ticketing tool asks for it (POST /api/backups, then GET the status URL)")
    backup_ok = backup_now_tour(
        stack,
        f"/subscriptions/{SUB}/resourceGroups/rg-new-westeurope/providers/Microsoft.Compute/virtualMachines/shop-web-01",
    )

    heading("5. The sweep: the whole estate checked, fixed where the rules allow, and reported")
    control(
        "POST",
        "/jobs/outcomes",
        {
            "vm": f"/subscriptions/{SUB}/resourceGroups/rg-new-eastus/providers/Microsoft.Compute/virtualMachines/shop-web-02",
            "outcome": "Failed",
            "errorCode": "UserErrorFsFreezeFailed",
        },
    )
    eastus = autopilot.rules.vault_for(SUB, "eastus")
    assert eastus is not None, "the sandbox rules name a vault in eastus"
    autopilot.azure.backup_now(eastus, _facts(autopilot, "rg-new-eastus", "shop-web-02"), _in_days(7))
    time.sleep(3)
    report = sweep_tour(stack, autopilot)

    heading("6. Summary of the new VMs")
    rows = []
    for name, location, _, _ in NEW_VMS:
        event = seen.get(name)
        outcome = (
            event["type"].rsplit(".", 1)[-1]
            if event
            else ("not selected" if name in silent else "no outcome yet")
        )
        data = event["data"] if event else {}
        vault = str(data.get("vault", "")).rsplit("/", 1)[-1]
        rows.append(
            (
                name,
                location,
                outcome,
                vault or "-",
                data.get("policy") or "-",
                (data.get("remedy") or data.get("reason") or "")[:70],
            )
        )
    print(table(["VM", "REGION", "OUTCOME", "VAULT", "POLICY", "REASON / REMEDY"], rows))
    stats = control("GET", "/stats")
    audit_rows = autopilot.audit.entries()
    print(f"\nARM requests served by the sandbox: {stats['total']}; audit rows written: {len(audit_rows)}")
    print(
        table(
            ["ACTION", "VM", "OUTCOME"],
            [
                (r["Action"], str(r["VmId"]).rsplit("/", 1)[-1], r["Outcome"][:70])
                for r in reversed(audit_rows)
            ],
        )
    )
    summary = report["summary"] if report else {}
    print(
        f"\nSweep: {summary.get('vms', '?')} VMs; of those the rules select, {summary.get('compliancePercent', '?')} % were "
        f"protected as the rules say, {summary.get('compliancePercentAfterFixes', '?')} % after the sweep's fixes; "
        f"{summary.get('findings', '?')} finding(s)."
    )
    if not backup_ok or not report:
        return 1
    missing = [name for name, *_ in NEW_VMS if name not in silent and name not in seen]
    if missing:
        print(f"\nNo outcome arrived for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _in_days(days: int) -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def _facts(autopilot: Any, group: str, name: str) -> Any:
    return autopilot.azure.get_vm(
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def backup_now_tour(stack: Stack, vm_id: str) -> bool:
    import requests

    assert stack.host is not None
    headers = {"x-functions-key": stack.values["DEVHOST_FUNCTION_KEY"]}
    body = {
        "vm": vm_id,
        "requestId": "CHG0012345",
        "retainUntil": _in_days(60).strftime("%Y-%m-%d"),
        "reason": "patching tonight",
    }
    print(f"  POST /api/backups {body}")
    accepted = requests.post(f"{stack.host.url}/api/backups", json=body, headers=headers, timeout=60)
    deadline = time.monotonic() + 60
    while accepted.status_code == 409 and time.monotonic() < deadline:
        # A VM created moments ago: its agent has not reported Ready yet, so a backup would fail.
        print(f"  -> 409 {accepted.json().get('detail', '')[:110]}...")
        time.sleep(float(accepted.headers.get("Retry-After", "5")) / 12)  # the sandbox's agent is quick
        accepted = requests.post(f"{stack.host.url}/api/backups", json=body, headers=headers, timeout=60)
    print(f"  -> {accepted.status_code} Location: {accepted.headers.get('Location')}")
    print(f"     {accepted.json()}")
    again = requests.post(f"{stack.host.url}/api/backups", json=body, headers=headers, timeout=60)
    print(
        f"  the same request again (a retry): {again.status_code}, same operation: {again.json().get('id') == accepted.json().get('id')}"
    )
    if accepted.status_code != 202:
        return False
    deadline = time.monotonic() + 30
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = requests.get(
            f"{stack.host.url}{accepted.headers['Location']}", headers=headers, timeout=60
        ).json()
        phases = ", ".join(f"{p['name']}: {p['status']}" for p in status.get("phases", []))
        print(f"  GET {accepted.headers['Location'][:30]}...: {status['status']:<10} {phases}", flush=True)
        if status["status"] not in ("InProgress", "Accepted"):
            break
        time.sleep(1.5)
    print(f"  recovery point: {status.get('recoveryPoint')}, retained until {status.get('retainUntil')}")
    return status.get("status") == "Completed"


def sweep_tour(stack: Stack, autopilot: Any) -> dict[str, Any] | None:
    import json

    import requests

    assert stack.host is not None
    master = {"x-functions-key": stack.values["DEVHOST_MASTER_KEY"]}
    print(
        "  running the sweep's timer function (it queues one unit per subscription; the queue trigger sweeps it)"
    )
    requests.post(
        f"{stack.host.url}/admin/functions/sweep_timer", json={"input": ""}, headers=master, timeout=60
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = [
            b.name
            for b in autopilot.reports.list_blobs(name_starts_with="runs/")
            if b.name.endswith("report.json")
        ]
        if names:
            report: dict[str, Any] = json.loads(autopilot.reports.download_blob(names[0]).readall())
            break
        time.sleep(0.5)
    else:
        print("  the sweep did not finish within 60 s", file=sys.stderr)
        return None
    rows = [
        (f["kind"], f["target"].rsplit("/", 1)[-1], f["action"], f["reason"][:90]) for f in report["findings"]
    ]
    print(table(["FINDING", "ABOUT", "ACTION", "WHY"], rows))
    # The stack is gone when the demo ends: the report is kept under .run/ to look at afterwards.
    kept = REPO / ".run" / "demo-report"
    kept.mkdir(parents=True, exist_ok=True)
    html = requests.get(
        f"{stack.host.url}/api/report",
        headers={"x-functions-key": stack.values["DEVHOST_FUNCTION_KEY"]},
        timeout=60,
    )
    (kept / "report.html").write_bytes(html.content)
    (kept / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"  the sweep's report, kept after the demo: {kept / 'report.html'} (and report.json beside it)")
    return report


if __name__ == "__main__":
    sys.exit(main())
