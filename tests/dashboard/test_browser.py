"""The dashboard in a real browser: every page, the filters and paging, a run's timeline, the
escaping of payloads, and the actions — allowed with the token, refused without it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from perdure import RunStatus
from perdure.testing import wait_for_status
from tests.dashboard import scenario
from tests.dashboard.conftest import TOKEN, Served

pytestmark = pytest.mark.timeout(60)


def _expect() -> Any:
    return pytest.importorskip("playwright.sync_api").expect


def test_every_page_loads(served: Served, page: Any, shots: Path,
                          request: pytest.FixtureRequest) -> None:
    expect = _expect()
    backend = request.node.callspec.params["served"]
    response = page.goto(served.base + "/")
    # Only the dashboard's own script may run, and no other site may frame it.
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator('.card[data-status="waiting"] .count')).to_have_text("2")
    # Started in the last hour: the batch, the order and its child, and the others.
    started = page.locator('#activity-chart polyline[data-series="started"]')
    expect(started).to_have_attribute("data-total", str(scenario.BATCH + 7))
    expect(page.locator('#activity-chart polyline[data-series="failed"]')).to_have_attribute(
        "data-total", "1")
    # The engine serving the pages is a worker: it is listed, with what it serves.
    expect(page.locator("#workers tbody tr")).to_have_count(1)
    expect(page.locator("#workers")).to_contain_text("approval: 1")
    expect(page.locator("#workers")).to_contain_text("region=eu")
    # Queues and limits: the queued run no live worker's labels admit waits in line, flagged.
    exports = page.locator('#queues tr[data-queue="exports"]')
    expect(exports.locator(".depth")).to_have_text("1")
    expect(exports.locator(".unroutable")).to_have_text("1")
    expect(page.locator('#limits tr[data-limit="gpu"]')).to_contain_text("0 / 1")
    exports.locator("a").click()
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator("#runs")).to_contain_text("export-1")
    page.goto(served.base + "/")
    if backend == "sqlite":
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

    page.goto(served.base + "/?window=day")
    expect(page.locator(".switch a[aria-current]")).to_have_text("day")

    page.goto(served.base + "/runs")
    expect(page.locator("#runs tbody tr")).to_have_count(50)
    if backend == "sqlite":
        page.screenshot(path=str(shots / "runs.png"))

    page.goto(served.base + "/runs/" + quote(served.ids["done"]))
    expect(page.locator("#run-id")).to_have_text("order-1001")
    expect(page.locator("#result")).to_contain_text("receipt-o-1001")
    expect(page.locator("#events")).to_contain_text("paid")
    expect(page.locator("#streams")).to_contain_text("progress")
    expect(page.locator("#family .child")).to_contain_text("o-1001-notify")
    if backend == "sqlite":
        page.screenshot(path=str(shots / "run.png"), full_page=True)

    # The child links back to its parent.
    page.click("#family .child a.run-id")
    expect(page.locator("#run-id")).to_have_text("o-1001-notify")
    expect(page.locator("#family .ancestor")).to_contain_text("order-1001")

    page.goto(served.base + "/runs/no-such-run")
    expect(page.locator("#problem")).to_contain_text("no-such-run")


def test_filters_paging_and_search(served: Served, page: Any) -> None:
    expect = _expect()
    page.goto(served.base + "/runs")
    page.check('input[name="status"][value="completed"]')
    page.fill('input[name="tags"]', "customer=acme")
    page.click("#filters button[type=submit]")
    rows = page.locator("#runs tbody tr")
    # 35 of the batch are acme's, and the order: 36 completed runs tagged customer=acme.
    expect(rows).to_have_count(36)
    expect(page.locator("#runs")).not_to_contain_text("globex")

    page.fill('input[name="limit"]', "20")
    page.click("#filters button[type=submit]")
    expect(rows).to_have_count(20)
    first = set(page.locator("#runs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"))
    page.click("#next-page")
    expect(rows).to_have_count(16)
    second = set(page.locator("#runs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"))
    assert not first & second and len(first | second) == 36
    # Auto-refresh swaps the table in place and keeps the page (the same cursor).
    page.locator("h1").click()  # nothing focused: the refresh may run
    expect(page.locator("html")).to_have_attribute("data-refreshed", re.compile(r"^\d+$"))
    after = set(page.locator("#runs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"))
    assert after == second
    expect(page.locator("#first-page")).to_be_visible()

    page.goto(served.base + "/runs?status=waiting&workflow=nothing-like-this")
    expect(page.locator("#no-runs")).to_contain_text("No run matches")
    page.goto(served.base + "/runs?created_after=yesterday")
    expect(page.locator("#filter-error")).to_contain_text("not a time")

    page.fill('input[name="q"]', served.ids["failed"])
    page.press('input[name="q"]', "Enter")
    expect(page.locator("#run-id")).to_have_text("fulfil-7")


def test_run_timeline(served: Served, page: Any) -> None:
    expect = _expect()
    page.goto(served.base + "/runs/" + quote(served.ids["done"]))
    bars = page.locator("#timeline g.bar")
    expect(bars).to_have_count(10)
    # The charge step failed twice before it succeeded: two marks inside its bar.
    charge = page.locator('#timeline g.bar.step[data-seq="2"]')
    expect(charge.locator("line.retry")).to_have_count(2)
    expect(charge.locator("title")).to_contain_text("3 attempts")
    expect(page.locator("#timeline g.bar.sleep")).to_have_count(1)
    expect(page.locator("#timeline g.bar.child")).to_have_count(1)
    # Bars are positioned by time: the sleep starts after the charge ends.
    x = page.evaluate("""() => {
        const r = s => document.querySelector(s).getBBox();
        const c = r('#timeline g.bar.step[data-seq="2"] rect');
        const s = r('#timeline g.bar.sleep rect');
        return [c.x + c.width, s.x];
    }""")
    assert x[0] <= x[1] + 0.5
    expect(page.locator("#journal tbody tr")).to_have_count(10)

    page.goto(served.base + "/runs/" + quote(served.ids["failed"]))
    expect(page.locator("#timeline g.bar.failed")).to_have_count(1)
    expect(page.locator("#timeline g.bar.compensation")).to_have_count(1)
    expect(page.locator("#error")).to_contain_text("cannot ship rocket to the moon")
    expect(page.locator(".traceback").first).to_contain_text("Traceback")


def test_payloads_are_shown_as_text(served: Served, page: Any) -> None:
    expect = _expect()
    page.goto(served.base + "/runs/" + quote(served.ids["markup"]))
    expect(page.locator("#arguments")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("#result")).to_contain_text("onerror=")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img").count() == 0


def test_actions_are_refused_without_the_token(served: Served, page: Any) -> None:
    expect = _expect()
    waiting = served.ids["waiting"]
    page.goto(served.read_only + "/runs/" + quote(waiting))
    expect(page.locator("#actions")).to_contain_text("Read-only")
    expect(page.locator("#signal-form")).to_have_count(0)

    page.goto(served.base + "/runs/" + quote(waiting))
    expect(page.locator("#actions")).to_contain_text("Sign in")
    expect(page.locator("#cancel-form")).to_have_count(0)
    for base in (served.base, served.read_only):
        for action in ("cancel", "signal"):
            answer = page.request.post(f"{base}/actions/{action}", form={
                "run_id": waiting, "name": "approve", "payload": "1", "confirmed": "yes",
                "csrf": "guess"})
            assert answer.status == 403, (base, action)
    answer = page.request.post(served.base + "/login", form={"token": "wrong-token-xxxxxxxx"})
    assert answer.status == 403

    # Signed in, a form without the session's CSRF token, or from another site, is refused.
    _sign_in(served, page)
    answer = page.request.post(served.base + "/actions/cancel", form={
        "run_id": waiting, "confirmed": "yes", "csrf": "0" * 64})
    assert answer.status == 403
    csrf = page.locator('#cancel-form input[name="csrf"]').get_attribute("value")
    answer = page.request.post(served.base + "/actions/cancel", form={
        "run_id": waiting, "confirmed": "yes", "csrf": csrf},
        headers={"Origin": "http://evil.example"})
    assert answer.status == 403
    info = served.call(served.engine.status(waiting))  # type: ignore[union-attr]
    assert info.status is RunStatus.WAITING and not info.cancel_requested


def _sign_in(served: Served, page: Any) -> None:
    expect = _expect()
    page.goto(served.base + "/login")
    page.fill('input[name="token"]', TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    page.goto(served.base + "/runs/" + quote(served.ids["waiting"]))
    expect(page.locator("#signal-form")).to_be_visible()


def test_signal_and_cancel_through_the_ui(served: Served, page: Any, shots: Path,
                                          request: pytest.FixtureRequest) -> None:
    expect = _expect()
    engine = served.engine
    assert engine is not None
    _sign_in(served, page)
    page.fill('#signal-form input[name="name"]', "approve")
    # The editor checks the JSON as it is typed, and refuses to send a broken one.
    page.fill("#signal-form textarea", '{"approved": tru')
    expect(page.locator("#signal-form .json-state")).to_contain_text("not valid JSON")
    page.fill("#signal-form textarea", '{"approved": true, "by": "<b>ops</b>"}')
    expect(page.locator("#signal-form .json-state")).to_have_text("")
    if request.node.callspec.params["served"] == "sqlite":
        page.screenshot(path=str(shots / "actions.png"))
    page.click("#signal-form button[type=submit]")
    expect(page.locator("#confirm-payload")).to_contain_text('"by": "<b>ops</b>"')
    page.click("#confirm")
    expect(page.locator("#result-message")).to_contain_text("signal 'approve' sent")
    handle = engine.handle(served.ids["waiting"])
    served.call(wait_for_status(handle, RunStatus.COMPLETED, timeout=20))
    assert served.call(handle.result()) == {"approved": True, "by": "<b>ops</b>"}

    page.goto(served.base + "/runs/" + quote(served.ids["waiting2"]))
    page.click("#cancel-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Confirm: cancel")
    page.click("#confirm")
    expect(page.locator("#result-message")).to_contain_text("cancellation requested")
    served.call(wait_for_status(engine.handle(served.ids["waiting2"]), RunStatus.CANCELLED,
                                timeout=20))
    page.click("#back-to-run")
    expect(page.locator("h1 .status")).to_have_text("cancelled")

    # Retry makes a new run of the same arguments; the page links to it.
    page.goto(served.base + "/runs/" + quote(served.ids["failed"]))
    page.click("#retry-form button[type=submit]")
    page.click("#confirm")
    expect(page.locator("#result-message")).to_contain_text("retried")
    page.click("#new-run")
    expect(page.locator("dl.facts")).to_contain_text("forked from")
