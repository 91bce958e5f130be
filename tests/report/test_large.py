"""Reports of big runs: a collapsed DAG with the critical path, load per replica, and a
paged task table drawn by an inline script from embedded data; small and quick to open."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

from swarm_runtime.report import render_html, write_html_report
from swarm_runtime.report._large import LARGE_RUN, critical_path

from .large import EVIL_ERROR, large_report
from .test_chromium import chromium, console_problems, png_pixels, screenshot
from .test_html import parse


def task_data(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="task-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_small_runs_keep_the_static_page() -> None:
    """Up to LARGE_RUN tasks: a node per task, a row per task, no script."""
    page = render_html(large_report(LARGE_RUN))
    assert "<script" not in page
    assert page.count('<g class="node completed">') > LARGE_RUN - 5


def test_big_run_draws_the_dag_collapsed() -> None:
    """Past LARGE_RUN tasks the DAG is boxes of agent x dependency levels with counts,
    and the critical path is highlighted and named."""
    report = large_report(5000)
    page = render_html(report)
    structure = parse(page)
    assert structure.count("svg", "collapsed") == 1
    boxes = structure.count("g", "node")
    assert 5 <= boxes <= 12 * 5  # at most 12 bands of levels per agent row
    assert "too many to draw one by one" in page
    assert "5,000 tasks" in page
    chain, total = critical_path(report)
    assert chain[0] == "t0"
    edges = set(report.edges)
    assert all((a, b) in edges for a, b in itertools.pairwise(chain))
    assert total > 0
    assert f"<b>Critical path</b> ({len(chain):,} tasks" in page
    assert 'stroke="#7c3aed"' in page  # the boxes on the path


def test_big_run_table_is_data_plus_a_script() -> None:
    """The task table is every task's data as JSON (hostile text kept inert) and a script
    that pages it; the timeline has a lane per replica, not a bar per task."""
    report = large_report(5000)
    page = render_html(report)
    data = task_data(page)
    assert len(data["n"]) == 5000  # type: ignore[arg-type]
    assert data["agents"] == [f"agent{i}" for i in range(5)]
    errors = data["errors"]
    assert isinstance(errors, dict)
    assert set(errors.values()) == {EVIL_ERROR}
    assert len(errors) == 5000 // 997
    assert "</script><script>alert" not in page
    assert 'id="task-q"' in page
    assert 'id="task-s"' in page
    assert page.count("<tr>") < 50  # rows are drawn by the script, a page at a time
    assert page.count("lane-bg") <= 20  # 20 lanes (5 agents x 4 replicas), half shaded
    assert "<title>t123 on" not in page  # no bar per task


def test_50000_task_report_stays_small(tmp_path: Path) -> None:
    """A 50,000-task report is a couple of MB (the goal is <= 5 MB)."""
    path = write_html_report(large_report(50_000), tmp_path / "big.html")
    assert path.stat().st_size < 4_000_000


def test_big_report_renders_in_chromium(tmp_path: Path) -> None:
    """The 5,000-task report screenshots without console errors, and its script really
    draws the first page of the table (seen in the DOM after it ran)."""
    page = write_html_report(large_report(5000), tmp_path / "report.html")
    png = tmp_path / "report.png"
    log = screenshot(page, png, tmp_path / "profile")
    assert console_problems(log) == []
    _, _, pixels = png_pixels(png)
    assert len(set(pixels[:: max(1, len(pixels) // 200_000)])) > 64
    dom = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    body = dom[dom.index('id="task-b"') :]
    body = body[: body.index("</tbody>")]
    assert body.count("<tr>") == 100
    assert "5,000 of 5,000 tasks; page 1 of 50" in dom
    assert ">failed (5)<" in dom  # the status filter, with counts
