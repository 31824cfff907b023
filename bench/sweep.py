"""A dry-run sweep of 10,000 and of 30,000 VMs in 8 regions, each region with a vault set (vaults of at
most 1,000 items, as Azure allows), against armsim started from its command line with ARM's
throttling on (its own process, so that this process's memory is the sweep's; each size runs in a
process of its own):

- ARM requests the sweep made (from armsim's statistics), against the paging minimum for that
  estate (every list read page by page, one storage-configuration read per vault), and their ratio;
- the request count of the per-VM approach (one backupStatus call per VM, plus the VM list) for
  comparison;
- wall time and peak RSS of the sweep.

- 429s armsim answered (throttling is on, at ARM's figures).

    python -m bench.sweep            # both sizes
    python -m bench.sweep --vms 30000
"""

from __future__ import annotations

import logging
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
REGIONS = (
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "westus2",
    "southeastasia",
    "uksouth",
    "swedencentral",
)
SIZES = (10_000, 30_000)
PROTECTED_SHARE = 0.6
JOBS_PER_VAULT = 400
VAULT_ITEMS = 1000  # Azure's limit of VMs in a vault


def start_armsim(data: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "armsim", "--port", "0", "--data", str(data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.split("listening on", 1)[1].split()[0]


def main() -> None:
    """Each size in a process of its own, so that each peak RSS is its own."""
    if "--vms" in sys.argv:
        run(int(sys.argv[sys.argv.index("--vms") + 1]))
        return
    for size in SIZES:
        subprocess.run([sys.executable, "-m", "bench.sweep", "--vms", str(size)], cwd=REPO, check=True)


def run(vms: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    process, url = start_armsim(work / "armsim")
    session = requests.Session()
    session.trust_env = False
    session.verify = str(work / "armsim" / "ca.pem")

    def control(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, f"{url}/_armsim{path}", json=body, timeout=300)
        response.raise_for_status()
        return response.json() if response.content else None

    try:
        # A region's VMs are all tagged or none (the tag follows index % 4, the region index % 8): the
        # tagged regions protect PROTECTED_SHARE of their VMs.
        per_set = math.ceil(vms / len(REGIONS) * PROTECTED_SHARE / VAULT_ITEMS)
        rules_path = write_rules(work, per_set)
        seeded = seed(control, rules_path, vms)
        vaults = len(seeded["items"])
        pages = control("GET", "/config")["pageSize"]
        minimum = (
            math.ceil(vms / pages["virtualMachines"])
            + sum(math.ceil(max(1, n) / pages["protectedItems"]) for n in seeded["items"].values())
            + sum(math.ceil(max(1, n) / pages["jobs"]) for n in seeded["jobs"].values())
            + vaults * math.ceil(4 / pages["policies"])  # one page of policies per vault
            + vaults  # the storage configuration of each vault
        )
        from devhost.azurite import Azurite

        with Azurite() as azurite:
            settings = sandbox_settings(url, work, rules_path, azurite.connection_string)
            control("POST", "/stats/reset")
            started = time.perf_counter()
            report = run_sweep(settings)
            seconds = time.perf_counter() - started
            stats = control("GET", "/stats")
    finally:
        process.terminate()
        process.wait(timeout=10)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    made = stats["total"]
    per_vm = vms + math.ceil(vms / pages["virtualMachines"])
    fullest = max(seeded["items"].values())
    tag = f"sweep {vms}"
    print(
        f"{tag}: dry run over {report['summary']['vms']} VMs in {len(REGIONS)} regions and {vaults} vaults ({per_set} a region; fullest {fullest} items): {report['summary']['findings']} findings"
    )
    print(f"{tag}: ARM requests {made}; paging minimum {minimum}; ratio {made / minimum:.2f} (target <= 1.1)")
    print(f"{tag}: 429s from armsim (ARM's throttling on): {stats.get('throttled', {}).get('total', 0)}")
    print(f"{tag}: by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(stats["byOperation"].items())))
    print(
        f"{tag}: the per-VM approach (backupStatus per VM + the VM list) would make {per_vm} requests ({per_vm / made:.0f}x)"
    )
    print(f"{tag}: wall time {seconds:.1f} s; peak RSS {peak_mib:.0f} MiB")


def write_rules(work: Path, per_set: int) -> Path:
    base = yaml.safe_load((REPO / "rules" / "sandbox.yaml").read_text())
    base["vaults"] = [
        {
            "subscription": SUBSCRIPTION,
            "resourceGroup": "rg-bench-backup",
            "name": f"rsv-bench-{region}-{{n}}",
            "count": per_set,
            "region": region,
        }
        for region in REGIONS
    ]
    path = work / "rules.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def seed(control: Any, rules_path: Path, count: int) -> dict[str, dict[str, int]]:
    """The estate: its VMs, and the protected ones in their region's set, filled in order (at most
    VAULT_ITEMS a vault); the counts of items and jobs per vault."""
    from autopilot.rules import load_rules

    rules = load_rules(str(rules_path))
    vault_ids = [v.resource_id for v in rules.vaults]
    control(
        "POST",
        "/seed",
        {
            "vaults": [
                {
                    "subscriptionId": SUBSCRIPTION,
                    "resourceGroup": v.resource_group,
                    "name": v.name,
                    "location": v.region,
                }
                for v in rules.vaults
            ],
            "policies": [
                {"vaultId": vid, "name": p.name, "properties": p.to_arm_properties()}
                for vid in vault_ids
                for p in rules.policies
            ],
        },
    )
    vms, protections, jobs = [], [], []
    items: dict[str, int] = dict.fromkeys(vault_ids, 0)
    job_counts: dict[str, int] = dict.fromkeys(vault_ids, 0)
    for index in range(count):
        region = REGIONS[index % len(REGIONS)]
        name = f"vm-{index:05d}"
        tags = {"backup-policy": ("gold", "silver", "none", "")[index % 4]} if index % 4 != 3 else {}
        vms.append(
            {
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": f"rg-apps-{index % 50:02d}",
                "name": name,
                "location": region,
                "tags": tags,
            }
        )
        vm_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apps-{index % 50:02d}/providers/Microsoft.Compute/virtualMachines/{name}"
        if tags.get("backup-policy") in ("gold", "silver") and (index * 7919) % 100 < PROTECTED_SHARE * 100:
            vault = next(
                v.resource_id
                for v in rules.vault_set(SUBSCRIPTION, region)
                if items[v.resource_id] < VAULT_ITEMS
            )
            protections.append({"vmId": vm_id, "vaultId": vault, "policy": tags["backup-policy"]})
            items[vault] += 1
            if job_counts[vault] < JOBS_PER_VAULT:
                jobs.append(
                    {
                        "vmId": vm_id,
                        "outcome": "Failed" if index % 37 == 0 else "Completed",
                        "errorCode": "UserErrorFsFreezeFailed" if index % 37 == 0 else None,
                        "hoursAgo": 2,
                    }
                )
                job_counts[vault] += 1
    control(
        "POST",
        "/seed",
        {
            "vms": vms,
            "protections": protections,
            "jobs": [{k: v for k, v in j.items() if v is not None} for j in jobs],
        },
    )
    return {"items": items, "jobs": job_counts}


def sandbox_settings(
    url: str, work: Path, rules_path: Path, storage: str, subscriptions: str = SUBSCRIPTION, source: str = ""
) -> dict[str, str]:
    """The app's settings against the armsim started in `work` (its CA and identity endpoint in the
    environment, as the host gives them); `source`: AUTOPILOT_INVENTORY when set."""
    import os

    os.environ["REQUESTS_CA_BUNDLE"] = str(work / "armsim" / "ca.pem")
    os.environ["IDENTITY_ENDPOINT"] = f"{url}/_armsim/identity/token"
    os.environ["IDENTITY_HEADER"] = (work / "armsim" / "identity-header").read_text().strip()
    settings = {
        "AUTOPILOT_ARM_ENDPOINT": url,
        "AUTOPILOT_SUBSCRIPTIONS": subscriptions,
        "AUTOPILOT_RULES": str(rules_path),
        "AzureWebJobsStorage": storage,
    }
    if source:
        settings["AUTOPILOT_INVENTORY"] = source
    return settings


def run_sweep(settings: dict[str, str]) -> dict[str, Any]:
    from autopilot.app import Autopilot
    from autopilot.settings import Settings
    from autopilot.sweep.run import sweep_all

    autopilot = Autopilot.from_settings(Settings.from_env(settings))
    return sweep_all(autopilot, dry_run=True)


if __name__ == "__main__":
    main()
