"""The azd hooks of azure.yaml, run with azd and az stubbed: preprovision (rules and HMAC secret) and
postprovision (the vaults' own deployment). scripts/post-up.sh: test_infra_eventgrid.py."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import yaml

from tests.infra.infra_support import INFRA, ROOT

PREPROVISION = INFRA / "scripts" / "preprovision.sh"
POSTPROVISION = INFRA / "scripts" / "postprovision.sh"

STUB_AZD = r"""#!/usr/bin/env bash
store="$CAPTURE/azd.env"
case "$1 $2" in
  "env get-value")
    value="$(grep "^$3=" "$store" 2>/dev/null | cut -d= -f2-)"
    if [ -z "$value" ]; then echo "ERROR: key '$3' not found in the environment values" >&2; exit 1; fi
    echo "$value" ;;
  "env set") echo "$3=$4" >> "$store" ;;
  *) echo "unexpected azd call: $*" >&2; exit 3 ;;
esac
"""

STUB_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$CAPTURE/az.args"
echo '{"AUTOPILOT_VAULT_GROUPS": {"type": "Int", "value": 1}}'
"""


def stub(tmp_path: Path, **scripts: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CAPTURE": str(tmp_path),
    }


def run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_azure_yaml_runs_the_hooks_in_order() -> None:
    hooks = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]
    assert list(hooks) == ["preprovision", "postprovision", "postup"]
    assert hooks["postprovision"]["posix"]["run"] == "./infra/scripts/postprovision.sh"
    for hook in hooks.values():
        assert hook["posix"]["shell"] == "sh" and hook["posix"]["continueOnError"] is False
        assert os.access(ROOT / hook["posix"]["run"], os.X_OK)


def test_preprovision_keeps_the_rules_and_makes_one_hmac_secret(tmp_path: Path) -> None:
    before = (INFRA / "rules.generated.json").read_text(encoding="utf-8")
    env = {**stub(tmp_path, azd=STUB_AZD), "AZURE_SUBSCRIPTION_ID": "66666666-7777-8888-9999-000000000000"}
    first = run(PREPROVISION, env)
    assert first.returncode == 0, first.stderr
    assert "is up to date" in first.stdout
    if '"source": "rules/example.yaml"' in before:  # the vaults this subscription gets, and the others
        assert "deployed: rsv-dev-weu" in first.stdout
        assert "skipped:  rsv-prod-neu, rsv-prod-weu" in first.stdout
    secret = (tmp_path / "azd.env").read_text(encoding="utf-8").strip()
    assert secret.startswith("AUTOPILOT_HMAC_SECRET=") and len(secret) > len("AUTOPILOT_HMAC_SECRET=") + 40

    second = run(PREPROVISION, env)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "azd.env").read_text(encoding="utf-8").strip() == secret, "the secret must not change"
    assert (INFRA / "rules.generated.json").read_text(encoding="utf-8") == before


def test_preprovision_stops_on_a_broken_rules_file(tmp_path: Path) -> None:
    env = {**stub(tmp_path, azd=STUB_AZD), "AUTOPILOT_RULES_FILE": "README.md"}
    done = run(PREPROVISION, env)
    assert done.returncode != 0
    assert "README.md" in done.stderr
    assert not (tmp_path / "azd.env").exists(), "nothing happens after a bad rules file"


def test_postprovision_deploys_the_vaults_in_their_own_deployment(tmp_path: Path) -> None:
    env = {
        **stub(tmp_path, az=STUB_AZ),
        "AZURE_ENV_NAME": "prod",
        "AZURE_LOCATION": "westeurope",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
        "AUTOPILOT_IDENTITY_PRINCIPAL_ID": "11111111-1111-1111-1111-111111111111",
        "AZURE_LOG_ANALYTICS_WORKSPACE_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/log",
        "AUTOPILOT_VAULT_MODE": "existing",
    }
    done = run(POSTPROVISION, env)
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "az.args").read_text(encoding="utf-8").splitlines()
    assert args[:3] == ["deployment", "sub", "create"]
    assert args[args.index("--name") + 1] == "autopilot-vaults-prod"
    assert args[args.index("--template-file") + 1] == "infra/vaults.bicep"
    assert "principalId=11111111-1111-1111-1111-111111111111" in args
    assert "vaultMode=existing" in args
    assert "includeOtherSubscriptionVaults=false" in args
    assert any(arg.startswith("workspaceId=/subscriptions/") for arg in args)


def test_postprovision_can_be_switched_off(tmp_path: Path) -> None:
    env = {
        **stub(tmp_path, az=STUB_AZ),
        "AZURE_ENV_NAME": "prod",
        "AZURE_LOCATION": "westeurope",
        "AUTOPILOT_IDENTITY_PRINCIPAL_ID": "p",
        "AZURE_LOG_ANALYTICS_WORKSPACE_ID": "w",
        "AUTOPILOT_DEPLOY_VAULTS": "false",
    }
    done = run(POSTPROVISION, env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "az.args").exists()


def test_postprovision_needs_the_outputs_of_main(tmp_path: Path) -> None:
    done = run(POSTPROVISION, {**stub(tmp_path, az=STUB_AZ), "AZURE_ENV_NAME": "prod"})
    assert done.returncode == 1
    assert "AZURE_LOCATION is not set" in done.stderr
    outputs = (INFRA / "main.bicep").read_text(encoding="utf-8")
    for name in ("AUTOPILOT_IDENTITY_PRINCIPAL_ID", "AZURE_LOG_ANALYTICS_WORKSPACE_ID", "AZURE_LOCATION"):
        assert f"output {name} string" in outputs
