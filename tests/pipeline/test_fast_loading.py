"""Big pipeline files: the fast load (yaml-rs where it reads YAML as PyYAML does), error
positions found afterwards, and the size and nesting limits."""

from __future__ import annotations

import math
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_runtime.errors import PipelineConfigError
from swarm_runtime.pipeline import load_pipeline, parse_pipeline
from swarm_runtime.pipeline._fastyaml import UNSURE, fast_load
from swarm_runtime.pipeline.loader import MAX_NESTING, MAX_PIPELINE_BYTES

FORCE_SLOW = "\n# on\n"  # a YAML 1.1 boolean-looking word: the PyYAML path reads the file

SCALARS = [
    "yes", "No", "on", "OFF", "y", "n", "true", "False", "NULL", "~", "null", "0755",
    "0o17", "09", "1e3", "1.0e+3", "+1", "-1", "1_000", "0x1F", "1:20", "2024-01-01",
    ".5", "+.5", "-.inf", "=", "1.", "12", "-3.25", "0", "-0", "a b", "x#y", "x #y",
    "'q'", '"d"', '"a\\tb"', "!!str 5", "<<", "? x", "|", "@x", "`x", "%x", "t1", "café",
    "a\tb", "a\x85b", "a\u2028b", "\ufeffx", "- x", "-", "a: b", "{", "]", "*", "&",
    "1 2", "3.0", "-1.5e-3", "0.", "007", "1__0", "tRuE", "nUll", "_0", "_1.5", "-_1",
]  # fmt: skip


def scalars() -> st.SearchStrategy[str]:
    return st.sampled_from(SCALARS) | st.text(alphabet="ab019.:-_ +#'\"[]{},!\\", max_size=6)


def render(node: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(node, str):
        return node
    if isinstance(node, tuple):  # a flow collection
        kind, items = node
        if kind == "list":
            return "[" + ", ".join(render(i, 0) for i in items) + "]"
        return "{" + ", ".join(f"{k}: {render(v, 0)}" for k, v in items) + "}"
    if isinstance(node, list):
        return "".join(f"\n{pad}- {render(item, indent + 2)}" for item in node) or "[]"
    return "".join(f"\n{pad}{k}: {render(v, indent + 2)}" for k, v in node.items()) or "{}"


documents = st.recursive(
    scalars(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(scalars(), inner, max_size=3)
        | st.tuples(st.just("list"), st.lists(inner, max_size=3))
        | st.tuples(st.just("map"), st.lists(st.tuples(scalars(), inner), max_size=3))
    ),
    max_leaves=8,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents.filter(lambda d: isinstance(d, dict)))
def test_fast_load_reads_what_pyyaml_reads(doc: dict[Any, Any]) -> None:
    """Whenever the fast load answers, PyYAML reads the same text to the same data (it
    gives up on anything YAML 1.1 and 1.2 could read differently)."""
    text = render(doc, 0).lstrip("\n") + "\n"
    fast = fast_load(text)
    if fast is UNSURE:
        return
    try:
        careful = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise AssertionError(f"fast load read {text!r} but PyYAML refuses it: {exc}") from None
    assert repr(fast) == repr(careful) or same(fast, careful), text


def test_fast_load_gives_up_on_what_differs() -> None:
    """Booleans and numbers YAML 1.1 reads otherwise, tags, merge keys, odd characters,
    duplicate keys and broken text go to PyYAML."""
    texts = ["a: yes", "a: Off", "a: 0755", "a: 1e3", "a: 1:20", "a: !!binary x",
             "b: &x {c: 1}\nd: {<<: *x}", "a: \x85", "a: 1\na: 2", "a: [1", "a: +.5",
             "a: 2024-01-01", "%YAML 1.1\n---\na: 1", "a:\n\t- x", "a: =", "on: 1",
             "[]: y", "{}: y", "a: {[x]: 1}", "- [a, b]: 1"]  # fmt: skip
    for text in texts:
        assert fast_load(text) is UNSURE, text
    assert fast_load("a: [1, -2.5, x, true, null]\nb: {c: 'yes'}") == {
        "a": [1, -2.5, "x", True, None],
        "b": {"c": "yes"},
    }


GOOD = """\
name: demo
queue: memory://
agents:
  - {name: extract, uses: builtin.csv_source}
  - {name: score, uses: "examples.agents:score", params: {group_by: region, w: [1, 2.5]}}
tasks:
  - {name: load, agent: extract, params: {path: data.csv}}
  - name: stats
    agent: score
    depends_on: [load]
    priority: 3
    retry: {max_attempts: 5}
retry: {max_attempts: 3, base_delay: 0.5, max_delay: 30}
"""


def test_fast_and_careful_paths_agree() -> None:
    """The same file read by either path gives the same config."""
    assert fast_load(GOOD) is not UNSURE
    assert fast_load(GOOD + FORCE_SLOW) is UNSURE
    assert parse_pipeline(GOOD) == parse_pipeline(GOOD + FORCE_SLOW)


def test_errors_are_placed_on_the_fast_path_too() -> None:
    """A problem in a file read fast still names line, column and field."""
    text = GOOD.replace("depends_on: [load]", "depends_on: [laod]")
    for variant in (text, text + FORCE_SLOW):
        with pytest.raises(PipelineConfigError) as info:
            parse_pipeline(variant, source="p.yaml")
        assert str(info.value).startswith(
            "p.yaml:10:18: tasks[1].depends_on[0]: unknown task 'laod'"
        )


def big_pipeline(tasks: int, broken: dict[int, str]) -> tuple[str, dict[int, int]]:
    """A ``tasks``-task file; ``broken[i]`` replaces task i's agent. Returns the text and
    the line of each task."""
    lines = ["name: big", "queue: memory://", "agents:", "  - {name: w, uses: 'm:f'}", "tasks:"]
    where = {}
    for i in range(tasks):
        deps = f", depends_on: [t{i - 1}, t{i // 2}]" if i else ""
        where[i] = len(lines) + 1
        lines.append(f"  - {{name: t{i}, agent: {broken.get(i, 'w')}{deps}}}")
    return "\n".join(lines) + "\n", where


def test_error_in_a_100000_task_file_names_file_line_and_field(tmp_path: Path) -> None:
    """Two mistakes among 100,000 tasks are both reported with file, line and field path
    (the positions are looked up after the fast load, not kept for every value)."""
    text, where = big_pipeline(100_000, {50_000: "5", 99_990: "[w]"})
    path = tmp_path / "big.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(path)
    took = time.perf_counter() - started
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}:{where[50_000]}:27: tasks[50000].agent: expected a string, got 5"
    assert lines[1] == (
        f"{path}:{where[99_990]}:20: tasks[99990].agent: expected a string, got a list"
    )
    print(f"100,000-task file with errors: {took:.2f} s")  # (speed is for bench_cli.py)


def test_file_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    """A file over the size limit gets one clear line, without being read."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_PIPELINE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline(path)
    assert "pipeline files are limited to 64 MiB" in str(info.value)
    with pytest.raises(PipelineConfigError, match="limited to 64 MiB"):
        parse_pipeline(" " * (MAX_PIPELINE_BYTES + 1))


@pytest.mark.parametrize("style", ["flow", "block"])
def test_nesting_limit_names_the_place(style: str) -> None:
    """Params nested deeper than MAX_NESTING levels are an error with their position,
    whether written as flow or block YAML (either parser path)."""
    depth = MAX_NESTING + 5
    if style == "flow":
        value = "[" * depth + "]" * depth
        params = f"    params: {{deep: {value}}}\n"
    else:
        params = "    params:\n" + "".join("  " * (i + 3) + f"k{i}:\n" for i in range(depth))
        params += "  " * (depth + 3) + "x: 1\n"
    text = GOOD.replace("    retry: {max_attempts: 5}\n", params)
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline(text, source="p.yaml")
    message = str(info.value)
    assert f"nested more than {MAX_NESTING} levels deep" in message
    assert re.match(r"p\.yaml:\d+:\d+: tasks\[1\]\.params", message), message


def test_an_alias_used_twice_is_fine_and_a_cycle_is_not() -> None:
    """``[&l [1, 2], *l]`` is a value used twice (accepted); a value that
    contains itself is refused."""
    reuse = GOOD.replace("w: [1, 2.5]", "w: [&l [1, 2], *l]")
    for text in (reuse, reuse + FORCE_SLOW):
        config = parse_pipeline(text)
        assert config.agent("score").params["w"] == [[1, 2], [1, 2]]
    cycle = GOOD.replace("w: [1, 2.5]", "w: &l [1, *l]")
    with pytest.raises(PipelineConfigError, match="contains itself"):
        parse_pipeline(cycle)


def test_alias_bomb_is_refused_quickly() -> None:
    """Aliases of aliases that would expand to a billion values are an error, at once."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    params = "{" + ", ".join(levels) + "}"
    text = GOOD.replace("{group_by: region, w: [1, 2.5]}", textwrap.dedent(params))
    started = time.perf_counter()
    with pytest.raises(PipelineConfigError, match="repeat values more than"):
        parse_pipeline(text)
    assert time.perf_counter() - started < 30  # not billions of steps (a generous bound)
