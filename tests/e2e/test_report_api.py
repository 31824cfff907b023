"""GET /api/report before any sweep has finished: a 404 problem that says so, never an empty page."""

from __future__ import annotations

from tests.e2e.conftest import E2E


def test_no_report_before_the_first_sweep(e2e: E2E) -> None:
    for query in ("", "?format=json", "?format=csv", "?format=posture-csv"):
        response = e2e.app("GET", f"/api/report{query}")
        assert response.status_code == 404, (query, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"] == "urn:backup-autopilot:problem:no-report"
        assert problem["detail"] == "No sweep has finished yet."
