"""The table built-ins (filter, select, rename, derive, group_by, join, sort, sql, parquet):
good configs agree with pandas, bad configs name the field and the allowed values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.errors import DataError, PipelineConfigError
from swarm_runtime.pipeline import parse_pipeline

ORDERS = {
    "columns": ["id", "region", "units", "price"],
    "rows": [
        [1, "North", 3, 2.5],
        [2, "South", None, 4.0],
        [3, "North", 7, 1.0],
        [4, "East", 1, None],
        [5, "South", 2, 3.0],
    ],
}
REGIONS = {"columns": ["region", "manager"], "rows": [["North", "Ann"], ["South", "Bo"]]}


def run(name: str, params: dict[str, Any], inputs: dict[str, Any] | None = None) -> Any:
    """Run built-in ``name`` with the orders table as its only input (unless given)."""
    return BUILTINS[f"builtin.{name}"].run(params, inputs or {"orders": ORDERS})


def frame() -> pd.DataFrame:
    return pd.DataFrame(ORDERS["rows"], columns=ORDERS["columns"])


def test_filter_matches_pandas_query() -> None:
    """A SQL condition keeps the rows pandas' query keeps (nulls never match)."""
    out = run("filter", {"where": "units > 2 AND region = 'North'"})
    assert [r[0] for r in out["rows"]] == frame().query("units > 2 and region == 'North'")[
        "id"
    ].tolist()
    assert run("filter", {"where": "price IS NULL"})["rows"] == [[4, "East", 1, None]]


def test_select_rename_derive() -> None:
    """select keeps and orders columns; rename renames; derive adds computed columns in order."""
    assert run("select", {"columns": ["units", "id"]})["columns"] == ["units", "id"]
    assert run("rename", {"columns": {"units": "qty"}})["columns"] == [
        "id",
        "region",
        "qty",
        "price",
    ]
    out = run("derive", {"columns": {"revenue": "units * price", "big": "revenue > 5"}})
    expected = (frame()["units"] * frame()["price"]).tolist()
    got = [r[4] for r in out["rows"]]
    assert [g if g is not None else float("nan") for g in got] == pytest.approx(
        expected, nan_ok=True
    )
    assert [r[5] for r in out["rows"]] == [True, None, True, None, True]


def test_group_by_matches_pandas() -> None:
    """Aggregations per group equal pandas' groupby, groups sorted by key."""
    out = run(
        "group_by",
        {
            "by": ["region"],
            "aggs": [
                {"column": "units", "fn": "sum"},
                {"column": "price", "fn": "mean", "name": "avg_price"},
                {"fn": "count"},
            ],
        },
    )
    assert out["columns"] == ["region", "units_sum", "avg_price", "count"]
    grouped = frame().groupby("region")
    assert [r[0] for r in out["rows"]] == sorted(grouped.groups)
    assert [r[1] for r in out["rows"]] == grouped["units"].sum().tolist()
    means = [float("nan") if r[2] is None else r[2] for r in out["rows"]]
    assert means == pytest.approx(grouped["price"].mean().tolist(), nan_ok=True)
    assert [r[3] for r in out["rows"]] == grouped.size().tolist()


def test_join_kinds() -> None:
    """Joins of two upstream tables agree with pandas.merge (inner, left, anti)."""
    inputs = {"orders": ORDERS, "regions": REGIONS}
    inner = run("join", {"left": "orders", "right": "regions", "on": ["region"]}, inputs)
    merged = frame().merge(pd.DataFrame(REGIONS["rows"], columns=REGIONS["columns"]), on="region")
    assert sorted(r[0] for r in inner["rows"]) == sorted(merged["id"].tolist())
    assert inner["columns"] == ["id", "region", "units", "price", "manager"]
    left = run(
        "join", {"left": "orders", "right": "regions", "on": ["region"], "how": "left"}, inputs
    )
    assert [r[0] for r in left["rows"]] == [1, 2, 3, 4, 5]
    anti = run(
        "join", {"left": "orders", "right": "regions", "on": ["region"], "how": "anti"}, inputs
    )
    assert anti["rows"] == [[4, "East", 1, None]]


def test_sort_and_sql() -> None:
    """sort is stable with nulls last; sql reads the upstream tables by task name."""
    out = run("sort", {"by": ["units"], "descending": True})
    assert [r[0] for r in out["rows"]] == [3, 1, 5, 4, 2]
    inputs = {"orders": ORDERS, "regions": REGIONS}
    sql = run(
        "sql",
        {
            "query": "SELECT r.manager, SUM(o.units) AS units FROM orders o "
            "JOIN regions r ON o.region = r.region GROUP BY r.manager ORDER BY r.manager"
        },
        inputs,
    )
    assert sql == {"columns": ["manager", "units"], "rows": [["Ann", 10], ["Bo", 2]]}


def test_parquet_round_trip(tmp_path: Path) -> None:
    """parquet_sink writes a file pandas reads; parquet_source reads it back (columns, limit)."""
    path = tmp_path / "o.parquet"
    summary = run("parquet_sink", {"path": str(path), "compression": "snappy"})
    assert summary["rows"] == 5
    assert pd.read_parquet(path)["id"].tolist() == [1, 2, 3, 4, 5]
    back = BUILTINS["builtin.parquet_source"].run(
        {"path": str(path), "columns": ["id"], "limit": 2}, {}
    )
    assert back == {"columns": ["id"], "rows": [[1], [2]]}


@pytest.mark.parametrize(
    ("name", "params", "error"),
    [
        ("filter", {"where": "units >"}, r"params.where: .*not a valid expression 'units >'"),
        ("filter", {}, r"params.where: .*required"),
        ("select", {"columns": []}, r"params.columns: .*at least 1"),
        ("derive", {"columns": {"x": "1 +"}}, r"params.columns.*not a valid expression"),
        (
            "group_by",
            {"by": ["region"], "aggs": [{"column": "units", "fn": "total"}]},
            r"params.aggs\[0\].fn: .*'sum', 'mean'",
        ),
        ("group_by", {"by": ["region"], "aggs": [{"fn": "sum"}]}, r"sum needs a column"),
        ("join", {"left": "a", "right": "b"}, r"give on \(columns in both tables\)"),
        (
            "join",
            {"left": "a", "right": "b", "on": ["k"], "how": "outer"},
            r"params.how: .*'inner', 'left'",
        ),
        ("sort", {"by": ["a", "b"], "descending": [True]}, r"descending has 1 flags for 2"),
        (
            "parquet_sink",
            {"path": "x.parquet", "compression": "brotli"},
            r"params.compression: .*'zstd', 'snappy'",
        ),
    ],
)
def test_bad_configs_name_field_and_allowed_values(
    name: str, params: dict[str, Any], error: str
) -> None:
    """Invalid params are PipelineConfigErrors naming the field (and the allowed values)."""
    with pytest.raises(PipelineConfigError, match=error):
        BUILTINS[f"builtin.{name}"].validate(params)


@pytest.mark.parametrize(
    ("name", "params", "error"),
    [
        ("filter", {"where": "nope > 1"}, r"builtin.filter: .*nope"),
        ("select", {"columns": ["nope"]}, r"unknown column 'nope'; the table has: id, region"),
        ("rename", {"columns": {"units": "id"}}, r"two columns named 'id'"),
        ("group_by", {"by": ["nope"], "aggs": [{"fn": "count"}]}, r"unknown column 'nope'"),
        ("sort", {"by": ["nope"]}, r"unknown column 'nope'"),
        ("sql", {"query": "SELECT * FROM nope"}, r"builtin.sql: query failed \(tables: orders\)"),
    ],
)
def test_bad_data_is_a_data_error(name: str, params: dict[str, Any], error: str) -> None:
    """A column that does not exist (or a query over an unknown table) is a clear DataError."""
    with pytest.raises(DataError, match=error):
        run(name, params)


def test_join_needs_its_tables_upstream() -> None:
    """join names a left/right that is not upstream."""
    with pytest.raises(DataError, match=r"params.input is 'regions', which is not an upstream"):
        run("join", {"left": "orders", "right": "regions", "on": ["region"]})


def test_pipeline_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """In a pipeline, a bad built-in param is reported with the task's field path."""
    config = {
        "name": "p",
        "agents": [
            {"name": "src", "uses": "builtin.csv_source"},
            {"name": "f", "uses": "builtin.filter"},
        ],
        "tasks": [
            {"name": "load", "agent": "src", "params": {"path": "x.csv"}},
            {"name": "keep", "agent": "f", "depends_on": ["load"], "params": {"where": "a >"}},
        ],
    }
    with pytest.raises(
        PipelineConfigError, match=r"tasks\[1\].params.where: .*not a valid expression"
    ):
        parse_pipeline(config, source="p.yaml")
    config["agents"].append({"name": "j", "uses": "builtin.join"})
    config["tasks"][1]["params"] = {"where": "a > 1"}
    config["tasks"].append(
        {
            "name": "both",
            "agent": "j",
            "depends_on": ["load", "keep"],
            "params": {"left": "load", "right": "keep", "on": ["a"]},
        }
    )
    parse_pipeline(config, source="p.yaml")  # join takes several upstream tables


values = st.lists(
    st.tuples(st.sampled_from(["a", "b", "ü", ""]), st.one_of(st.none(), st.integers(-5, 5))),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(values, st.integers(-5, 5))
def test_filter_and_group_by_agree_with_pandas(
    rows: list[tuple[str, int | None]], bound: int
) -> None:
    """On generated tables (nulls, duplicates, unicode, empty), filter and group_by sums
    agree with pandas."""
    table = {"columns": ["k", "v"], "rows": [list(r) for r in rows]}
    df = pd.DataFrame(rows, columns=["k", "v"])
    kept = BUILTINS["builtin.filter"].run({"where": f"v > {bound}"}, {"t": table})
    assert len(kept["rows"]) == int((df["v"] > bound).sum())
    grouped = BUILTINS["builtin.group_by"].run(
        {"by": ["k"], "aggs": [{"column": "v", "fn": "sum"}]}, {"t": table}
    )
    expected = df.groupby("k")["v"].sum(min_count=0)
    assert [r[0] for r in grouped["rows"]] == sorted(expected.index.tolist())
    assert [r[1] or 0 for r in grouped["rows"]] == [
        int(expected[k]) for k in sorted(expected.index)
    ]
