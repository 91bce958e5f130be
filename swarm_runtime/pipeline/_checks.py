"""Checks that need the whole validated config: the DAG, agents, params and retries."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from ..agents.builtin._validation import describe_value, join_path, translate_errors
from ..errors import ConfigProblem
from ._seed import Locations
from ._yaml import MAX_NESTING, too_deep
from .config import PipelineConfig, RetrySpec
from .dag import check_dag

__all__ = ["config_problems"]

_INT_RANGE = (-(2**63), 2**64)
#: containers walked again through YAML aliases (an alias bomb repeats them billions of times)
_MAX_REPEATS = 100_000
#: params sit 3 levels down in a file (tasks[i].params): the rest of MAX_NESTING is theirs
_PARAMS_NESTING = MAX_NESTING - 3


def _json_problems(value: Any, path: str, seen: set[int]) -> list[ConfigProblem]:
    """Values that cannot travel in a JSON message (dates, sets, binary, NaN, ...), values
    nested too deeply or containing themselves. ``seen`` holds the containers walked so
    far: one met again is a YAML alias, fine a few times, an "alias bomb" past
    :data:`_MAX_REPEATS` (aliases of aliases expand to billions of values)."""
    problems: list[ConfigProblem] = []
    stack: list[tuple[Any, str, int] | int] = [(value, path, 0)]
    on_path: set[int] = set()  # containers being walked: meeting one again is a cycle
    repeats = 0
    while stack and len(problems) < 20:
        entry = stack.pop()
        if isinstance(entry, int):  # every value inside this container was walked
            on_path.discard(entry)
            continue
        item, where, depth = entry
        if item is None or isinstance(item, (str, bool)):
            continue
        if isinstance(item, int):
            if not _INT_RANGE[0] <= item < _INT_RANGE[1]:
                problems.append(ConfigProblem(where, "integer too large for JSON (64 bits)"))
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                problems.append(ConfigProblem(where, f"expected a finite number, got {item}"))
            continue
        if isinstance(item, (list, dict)):
            if id(item) in on_path:
                problems.append(ConfigProblem(where, "a value that contains itself"))
                continue
            if depth >= _PARAMS_NESTING:
                problems.append(too_deep(where))
                continue
            if id(item) in seen:
                repeats += 1
                if repeats > _MAX_REPEATS:
                    problems.append(
                        ConfigProblem(
                            where,
                            f"YAML aliases repeat values more than {_MAX_REPEATS:,} times; "
                            "write the values out",
                            "too_large",
                        )
                    )
                    break
            seen.add(id(item))
            on_path.add(id(item))
            stack.append(id(item))  # popped once everything inside is walked
            if isinstance(item, list):
                stack.extend((v, join_path(where, i), depth + 1) for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str):
                    problems.append(
                        ConfigProblem(
                            where, f"mapping keys must be strings, got {describe_value(key)}"
                        )
                    )
                else:
                    stack.append((v, join_path(where, key), depth + 1))
            continue
        problems.append(
            ConfigProblem(
                where,
                "expected a JSON value (string, number, true/false, null, list or mapping), "
                f"got {describe_value(item)}; quote it if it is text",
            )
        )
    return problems


def _builtin_problems(config: PipelineConfig, where: Locations, index: int) -> list[ConfigProblem]:
    task = config.tasks[index]
    agent_index = next(i for i, a in enumerate(config.agents) if a.name == task.agent)
    agent = config.agents[agent_index]
    builtin = agent.builtin
    if builtin is None:
        return []
    params = {**agent.params, **task.params}
    problems: list[ConfigProblem] = []
    try:
        builtin.params_model.model_validate(params)
    except ValidationError as exc:
        for loc, message in translate_errors(exc, model=builtin.params_model):
            if not loc:
                path = where.params[index]
            elif loc[0] in task.params or loc[0] not in agent.params:
                path = where.param_path(index, str(loc[0]), *loc[1:])
            else:
                path = join_path(where.agents[agent_index], "params", *loc)
            problems.append(ConfigProblem(path, f"{message} ({builtin.name})"))
    if not builtin.needs_input:
        return problems
    chosen = params.get("input")
    deps = task.depends_on
    if not deps:
        if where.tasks[index].startswith("tasks["):
            problems.append(
                ConfigProblem(
                    join_path(where.tasks[index], "depends_on"),
                    f"{builtin.name} works on an upstream result, but this task depends on "
                    "nothing: add depends_on: [TASK]",
                )
            )
        else:
            problems.append(
                ConfigProblem(
                    where.tasks[index],
                    "nothing runs before this stage: give the first ETL stage a source",
                )
            )
    elif isinstance(chosen, str) and chosen not in deps:
        problems.append(
            ConfigProblem(
                where.param_path(index, "input"),
                f"{chosen!r} is not one of this task's depends_on ({', '.join(deps)})",
            )
        )
    elif chosen is None and len(deps) > 1 and not builtin.many_inputs:
        problems.append(
            ConfigProblem(
                where.params[index],
                f"{builtin.name} works on one upstream result and this task has "
                f"{len(deps)} ({', '.join(deps)}): set params.input to the one to use",
            )
        )
    return problems


def config_problems(config: PipelineConfig, where: Locations) -> list[ConfigProblem]:
    """Every problem of a structurally valid config (empty when it is ready to run)."""
    problems: list[ConfigProblem] = []
    walked: set[int] = set()
    if not config.tasks:
        problems.append(
            ConfigProblem(
                "tasks",
                "a pipeline needs at least one task (or seed stages: etl_stages, "
                "processing_stages, analysis_stages)",
            )
        )
    seen: dict[str, int] = {}
    for i, agent in enumerate(config.agents):
        if agent.name in seen:
            problems.append(
                ConfigProblem(
                    join_path(where.agents[i], "name"),
                    f"duplicate agent name {agent.name!r} (already used by "
                    f"{where.agents[seen[agent.name]]})",
                    "duplicate",
                )
            )
        else:
            seen[agent.name] = i
        problems.extend(_json_problems(agent.params, join_path(where.agents[i], "params"), walked))
    builtin_agents = {a.name for a in config.agents if a.builtin is not None}
    problems.extend(
        check_dag(
            [(t.name, t.depends_on) for t in config.tasks],
            paths=where.tasks,
            agents=[t.agent for t in config.tasks],
            known_agents=seen,
        )
    )
    for i, task in enumerate(config.tasks):
        json_problems = [
            problem
            for key, value in task.params.items()
            for problem in _json_problems(value, where.param_path(i, key), walked)
        ]
        problems.extend(json_problems)
        if task.agent in builtin_agents:
            flagged = {p.path for p in json_problems}
            problems.extend(p for p in _builtin_problems(config, where, i) if p.path not in flagged)
        if task.retry is not None:
            merged = {**config.retry.model_dump(), **task.retry.model_dump(exclude_none=True)}
            try:
                RetrySpec.model_validate(merged)
            except ValidationError as exc:
                for loc, message in translate_errors(exc, model=RetrySpec):
                    path = join_path(where.tasks[i], "retry", *loc)
                    problems.append(ConfigProblem(path, f"{message} (with the workflow's retry)"))
    return problems
