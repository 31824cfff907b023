"""The sweep's inventory by Azure Resource Graph and by ARM pages, side by side: dry-run sweeps of

(a) 10,000 VMs in one subscription (8 regions), and
(b) 100,000 VMs in 200 subscriptions and 10 regions (one vault per subscription and region, declared
    by one vault template),

each source in a process of its own against armsim started from its command line (ARM's throttling and
Resource Graph's quota on, Resource Graph's 30 s lag), printing the requests by operation, wall time,
peak RSS of the sweep's process, and for Resource Graph its requests against the paging minimum (each
query's rows / 1,000, at least one page a query).

    python -m bench.inventory                 # both estates, both sources
    python -m bench.inventory --estate a      # one estate
    python -m bench.inventory --estate b --source resourcegraph
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
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
REGIONS = (
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "westus2",
    "southeastasia",
    "uksouth",
    "swedencentral",
    "francecentral",
    "japaneast",
)
ESTATES = {
    "a": {"vms": 10_000, "subscriptions": 1, "regions": 8},
    "b": {"vms": 100_000, "subscriptions": 200, "regions": 10},
}
SOURCES = ("resourcegraph", "arm")
PROTECTED_SHARE = 0.6


def subscription(index: int) -> str:
    return f"{index + 1:08x}-0000-4000-8000-00000000b00c"


def start_armsim(data: Path) -> tuple[subprocess.Popen[str], str]:
    """armsim in a process of its own, its state in memory (saving 100,000 VMs to disk after every
    seed batch would measure the disk); its CA and identity header written to `data`."""
    data.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.inventory", "--armsim", str(data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def serve_armsim(data: Path) -> None:
    import shutil
    import signal
    import threading

    from armsim import ArmSim

    sim = ArmSim(port=0, data_dir=None).start()
    shutil.copy(sim.ca_path, data / "ca.pem")
    (data / "identity-header").write_text(sim.identity_header)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(sim.url, flush=True)
    stop.wait()
    sim.stop()


def main() -> None:
    """Every estate and source in a process of its own (so each peak RSS is the sweep's own)."""
    args = sys.argv[1:]
    if "--armsim" in args:
        serve_armsim(Path(args[args.index("--armsim") + 1]))
        return
    if "--child" in args:
        child(args[args.index("--estate") + 1], args[args.index("--source") + 1])
        return
    estates = [args[args.index("--estate") + 1]] if "--estate" in args else list(ESTATES)
    sources = [args[args.index("--source") + 1]] if "--source" in args else list(SOURCES)
    figures: dict[tuple[str, str], dict[str, Any]] = {}
    for estate in estates:
        for source in sources:
            out = subprocess.run(
                [sys.executable, "-m", "bench.inventory", "--child", "--estate", estate, "--source", source],
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    figures[(estate, source)] = json.loads(line)
                else:
                    print(line, flush=True)
        if len(sources) == 2:
            graph, arm = figures[(estate, "resourcegraph")], figures[(estate, "arm")]
            print(
                f"inventory {estate}: Resource Graph {graph['requests']} requests ({graph['graphRequests']} to "
                f"Resource Graph, paging minimum {graph['pagingMinimum']}, ratio "
                f"{graph['graphRequests'] / graph['pagingMinimum']:.2f}) against ARM pages {arm['requests']}: "
                f"{arm['requests'] / graph['requests']:.1f}x fewer; wall {graph['seconds']:.1f} s against "
                f"{arm['seconds']:.1f} s; peak RSS {graph['rssMiB']:.0f} MiB against {arm['rssMiB']:.0f} MiB; "
                f"same findings: {graph['findingsHash'] == arm['findingsHash']} ({graph['findingKeys']} and "
                f"{arm['findingKeys']})",
                flush=True,
            )


def child(estate: str, source: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    spec = ESTATES[estate]
    work = Path(tempfile.mkdtemp(prefix=f"bench-inventory-{estate}-"))
    process, url = start_armsim(work / "armsim")
    session = requests.Session()
    session.trust_env = False
    session.verify = str(work / "armsim" / "ca.pem")

    def control(method: str, path: str, body: Any = None) -> Any:
        response = session.request(method, f"{url}/_armsim{path}", json=body, timeout=600)
        response.raise_for_status()
        return response.json() if response.content else None

    try:
        subs = [subscription(i) for i in range(spec["subscriptions"])]
        regions = REGIONS[: spec["regions"]]
        rules_path = write_rules(work, regions)
        started = time.perf_counter()
        seeded = seed(control, rules_path, subs, regions, spec["vms"])
        seed_seconds = time.perf_counter() - started
        from bench.sweep import run_sweep, sandbox_settings
        from devhost.azurite import Azurite

        with Azurite() as azurite:
            settings = sandbox_settings(url, work, rules_path, azurite.connection_string, "*", source)
            control("POST", "/stats/reset")
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            if os.environ.get("BENCH_PROFILE"):  # where the sweep's time goes (stderr)
                import cProfile
                import pstats

                profile = cProfile.Profile()
                report = profile.runcall(run_sweep, settings)
                pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
            else:
                report = run_sweep(settings)
            seconds = time.perf_counter() - started
            stats = control("GET", "/stats")
    finally:
        process.terminate()
        process.wait(timeout=30)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inventory = report["summary"]["inventory"]
    by_operation = dict(sorted(stats["byOperation"].items()))
    graph_requests = by_operation.get("Resources", 0)
    # The paging minimum: each query of the run at ceil(rows / 1,000) pages, at least one.
    minimum = sum(max(1, math.ceil(rows / 1000)) for rows in seeded["graphRows"])
    tag = f"inventory {estate} {source}"
    print(
        f"{tag}: {spec['vms']} VMs in {len(subs)} subscriptions and {len(regions)} regions, "
        f"{seeded['vaults']} vaults, {seeded['items']} protected, {seeded['jobs']} jobs (seeded in {seed_seconds:.0f} s); "
        f"dry run found {report['summary']['findings']} findings over {report['summary']['vms']} VMs"
    )
    print(f"{tag}: read by {inventory['source']} ({inventory.get('reason', '')})")
    print(f"{tag}: requests {stats['total']}; 429s {stats.get('throttled', {}).get('total', 0)}; by operation: "
          + ", ".join(f"{k} {v}" for k, v in by_operation.items()))  # fmt: skip
    if source == "resourcegraph":
        print(
            f"{tag}: Resource Graph requests {graph_requests}; paging minimum {minimum} "
            f"(queries' rows: {seeded['graphRows']}); ratio {graph_requests / minimum:.2f} (target <= 1.1)"
        )
    print(
        f"{tag}: wall time {seconds:.1f} s; peak RSS {peak:.0f} MiB (before the sweep {before / 1024:.0f} MiB)"
    )
    keys = sorted({f"{f['kind']}|{f['target'].lower()}|{f['action']}" for f in report["findings"]})
    print(
        json.dumps(
            {
                "requests": stats["total"],
                "graphRequests": graph_requests,
                "pagingMinimum": minimum,
                "seconds": seconds,
                "rssMiB": peak,
                "findingKeys": len(keys),
                "findingsHash": hashlib.sha256("\n".join(keys).encode()).hexdigest(),
            }
        )
    )


def write_rules(work: Path, regions: tuple[str, ...]) -> Path:
    base = yaml.safe_load((REPO / "rules" / "sandbox.yaml").read_text())
    del base["vaults"]
    base["vaultTemplates"] = [
        {
            "subscriptions": "*",
            "regions": list(regions),
            "resourceGroup": "rg-backup-{region}",
            "name": "rsv-{subscriptionShort}-{region}",
        }
    ]
    path = work / "rules.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def seed(
    control: Any, rules_path: Path, subs: list[str], regions: tuple[str, ...], count: int
) -> dict[str, Any]:
    """The estate, in batches: every vault of the template (with the rules' policies), the VMs spread
    over subscriptions and regions, PROTECTED_SHARE of the tagged ones protected with a backup job two
    hours ago (one in 37 failed)."""
    from autopilot.rules import load_rules

    rules = load_rules(str(rules_path))
    vaults = rules.vaults_for(subs)
    control("POST", "/config", {"limits": {"vaultsPerSubscriptionRegion": {"enabled": False}}})
    for start in range(0, len(vaults), 500):
        batch = vaults[start : start + 500]
        control(
            "POST",
            "/seed",
            {
                "subscriptions": sorted({v.subscription_id for v in batch}),
                "vaults": [
                    {
                        "subscriptionId": v.subscription_id,
                        "resourceGroup": v.resource_group,
                        "name": v.name,
                        "location": v.region,
                    }
                    for v in batch
                ],
                "policies": [
                    {"vaultId": v.resource_id, "name": p.name, "properties": p.to_arm_properties()}
                    for v in batch
                    for p in rules.policies
                ],
            },
        )
    items = jobs = failed = 0
    per_sub = math.ceil(count / len(subs))
    for s_index, sub in enumerate(subs):
        vms, protections, job_list = [], [], []
        for i in range(min(per_sub, count - s_index * per_sub)):
            index = s_index * per_sub + i
            region = regions[index % len(regions)]
            name = f"vm-{index:06d}"
            tag = ("gold", "silver", "none", "")[index % 4]
            tags = {"backup-policy": tag} if tag else {}
            group = f"rg-apps-{index % 20:02d}"
            vms.append(
                {
                    "subscriptionId": sub,
                    "resourceGroup": group,
                    "name": name,
                    "location": region,
                    "tags": tags,
                }
            )
            vm_id = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"
            if tag in ("gold", "silver") and (index * 7919) % 100 < PROTECTED_SHARE * 100:
                vault = rules.vault_set(sub, region)[0]
                protections.append({"vmId": vm_id, "vaultId": vault.resource_id, "policy": tag})
                items += 1
                outcome = "Failed" if index % 37 == 0 else "Completed"
                failed += outcome == "Failed"
                job = {"vmId": vm_id, "outcome": outcome, "hoursAgo": 2}
                if outcome == "Failed":
                    job["errorCode"] = "UserErrorFsFreezeFailed"
                job_list.append(job)
                jobs += 1
        control("POST", "/seed", {"vms": vms, "protections": protections, "jobs": job_list})
    # What the run's Resource Graph queries return (for the paging minimum): the subscriptions, the
    # VMs (joined with their items), orphans, vaults, policies, shared disks, the latest failed jobs.
    graph_rows = [len(subs), count, 0, len(vaults), len(vaults) * len(rules.policies), 0, failed]
    return {"vaults": len(vaults), "items": items, "jobs": jobs, "graphRows": graph_rows}


if __name__ == "__main__":
    main()
