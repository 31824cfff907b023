"""checkov over infra/: no failed check, no file it cannot parse, and every skip justified.

checkov (3.3.30) pins packaging<24 while pytest 9 needs packaging>=24, so it cannot share the
project's .venv: it lives in its own venv, .venv/checkov (see docs/DEPLOY.md, "Checks"). The test
finds it there, in $CHECKOV, or on PATH. Without it the test is skipped, unless CI or
AUTOPILOT_REQUIRE_CHECKOV is set, where a missing checkov fails.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.infra.infra_support import INFRA, ROOT, bicep_files

SKIP = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")


def checkov_binary() -> str | None:
    for candidate in (os.environ.get("CHECKOV"), str(ROOT / ".venv" / "checkov" / "bin" / "checkov")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


@functools.cache
def report() -> dict[str, Any]:
    binary = checkov_binary()
    if binary is None:
        message = "checkov is not installed: python3 -m venv .venv/checkov && .venv/checkov/bin/pip install checkov==3.3.30"
        if os.environ.get("CI") or os.environ.get("AUTOPILOT_REQUIRE_CHECKOV"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [binary, "-d", "infra", "--framework", "bicep", "--skip-download", "--compact", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert done.stdout.strip(), done.stderr
    parsed = json.loads(done.stdout)
    result: dict[str, Any] = parsed[0] if isinstance(parsed, list) else parsed
    return result


def test_checkov_finds_no_failed_check() -> None:
    summary = report()["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report()["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0, report()["results"].get("parsing_errors")
    assert summary["passed"] >= 20, summary


def test_checkov_reads_every_file() -> None:
    results = report()["results"]
    seen = {c["file_path"] for kind in ("passed_checks", "skipped_checks") for c in results[kind]}
    for module in ("storage.bicep", "function-app.bicep", "keyvault.bicep", "eventgrid.bicep"):
        assert f"/modules/{module}" in seen, f"checkov checked nothing in {module}"


def test_every_skip_is_justified_on_its_line() -> None:
    written: list[tuple[str, str]] = []
    for path in bicep_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SKIP.search(line)
            if "checkov:skip" in line:
                assert match, f"{path.name}:{number}: write // checkov:skip=CKV_...:reason"
                reason = (match.group(2) or "").strip()
                assert len(reason) >= 40, f"{path.name}:{number}: {match.group(1)} needs a real reason"
                written.append((match.group(1), f"/{path.relative_to(INFRA).as_posix()}"))
    skipped = [(c["check_id"], c["file_path"]) for c in report()["results"]["skipped_checks"]]
    # Every skip comment suppresses a check that would otherwise run, and nothing else is skipped.
    assert sorted(skipped) == sorted(written)
    for check in report()["results"]["skipped_checks"]:
        assert check["check_result"]["suppress_comment"] != "No comment provided"
