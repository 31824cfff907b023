"""Vault sets end to end: a burst of tagged VMs in two regions, protected on creation from their
Event Grid events, fills westeurope's set of three vaults in order and never puts more in a vault than
the rules allow; northeurope's set of two fills up, and the VMs left over get a "needs attention"
outcome naming the set, and the sweep a vault-set-full finding.

Full size (`make soak`): Azure's own limit, 1,000 VMs a vault, and 2,500 VMs a region. The small size
in `make test` lowers the rules' vaultCapacity.maxItems to 20 with 50 VMs a region, to fit the test's
time; the placement is the same code either way.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.reliability.soak import record, sized
from tests.reliability.support import (
    SUB,
    Estate,
    RelStack,
    all_delivered,
    deliveries,
    key_of_id,
    wait_for,
)

PER_REGION = sized(50, 2500)
MAX_ITEMS = sized(20, 1000)
GROUP = "rg-vaultsets"
BACKUP_GROUP = "rg-autopilot-backup"


def vault_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{BACKUP_GROUP}/providers/Microsoft.RecoveryServices/vaults/{name}"


RULES = f"""\
version: 1
vaults:
  - {{subscription: {SUB}, resourceGroup: {BACKUP_GROUP}, name: "rsv-weu-{{n}}", count: 3, region: westeurope}}
  - {{subscription: {SUB}, resourceGroup: {BACKUP_GROUP}, name: "rsv-neu-{{n}}", count: 2, region: northeurope}}
vaultCapacity: {{maxItems: {MAX_ITEMS}}}
policies:
  gold: {{schedule: {{frequency: daily, time: "22:00", timeZone: UTC}}, retention: {{daily: 30}}}}
selection:
  - {{name: gold, priority: 1, match: {{tag: backup-policy, equals: gold}}, policy: gold}}
firstBackup: {{enabled: false}}
"""
SETS = {"westeurope": ["rsv-weu-1", "rsv-weu-2", "rsv-weu-3"], "northeurope": ["rsv-neu-1", "rsv-neu-2"]}


def burst() -> Estate:
    estate = Estate()
    for region in SETS:
        for i in range(PER_REGION):
            estate.vms.append(
                {
                    "subscriptionId": SUB,
                    "resourceGroup": GROUP,
                    "name": f"{region[:3]}-{i:05d}",
                    "location": region,
                    "tags": {"backup-policy": "gold"},
                }
            )
    return estate


def items_of(stack: RelStack, vault: str) -> set[str]:
    """The VMs (keys) the vault holds items of, read through ARM as a test request."""
    vms: set[str] = set()
    url = f"{vault_id(vault)}/backupProtectedItems?$filter=backupManagementType eq 'AzureIaasVM'"
    while url:
        page = stack.arm("GET", url, api_version="2025-02-01")
        for item in page.get("value", []):
            props = item["properties"]
            vms.add(key_of_id(props.get("sourceResourceId") or props.get("virtualMachineId") or ""))
        url = page.get("nextLink") or ""
    return vms


def test_a_burst_fills_each_regions_vault_set_in_order_and_reports_the_overflow(workdir: Path) -> None:
    started = time.monotonic()
    with RelStack(workdir / "stack", rules_text=RULES, max_events_per_batch=10) as stack:
        estate = burst()
        estate.seed(stack, emit_events=True)
        total = len(estate.vms)
        assert wait_for(lambda: all_delivered(stack, total), timeout=sized(180, 3600)), deliveries(stack)
        held = {name: items_of(stack, name) for names in SETS.values() for name in names}
        attention = [
            e
            for e in stack.topic_events()
            if e["type"] == "BackupAutopilot.VM.NeedsAttention"
            and "every vault of its region's set is full" in e["data"]["reason"]
        ]
        report = stack.run_sweep(timeout=sized(300, 3600))
    full = [f for f in report["findings"] if f["kind"] == "vault-set-full"]
    overflow = PER_REGION - 2 * MAX_ITEMS
    record(
        "7 vault sets",
        f"{total} VMs created at once in two regions (Event Grid), vault capacity {MAX_ITEMS}",
        "none",
        "items per vault: "
        + ", ".join(f"{n} {len(v)}" for n, v in held.items())
        + f"; {len(attention)} needs-attention outcomes naming a full set; {len(full)} vault-set-full findings",
        0,
        0,
        time.monotonic() - started,
    )
    # westeurope: every VM protected across its three vaults, in order, none over the capacity.
    weu = [held[n] for n in SETS["westeurope"]]
    assert all(len(v) <= MAX_ITEMS for v in held.values()), {n: len(v) for n, v in held.items()}
    assert sum(len(v) for v in weu) == PER_REGION
    assert [len(v) for v in weu] == [MAX_ITEMS, MAX_ITEMS, PER_REGION - 2 * MAX_ITEMS]
    assert not (weu[0] & weu[1]) and not (weu[1] & weu[2]) and not (weu[0] & weu[2])
    # northeurope: two full vaults, and the rest named as needing a vault.
    neu = [held[n] for n in SETS["northeurope"]]
    assert [len(v) for v in neu] == [MAX_ITEMS, MAX_ITEMS]
    assert overflow > 0
    assert len(attention) == overflow
    assert all("rsv-neu-1, rsv-neu-2" in e["data"]["reason"] for e in attention)
    assert all("Add a vault to the set for region 'northeurope'" in e["data"]["remedy"] for e in attention)
    assert len(full) == overflow
    assert all(f["region"] == "northeurope" and "rsv-neu-1, rsv-neu-2" in f["reason"] for f in full)
