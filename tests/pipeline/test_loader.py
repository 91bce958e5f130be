"""Loading pipeline files: the general form, the seed form, and every kind of error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from swarm_runtime.errors import ConfigError, PipelineConfigError
from swarm_runtime.pipeline import (
    DEFAULT_QUEUE,
    PipelineConfig,
    load_pipeline,
    parse_pipeline,
    validate_pipeline,
)
from swarm_runtime.retry import RetryPolicy

GOOD = """\
name: sales-report
queue: memory://
agents:
  - {name: extract, uses: builtin.csv_source}
  - {name: transform, uses: builtin.transform, replicas: 2, timeout: 5}
  - {name: score, uses: "examples.agents:score", params: {group_by: region}}
tasks:
  - {name: load, agent: extract, params: {path: data.csv}}
  - {name: clean, agent: transform, depends_on: [load], params: {ops: [clean, normalize]}}
  - {name: stats, agent: score, depends_on: [clean], priority: 3, retry: {max_attempts: 5}}
retry: {max_attempts: 3, base_delay: 0.5, max_delay: 30}
failure_policy: continue
concurrency: 8
monitoring: {thresholds: {response_time: 1.0, queue_size: 100, error_rate: 0.05}}
"""


def problems_of(text: str, source: str = "p.yaml") -> PipelineConfigError:
    """Parse ``text`` expecting failure; return the error."""
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline(textwrap.dedent(text), source=source)
    return info.value


def test_general_form_parses_every_field() -> None:
    """A complete general-form file yields the agents, tasks and policies it describes."""
    config = parse_pipeline(GOOD, source="good.yaml")
    assert config.name == "sales-report"
    assert config.queue == "memory://"
    assert [t.name for t in config.tasks] == ["load", "clean", "stats"]
    assert config.task("clean").depends_on == ["load"]
    assert config.agent("transform").replicas == 2
    assert config.failure_policy == "continue"
    assert config.concurrency == 8
    assert config.monitoring.thresholds == {
        "response_time": 1.0,
        "queue_size": 100.0,
        "error_rate": 0.05,
    }
    assert config.edges() == [("load", "clean"), ("clean", "stats")]


def test_helpers_merge_agent_and_task_settings() -> None:
    """params_for, timeout_for and retry_for combine task, agent and workflow settings."""
    config = parse_pipeline(GOOD)
    assert config.params_for("stats") == {"group_by": "region"}
    assert config.timeout_for("clean") == 5.0
    assert config.timeout_for("load") is None
    retry = config.retry_for("stats")
    assert (retry.max_attempts, retry.base_delay, retry.max_delay) == (5, 0.5, 30.0)
    assert config.retry_for("load") == config.retry
    assert isinstance(retry.to_policy(), RetryPolicy)
    assert config.agent_for("load").uses == "builtin.csv_source"
    assert config.agent("transform").builtin is not None
    assert config.agent("score").builtin is None


def test_defaults_and_name_from_file(tmp_path: Path) -> None:
    """A minimal file gets the default queue, retry and policy, and its name from the file."""
    path = tmp_path / "my report.yaml"
    path.write_text(
        "agents: [{name: a, uses: 'mod:fn'}]\ntasks: [{name: t, agent: a}]\n", encoding="utf-8"
    )
    config = load_pipeline(path)
    assert config.name == "my-report"
    assert config.queue == DEFAULT_QUEUE
    assert config.failure_policy == "fail_fast"
    assert config.concurrency is None
    assert config.retry.max_attempts == 3


def test_to_dict_round_trips() -> None:
    """to_dict() and to_yaml() parse back to an equal config."""
    config = parse_pipeline(GOOD)
    assert parse_pipeline(config.to_dict()) == config
    assert parse_pipeline(config.to_yaml()) == config


def test_seed_form_becomes_a_chain() -> None:
    """Seed stages become ETL → processing → parallel analyses, named as in the seed."""
    config = parse_pipeline(
        """
        etl_stages:
          - {name: extraction, source: data/sales.csv, transforms: [normalize, clean]}
          - {name: tidy, transforms: [clean]}
        processing_stages:
          - {name: features, operations: [scaling, encoding]}
        analysis_stages:
          - {name: stats, metrics: [distribution]}
          - {name: links, metrics: [correlation]}
        """
    )
    deps = {t.name: t.depends_on for t in config.tasks}
    assert deps == {
        "extraction_source": [],
        "extraction": ["extraction_source"],
        "tidy": ["extraction"],
        "features": ["tidy"],
        "stats": ["features"],
        "links": ["features"],
    }
    assert config.agent_for("extraction_source").uses == "builtin.csv_source"
    assert config.params_for("extraction_source") == {"path": "data/sales.csv"}
    assert config.agent_for("extraction").name == "etl_extraction"
    assert config.params_for("extraction") == {"ops": ["normalize", "clean"]}
    assert config.agent_for("features").name == "proc_features"
    assert config.agent_for("links").name == "analysis_links"
    assert config.params_for("stats") == {"metrics": ["distribution"]}


def test_seed_form_source_mapping_and_extra_tasks() -> None:
    """A source mapping picks the built-in; general tasks may follow the seed stages."""
    config = parse_pipeline(
        """
        name: mixed
        etl_stages:
          - {name: load, source: {type: sqlite, path: db.sqlite, table: orders}}
        analysis_stages:
          - {name: stats, metrics: [distribution]}
        agents:
          - {name: out, uses: builtin.json_sink}
        tasks:
          - {name: save, agent: out, depends_on: [stats], params: {path: out.json}}
        """
    )
    assert config.agent_for("load").uses == "builtin.sqlite_source"
    assert config.params_for("load") == {"path": "db.sqlite", "table": "orders"}
    assert config.task("save").depends_on == ["stats"]
    assert config.to_dict()["tasks"][-1]["name"] == "save"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("database", "expected a file path ending in .csv"),
        ("x.db", "a SQLite source needs a table or a query"),
        ({"type": "xml", "path": "a"}, "source.type must be one of csv, jsonl, sqlite"),
        (42, "expected a file path ending in .csv"),
    ],
)
def test_seed_form_bad_source(source: object, expected: str) -> None:
    """An unusable seed source names the stage's source field and what would work."""
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline({"etl_stages": [{"name": "e", "source": source}]}, source="s.yaml")
    assert f"s.yaml: etl_stages[0].source: {expected}" in str(info.value)


def test_seed_form_errors_point_at_stage_fields() -> None:
    """Bad ops, metrics and source params are reported where the seed form wrote them."""
    error = problems_of(
        """\
        etl_stages:
          - name: e
            source: {type: csv, path: a.csv, delimter: ";"}
            transforms: [clean, normalise]
        processing_stages:
          - {name: p, operations: [scaling, 7]}
        analysis_stages:
          - {name: a, metrics: [corelation]}
        """
    )
    text = str(error)
    assert (
        "p.yaml:3:48: etl_stages[0].source.delimter: unknown field (did you mean 'delimiter'?)"
        in text
    )
    assert (
        "p.yaml:4:25: etl_stages[0].transforms[1]: unknown op 'normalise' (did you mean "
        "'normalize'?)" in text
    )
    assert "processing_stages[0].operations[1]: expected an op name" in text
    assert (
        "analysis_stages[0].metrics[0]: unknown metric 'corelation' (did you mean 'correlation'?)"
        in text
    )


def test_seed_form_first_stage_needs_a_source() -> None:
    """A seed chain that starts with a transform has no input and is rejected."""
    error = problems_of("etl_stages: [{name: e, transforms: [clean]}]\n")
    assert (
        "etl_stages[0]: nothing runs before this stage: give the first ETL stage a source"
        in str(error)
    )


def test_one_line_per_problem_with_file_line_column() -> None:
    """Structural errors each get a line: file:line:column: path: what was expected."""
    error = problems_of(
        """\
        name: sales report
        queue: ftp://x
        agents:
          - {name: extract, uses: builtin.csv_sourc}
          - {name: t, uses: builtin.transform, replicas: 0}
        tasks:
          - {name: load, agent: extract, depends_on: load, taks: 1}
        failure_policy: stop
        """
    )
    lines = str(error).splitlines()
    assert len(lines) == len(error.problems) == 7
    assert lines[0].startswith("p.yaml:1:7: name: expected a name of letters")
    assert lines[1] == (
        "p.yaml:2:8: queue: unknown queue URL scheme 'ftp'; expected one of: memory://, file://, "
        "redis://, rediss://"
    )
    assert lines[2].startswith(
        "p.yaml:4:27: agents[0].uses: unknown built-in agent 'builtin.csv_sourc' (did you mean "
        "'builtin.csv_source'?)"
    )
    assert lines[3] == "p.yaml:5:50: agents[1].replicas: expected an integer >= 1, got 0"
    assert lines[4] == "p.yaml:7:46: tasks[0].depends_on: expected a list, got 'load'"
    assert lines[5].startswith("p.yaml:7:58: tasks[0].taks: unknown field; expected one of: name,")
    assert lines[6] == "p.yaml:8:17: failure_policy: expected 'fail_fast' or 'continue', got 'stop'"
    assert isinstance(error, ConfigError)
    assert "Traceback" not in str(error)


@pytest.mark.parametrize(
    ("body", "kind", "expected"),
    [
        (
            "tasks: [{name: a, agent: w}, {name: a, agent: w}]",
            "duplicate",
            "p.yaml:1:37: tasks[1].name: duplicate task name 'a' (already used by tasks[0])",
        ),
        (
            "tasks: [{name: a, agent: w}, {name: b, agent: w, depends_on: [c]}]",
            "unknown_dependency",
            "p.yaml:1:63: tasks[1].depends_on[0]: unknown task 'c'; tasks: a, b",
        ),
        (
            "tasks: [{name: load, agent: w}, {name: b, agent: w, depends_on: [lod]}]",
            "unknown_dependency",
            "tasks[1].depends_on[0]: unknown task 'lod' (did you mean 'load'?)",
        ),
        (
            "tasks: [{name: a, agent: wrker}]",
            "unknown_agent",
            "p.yaml:1:26: tasks[0].agent: unknown agent 'wrker' (did you mean 'worker'?); "
            "declared agents: w, worker",
        ),
        (
            "tasks: [{name: a, agent: w, depends_on: [a]}]",
            "self_dependency",
            "p.yaml:1:42: tasks[0].depends_on[0]: task 'a' depends on itself",
        ),
        (
            "tasks: [{name: a, agent: w, depends_on: [c]}, {name: b, agent: w, depends_on: [a]},"
            " {name: c, agent: w, depends_on: [b]}]",
            "cycle",
            "tasks[1].depends_on: dependency cycle: a -> b -> c -> a",
        ),
    ],
)
def test_dag_errors_each_kind(body: str, kind: str, expected: str) -> None:
    """Each DAG problem kind is reported with its location and a message naming the fix."""
    header = "agents: [{name: w, uses: 'mod:fn'}, {name: worker, uses: 'mod:fn'}]\n"
    error = problems_of(header + body + "\n")
    assert [p.kind for p in error.problems] == [kind]
    shifted = expected.replace("p.yaml:1:", "p.yaml:2:")
    assert shifted in str(error)


def test_all_problems_reported_together() -> None:
    """Several DAG problems in one file are all listed, sorted by line."""
    error = problems_of(
        """\
        agents: [{name: w, uses: 'mod:fn'}, {name: w, uses: 'mod:fn'}]
        tasks:
          - {name: a, agent: w, depends_on: [b]}
          - {name: b, agent: w, depends_on: [a]}
          - {name: c, agent: nobody, depends_on: [zzz]}
        """
    )
    kinds = [p.kind for p in error.problems]
    assert sorted(kinds) == ["cycle", "duplicate", "unknown_agent", "unknown_dependency"]
    lines = [p.line for p in error.problems]
    assert lines == sorted(lines)


def test_yaml_syntax_error_gives_line_and_column() -> None:
    """Broken YAML is reported as file:line:column with the parser's explanation."""
    error = problems_of("name: x\ntasks: [a, b\nagents: []\n")
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert problem.kind == "syntax"
    assert problem.line == 3
    assert str(error).startswith("p.yaml:3:")
    assert "YAML syntax error" in str(error)


def test_duplicate_yaml_keys_are_errors() -> None:
    """A key given twice in one mapping is an error, not silently overwritten."""
    error = problems_of("name: a\nname: b\ntasks: []\n")
    assert str(error) == (
        "p.yaml:2:1: name: key given twice in one mapping (first on line 1); YAML would "
        "silently keep only the last"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "p.yaml: the pipeline is empty"),
        (
            "- a\n- b\n",
            "p.yaml: expected a mapping (name, agents, tasks, ...) at the top, got list",
        ),
        ("name: x\n", "p.yaml:1:1: tasks: a pipeline needs at least one task"),
        ("name: x\n---\nname: y\n", "p.yaml:2:1: YAML syntax error"),
        ("a: !!python/object:os.system {}\n", "p.yaml:1:4: YAML syntax error"),
    ],
)
def test_degenerate_files(text: str, expected: str) -> None:
    """Empty, non-mapping, task-less, multi-document and unsafe files get a clear error."""
    assert str(problems_of(text)).startswith(expected)


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    """File-level problems name the file and say what is wrong."""
    with pytest.raises(PipelineConfigError, match=r"nope\.yaml: file not found"):
        load_pipeline(tmp_path / "nope.yaml")
    with pytest.raises(PipelineConfigError, match="is a directory"):
        load_pipeline(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(PipelineConfigError, match=r"bin\.yaml: not UTF-8 text"):
        load_pipeline(binary)


def test_params_must_be_json() -> None:
    """YAML values that JSON cannot carry (dates, NaN) are refused where they are written."""
    error = problems_of(
        """\
        agents: [{name: w, uses: 'mod:fn'}]
        tasks:
          - name: a
            agent: w
            params: {when: 2024-01-01, ratio: .nan, nested: {deep: [1, 2024-02-02]}}
        """
    )
    text = str(error)
    assert "tasks[0].params.when: expected a JSON value" in text
    assert "got date 2024-01-01; quote it if it is text" in text
    assert "tasks[0].params.ratio: expected a finite number, got nan" in text
    assert "tasks[0].params.nested.deep[1]: expected a JSON value" in text


def test_builtin_params_are_checked_before_running() -> None:
    """Built-in params are validated at load time; agent-level params count too."""
    error = problems_of(
        """\
        agents:
          - {name: src, uses: builtin.csv_source}
          - {name: sink, uses: builtin.json_sink, params: {indent: 3}}
        tasks:
          - {name: a, agent: src, params: {pth: x.csv}}
          - {name: b, agent: sink, depends_on: [a], params: {path: out.json}}
        """
    )
    text = str(error)
    assert (
        "p.yaml:3:60: agents[1].params.indent: expected 0 or 2, got 3 (builtin.json_sink)" in text
    )
    assert "p.yaml:5:27: tasks[0].params.path: required, but missing (builtin.csv_source)" in text
    assert "tasks[0].params.pth: unknown field (did you mean 'path'?)" in text


def test_builtin_input_rules() -> None:
    """Transforms need an upstream task, and choose one with params.input when there are several."""
    error = problems_of(
        """\
        agents:
          - {name: src, uses: builtin.csv_source, params: {path: a.csv}}
          - {name: tx, uses: builtin.transform, params: {ops: [clean]}}
          - {name: out, uses: builtin.json_sink, params: {path: o.json}}
        tasks:
          - {name: a, agent: src}
          - {name: b, agent: src}
          - {name: orphan, agent: tx}
          - {name: both, agent: tx, depends_on: [a, b]}
          - {name: wrong, agent: tx, depends_on: [a], params: {input: b}}
          - {name: ok, agent: tx, depends_on: [a, b], params: {input: b}}
          - {name: save, agent: out, depends_on: [a, b]}
        """
    )
    text = str(error)
    assert (
        "tasks[2].depends_on: builtin.transform works on an upstream result, but this task "
        "depends on nothing" in text
    )
    assert (
        "tasks[3].params: builtin.transform works on one upstream result and this task has 2 (a, b)"
        in text
    )
    assert "tasks[4].params.input: 'b' is not one of this task's depends_on (a)" in text
    assert len(error.problems) == 3  # 'ok' and the multi-input json sink are fine


def test_task_retry_override_is_checked_against_the_workflow() -> None:
    """A task's retry override must still make sense merged with the workflow's retry."""
    error = problems_of(
        """\
        agents: [{name: w, uses: 'mod:fn'}]
        tasks: [{name: a, agent: w, retry: {base_delay: 100}}]
        """
    )
    assert "tasks[0].retry.max_delay: expected a delay >= base_delay (100.0), got 30.0" in str(
        error
    )


def test_validate_pipeline_checks_python_built_configs() -> None:
    """A PipelineConfig built in Python gets the same DAG checks via validate_pipeline."""
    config = PipelineConfig(
        name="py",
        agents=[{"name": "w", "uses": "mod:fn"}],  # type: ignore[list-item]
        tasks=[{"name": "a", "agent": "w", "depends_on": ["a"]}],  # type: ignore[list-item]
    )
    with pytest.raises(
        PipelineConfigError, match=r"^py: tasks\[0\]\.depends_on\[0\]: task 'a' depends on itself$"
    ):
        validate_pipeline(config)
    good = config.model_copy(
        update={"tasks": [config.tasks[0].model_copy(update={"depends_on": []})]}
    )
    assert validate_pipeline(good) is good


def test_strict_types_refuse_lookalikes() -> None:
    """Booleans and numeric strings are not accepted where numbers are expected."""
    error = problems_of(
        """\
        agents: [{name: w, uses: 'mod:fn', replicas: true, concurrency: "2"}]
        tasks: [{name: a, agent: w, timeout: .inf}]
        """
    )
    text = str(error)
    assert "agents[0].replicas: expected an integer, got true" in text
    assert "agents[0].concurrency: expected an integer, got '2'" in text
    assert "tasks[0].timeout: expected a finite number, got inf" in text


def test_control_characters_are_located() -> None:
    """A character YAML forbids is reported at its line and column, even after non-ASCII text."""
    error = problems_of("name: ééé\nx: a\x1f\n")
    assert str(error) == "p.yaml:2:5: YAML syntax error: U+001F is not allowed in YAML text"


def test_lookups_follow_copies() -> None:
    """task() and agent() are O(1) lookups that stay right on model_copy'd configs."""
    config = parse_pipeline(GOOD)
    assert config.task("stats").agent == "score"
    trimmed = config.model_copy(update={"tasks": config.tasks[:1]})
    assert trimmed.task("load").name == "load"
    with pytest.raises(KeyError):
        trimmed.task("stats")
    assert config == parse_pipeline(GOOD)
