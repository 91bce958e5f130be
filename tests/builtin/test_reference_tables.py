"""Reference equality with numpy / pandas on large random tables and on generated ones
(nulls, duplicates, constant columns, unicode, empty tables)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.agents.builtin import BUILTINS

ANALYZE = BUILTINS["builtin.analyze"]
TRANSFORM = BUILTINS["builtin.transform"]


@pytest.fixture(scope="module")
def large() -> dict[str, Any]:
    """100,000 random rows: skewed floats with nulls, ints, a constant column, categories."""
    rng = np.random.default_rng(7)
    rows = 100_000
    skewed = rng.lognormal(3.0, 1.2, rows)
    skewed[rng.integers(0, rows, rows // 20)] = np.nan
    frame = pd.DataFrame(
        {
            "x": skewed,
            "n": rng.integers(-1000, 1000, rows),
            "y": skewed * 0.3 + rng.normal(0, 5, rows),
            "c": np.full(rows, 2.5),
            "k": rng.choice(["ä", "ö", "日", "本"], rows),
        }
    )
    table = pl.from_pandas(frame, nan_to_null=True)  # an upstream table as a Polars frame
    return {"frame": frame, "table": table}


def test_large_distribution_matches_numpy(large: dict[str, Any]) -> None:
    """count, mean, std, min, max, median and quantiles equal numpy's; histograms exactly."""
    frame: pd.DataFrame = large["frame"]
    spec = {"metric": "distribution", "columns": ["x", "n", "c"], "bins": 20}
    result = ANALYZE.run({"metrics": [spec]}, {"t": large["table"]})["distribution"]
    for name in ("x", "n", "c"):
        values = frame[name].dropna().to_numpy(dtype=float)
        stats = result[name]
        assert stats["count"] == len(values)
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-13)
        assert stats["std"] == pytest.approx(values.std(ddof=1), rel=1e-12, abs=0.0)
        assert (stats["min"], stats["max"]) == (values.min(), values.max())
        assert stats["median"] == float(np.median(values))
        for key, q in (("p25", 0.25), ("p75", 0.75), ("p95", 0.95)):
            assert stats["quantiles"][key] == float(np.quantile(values, q))
        counts, edges = np.histogram(values, bins=20)
        assert stats["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
    assert result["c"]["std"] == 0.0


def test_large_correlation_and_transforms_match_pandas(large: dict[str, Any]) -> None:
    """Pearson (pairwise-complete) equals DataFrame.corr(); normalize and scaling equal pandas."""
    frame: pd.DataFrame = large["frame"]
    spec = {"metric": "correlation", "columns": ["x", "n", "y"]}
    corr = ANALYZE.run({"metrics": [spec]}, {"t": large["table"]})["correlation"]
    expected = frame[["x", "n", "y"]].corr()
    for i, a in enumerate(corr["columns"]):
        for j, b in enumerate(corr["columns"]):
            assert corr["matrix"][i][j] == pytest.approx(expected.loc[a, b], rel=1e-12)
    out = TRANSFORM.compute(
        {"ops": [{"op": "normalize", "columns": ["x"]}, {"op": "scaling", "columns": ["y"]}]},
        {"t": large["table"]},
    ).collect()
    x = frame["x"]
    norm = (x - x.min()) / (x.max() - x.min())
    y = frame["y"]
    z = (y - y.mean()) / y.std(ddof=0)
    got_x = out["x"].fill_null(np.nan).to_numpy()
    got_y = out["y"].fill_null(np.nan).to_numpy()
    np.testing.assert_allclose(got_x, norm.to_numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got_y, z.to_numpy(), rtol=1e-12, atol=1e-12)


cells = st.one_of(
    st.none(),
    st.sampled_from(["a", "b", "é", "日本", "", " "]),
)
numbers = st.one_of(st.none(), st.integers(-3, 3))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(cells, numbers, st.just(1.5)), max_size=40))
def test_generated_clean_and_encoding_match_pandas(rows: list[tuple[Any, Any, float]]) -> None:
    """On generated tables (nulls, duplicates, a constant column, unicode, empty) clean equals
    dropna().drop_duplicates() and one-hot encoding equals pandas.get_dummies."""
    table = {"columns": ["s", "n", "c"], "rows": [list(r) for r in rows]}
    df = pd.DataFrame(rows, columns=["s", "n", "c"])
    clean = TRANSFORM.run({"ops": ["clean"]}, {"t": table})
    expected = df.dropna().drop_duplicates()
    assert clean["rows"] == [list(r) for r in expected.itertuples(index=False)]
    if not clean["rows"]:
        return
    encoded = TRANSFORM.run({"ops": [{"op": "encoding", "columns": ["s"]}]}, {"t": clean})
    dummies = pd.get_dummies(expected["s"], prefix="s", dtype=int)
    dummies = dummies[sorted(dummies.columns)]
    got = {name: [r[i] for r in encoded["rows"]] for i, name in enumerate(encoded["columns"])}
    for name in dummies.columns:
        assert got[name] == dummies[name].tolist(), name
    stats = ANALYZE.run({"metrics": ["distribution"]}, {"t": clean})["distribution"]
    assert stats["c"]["std"] in (0.0, None)
    assert stats["n"]["count"] == len(expected)
