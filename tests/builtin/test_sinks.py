"""Sinks write JSON and CSV atomically; what they write reads back the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from swarm_runtime.agents.builtin import BUILTINS, atomic_write
from swarm_runtime.errors import DataError

JSON_SINK = BUILTINS["builtin.json_sink"]
CSV_SINK = BUILTINS["builtin.csv_sink"]
TABLE = {
    "columns": ["id", "name", "score", "ok", "tags"],
    "rows": [[1, "a,b", 0.5, True, [1]], [2, None, 1e-7, False, None]],
}


def test_json_sink_writes_the_result(tmp_path: Path) -> None:
    """A single upstream result is written as JSON; parent directories are created."""
    target = tmp_path / "deep" / "out.json"
    summary = JSON_SINK.run({"path": str(target)}, {"analysis": {"rows": 3, "x": [1.5, None]}})
    assert json.loads(target.read_text()) == {"rows": 3, "x": [1.5, None]}
    assert summary == {"path": str(target), "rows": None, "bytes": target.stat().st_size}
    assert target.read_text().startswith("{\n  ")


def test_json_sink_several_inputs_and_records(tmp_path: Path) -> None:
    """Several upstream results are written keyed by task; records turns a table into objects."""
    out = tmp_path / "all.json"
    JSON_SINK.run({"path": str(out), "indent": 0}, {"a": 1, "b": TABLE})
    assert json.loads(out.read_text()) == {"a": 1, "b": TABLE}
    assert "\n  " not in out.read_text()
    records = tmp_path / "records.json"
    summary = JSON_SINK.run(
        {"path": str(records), "records": True, "input": "b"}, {"a": 1, "b": TABLE}
    )
    assert json.loads(records.read_text())[0] == {
        "id": 1,
        "name": "a,b",
        "score": 0.5,
        "ok": True,
        "tags": [1],
    }
    assert summary["rows"] == 2
    with pytest.raises(DataError, match="records: true needs a table"):
        JSON_SINK.run({"path": str(records), "records": True}, {"a": 1})


def test_csv_sink_round_trips_through_csv_source(tmp_path: Path) -> None:
    """A table written by csv_sink reads back equal (null ↔ empty cell, quoting kept)."""
    table = {
        "columns": ["id", "name", "score"],
        "rows": [[1, "a,b", 0.5], [2, None, 1e-7], [3, 'say "hi"', -2.0]],
    }
    out = tmp_path / "t.csv"
    summary = CSV_SINK.run({"path": str(out)}, {"t": table})
    assert summary["rows"] == 3
    assert BUILTINS["builtin.csv_source"].run({"path": str(out)}, {}) == table


def test_csv_sink_cells_and_options(tmp_path: Path) -> None:
    """Booleans, nested values, custom delimiter and no header are written as documented."""
    out = tmp_path / "t.tsv"
    CSV_SINK.run({"path": str(out), "delimiter": "\t", "header": False}, {"t": TABLE})
    # floats in Polars' shortest form (1e-7, not Python's 1e-07)
    assert out.read_text().splitlines() == ["1\ta,b\t0.5\ttrue\t[1]", "2\t\t1e-7\tfalse\t"]


def test_atomic_write_replaces_whole_files_and_cleans_up(tmp_path: Path) -> None:
    """The target is replaced in one step and no temp file is left, even on failure."""
    target = tmp_path / "f.txt"
    target.write_text("old")
    assert atomic_write(target, b"new") == target
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["f.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match=r"cannot write .*file/out.json"):
        JSON_SINK.run({"path": str(blocker / "out.json")}, {"a": 1})
    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(DataError, match="cannot write"):
        atomic_write(directory, b"x")
    assert sorted(os.listdir(tmp_path)) == ["dir", "f.txt", "file"]
    assert os.listdir(directory) == []


def test_sink_refuses_non_json_results(tmp_path: Path) -> None:
    """A result JSON cannot carry is a DataError naming where the bad value is."""
    with pytest.raises(DataError, match=r"result.x is a non-finite float"):
        JSON_SINK.run({"path": str(tmp_path / "o.json")}, {"a": {"x": float("nan")}})
