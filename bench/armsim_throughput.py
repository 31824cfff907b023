"""How fast the sandbox is for a 10,000-VM estate, measured through the real SDK clients.

Starts armsim from its command line (as `make serve` does, with a data directory), seeds 10,000 VMs
across 8 regions in one control call (with a vault and a policy per region and 2,000 protected VMs),
then measures GETs of VMs and protected items from 4 threads, a full paged list of all VMs with their
instance views (statusOnly=true), and reads the request count from /_armsim/stats.

    python -m bench.armsim_throughput        (or python -m bench, which runs every benchmark)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
ARM_SCOPE = "https://management.azure.com/.default"
REGIONS = (
    "westeurope", "northeurope", "eastus", "eastus2", "westus2", "southeastasia", "uksouth", "swedencentral",
)  # fmt: skip
VMS = 10_000
PROTECTED_PER_REGION = 250
THREADS = 4
GETS_PER_THREAD = 1_000


@contextmanager
def sandbox() -> Iterator[tuple[str, Path]]:
    """`python -m armsim --port 0 --data DIR`; yields (url, ca.pem) and stops it afterwards."""
    with tempfile.TemporaryDirectory(prefix="armsim-bench-") as data:
        process = subprocess.Popen(
            [sys.executable, "-m", "armsim", "--port", "0", "--data", data],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if "listening on" not in line:
                raise RuntimeError(f"armsim did not start: {line}{process.stdout.read()}")
            yield line.split("listening on", 1)[1].split()[0], Path(data) / "ca.pem"
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def estate() -> dict[str, Any]:
    """10,000 VMs over 8 regions (a resource group per region), a vault and a daily policy per region,
    and the first 250 VMs of each region protected."""
    from tests.bodies import v1_policy

    policy = v1_policy("22:00")
    vms, protections = [], []
    for index in range(VMS):
        region = REGIONS[index % len(REGIONS)]
        name = f"vm-{index:05d}"
        vms.append(
            {
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": f"rg-{region}",
                "name": name,
                "location": region,
                "tags": {"backup": "daily", "env": "prod" if index % 3 else "test"},
                "osType": "Windows" if index % 4 == 0 else "Linux",
                "dataDisks": [{"lun": 0, "sizeGB": 128}],
                "power": "deallocated" if index % 50 == 0 else "running",
            }
        )
        if index // len(REGIONS) < PROTECTED_PER_REGION:
            protections.append({"vmId": vm_id(region, name), "vaultId": vault_id(region), "policy": "daily"})
    return {
        "vaults": [
            {"subscriptionId": SUBSCRIPTION, "resourceGroup": f"rg-{r}", "name": f"rsv-{r}", "location": r}
            for r in REGIONS
        ],
        "policies": [{"vaultId": vault_id(r), "name": "daily", "properties": policy} for r in REGIONS],
        "vms": vms,
        "protections": protections,
    }


def vault_id(region: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{region}/providers/Microsoft.RecoveryServices/vaults/rsv-{region}"


def vm_id(region: str, name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{region}/providers/Microsoft.Compute/virtualMachines/{name}"


def raw_list(session: requests.Session, url: str, token: str) -> tuple[int, float]:
    """All VMs with statusOnly=true, following nextLink with plain requests: (count, seconds)."""
    link: str | None = (
        f"{url}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines"
        "?api-version=2025-04-01&statusOnly=true"
    )
    count, started = 0, time.perf_counter()
    while link:
        page = session.get(link, headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
        count += len(page["value"])
        link = page.get("nextLink")
    return count, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    with sandbox() as (url, ca):
        session = requests.Session()
        session.verify = str(ca)
        session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would override verify
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca)
        os.environ["IDENTITY_ENDPOINT"] = f"{url}/_armsim/identity/token"
        os.environ["IDENTITY_HEADER"] = (ca.parent / "identity-header").read_text().strip()
        try:
            body = estate()
            started = time.perf_counter()
            answer = session.post(f"{url}/_armsim/seed", json=body, timeout=600)
            answer.raise_for_status()
            seeded = time.perf_counter() - started
            counts = answer.json()
            print(
                f"armsim: seeded {counts['vms']} VMs in {seeded:.1f} s "
                f"({len(REGIONS)} regions, {counts['vaults']} vaults, {counts['protections']} protected, one control call)",
                flush=True,
            )
            session.post(f"{url}/_armsim/stats/reset", timeout=30).raise_for_status()

            credential = DefaultAzureCredential()
            kwargs = {"base_url": url, "credential_scopes": [ARM_SCOPE], "retry_total": 0}
            credential.get_token(ARM_SCOPE)  # the token is cached from here on
            latencies: list[list[float]] = [[] for _ in range(THREADS)]
            errors: list[BaseException] = []

            def worker(slot: int) -> None:
                compute = ComputeManagementClient(credential, SUBSCRIPTION, **kwargs)
                backup = RecoveryServicesBackupClient(credential, SUBSCRIPTION, **kwargs)
                try:
                    for n in range(GETS_PER_THREAD):
                        index = (slot * GETS_PER_THREAD + n) * 7 % (PROTECTED_PER_REGION * len(REGIONS))
                        region, name = REGIONS[index % len(REGIONS)], f"vm-{index:05d}"
                        began = time.perf_counter()
                        if n % 2:
                            container = f"iaasvmcontainerv2;rg-{region};{name}"
                            backup.protected_items.get(
                                f"rsv-{region}",
                                f"rg-{region}",
                                "Azure",
                                f"IaasVMContainer;{container}",
                                f"VM;{container}",
                            )
                        else:
                            compute.virtual_machines.get(f"rg-{region}", name)
                        latencies[slot].append(time.perf_counter() - began)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(THREADS)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            if errors:
                raise errors[0]
            flat = [value for values in latencies for value in values]
            print(
                f"armsim: {len(flat)} GETs of VMs and protected items through the SDK from {THREADS} threads in "
                f"{elapsed:.1f} s: {len(flat) / elapsed:.0f} requests/s, "
                f"p50 {statistics.median(flat) * 1000:.1f} ms, p95 {percentile(flat, 0.95) * 1000:.1f} ms",
                flush=True,
            )

            compute = ComputeManagementClient(credential, SUBSCRIPTION, **kwargs)
            started = time.perf_counter()
            listed = sum(
                1 for vm in compute.virtual_machines.list_all(status_only="true") if vm.instance_view
            )
            elapsed = time.perf_counter() - started
            stats = session.get(f"{url}/_armsim/stats", timeout=30).json()
            pages = stats["byOperation"].get("VirtualMachines_ListAll", 0)
            print(
                f"armsim: listed {listed} VMs with instance views (statusOnly=true) through the SDK in {pages} "
                f"pages in {elapsed:.1f} s: {listed / elapsed:.0f} VMs/s",
                flush=True,
            )
            raw, elapsed = raw_list(session, url, credential.get_token(ARM_SCOPE).token)
            print(
                f"armsim: the same pages without the SDK (requests + json) in {elapsed:.1f} s: "
                f"{raw / elapsed:.0f} VMs/s (the rest is the SDK building its models)",
                flush=True,
            )
            stats = session.get(f"{url}/_armsim/stats", timeout=30).json()
            print(
                f"armsim: {stats['total']} ARM requests served (by status: {stats['byStatus']}; "
                f"by operation: {stats['byOperation']})",
                flush=True,
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


if __name__ == "__main__":
    main()
