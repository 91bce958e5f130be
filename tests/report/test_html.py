"""The HTML report: one self-contained page with the DAG, timeline, tasks, alerts and results."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

from swarm_runtime.report import RunReport, TaskRecord, render_html, write_html_report

VOID = {"meta", "br", "img", "input", "hr", "link", "col", "wbr"}
SVG_EMPTY = {"path", "rect", "circle", "line", "marker"}


class Structure(HTMLParser):
    """Collects tags and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def count(self, tag: str, cls: str | None = None) -> int:
        """How many ``tag`` elements (with class ``cls``, if given) there are."""
        return sum(
            1
            for t, attrs in self.tags
            if t == tag and (cls is None or cls in (attrs.get("class") or "").split())
        )


def parse(text: str) -> Structure:
    """Parse the page, asserting it is well nested."""
    structure = Structure()
    structure.feed(text)
    structure.close()
    assert structure.errors == []
    assert structure.stack == []
    return structure


def test_realistic_report_structure(realistic_report: RunReport, tmp_path: Path) -> None:
    """Every part is present: DAG nodes and edges, lanes, task rows, alerts, charts."""
    path = write_html_report(realistic_report, tmp_path / "report.html")
    text = path.read_text("utf-8")
    page = parse(text)
    assert text.startswith("<!DOCTYPE html>")
    assert page.count("svg", "dag") == 1
    assert page.count("g", "node") == len(realistic_report.tasks)
    assert page.count("path", "edge") == len(realistic_report.edges)
    assert page.count("g", "failed") == 1
    assert page.count("svg", "gantt") == 1
    for lane in ("extract#0", "transform#0", "transform#1", "analyze#0", "analyze#1", "csv_out#0"):
        assert f">{lane}</text>" in text
    assert page.count("tr") >= len(realistic_report.tasks) + 1
    assert "No space left on device" in text
    assert page.count("span", "sev-critical") == 1
    heat = re.search(r'<table class="heat">.*?</table>', text, re.S)
    assert heat is not None
    assert heat.group(0).count("<td ") == 36  # 6 x 6 correlation matrix
    assert page.count("svg", "hist") == 6  # one histogram per numeric column analysed
    assert "first 8 of 502 rows" in text
    assert "sales_stats.json" in text
    assert '<span class="badge s-failed big">failed</span>' in text


def test_report_is_self_contained(realistic_report: RunReport) -> None:
    """No scripts, no external URLs, no linked resources: the file stands alone."""
    text = render_html(realistic_report)
    page = parse(text)
    assert page.count("script") == 0
    assert page.count("link") == 0
    assert page.count("img") == 0
    assert "http://" not in text
    assert "https://" not in text
    assert re.findall(r"url\(([^)]*)\)", text) == ["#arrow"] * len(realistic_report.edges)
    assert all("src" not in attrs for _, attrs in page.tags)


def test_user_content_is_escaped() -> None:
    """Names, errors and results from user agents cannot inject markup."""
    evil = '<script>alert("x")</script>'
    report = RunReport(
        pipeline=evil,
        run_id="r&d",
        status="failed",
        tasks=[
            TaskRecord(
                name=evil, agent="a<b>", status="failed", error=evil, started_at=0, finished_at=1
            )
        ],
        results={evil: {"columns": [evil], "rows": [[evil]]}, "other": {"k": evil}},
        edges=[(evil, evil)],
    )
    text = render_html(report)
    parse(text)
    assert "<script" not in text
    assert "&lt;script&gt;" in text


def test_degenerate_reports_render() -> None:
    """An empty report, and one too large to draw task by task (drawn collapsed), still
    render cleanly."""
    empty = render_html(RunReport(pipeline="p", run_id="r"))
    page = parse(empty)
    assert page.count("svg") == 0
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    tasks = [
        TaskRecord(
            name=f"t{i}",
            agent=f"a{i % 3}",
            replica=i % 2,
            status="completed",
            attempts=1,
            started_at=start + dt.timedelta(seconds=i),
            finished_at=start + dt.timedelta(seconds=i + 1),
        )
        for i in range(500)
    ]
    big = RunReport(pipeline="big", run_id="r", status="completed", tasks=tasks)
    text = render_html(big)
    page = parse(text)
    assert "500 tasks: too many to draw one by one" in text
    assert page.count("svg", "gantt") == 1  # one load curve per replica
    assert page.count("svg", "collapsed") == 1


def test_unusual_results_fall_back_to_json() -> None:
    """Results that are not tables or analyses are shown as pretty, truncated JSON."""
    report = RunReport(
        pipeline="p",
        run_id="r",
        results={"blob": {"values": list(range(5000))}, "n": 3, "text": "hello"},
    )
    text = render_html(report)
    parse(text)
    assert text.count('<pre class="json">') == 3
    assert "more characters)" in text


def test_gantt_labels_never_overlap_the_next_bar() -> None:
    """A short bar's name goes beside it only when its lane is free there."""
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def record(name: str, begin: float, end: float) -> TaskRecord:
        return TaskRecord(
            name=name,
            agent="w",
            replica=0,
            status="completed",
            started_at=start + dt.timedelta(seconds=begin),
            finished_at=start + dt.timedelta(seconds=end),
        )

    def bar_labels(tasks: list[TaskRecord]) -> list[str]:
        text = render_html(RunReport(pipeline="p", run_id="r", tasks=tasks))
        return re.findall(r'<text class="bar-label"[^>]*>([^<]*)</text>', text)

    crowded = [record("first_short_task", 0, 0.1), record("b", 0.11, 10)]
    assert bar_labels(crowded) == ["b"]
    roomy = [record("first_short_task", 0, 0.1), record("b", 5, 10)]
    assert bar_labels(roomy) == ["first_short_task", "b"]
