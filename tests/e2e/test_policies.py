"""`python -m autopilot ensure-policies` on the stack: a dry run says what a real run does and writes
nothing; a real run creates the rules' policies (audited) and updates one that drifted; with
actions.onPolicyDrift: report, drift is reported, in a dry run as in a real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from tests.e2e.conftest import E2E

REPO = Path(__file__).resolve().parents[2]
GROUP = "rg-autopilot-backup"
VAULT = "rsv-autopilot-eus"  # no VM of these tests is in eastus: its policies are only this test's


def ensure(e2e: E2E, *extra: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(vault, policy): (result, differences)} from the command's table."""
    command = [
        sys.executable,
        "-m",
        "autopilot",
        "ensure-policies",
        "--settings",
        str(e2e.stack.settings_file),
    ]
    done = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    lines = done.stdout.splitlines()
    header = lines[0]
    starts = [header.index(name) for name in ("VAULT", "POLICY", "RESULT", "DIFFERENCES")]
    for line in lines[2:] if set(lines[1]) <= {"-", " "} else lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[(cells[0], cells[1])] = (cells[2], cells[3])
    return rows


def exists(e2e: E2E, name: str) -> bool:
    try:
        e2e.backup.protection_policies.get(VAULT, GROUP, name)
    except ResourceNotFoundError:
        return False
    return True


def audited(e2e: E2E) -> list[str]:
    from autopilot.app import get_autopilot

    return [
        row["Action"]
        for row in get_autopilot().audit.entries()
        if row["Action"] in ("create-policy", "update-policy") and VAULT in str(row["VmId"])
    ]


def test_a_dry_run_says_what_a_real_run_does_and_writes_nothing(e2e: E2E, tmp_path: Path) -> None:
    before = ensure(e2e, "--dry-run")
    missing = [
        policy
        for (vault, policy), (result, _) in before.items()
        if vault == VAULT and not exists(e2e, policy)
    ]
    assert missing, before
    assert all(
        before[(VAULT, policy)] == ("would-create", "the policy does not exist in the vault")
        for policy in missing
    )
    assert not any(exists(e2e, policy) for policy in missing) and audited(e2e) == []

    real = ensure(e2e)
    assert all(real[(VAULT, policy)][0] == "created" for policy in missing), real
    assert all(exists(e2e, policy) for policy in missing)
    assert sorted(audited(e2e)) == ["create-policy"] * len(missing)
    assert {result for (vault, _), (result, _) in ensure(e2e, "--dry-run").items() if vault == VAULT} == {
        "unchanged"
    }

    # The silver policy drifts in Azure (someone keeps its daily points 15 days instead of 14).
    drifted = e2e.backup.protection_policies.get(VAULT, GROUP, "silver")
    drifted.properties.retention_policy.daily_schedule.retention_duration.count = 15
    e2e.backup.protection_policies.create_or_update(VAULT, GROUP, "silver", drifted)

    # With onPolicyDrift: report, a dry run and a real run both report it, and neither changes it.
    rules = tmp_path / "report-drift.yaml"
    text = (REPO / "rules" / "sandbox.yaml").read_text(encoding="utf-8")
    assert text.count("  onPolicyDrift: fix\n") == 1
    rules.write_text(text.replace("  onPolicyDrift: fix\n", "  onPolicyDrift: report\n"), encoding="utf-8")
    for extra in (("--dry-run",), ()):
        result, differences = ensure(e2e, "--rules", str(rules), *extra)[(VAULT, "silver")]
        assert result == "drift-reported" and "14" in differences and "15" in differences, (
            extra,
            result,
            differences,
        )
    kept = e2e.backup.protection_policies.get(VAULT, GROUP, "silver")
    assert kept.properties.retention_policy.daily_schedule.retention_duration.count == 15

    # With the default (fix), the dry run says it would update it, and the real run does.
    assert ensure(e2e, "--dry-run")[(VAULT, "silver")][0] == "would-update"
    assert (
        e2e.backup.protection_policies.get(
            VAULT, GROUP, "silver"
        ).properties.retention_policy.daily_schedule.retention_duration.count
        == 15
    )
    assert ensure(e2e)[(VAULT, "silver")][0] == "updated"
    fixed = e2e.backup.protection_policies.get(VAULT, GROUP, "silver")
    assert fixed.properties.retention_policy.daily_schedule.retention_duration.count == 14
    assert audited(e2e).count("update-policy") == 1
