"""Hostile files: sinks never replace a read-only file and keep the mode of one they
replace; a CSV without an early line break is refused without being read whole."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.errors import DataError

JSON_SINK = BUILTINS["builtin.json_sink"]
CSV_SINK = BUILTINS["builtin.csv_sink"]
TABLE = {"columns": ["id", "name"], "rows": [[1, "a"], [2, "b"]]}


@pytest.mark.parametrize("sink", [JSON_SINK, CSV_SINK], ids=["json", "csv"])
def test_a_read_only_file_is_not_replaced(tmp_path: Path, sink: object) -> None:
    """A file without write permission is refused with a DataError and left as it was
    (a rename would get around the permission, even as root)."""
    target = tmp_path / "keep.out"
    target.write_text("precious\n")
    target.chmod(0o444)
    with pytest.raises(DataError, match=r"read-only \(mode 0o444\)"):
        sink.run({"path": str(target)}, {"t": TABLE})  # type: ignore[attr-defined]
    assert target.read_text() == "precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["keep.out"]  # no temp file left


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    """Replacing a 0640 file writes the new content with mode 0640 (not the umask's)."""
    target = tmp_path / "out.json"
    target.write_text("old")
    target.chmod(0o640)
    JSON_SINK.run({"path": str(target)}, {"t": {"x": 1}})
    assert target.read_text().startswith("{")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    """A directory where the file should go is named, not replaced."""
    (tmp_path / "out.json").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        JSON_SINK.run({"path": str(tmp_path / "out.json")}, {"t": 1})


def test_a_csv_without_a_line_break_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """A 'header' of many megabytes (a binary or one-line file) is a clear error, read only
    up to the header limit."""
    from swarm_runtime.agents.builtin.sources import MAX_HEADER_CHARS

    big = tmp_path / "one-line.csv"
    big.write_text("a," * (3 * MAX_HEADER_CHARS))
    with pytest.raises(DataError, match="header line is longer than"):
        BUILTINS["builtin.csv_source"].run({"path": str(big)}, {})
    fine = tmp_path / "ok.csv"
    fine.write_text("x,y\n1,2\n")
    table = BUILTINS["builtin.csv_source"].run({"path": str(fine)}, {})
    assert table["columns"] == ["x", "y"]
