"""The dashboard's parts that need no server: the token and CSRF checks, the runs list's
query string, the formatting, and the charts' geometry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from perdure import InvalidConfiguration
from perdure.dashboard.charts import activity_chart, timeline
from perdure.dashboard.filters import RunsQuery
from perdure.dashboard.formatting import duration, exact, relative
from perdure.dashboard.security import Guard
from perdure.records import Activity, ErrorInfo, JournalEntry, RunInfo, RunStatus


class Params(dict[str, str]):
    def getlist(self, name: str) -> list[str]:
        value = self.get(name)
        return value.split("|") if value else []


def test_guard_checks_tokens_sessions_and_csrf() -> None:
    with pytest.raises(InvalidConfiguration, match="at least 16 characters"):
        Guard("short")
    assert Guard(None).read_only and not Guard(None).check_token("anything")
    guard = Guard("s" * 20)
    assert guard.check_token("s" * 20) and not guard.check_token("s" * 19)
    assert not guard.check_token("ß" * 20)  # non-ASCII is refused, not an error
    cookie = guard.new_session()
    nonce = guard.session_nonce(cookie)
    assert nonce is not None and "s" * 20 not in cookie  # the token is not in the cookie
    assert guard.check_csrf(nonce, guard.csrf_for(nonce))
    assert not guard.check_csrf(nonce, "é" + guard.csrf_for(nonce)[1:])
    assert guard.session_nonce(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None
    # Another token's sessions are not this one's.
    assert Guard("t" * 20).session_nonce(cookie) is None
    assert guard.session_nonce("no-dot") is None and guard.session_nonce(None) is None


def test_runs_query_reads_and_rewrites_filters() -> None:
    q = RunsQuery.parse(Params(status="failed|blocked", workflow="checkout",
                               tags="customer=acme, plan=pro", created_after="2030-01-01T10:00",
                               limit="20"))
    kwargs = q.kwargs()
    assert kwargs["status"] == ["failed", "blocked"]
    assert kwargs["tags"] == {"customer": "acme", "plan": "pro"}
    assert kwargs["created_after"] == datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert q.link(cursor="v1.x") == ("/runs?status=failed&status=blocked&workflow=checkout&"
                                     "tags=customer%3Dacme%2C+plan%3Dpro&created_after="
                                     "2030-01-01T10%3A00&limit=20&cursor=v1.x")
    with pytest.raises(InvalidConfiguration, match="KEY=VALUE"):
        RunsQuery.parse(Params(tags="customer")).kwargs()
    with pytest.raises(InvalidConfiguration, match="not a time"):
        RunsQuery.parse(Params(created_before="yesterday")).kwargs()
    with pytest.raises(InvalidConfiguration, match="from 1 to 500"):
        RunsQuery.parse(Params(limit="0"))


def test_formatting() -> None:
    assert duration(0.25) == "250 ms" and duration(61) == "1 min 1 s" and duration(60) == "1 min"
    assert duration(90000) == "1 d 1 h"
    assert relative(100.0, 160.0) == "1 min ago" and relative(200.0, 160.0) == "in 40 s"
    assert exact(0.0) == "1970-01-01T00:00:00.000Z" and exact(None) == "-"


def _info(**kw: object) -> RunInfo:
    base = dict(id="r", workflow="w", version="1", status=RunStatus.FAILED, error=None,
                created_at=datetime.fromtimestamp(1000, UTC),
                updated_at=datetime.fromtimestamp(1010, UTC))
    base.update(kw)
    return RunInfo(**base)  # type: ignore[arg-type]


def test_timeline_places_bars_by_time_and_marks_retries() -> None:
    err = ErrorInfo("ValueError", "<b>no</b>").to_json()
    journal = [
        JournalEntry(0, "step", "reserve", "completed", 1, "1", started_at=1000,
                     finished_at=1002),
        JournalEntry(1, "step", "charge", "failed", 3, error=err, started_at=1002,
                     finished_at=1008),
        JournalEntry(2, "compensation", "reserve", "completed", 1, started_at=1008,
                     finished_at=1010),
    ]
    t = timeline(_info(), journal, now=2000, children={})
    reserve, charge, undo = t.bars
    assert reserve.x < charge.x < undo.x
    assert abs(reserve.x + reserve.w - charge.x) < 0.01  # ends where the next one starts
    assert len(charge.retries) == 2 and "failed" in charge.css and "3 attempts" in charge.title
    assert undo.css == "compensation"
    assert t.hidden == 0


def test_activity_chart_totals() -> None:
    a = Activity(datetime.fromtimestamp(0, UTC), 60.0, (1, 2, 3), (0, 1, 2), (0, 0, 1),
                 (0, 0, 0))
    chart = activity_chart(a)
    assert [s.total for s in chart.series] == [6, 3, 1, 0]
    assert chart.ymax == 3 and len(chart.bars) == 3


def test_every_template_and_asset_ships_in_the_wheel() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    import perdure.dashboard

    root = Path(perdure.__file__).parent
    patterns = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"][
        "setuptools"]["package-data"]["perdure"]
    here = Path(perdure.dashboard.__file__).parent
    files = [p.relative_to(root).as_posix() for sub in ("templates", "static")
             for p in (here / sub).iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)
