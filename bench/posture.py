"""ARM requests per vault of the sweep's security posture check, through the real SDK clients against
armsim started from its command line (ARM's throttling on).

Seeds VAULTS vaults in one subscription: a third with soft delete off, a third guarded by a Resource
Guard with Locked immutability, the rest as Azure makes them. Then, as the sweep does for each vault
(autopilot/posture/vaults.py): the read (vault GET and its Resource Guard proxies), the grade and the
gaps against a posture that requires soft delete with 30 days and immutability, and the fixes it
allows (soft delete on or retention lengthened, immutability Unlocked). Prints the requests per vault
for the read and for the fixes (from armsim's statistics) and the time per vault.

    python -m bench.posture        (or python -m bench, which runs every benchmark)
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from bench.armsim_throughput import SUBSCRIPTION, sandbox

VAULTS = 60
RG = "rg-posture-bench"
GUARD = "/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg-guard/providers/Microsoft.DataProtection/resourceGuards/guard-1"


def vault_spec(n: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroup": RG,
        "name": f"rsv-bench-{n:03d}",
        "location": "westeurope",
    }
    if n % 3 == 0:
        spec["securitySettings"] = {"softDeleteSettings": {"softDeleteState": "Disabled"}}
    elif n % 3 == 1:
        spec["securitySettings"] = {"immutabilitySettings": {"state": "Locked"}}
        spec["resourceGuard"] = GUARD
    return spec


def main() -> None:
    from autopilot.azure.clients import Clients
    from autopilot.posture.grading import PostureRules, gaps, grade
    from autopilot.posture.vaults import read_posture, set_soft_delete, unlock_immutability
    from autopilot.rules import VaultSpec
    from autopilot.settings import Settings

    with sandbox() as (url, ca):
        os.environ["REQUESTS_CA_BUNDLE"] = str(ca)
        os.environ["IDENTITY_ENDPOINT"] = f"{url}/_armsim/identity/token"
        os.environ["IDENTITY_HEADER"] = (ca.parent / "identity-header").read_text().strip()

        def control(method: str, path: str, body: Any = None) -> Any:
            answer = requests.request(method, f"{url}/_armsim{path}", json=body, verify=str(ca), timeout=120)
            answer.raise_for_status()
            return answer.json() if answer.content else None

        control("POST", "/seed", {"vaults": [vault_spec(n) for n in range(VAULTS)]})
        from azure.identity import DefaultAzureCredential

        clients = Clients(Settings.from_env({"AUTOPILOT_ARM_ENDPOINT": url}), DefaultAzureCredential())
        rules = PostureRules(
            minimum_level="Good",
            require=("softDelete", "immutability"),
            soft_delete_retention_days=30,
            fix=("softDelete", "softDeleteRetention", "immutability"),
        )
        vaults = [VaultSpec(SUBSCRIPTION, RG, f"rsv-bench-{n:03d}", "westeurope") for n in range(VAULTS)]
        read_posture(clients, vaults[0])  # the token and the connection, outside the figures
        control("POST", "/stats/reset")

        started = time.perf_counter()
        postures = [read_posture(clients, vault)[0] for vault in vaults]
        read_seconds = time.perf_counter() - started
        reads = control("GET", "/stats")
        control("POST", "/stats/reset")

        started = time.perf_counter()
        fixed = 0
        for vault, posture in zip(vaults, postures, strict=True):
            found = {gap.fix for gap in gaps(rules, posture) if gap.fix}
            if found & {"softDelete", "softDeleteRetention"}:
                set_soft_delete(clients, vault, posture, rules.soft_delete_retention_days)
            if "immutability" in found:
                unlock_immutability(clients, vault)
            fixed += bool(found)
        fix_seconds = time.perf_counter() - started
        writes = control("GET", "/stats")

    levels: dict[str, int] = {}
    for posture in postures:
        levels[grade(posture)] = levels.get(grade(posture), 0) + 1
    print(f"vaults: {VAULTS}; levels: {', '.join(f'{k} {v}' for k, v in sorted(levels.items()))}")
    print(
        f"read: {reads['total']} ARM requests = {reads['total'] / VAULTS:.2f} per vault "
        f"({', '.join(f'{k} {v}' for k, v in sorted(reads['byOperation'].items()))}); "
        f"{1000 * read_seconds / VAULTS:.1f} ms per vault"
    )
    print(
        f"fixes: {fixed} vaults fixed with {writes['total']} ARM requests = {writes['total'] / max(fixed, 1):.2f} "
        f"per fixed vault ({', '.join(f'{k} {v}' for k, v in sorted(writes['byOperation'].items()))}); "
        f"{1000 * fix_seconds / max(fixed, 1):.1f} ms per fixed vault"
    )
    print(
        f"throttled: {reads.get('throttled', {}).get('total', 0) + writes.get('throttled', {}).get('total', 0)}"
    )


if __name__ == "__main__":
    main()
