"""Sources: CSV with type inference, JSON Lines and SQLite, with clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.errors import DataError

CSV = BUILTINS["builtin.csv_source"]
JSONL = BUILTINS["builtin.jsonl_source"]
SQLITE = BUILTINS["builtin.sqlite_source"]


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    """Write ``text`` and return the path as a string."""
    path.write_text(text, encoding=encoding)
    return str(path)


def test_csv_infers_ints_floats_nulls_and_strings(tmp_path: Path) -> None:
    """Integer and float columns become numbers, empty cells null, mixed columns stay text."""
    path = write(
        tmp_path / "a.csv",
        "id,price,name,code,mixed\n1,2.5,x,007,1\n2,,y,010,a\n3,1e3,,,2.0\n",
    )
    table = CSV.run({"path": path}, {})
    assert table == {
        "columns": ["id", "price", "name", "code", "mixed"],
        "rows": [[1, 2.5, "x", 7, "1"], [2, None, "y", 10, "a"], [3, 1000.0, None, None, "2.0"]],
    }


def test_csv_matches_pandas_on_the_sample() -> None:
    """On the shipped sales data, every cell equals pandas.read_csv's (NaN as null)."""
    path = "examples/data/sales.csv"
    table = CSV.run({"path": path}, {})
    frame = pd.read_csv(path)
    assert table["columns"] == list(frame.columns)
    assert len(table["rows"]) == len(frame)
    for i, name in enumerate(table["columns"]):
        ours = [row[i] for row in table["rows"]]
        theirs = [None if pd.isna(v) else v for v in frame[name].tolist()]
        assert ours == theirs, name


def test_csv_short_rows_and_blank_lines_like_pandas(tmp_path: Path) -> None:
    """A short row's missing fields are null and blank lines are skipped, as pandas reads them."""
    path = write(tmp_path / "a.csv", "a,b\n1,2\n\n3\n")
    assert CSV.run({"path": path}, {}) == {"columns": ["a", "b"], "rows": [[1, 2], [3, None]]}
    expected = pd.read_csv(path)
    assert expected["a"].tolist() == [1, 3]


def test_csv_options(tmp_path: Path) -> None:
    """delimiter, columns, limit, null_values and infer_types change what is read."""
    path = write(tmp_path / "b.csv", "\ufeffa;b;c\n1;-;x\n2;3;y\n4;5;z\n")
    table = CSV.run(
        {"path": path, "delimiter": ";", "columns": ["c", "a"], "limit": 2, "null_values": ["-"]},
        {},
    )
    assert table == {"columns": ["c", "a"], "rows": [["x", 1], ["y", 2]]}
    raw = CSV.run({"path": path, "delimiter": ";", "infer_types": False}, {})
    assert raw["rows"][0] == ["1", "-", "x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", r"is empty; expected a header line"),
        ("a,a\n1,2\n", r"header names 'a' more than once"),
        ('a,b\n"1,2\n', r"csv_source: .*(malformed CSV|not properly escaped)"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, expected: str) -> None:
    """Empty files, duplicate headers, ragged rows and bad quoting name file and line."""
    with pytest.raises(DataError, match=expected):
        CSV.run({"path": write(tmp_path / "a.csv", text)}, {})


def test_csv_missing_file_and_encoding(tmp_path: Path) -> None:
    """A missing file, a wrong encoding and an unknown column are DataErrors with a hint."""
    with pytest.raises(DataError, match=r"file not found: .*nope.csv"):
        CSV.run({"path": str(tmp_path / "nope.csv")}, {})
    latin = tmp_path / "l.csv"
    latin.write_bytes("name\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"is not utf-8 text .*set params.encoding"):
        CSV.run({"path": str(latin)}, {})
    assert CSV.run({"path": str(latin), "encoding": "latin-1"}, {})["rows"] == [["café"]]
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        CSV.run({"path": str(latin), "encoding": "klingon"}, {})
    with pytest.raises(DataError, match=r"unknown column 'zz'; the table has: name"):
        CSV.run({"path": str(latin), "encoding": "latin-1", "columns": ["zz"]}, {})


def test_jsonl_unions_keys_and_reports_bad_lines(tmp_path: Path) -> None:
    """Keys become columns in first-seen order, missing keys null; bad lines name the line."""
    path = write(tmp_path / "a.jsonl", '{"a": 1, "b": "x"}\n\n{"c": [1, 2], "a": 2.5}\n')
    assert JSONL.run({"path": path}, {}) == {
        "columns": ["a", "b", "c"],
        "rows": [[1, "x", None], [2.5, None, [1, 2]]],
    }
    assert JSONL.run({"path": path, "limit": 1, "columns": ["b"]}, {}) == {
        "columns": ["b"],
        "rows": [["x"]],
    }
    bad = write(tmp_path / "bad.jsonl", '{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        JSONL.run({"path": bad}, {})
    array = write(tmp_path / "arr.jsonl", "[1, 2]\n")
    with pytest.raises(DataError, match=r"arr.jsonl:1: expected a JSON object per line, got list"):
        JSONL.run({"path": array}, {})


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A SQLite file with an orders table."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER, region TEXT, amount REAL, blob BLOB)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [(1, "North", 10.5, None), (2, "South", None, None), (3, "North", 7.0, b"\x00")],
        )
    db.close()
    return str(path)


def test_sqlite_table_and_query(database: str) -> None:
    """A whole table, or a parameterised query, comes back as a table."""
    table = SQLITE.run({"path": database, "table": "orders", "limit": 2}, {})
    assert table == {
        "columns": ["id", "region", "amount", "blob"],
        "rows": [[1, "North", 10.5, None], [2, "South", None, None]],
    }
    query = SQLITE.run(
        {
            "path": database,
            "query": "SELECT region, SUM(amount) AS total FROM orders WHERE id >= ? "
            "GROUP BY region",
            "parameters": [1],
        },
        {},
    )
    assert query == {"columns": ["region", "total"], "rows": [["North", 17.5], ["South", None]]}


def test_sqlite_errors(database: str, tmp_path: Path) -> None:
    """Unknown tables, bad SQL, BLOBs, writes and non-databases are clear DataErrors."""
    with pytest.raises(DataError, match=r"has no table 'order'; tables: orders"):
        SQLITE.run({"path": database, "table": "order"}, {})
    with pytest.raises(DataError, match="syntax error"):
        SQLITE.run({"path": database, "query": "SELEC 1"}, {})
    with pytest.raises(DataError, match=r"column 'blob' holds binary \(BLOB\) values"):
        SQLITE.run({"path": database, "table": "orders"}, {})
    with pytest.raises(DataError, match="readonly"):
        SQLITE.run({"path": database, "query": "DELETE FROM orders"}, {})
    not_db = write(tmp_path / "x.db", "hello, I am text, not a database at all" * 10)
    with pytest.raises(DataError, match="not a database"):
        SQLITE.run({"path": not_db, "table": "t"}, {})


def test_csv_types_are_decided_over_the_whole_file(tmp_path: Path) -> None:
    """A text value, a float or the first number far past the sampled rows still decides
    the column's type, as if every row had been looked at (and as pandas reads it)."""
    rows = 12_000
    lines = ["id,late_text,late_float,late_number"]
    for i in range(rows):
        last = i == rows - 1
        lines.append(f"{i},{'x' if last else i},{'2.5' if last else i},{i if last else ''}")
    path = write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    table = CSV.run({"path": path}, {})
    first, last = table["rows"][0], table["rows"][-1]
    assert first == [0, "0", 0.0, None]
    assert last == [rows - 1, "x", 2.5, rows - 1]
    frame = pd.read_csv(path)
    assert frame["late_text"].iloc[-1] == "x"
    assert (frame["late_float"].dtype.kind, frame["late_number"].dtype.kind) == ("f", "f")
