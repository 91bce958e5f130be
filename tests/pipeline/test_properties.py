"""Property tests: valid pipelines round-trip; corrupted ones raise ConfigError and nothing else."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_runtime.errors import ConfigError, PipelineConfigError
from swarm_runtime.pipeline import PipelineConfig, check_dag, parse_pipeline

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
positive = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
OPS = ["clean", "normalize", "scaling", "encoding"]


@st.composite
def pipelines(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid general-form pipeline as plain data."""
    agent_names = draw(st.lists(names, min_size=2, max_size=4, unique=True))
    user_agents = agent_names[:-1]
    transform_agent = agent_names[-1]
    agents: list[dict[str, Any]] = [
        {"name": n, "uses": f"pkg.mod{i}:fn", "replicas": draw(st.integers(1, 4))}
        for i, n in enumerate(user_agents)
    ]
    agents.append(
        {
            "name": transform_agent,
            "uses": "builtin.transform",
            "params": {"ops": draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3))},
        }
    )
    task_names = draw(st.lists(names, min_size=1, max_size=10, unique=True))
    tasks: list[dict[str, Any]] = []
    for i, name in enumerate(task_names):
        deps = draw(st.lists(st.sampled_from(task_names[:i]), unique=True, max_size=3)) if i else []
        task: dict[str, Any] = {"name": name, "depends_on": deps}
        if len(deps) == 1 and draw(st.booleans()):
            task["agent"] = transform_agent
        else:
            task["agent"] = draw(st.sampled_from(user_agents))
            task["params"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
        if draw(st.booleans()):
            task["priority"] = draw(st.integers(-5, 5))
        if draw(st.booleans()):
            task["timeout"] = draw(positive)
        if draw(st.booleans()):
            task["retry"] = {"max_attempts": draw(st.integers(1, 9))}
        tasks.append(task)
    base = draw(st.floats(0, 10, allow_nan=False))
    return {
        "name": draw(names),
        "queue": draw(st.sampled_from(["memory://", "file://queue", "redis://localhost:6379/0"])),
        "agents": agents,
        "tasks": tasks,
        "retry": {
            "max_attempts": draw(st.integers(1, 10)),
            "base_delay": base,
            "max_delay": base + draw(st.floats(0, 100, allow_nan=False)),
        },
        "failure_policy": draw(st.sampled_from(["fail_fast", "continue"])),
        "concurrency": draw(st.none() | st.integers(1, 64)),
        "monitoring": {
            "thresholds": draw(
                st.dictionaries(names, st.floats(0, 1e6, allow_nan=False), max_size=3)
            )
        },
    }


@SETTINGS
@given(pipelines())
def test_valid_pipelines_round_trip(data: dict[str, Any]) -> None:
    """Random valid pipelines parse from data and from YAML to equal configs, and back."""
    config = parse_pipeline(data)
    assert [t.name for t in config.tasks] == [t["name"] for t in data["tasks"]]
    assert parse_pipeline(yaml.safe_dump(data)) == config
    assert parse_pipeline(config.to_dict()) == config
    assert parse_pipeline(config.to_yaml()) == config


def parse_or_error(data: Any, source: str = "<pipeline>") -> PipelineConfig | ConfigError:
    """The parsed config, or the ConfigError it raised (any other exception propagates)."""
    try:
        return parse_pipeline(data, source=source)
    except ConfigError as exc:
        return exc


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*path, i)))
    return out


junk = st.one_of(
    json_values,
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-1),
    st.just(0),
    st.just(""),
    st.just("no spaces allowed"),
    # fresh containers each time: the test adds keys into what it drew, and a shared
    # st.just({}) mutated by one example changes what later examples draw
    st.builds(list),
    st.builds(dict),
    st.builds(lambda: {"unexpected": 1}),
)


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


@SETTINGS
@given(pipelines(), st.data())
def test_corrupted_pipelines_raise_config_error_only(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    """Any value swapped, deleted or added anywhere gives a valid config or a ConfigError."""
    mutated = copy.deepcopy(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        paths = _paths(mutated)
        path = draw.draw(st.sampled_from(paths))
        action = draw.draw(st.sampled_from(["replace", "delete", "add"]))
        target = mutated
        for part in path[:-1]:
            target = target[part]
        if action == "delete" and path and isinstance(target, (dict, list)):
            del target[path[-1]]
        elif action == "add" and isinstance(_get(mutated, path), dict):
            _get(mutated, path)[draw.draw(st.text(max_size=5))] = draw.draw(junk)
        else:
            mutated = _replace(mutated, path, draw.draw(junk))
    result = parse_or_error(mutated)
    assert isinstance(result, (PipelineConfig, ConfigError))
    assert str(result)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@SETTINGS
@given(pipelines(), st.data())
def test_unknown_field_is_reported_at_its_path(data: dict[str, Any], draw: st.DataObject) -> None:
    """An unknown key in any model mapping is an error naming that exact field path."""
    mutated = copy.deepcopy(data)
    i = draw.draw(st.integers(0, len(mutated["tasks"]) - 1))
    where = draw.draw(st.sampled_from(["top", "task", "agent", "retry"]))
    if where == "top":
        mutated["zz_unknown"], expected = 1, "zz_unknown"
    elif where == "task":
        mutated["tasks"][i]["zz_unknown"], expected = 1, f"tasks[{i}].zz_unknown"
    elif where == "agent":
        mutated["agents"][0]["zz_unknown"], expected = 1, "agents[0].zz_unknown"
    else:
        mutated["retry"]["zz_unknown"], expected = 1, "retry.zz_unknown"
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline(mutated, source="f.yaml")
    assert f"f.yaml: {expected}: unknown field" in str(info.value)


@SETTINGS
@given(pipelines(), st.data())
def test_corrupted_yaml_text_raises_config_error_only(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    """Random edits of the YAML text give a config or a ConfigError, never another exception."""
    text = yaml.safe_dump(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(text)))
        cut = draw.draw(st.integers(0, 5))
        insert = draw.draw(
            st.sampled_from(
                ["", ":", "- ", "[", "}", "\n", "  ", "&a ", "*a", "!!", "'", "\t", "#"]
            )
        )
        text = text[:at] + insert + text[at + cut :]
    result = parse_or_error(text, source="t.yaml")
    if isinstance(result, ConfigError):
        assert str(result).startswith("t.yaml")


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_raises_config_error_only(text: str) -> None:
    """Any text at all is either a pipeline or a ConfigError."""
    assert isinstance(parse_or_error(text), (PipelineConfig, ConfigError))


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    """A random acyclic task list (dependencies only on earlier tasks)."""
    count = draw(st.integers(2, 25))
    return [
        (
            f"t{i}",
            draw(st.lists(st.sampled_from([f"t{j}" for j in range(i)]), unique=True, max_size=3))
            if i
            else [],
        )
        for i in range(count)
    ]


@SETTINGS
@given(dags(), st.data())
def test_back_edge_creates_a_reported_real_cycle(
    tasks: list[tuple[str, list[str]]], draw: st.DataObject
) -> None:
    """A DAG has no problems; adding a back edge yields a cycle whose printed path is real."""
    assert check_dag(tasks) == []
    low = draw.draw(st.integers(0, len(tasks) - 2))
    high = draw.draw(st.integers(low + 1, len(tasks) - 1))
    # make a path low -> ... -> high exist, then close it with high -> low
    tasks = [(n, list(d)) for n, d in tasks]
    tasks[high][1].append(tasks[low][0])
    tasks[low][1].append(tasks[high][0])
    problems = [p for p in check_dag(tasks) if p.kind == "cycle"]
    assert problems
    deps = dict(tasks)
    for problem in problems:
        cycle = problem.message.removeprefix("dependency cycle: ").split(" -> ")
        assert cycle[0] == cycle[-1]
        assert all(a in deps[b] for a, b in itertools.pairwise(cycle))


@st.composite
def seed_pipelines(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid seed-form pipeline."""
    stage_names = draw(st.lists(names, min_size=3, max_size=7, unique=True))
    etl_count = draw(st.integers(1, 2))
    source = draw(
        st.sampled_from(["data/a.csv", "b.jsonl", {"type": "sqlite", "path": "c.db", "table": "t"}])
    )
    etl = [
        {
            "name": stage_names[0],
            "source": source,
            "transforms": draw(st.lists(st.sampled_from(OPS), max_size=2)),
        }
    ]
    if etl_count == 2:
        etl.append(
            {
                "name": stage_names[1],
                "transforms": draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=2)),
            }
        )
    rest = stage_names[etl_count:]
    split = draw(st.integers(0, len(rest)))
    processing = [
        {"name": n, "operations": draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3))}
        for n in rest[:split]
    ]
    analysis = [
        {
            "name": n,
            "metrics": draw(
                st.lists(st.sampled_from(["correlation", "distribution"]), min_size=1, max_size=2)
            ),
        }
        for n in rest[split:]
    ]
    return {
        "name": draw(names),
        "etl_stages": etl,
        "processing_stages": processing,
        "analysis_stages": analysis,
    }


@SETTINGS
@given(seed_pipelines(), st.data())
def test_seed_form_round_trips_and_resists_corruption(
    data: dict[str, Any], draw: st.DataObject
) -> None:
    """Seed pipelines become general configs that round-trip; corruptions raise ConfigError."""
    config = parse_pipeline(data)
    assert parse_pipeline(config.to_yaml()) == config
    assert len(config.tasks) >= len(data["etl_stages"]) + len(data["processing_stages"]) + len(
        data["analysis_stages"]
    )
    mutated = copy.deepcopy(data)
    path = draw.draw(st.sampled_from(_paths(mutated)))
    mutated = _replace(mutated, path, draw.draw(junk))
    result = parse_or_error(mutated)
    assert isinstance(result, (PipelineConfig, ConfigError))
