"""The RunReport data model and its JSON form."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from swarm_runtime.errors import ConfigError
from swarm_runtime.pipeline import load_pipeline
from swarm_runtime.report import (
    RunReport,
    TaskRecord,
    load_json_report,
    report_json,
    write_json_report,
)


def test_for_pipeline_lists_every_task_pending_with_edges() -> None:
    """A report made from a config has each task pending and the DAG's edges."""
    config = load_pipeline("examples/pipeline.yaml")
    report = RunReport.for_pipeline(config, "r1")
    assert [t.name for t in report.tasks] == [t.name for t in config.tasks]
    assert {t.status for t in report.tasks} == {"pending"}
    assert report.edges == config.edges()
    assert report.status == "pending"
    assert report.queue == config.queue
    assert report.task("load").agent == "extract"
    with pytest.raises(KeyError):
        report.task("nope")


def test_times_durations_and_counts() -> None:
    """Naive times count as UTC, epoch seconds are accepted, durations fill themselves in."""
    naive = dt.datetime(2024, 1, 1, 12, 0, 0)
    record = TaskRecord(
        name="a",
        agent="w",
        replica=1,
        started_at=naive,
        finished_at=naive + dt.timedelta(seconds=3),
    )
    assert record.started_at is not None
    assert record.started_at.tzinfo is dt.UTC
    assert record.duration == 3.0
    assert record.lane == "w#1"
    assert TaskRecord(name="b", agent="w").lane == "w"
    epoch = TaskRecord(name="c", agent="w", started_at=0, finished_at=1.5)
    assert epoch.duration == 1.5
    report = RunReport(
        pipeline="p", run_id="r", tasks=[record, TaskRecord(name="d", agent="w", status="failed")]
    )
    assert report.counts() == {
        "pending": 1,
        "running": 0,
        "completed": 0,
        "failed": 1,
        "cancelled": 0,
        "skipped": 0,
    }
    assert report.duration is None


def test_json_report_round_trips(realistic_report: RunReport, tmp_path: Path) -> None:
    """write_json_report writes ISO times and all results; load_json_report reads it back."""
    path = write_json_report(realistic_report, tmp_path / "r" / "report.json")
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["tasks"][0]["started_at"] == "2024-06-01T09:30:00Z"
    assert set(data["results"]) == {t.name for t in realistic_report.tasks} - {"save_features"}
    assert load_json_report(path) == realistic_report
    assert report_json(realistic_report).endswith(b"\n")


def test_load_json_report_errors(tmp_path: Path) -> None:
    """A missing file or something that is not a report is a ConfigError saying so."""
    with pytest.raises(ConfigError, match="cannot read report"):
        load_json_report(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"pipeline": "p"}')
    with pytest.raises(ConfigError, match=r"not a run report \(run_id: Field required\)"):
        load_json_report(bad)


def test_bad_records_are_refused() -> None:
    """Unknown statuses and negative attempts are validation errors, not silent garbage."""
    with pytest.raises(ValueError, match="status"):
        TaskRecord(name="a", agent="w", status="exploded")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attempts"):
        TaskRecord(name="a", agent="w", attempts=-1)
