"""The reports' critical path and per-agent estimated-against-actual durations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

import swarm_runtime as sr
from swarm_runtime.orchestrator import DataPipelineOrchestrator
from swarm_runtime.report import write_html_report, write_json_report


async def sleepy(msg: sr.Message, ctx: sr.Context) -> Any:
    """Sleeps ``params.seconds`` of real time."""
    await anyio.sleep(msg.payload["params"]["seconds"])


PIPELINE = {
    "name": "timing",
    "queue": "memory://",
    "agents": [
        {"name": "fast", "uses": "tests.report.test_timing:sleepy"},
        {"name": "slow", "uses": "tests.report.test_timing:sleepy"},
    ],
    "tasks": [
        {"name": "a", "agent": "fast", "params": {"seconds": 0.001}, "estimate": 0.001},
        {"name": "b", "agent": "slow", "depends_on": ["a"], "params": {"seconds": 0.06}},
        {"name": "c", "agent": "fast", "params": {"seconds": 0.001}, "estimate": 0.002},
    ],
}


async def test_reports_show_critical_path_and_estimates(tmp_path: Path) -> None:
    """The JSON names the chain a -> b (b sleeps 60 ms, far longer than c) with its
    measured length, each task's estimate and per agent the estimated and actual means;
    the HTML shows the same in its own panel."""
    orch = DataPipelineOrchestrator(services=False)
    result = await orch.execute_pipeline(orch.create_pipeline(PIPELINE))
    assert result.ok
    report = result.to_report()
    json_path = write_json_report(report, tmp_path / "r.json")
    data = json.loads(json_path.read_text())
    assert data["scheduling"] == "critical_path"
    path = data["critical_path"]
    assert path["tasks"] == ["a", "b"]
    assert path["seconds"] >= 0.06
    by_name = {t["name"]: t for t in data["tasks"]}
    assert by_name["a"]["estimate"] == 0.001
    assert by_name["c"]["estimate"] == 0.002
    durations = {d["agent"]: d for d in data["durations"]}
    assert durations["fast"]["tasks"] == 2
    assert durations["fast"]["estimated_mean"] == (0.001 + 0.002) / 2
    assert durations["slow"]["tasks"] == 1
    assert durations["slow"]["actual_mean"] >= 0.06
    html = write_html_report(report, tmp_path / "r.html").read_text()
    assert "Critical path and estimates" in html
    assert '<span class="mono">a</span> → <span class="mono">b</span>' in html
    assert "estimated / actual" in html
