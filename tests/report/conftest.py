"""A realistic run report: the demo pipeline's built-ins really run, timings made up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.pipeline import Dag, load_pipeline
from swarm_runtime.report import AlertRecord, RunReport

T0 = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.UTC)
#: task → (replica, start, end, attempts) in seconds from T0
TIMINGS = {
    "load": (0, 0.00, 0.42, 1),
    "clean": (0, 0.45, 0.93, 1),
    "distribution": (0, 0.96, 1.71, 1),
    "normalize": (1, 0.96, 1.22, 1),
    "features": (1, 1.24, 2.05, 2),
    "correlation": (1, 2.07, 2.46, 1),
    "save_stats": (0, 2.49, 2.58, 1),
    "save_features": (0, 2.08, 2.20, 3),
}


def build_report(out: Path) -> RunReport:
    """Run examples/pipeline.yaml's built-ins in order (sinks into ``out``) and report it."""
    config = load_pipeline("examples/pipeline.yaml")
    report = RunReport.for_pipeline(config, "run-20240601-0930-7f3a", started_at=T0)
    results: dict[str, Any] = {}
    for name in Dag.from_config(config).topological_order():
        task = config.task(name)
        params = config.params_for(task)
        if "path" in params and config.agent_for(task).uses.endswith("_sink"):
            params["path"] = str(out / Path(params["path"]).name)
        replica, start, end, attempts = TIMINGS[name]
        record = report.task(name)
        record.replica, record.attempts = replica, attempts
        record.started_at = T0 + dt.timedelta(seconds=start)
        record.finished_at = T0 + dt.timedelta(seconds=end)
        record.duration = end - start
        if name == "save_features":
            record.status = "failed"
            record.error = (
                "DataError: builtin.csv_sink: cannot write '/data/out/sales_features.csv': "
                "No space left on device\n(after 3 attempts with backoff 0.5 s, 1.0 s)"
            )
            continue
        builtin = BUILTINS[config.agent_for(task).uses]
        inputs = {dep: results[dep] for dep in task.depends_on}
        results[name] = builtin.run(params, inputs)
        record.status = "completed"
    report.results = results
    report.status = "failed"
    report.finished_at = T0 + dt.timedelta(seconds=2.61)
    report.alerts = [
        AlertRecord(
            severity="warning",
            metric="response_time",
            value=1.42,
            threshold=1.0,
            raised_at=T0 + dt.timedelta(seconds=1.8),
            resolved_at=T0 + dt.timedelta(seconds=2.3),
            agent="transform",
            message="p95 handling time above threshold",
        ),
        AlertRecord(
            severity="critical",
            metric="error_rate",
            value=0.125,
            threshold=0.05,
            raised_at=T0 + dt.timedelta(seconds=2.2),
        ),
    ]
    return report


@pytest.fixture
def realistic_report(tmp_path: Path) -> RunReport:
    """The demo pipeline's run report with real analysis results and one failed sink."""
    return build_report(tmp_path)
