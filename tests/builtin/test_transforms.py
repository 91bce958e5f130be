"""builtin.transform ops, checked against pandas / numpy on real and generated data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.errors import DataError

TRANSFORM = BUILTINS["builtin.transform"]
NUMERIC = ["units", "unit_price", "discount", "revenue", "customer_age", "satisfaction"]


@pytest.fixture(scope="module")
def sales() -> dict[str, Any]:
    """The shipped sample as a table."""
    return BUILTINS["builtin.csv_source"].run({"path": "examples/data/sales.csv"}, {})


def frame(table: dict[str, Any]) -> pd.DataFrame:
    """A table as a DataFrame (null → NaN in numeric columns)."""
    return pd.DataFrame(table["rows"], columns=table["columns"])


def run(table: dict[str, Any], *ops: Any) -> dict[str, Any]:
    """Apply ``ops`` to ``table`` through the built-in."""
    return TRANSFORM.run({"ops": list(ops)}, {"up": table})


def column(table: dict[str, Any], name: str) -> list[Any]:
    """One column of a table."""
    i = table["columns"].index(name)
    return [row[i] for row in table["rows"]]


def test_clean_matches_pandas(sales: dict[str, Any]) -> None:
    """clean == dropna().drop_duplicates(), keeping the first of each duplicate."""
    ours = run(sales, "clean")
    expected = frame(sales).dropna().drop_duplicates()
    assert len(ours["rows"]) == len(expected)
    assert column(ours, "order_id") == expected["order_id"].tolist()


def test_clean_on_a_column_subset() -> None:
    """With columns, only those are checked for nulls and duplicates."""
    table = {"columns": ["k", "v"], "rows": [["a", 1], ["a", 2], [None, 3], ["b", None]]}
    assert run(table, {"op": "clean", "columns": ["k"]})["rows"] == [["a", 1], ["b", None]]


def test_normalize_matches_pandas_and_handles_constants(sales: dict[str, Any]) -> None:
    """Min-max per numeric column equals pandas; a constant column becomes 0.0, nulls stay."""
    ours = run(sales, {"op": "normalize", "columns": NUMERIC})
    df = frame(sales)[NUMERIC].astype(float)
    expected = (df - df.min()) / (df.max() - df.min())
    for name in NUMERIC:
        got = column(ours, name)
        for value, want in zip(got, expected[name].tolist(), strict=True):
            if math.isnan(want):
                assert value is None
            else:
                assert value == pytest.approx(want, rel=1e-12, abs=1e-15)
    constant = {"columns": ["c", "s"], "rows": [[5, "x"], [5, "y"], [None, "z"]]}
    assert run(constant, "normalize") == {
        "columns": ["c", "s"],
        "rows": [[0.0, "x"], [0.0, "y"], [None, "z"]],
    }


def test_scaling_matches_numpy_and_pandas(sales: dict[str, Any]) -> None:
    """z-scores equal numpy's (ddof 0, default) and pandas' (ddof 1) on the sample."""
    cleaned = run(sales, "clean")
    population = run(cleaned, {"op": "scaling", "columns": NUMERIC})
    sample = run(cleaned, {"op": "scaling", "columns": NUMERIC, "ddof": 1})
    for name in NUMERIC:
        values = np.array(column(cleaned, name), dtype=float)
        expected0 = (values - values.mean()) / values.std()
        series = pd.Series(values)
        expected1 = (series - series.mean()) / series.std()
        assert column(population, name) == pytest.approx(expected0.tolist(), rel=1e-9, abs=1e-12)
        assert column(sample, name) == pytest.approx(expected1.tolist(), rel=1e-9, abs=1e-12)


def test_scaling_constant_column_is_zero() -> None:
    """A constant column scales to 0.0 rather than dividing by a (near-)zero std."""
    table = {"columns": ["c"], "rows": [[0.1], [0.1], [0.1]]}
    assert run(table, "scaling")["rows"] == [[0.0], [0.0], [0.0]]


def test_encoding_matches_get_dummies(sales: dict[str, Any]) -> None:
    """One-hot columns equal pd.get_dummies; high-cardinality text columns are left alone."""
    cleaned = run(sales, "clean")
    ours = run(cleaned, "encoding")
    df = frame(cleaned)
    expected = pd.get_dummies(df[["region", "channel", "product"]], dtype=int)
    assert "order_date" in ours["columns"]
    for name in expected.columns:
        assert column(ours, name) == expected[name].tolist()
    assert not {"region", "channel", "product"} & set(ours["columns"])
    position = ours["columns"].index
    assert position("region_East") < position("channel_Online") < position("product_Doohickey")


def test_encoding_options_and_errors() -> None:
    """Listed columns are encoded even if numeric; too many values or clashes are errors."""
    table = {"columns": ["n", "s", "s_x"], "rows": [[1, "x", 0], [2, None, 1], [1, "y", 0]]}
    encoded = run(table, {"op": "encoding", "columns": ["n"]})
    assert encoded["columns"] == ["n_1", "n_2", "s", "s_x"]
    assert encoded["rows"][1] == [0, 1, None, 1]
    with pytest.raises(
        DataError, match=r"column 'n' has 2 distinct values, more than max_categories \(1\)"
    ):
        run(table, {"op": "encoding", "columns": ["n"], "max_categories": 1})
    with pytest.raises(DataError, match="one-hot column name 's_x' clashes"):
        run(table, "encoding")
    nulls = run({"columns": ["s"], "rows": [["a"], [None]]}, "encoding")
    assert nulls == {"columns": ["s_a"], "rows": [[1], [0]]}


def test_ops_apply_in_order_and_check_columns() -> None:
    """Ops run in the order given; unknown or non-numeric columns are named in the error."""
    table = {"columns": ["a", "b"], "rows": [[1, "x"], [None, "y"], [3, "x"], [3, "x"]]}
    assert run(table, "clean", "normalize")["rows"] == [[0.0, "x"], [1.0, "x"]]
    with pytest.raises(DataError, match=r"normalize: unknown column 'zz'; the table has: a, b"):
        run(table, {"op": "normalize", "columns": ["zz"]})
    with pytest.raises(DataError, match=r"scaling: column 'b' is not numeric"):
        run(table, {"op": "scaling", "columns": ["b"]})


def test_empty_table_passes_through() -> None:
    """Every op accepts a table without rows."""
    empty = {"columns": ["a"], "rows": []}
    assert run(empty, "clean", "normalize", "scaling", "encoding") == empty


numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
columns = st.lists(st.one_of(st.none(), numbers), min_size=1, max_size=40).filter(
    lambda values: any(v is not None for v in values)
)


@settings(max_examples=80, deadline=None)
@given(columns)
@example([0, 2.225073858507203e-309, None])  # a subnormal spread: 1/spread overflows
@example([0.0, 5e-324, -5e-324])
def test_generated_columns_match_numpy(values: list[Any]) -> None:
    """On generated columns, normalize and scaling agree with numpy and never emit NaN."""
    table = {"columns": ["x"], "rows": [[v] for v in values]}
    present = np.array([v for v in values if v is not None], dtype=float)
    normalized = column(run(table, "normalize"), "x")
    scaled = column(run(table, "scaling"), "x")
    constant = present.min() == present.max()
    expected_n = np.zeros_like(present) if constant else (present - present.min()) / np.ptp(present)
    std = present.std()  # may underflow to 0 for tiny spreads: scaling then gives 0.0 too
    flat = constant or std == 0
    expected_s = np.zeros_like(present) if flat else (present - present.mean()) / std
    got_n = [v for v in normalized if v is not None]
    got_s = [v for v in scaled if v is not None]
    assert [v is None for v in normalized] == [v is None for v in values]
    assert got_n == pytest.approx(expected_n.tolist(), rel=1e-9, abs=1e-9)
    assert got_s == pytest.approx(expected_s.tolist(), rel=1e-6, abs=1e-6)
    assert all(math.isfinite(v) for v in got_n + got_s)
    assert all(0.0 <= v <= 1.0 for v in got_n)
