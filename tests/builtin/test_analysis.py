"""builtin.analyze: correlation and distribution, number for number against pandas / numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime._json import check_json
from swarm_runtime.agents.builtin import BUILTINS
from swarm_runtime.agents.builtin._stats import histogram, linspace, median, quantile
from swarm_runtime.errors import DataError

ANALYZE = BUILTINS["builtin.analyze"]
NUMERIC = ["units", "unit_price", "discount", "revenue", "customer_age", "satisfaction"]


@pytest.fixture(scope="module")
def sales() -> dict[str, Any]:
    """The shipped sample (with its nulls and duplicates) as a table."""
    return BUILTINS["builtin.csv_source"].run({"path": "examples/data/sales.csv"}, {})


def analyze(table: dict[str, Any], *metrics: Any) -> dict[str, Any]:
    """Run the built-in on ``table``."""
    return ANALYZE.run({"metrics": list(metrics)}, {"up": table})


def test_correlation_matches_pandas_pairwise(sales: dict[str, Any]) -> None:
    """The Pearson matrix equals DataFrame.corr(), nulls handled pairwise like pandas."""
    result = analyze(sales, {"metric": "correlation", "columns": NUMERIC})["correlation"]
    expected = pd.DataFrame(sales["rows"], columns=sales["columns"])[NUMERIC].astype(float).corr()
    assert result["method"] == "pearson"
    assert result["columns"] == NUMERIC
    for i, a in enumerate(NUMERIC):
        for j, b in enumerate(NUMERIC):
            assert result["matrix"][i][j] == pytest.approx(expected.loc[a, b], rel=1e-9, abs=1e-12)


def test_correlation_defaults_to_numeric_columns_and_nulls_undefined() -> None:
    """Without columns every numeric column is used; a constant column gives null, not NaN."""
    table = {
        "columns": ["a", "b", "c", "s"],
        "rows": [[1, 2.0, 7, "x"], [2, 4.0, 7, "y"], [3, 5.0, 7, "z"], [4, None, 7, "w"]],
    }
    result = analyze(table, "correlation")
    check_json(result)
    corr = result["correlation"]
    assert corr["columns"] == ["a", "b", "c"]
    assert corr["matrix"][0][0] == 1.0
    assert corr["matrix"][0][1] == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 5])[0, 1])
    assert corr["matrix"][2] == [None, None, None]
    assert result["rows"] == 4


def test_distribution_matches_pandas_and_numpy(sales: dict[str, Any]) -> None:
    """count, mean, std, min, max, median, quantiles and histogram equal pandas / numpy."""
    result = analyze(sales, {"metric": "distribution", "columns": NUMERIC, "bins": 12})
    check_json(result)
    df = pd.DataFrame(sales["rows"], columns=sales["columns"])
    for name in NUMERIC:
        stats = result["distribution"][name]
        series = df[name].astype(float).dropna()
        assert stats["count"] == series.count()
        assert stats["nulls"] == df[name].isna().sum()
        assert stats["mean"] == pytest.approx(series.mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(series.std(), rel=1e-9)
        assert stats["min"] == series.min()
        assert stats["max"] == series.max()
        assert stats["median"] == series.median()
        assert stats["quantiles"] == {
            "p25": series.quantile(0.25),
            "p50": series.quantile(0.5),
            "p75": series.quantile(0.75),
            "p95": series.quantile(0.95),
        }
        counts, edges = np.histogram(series.to_numpy(), bins=12)
        assert stats["histogram"]["counts"] == counts.tolist()
        assert stats["histogram"]["edges"] == edges.tolist()


def test_distribution_options_and_edge_cases() -> None:
    """Custom quantiles and ddof work; constant and single-value columns stay finite."""
    table = {"columns": ["c", "one"], "rows": [[0.1, 5], [0.1, None], [0.1, None]]}
    result = analyze(
        table, {"metric": "distribution", "quantiles": [0.999, 0.1], "ddof": 0, "bins": 3}
    )
    check_json(result)
    c = result["distribution"]["c"]
    assert c["std"] == 0.0
    assert c["quantiles"] == {"p99.9": 0.1, "p10": 0.1}
    counts, edges = np.histogram([0.1, 0.1, 0.1], bins=3)
    assert c["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
    one = analyze(table, {"metric": "distribution", "columns": ["one"]})["distribution"]["one"]
    assert (one["count"], one["nulls"], one["mean"], one["std"]) == (1, 2, 5.0, None)
    with pytest.raises(DataError, match="distribution: column 'c' is not numeric"):
        analyze({"columns": ["c"], "rows": [["x"]]}, {"metric": "distribution", "columns": ["c"]})


def test_both_metrics_in_one_result(sales: dict[str, Any]) -> None:
    """A task asking for both metrics gets both keys, plus the row count."""
    result = analyze(sales, "correlation", "distribution")
    assert set(result) == {"rows", "correlation", "distribution"}
    assert "order_id" in result["distribution"]
    assert "region" not in result["distribution"]


values = st.lists(
    st.one_of(st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9, allow_nan=False)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(values, st.integers(1, 30))
def test_histogram_equals_numpy_exactly(data: list[float], bins: int) -> None:
    """Bin edges and counts are identical to numpy.histogram, ties on edges included."""
    counts, edges = np.histogram(np.array(data, dtype=float), bins=bins)
    ours_edges, ours_counts = histogram(sorted(data), bins)
    assert ours_counts == counts.tolist()
    assert ours_edges == edges.tolist()


@settings(max_examples=150, deadline=None)
@given(values, st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_quantiles_and_median_equal_numpy(data: list[float], qs: list[float]) -> None:
    """Quantiles (linear) and the median are bit-for-bit numpy's."""
    ordered = sorted(float(v) for v in data)
    array = np.array(ordered)
    assert [quantile(ordered, q) for q in qs] == [float(np.quantile(array, q)) for q in qs]
    assert median(ordered) == float(np.median(array))


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.integers(1, 50))
def test_linspace_equals_numpy(start: float, stop: float, num: int) -> None:
    """linspace reproduces numpy.linspace (endpoint included) exactly."""
    assert linspace(start, stop, num) == np.linspace(start, stop, num).tolist()


pairs = st.lists(
    st.tuples(
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        st.one_of(st.none(), st.integers(-1000, 1000)),
    ),
    min_size=2,
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(pairs)
def test_generated_stats_match_pandas(rows: list[tuple[Any, Any]]) -> None:
    """On generated tables with nulls, correlation and moments agree with pandas."""
    table = {"columns": ["x", "y"], "rows": [list(r) for r in rows]}
    usable = [c for c in ("x", "y") if any(r[table["columns"].index(c)] is not None for r in rows)]
    result = analyze(
        table,
        {"metric": "correlation", "columns": usable} if usable else "correlation",
        "distribution",
    )
    check_json(result)
    df = pd.DataFrame(table["rows"], columns=["x", "y"], dtype=float)
    corr = df.corr()
    for i, a in enumerate(result["correlation"]["columns"]):
        for j, b in enumerate(result["correlation"]["columns"]):
            ours = result["correlation"]["matrix"][i][j]
            theirs = corr.loc[a, b]
            if ours is None:
                continue  # undefined: constant or too few pairs (pandas: NaN or rounding noise)
            assert not math.isnan(theirs)
            assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)
    for name, stats in result["distribution"].items():
        series = df[name].dropna()
        assert stats["count"] == len(series)
        assert stats["mean"] == pytest.approx(series.mean(), rel=1e-9, abs=1e-9)
        if len(series) > 1 and series.min() != series.max():
            assert stats["std"] == pytest.approx(series.std(), rel=1e-6)
        assert stats["median"] == series.median()
