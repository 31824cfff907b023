"""The sweep's report as an operator sees it: the local stack sweeps a small estate with a few
problems twice, GET /api/report (function key) serves the page, and headless Chromium (Debian's
`chromium`) loads it: the DOM it builds has the tables and the chart, and its screenshot shows the
page styled and the chart's line drawn, also when the page comes with the handler's
Content-Security-Policy header (which allows the one inline style sheet and nothing else).

Without Chromium these tests fail (they are never skipped) and say how to install it."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from armsim import SANDBOX_SUBSCRIPTION as SUB
from devhost.stack import Stack
from tests.armsim_support import sandbox_vault_policies
from tests.browser_support import Element, Png, dump_dom, parse_html, require_chromium, screenshot
from tests.e2e.conftest import E2E, wait_for

GROUP = "rg-report"
VAULTS = (
    f"/subscriptions/{SUB}/resourceGroups/rg-autopilot-backup/providers/Microsoft.RecoveryServices/vaults"
)
WEU, EUS = f"{VAULTS}/rsv-autopilot-weu", f"{VAULTS}/rsv-autopilot-eus"
LINE = (0x0A, 0x64, 0xA4)  # the chart's line and dots (report.STYLE)
HEADER = (0xF0, 0xF3, 0xF7)  # the tables' header cells
WHITE = (0xFF, 0xFF, 0xFF)
# The whole page, at a laptop's width. (Was 1600 px high: the page now puts problems first, with a
# legend, the findings' resource group and subscription and a glossary, so the chart sits lower.)
VIEWPORT = (1000, 3200)
MARGIN = 32  # the body's margin (2rem): nothing is drawn there unless the page overflows
# A CSP that refuses inline styles too: the page must then lose its styles, or the check is blind.
STRICT_CSP = "default-src 'none'"

# The estate: (name, region, tag, vault and policy it is protected with, last job).
GOLD, SILVER, OPT_OUT = {"backup-policy": "gold"}, {"backup-policy": "silver"}, {"backup-policy": "none"}
ESTATE: list[tuple[str, str, dict[str, str], str | None, str | None, dict[str, Any] | None]] = [
    ("web-01", "westeurope", GOLD, WEU, "gold", {"outcome": "Completed", "hoursAgo": 3}),
    ("web-02", "westeurope", GOLD, WEU, "gold", {"outcome": "Completed", "hoursAgo": 3}),
    ("web-03", "westeurope", GOLD, None, None, None),  # selected but unprotected: fixed
    ("db-01", "westeurope", SILVER, WEU, "silver", {"outcome": "Completed", "hoursAgo": 3}),
    ("stale", "westeurope", GOLD, WEU, "gold", {"outcome": "Completed", "hoursAgo": 72}),
    ("warnings", "westeurope", GOLD, WEU, "gold", {"outcome": "CompletedWithWarnings", "hoursAgo": 2}),
    ("gone", "westeurope", GOLD, WEU, "gold", {"outcome": "Completed", "hoursAgo": 3}),  # deleted: orphan
    ("app-01", "eastus", GOLD, EUS, "gold", {"outcome": "Completed", "hoursAgo": 3}),
    ("app-02", "eastus", SILVER, EUS, "gold", {"outcome": "Completed", "hoursAgo": 3}),  # wrong policy
    (
        "needs-person",
        "eastus",
        GOLD,
        EUS,
        "gold",
        {"outcome": "Failed", "errorCode": "UserErrorGuestAgentStatusUnavailable", "hoursAgo": 2},
    ),
    ("untagged", "eastus", {}, None, None, None),
    ("opted-out", "eastus", OPT_OUT, None, None, None),
]
# What the two sweeps must find (the DST warning of the silver policies depends on the date: it is
# checked against the JSON report, not here): [kind, about, action, new], most severe first (critical,
# then warning; by kind within a severity). The page names an orphaned item by its VM.
FIRST_FINDINGS = [
    ["job-failed", "needs-person", "reported", "yes"],
    ["rpo-breach", "stale", "reported", "yes"],
    ["unprotected", "web-03", "fixed", "yes"],
    ["job-completed-with-warnings", "warnings", "reported", "yes"],
    ["orphaned-item", "gone (backup item)", "reported", "yes"],
    ["wrong-policy", "app-02", "fixed", "yes"],
]
SECOND_FINDINGS = [
    [kind, about, "reported", ""]
    for kind, about, action, _ in FIRST_FINDINGS
    if action == "reported"  # the fixed problems are gone; the others are still there, not new
]
REGIONS = {  # region: VMs, selected, compliant (first sweep; all compliant after its fixes)
    "eastus": (5, 3, 2),
    "westeurope": (6, 6, 5),
}
POLICIES = {"gold": (7, 6), "silver": (2, 1)}  # policy: selected, compliant (first sweep)


def vm_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"


@dataclass
class Page:
    path: Path  # the page as GET /api/report served it
    body: bytes
    headers: dict[str, str]
    report: dict[str, Any]  # GET /api/report?format=json at the same moment


@dataclass
class Served:
    e2e: E2E
    first: Page
    second: Page

    def app_url(self) -> str:
        assert self.e2e.stack.host is not None
        return f"{self.e2e.stack.host.url}/api/report?code={self.e2e.stack.values['DEVHOST_FUNCTION_KEY']}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The stack (never firing timer, no scheduled backups in the sandbox), the estate seeded, two
    sweeps run, and the page GET /api/report served after each."""
    run_dir = tmp_path_factory.mktemp("report-stack")
    settings = run_dir / "local.settings.json"
    settings.write_text(
        json.dumps(
            {
                "Values": {
                    "AUTOPILOT_RETRY_TOTAL": "1",
                    "AUTOPILOT_RETRY_BACKOFF_MAX": "1",
                    "SWEEP_SCHEDULE": "0 0 0 1 1 *",
                }
            }
        )
    )
    stack = Stack.ephemeral(run_dir, settings_file=settings, scheduledBackups=False)
    stack.start()
    try:
        e2e = E2E(stack)
        seed(e2e)
        first = fetch(e2e, sweep(e2e), run_dir / "first.html")
        second = fetch(e2e, sweep(e2e), run_dir / "second.html")
        yield Served(e2e, first, second)
    finally:
        stack.stop()


def seed(e2e: E2E) -> None:
    policies = sandbox_vault_policies()
    vms = [
        {"subscriptionId": SUB, "resourceGroup": GROUP, "name": name, "location": region, "tags": tags}
        for name, region, tags, *_ in ESTATE
    ]
    protections = [
        {"vmId": vm_id(name), "vaultId": vault, "policy": policy, "state": "Protected"}
        for name, _, _, vault, policy, _ in ESTATE
        if vault
    ]
    jobs = [{"vmId": vm_id(name), **job} for name, *_, job in ESTATE if job]
    e2e.control("POST", "/seed", {"policies": policies, "vms": vms, "protections": protections, "jobs": jobs})
    e2e.compute.virtual_machines.begin_delete(GROUP, "gone").result()


def sweep(e2e: E2E) -> str:
    """Run the timer function as the host's admin API does; the run's id once its report is stored."""
    from autopilot.app import get_autopilot

    reports = get_autopilot().reports

    def finished() -> set[str]:
        return {
            b.name for b in reports.list_blobs(name_starts_with="runs/") if b.name.endswith("/report.html")
        }

    before = finished()
    master = {"x-functions-key": e2e.stack.values["DEVHOST_MASTER_KEY"]}
    response = e2e.app("POST", "/admin/functions/sweep_timer", json={"input": ""}, headers=master)
    assert response.status_code == 202, response.text
    new = wait_for(lambda: finished() - before, timeout=60)
    assert len(new) == 1, f"the sweep did not finish within 60 s: {new}"
    return new.pop().split("/")[1]


def fetch(e2e: E2E, run_id: str, path: Path) -> Page:
    response = e2e.app("GET", "/api/report")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    report = e2e.app("GET", "/api/report?format=json").json()
    assert report["summary"]["runId"] == run_id, "GET /api/report does not serve the latest run"
    path.write_bytes(response.content)
    return Page(path, response.content, dict(response.headers), report)


# -- what the browser built ---------------------------------------------------------------------------
def table(dom: Element, css: str) -> tuple[list[str], list[list[str]]]:
    element = dom.find("table", class_=css)
    (head,) = element.rows("thead")
    return head, element.rows("tbody")


def chart_points(dom: Element) -> list[tuple[float, float]]:
    svg = dom.find("svg", id="compliance-chart")
    return [(float(c.attrs["cx"]), float(c.attrs["cy"])) for c in svg.find_all("circle")]


def check_page(dom: Element, page: Page, findings: list[list[str]], fixed: bool) -> None:
    report = page.report
    assert not dom.find_all("script"), "the report must have no scripts"
    assert not [e for e in dom.iter() if "src" in e.attrs or e.attrs.get("rel") == "stylesheet"], (
        "the report must load nothing"
    )
    assert dom.find("h1").text().endswith(report["summary"]["runId"])

    head, rows = table(dom, "by-region")
    assert head == ["region", "VMs", "selected", "compliant"]
    assert rows == [
        [region, str(vms), str(selected), str(selected if fixed else compliant)]
        for region, (vms, selected, compliant) in sorted(REGIONS.items())
    ]
    head, rows = table(dom, "by-policy")
    assert head == ["policy", "selected", "compliant"]
    assert rows == [
        [policy, str(selected), str(selected if fixed else compliant)]
        for policy, (selected, compliant) in sorted(POLICIES.items())
    ]

    # Findings: the seeded ones (and the date-dependent DST warnings, as the JSON report has them), most
    # severe first, each named with its resource group and subscription.
    dst = [f for f in report["findings"] if f["kind"] == "dst-change-ahead"]
    head, rows = table(dom, "findings")
    assert head == [
        "severity", "kind", "about", "resource group", "subscription", "action", "new", "reason", "remedy"
    ]  # fmt: skip
    assert [[r[1], r[2], r[5], r[6]] for r in rows if r[1] != "dst-change-ahead"] == findings
    assert len(rows) == len(findings) + len(dst)
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), key=["critical", "warning", "info"].index)
    assert all(r[3] == GROUP and r[4] == SUB for r in rows if r[1] != "dst-change-ahead")
    assert all(r[7] and r[8] for r in rows), "every finding has a reason and a remedy"
    assert [[r[7], r[8]] for r in rows] == [[f["reason"], f["remedy"]] for f in report["findings"]]
    # Problems come first: the legend of the findings by severity is the page's first table.
    assert dom.find_all("table")[0].attrs["class"] == "by-severity"
    assert "Inventory:" in dom.find("p", class_="inventory").text()
    assert dom.find("dl", class_="glossary").find_all("dt"), "every label is explained"

    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row[1]] = kinds.get(row[1], 0) + 1
    head, rows = table(dom, "by-kind")
    assert head == ["kind", "count"]
    assert rows == [[kind, str(count)] for kind, count in sorted(kinds.items())]

    # The chart: one dot per run so far, on a line through them, higher for better compliance.
    history = report["history"]
    points = chart_points(dom)
    assert len(points) == len(history)
    svg = dom.find("svg", id="compliance-chart")
    assert svg.attrs["aria-label"] == f"Compliance over the last {len(history)} runs"
    line = svg.find("polyline", class_="line").attrs["points"].split()
    assert [tuple(map(float, p.split(","))) for p in line] == points
    titles = [c.find("title").text() for c in svg.find_all("circle")]
    assert [t.split(": ")[0] for t in titles] == [h["at"] for h in history]
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == len(xs), "runs left to right, in order"
    values = [h["compliant"] / h["selected"] for h in history]
    for (_, y1), (_, y2), v1, v2 in zip(points, points[1:], values, values[1:], strict=False):
        assert (y1 > y2) == (v1 < v2), "a run with better compliance is drawn higher"


def test_the_browser_builds_the_tables_and_the_chart(request: pytest.FixtureRequest) -> None:
    chromium = require_chromium()  # first: without a browser, fail before starting the stack
    served: Served = request.getfixturevalue("served")
    first, second = served.first, served.second
    assert [h["compliant"] / h["selected"] for h in second.report["history"]] == [7 / 9, 1.0]

    dom, _ = dump_dom(chromium, first.path.as_uri())
    check_page(dom, first, FIRST_FINDINGS, fixed=False)
    assert len(chart_points(dom)) == 1

    dom, _ = dump_dom(chromium, second.path.as_uri())
    check_page(dom, second, SECOND_FINDINGS, fixed=True)
    assert len(chart_points(dom)) == 2


# -- what the browser drew ----------------------------------------------------------------------------
def check_drawn(png: Png, points: list[tuple[float, float]], what: str) -> None:
    """The page is drawn and styled, and the chart's line and dots are where the DOM puts them."""
    assert (png.width, png.height) == VIEWPORT
    assert png.rows_not(WHITE) > png.height // 4, f"{what}: the screenshot is (almost) blank"
    assert len(png.colours()) > 20, f"{what}: the screenshot has too few colours to be the page"
    assert png.where(HEADER), f"{what}: no table header background: the style sheet did not apply"
    overflow = png.rows_not(WHITE, png.width - MARGIN // 2)
    assert not overflow, (
        f"{what}: the page is wider than {png.width} px ({overflow} rows reach the right edge)"
    )
    blue = png.where(LINE)
    assert len(blue) > 100, f"{what}: the chart's line colour #0a64a4 is not drawn ({len(blue)} pixels)"
    # The drawn line spans the dots: as wide and as high as their centres, plus a dot's diameter
    # (give or take the anti-aliased rim, which is not exactly the colour).
    left, right = min(x for x, _ in blue), max(x for x, _ in blue)
    top, bottom = min(y for _, y in blue), max(y for _, y in blue)
    width = max(x for x, _ in points) - min(x for x, _ in points) + 8
    height = max(y for _, y in points) - min(y for _, y in points) + 8
    assert abs((right - left + 1) - width) <= 4, f"{what}: line {left}..{right}, dots {points}"
    assert abs((bottom - top + 1) - height) <= 4, f"{what}: line {top}..{bottom}, dots {points}"


def test_the_screenshot_shows_the_page_styled_and_the_chart_drawn(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    chromium = require_chromium()
    served: Served = request.getfixturevalue("served")
    points = chart_points(parse_html(served.second.body.decode()))  # where the dots are meant to be
    png, _ = screenshot(chromium, served.second.path.as_uri(), tmp_path / "file.png", *VIEWPORT)
    check_drawn(png, points, "from a file")


@contextmanager
def serve_page(body: bytes, csp: str) -> Iterator[str]:
    """A local HTTP server that answers every GET with the page and the given CSP header."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/report"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_page_renders_under_the_handlers_content_security_policy(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    chromium = require_chromium()
    served: Served = request.getfixturevalue("served")
    page = served.second
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp, f"the handler's CSP should lock the page down: {csp}"
    points = chart_points(parse_html(page.body.decode()))

    # The page with the handler's header, from a plain HTTP server: nothing is refused.
    with serve_page(page.body, csp) as url:
        png, run = screenshot(chromium, url, tmp_path / "csp.png", *VIEWPORT)
    assert not run.csp_violations(), "\n".join(run.csp_violations())
    check_drawn(png, points, "under the handler's CSP")

    # The control: a CSP without 'unsafe-inline' styles is reported, and the page loses its styles.
    with serve_page(page.body, STRICT_CSP) as url:
        png, run = screenshot(chromium, url, tmp_path / "strict.png", *VIEWPORT)
    assert run.csp_violations(), "chromium did not report a refused inline style: the check is blind"
    assert not png.where(LINE) and not png.where(HEADER)

    # And straight from the app, as an operator opens it (the key as ?code=).
    png, run = screenshot(chromium, served.app_url(), tmp_path / "app.png", *VIEWPORT)
    assert not run.csp_violations(), "\n".join(run.csp_violations())
    check_drawn(png, points, "from GET /api/report")
