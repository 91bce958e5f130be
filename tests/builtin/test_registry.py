"""The BUILTINS registry and the calling convention the orchestrator relies on."""

from __future__ import annotations

import pytest

from swarm_runtime.agents.builtin import BUILTINS, Builtin, get_builtin
from swarm_runtime.errors import ConfigError, DataError, PipelineConfigError

EXPECTED = {
    "builtin.csv_source": "source",
    "builtin.jsonl_source": "source",
    "builtin.sqlite_source": "source",
    "builtin.transform": "transform",
    "builtin.analyze": "analysis",
    "builtin.json_sink": "sink",
    "builtin.csv_sink": "sink",
    "builtin.parquet_source": "source",
    "builtin.parquet_sink": "sink",
    "builtin.filter": "transform",
    "builtin.select": "transform",
    "builtin.rename": "transform",
    "builtin.derive": "transform",
    "builtin.group_by": "transform",
    "builtin.join": "transform",
    "builtin.sort": "transform",
    "builtin.sql": "transform",
}


def test_registry_names_and_kinds() -> None:
    """Every documented built-in is registered under its YAML name with its kind."""
    assert {name: b.kind for name, b in BUILTINS.items()} == EXPECTED
    for name, builtin in BUILTINS.items():
        assert isinstance(builtin, Builtin)
        assert builtin.name == name
        assert builtin.description.endswith(".")
        assert builtin.params_schema()["type"] == "object"
        assert builtin.needs_input == (builtin.kind != "source")


def test_get_builtin_suggests_a_name() -> None:
    """An unknown name raises ConfigError with a suggestion and the known names."""
    assert get_builtin("builtin.transform") is BUILTINS["builtin.transform"]
    with pytest.raises(ConfigError, match=r"did you mean 'builtin.csv_sink'\?"):
        get_builtin("builtin.csv_snk")


def test_run_validates_params_with_paths() -> None:
    """Bad params fail before any work, one line per problem, naming params.<field>."""
    with pytest.raises(PipelineConfigError) as info:
        BUILTINS["builtin.analyze"].run(
            {"metrics": [{"metric": "distribution", "bins": 0}, "mean"], "extra": 1}, {}
        )
    assert str(info.value).splitlines() == [
        "builtin.analyze: params.metrics[0].bins: expected an integer >= 1, got 0",
        "builtin.analyze: params.metrics[1]: unknown metric 'mean'; expected one of: "
        "correlation, distribution",
        "builtin.analyze: params.extra: unknown field; expected one of: metrics, input",
    ]


def test_options_must_fit_their_op() -> None:
    """An option of another op is refused with the op's own options listed."""
    with pytest.raises(
        PipelineConfigError, match=r"option 'ddof' does not apply to op 'normalize'"
    ):
        BUILTINS["builtin.transform"].validate({"ops": [{"op": "normalize", "ddof": 1}]})
    with pytest.raises(PipelineConfigError, match=r"an op mapping needs 'op'"):
        BUILTINS["builtin.transform"].validate({"ops": [{"columns": ["a"]}]})
    with pytest.raises(PipelineConfigError, match=r"option 'bins' does not apply to metric"):
        BUILTINS["builtin.analyze"].validate({"metrics": [{"metric": "correlation", "bins": 3}]})


def test_single_op_or_metric_may_be_a_bare_name() -> None:
    """`ops: clean` and `metrics: correlation` mean a one-item list."""
    assert len(BUILTINS["builtin.transform"].validate({"ops": "clean"}).ops) == 1
    assert len(BUILTINS["builtin.analyze"].validate({"metrics": "correlation"}).metrics) == 1


TABLE = {"columns": ["a"], "rows": [[1], [2]]}


@pytest.mark.parametrize(
    ("inputs", "params", "expected"),
    [
        ({}, {"ops": ["clean"]}, "builtin.transform needs an upstream result"),
        (
            {"x": TABLE, "y": TABLE},
            {"ops": ["clean"]},
            r"2 upstream results \(x, y\); set params.input",
        ),
        (
            {"x": TABLE},
            {"ops": ["clean"], "input": "y"},
            r"params.input is 'y', which is not an upstream",
        ),
        ({"x": [1, 2]}, {"ops": ["clean"]}, r"the result of 'x' is not a table: .* got list"),
        ({"x": {"columns": ["a"]}}, {"ops": ["clean"]}, "rows missing"),
        ({"x": {"columns": ["a", "a"], "rows": []}}, {"ops": ["clean"]}, "'a' twice"),
        (
            {"x": {"columns": ["a"], "rows": [[1, 2]]}},
            {"ops": ["clean"]},
            r"rows\[0\] must be a list of 1 values, got 2 values",
        ),
        ({"x": {"columns": [1], "rows": []}}, {"ops": ["clean"]}, r"columns\[0\] must be a string"),
    ],
)
def test_input_selection_and_table_checks(inputs: dict, params: dict, expected: str) -> None:
    """Missing, ambiguous or malformed inputs raise DataError saying what to change."""
    with pytest.raises(DataError, match=expected):
        BUILTINS["builtin.transform"].run(params, inputs)


def test_input_param_picks_among_several() -> None:
    """params.input chooses which upstream table a transform works on."""
    out = BUILTINS["builtin.transform"].run(
        {"ops": ["normalize"], "input": "y"},
        {"x": TABLE, "y": {"columns": ["b"], "rows": [[10], [20], [15]]}},
    )
    assert out == {"columns": ["b"], "rows": [[0.0], [1.0], [0.5]]}
