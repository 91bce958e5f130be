"""Load and validate pipeline files: ``load_pipeline(path)`` and ``parse_pipeline(text)``.

Every problem is reported at once, one line each, as
``FILE:LINE:COLUMN: field.path: what was expected`` in a
:class:`~swarm_runtime.errors.PipelineConfigError`; nothing else escapes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import Field, ValidationError

from ..agents.builtin._validation import format_path, translate_errors
from ..errors import ConfigProblem, PipelineConfigError
from ._checks import config_problems
from ._seed import SEED_KEYS, AnalysisStage, EtlStage, Locations, ProcessingStage, to_general
from ._yaml import YamlSyntaxError, locate, parse_yaml
from .config import AgentSpec, Name, PipelineConfig, TaskSpec

__all__ = ["load_pipeline", "parse_pipeline", "validate_pipeline"]

_GENERAL_ONLY = ("agents", "tasks")


class _PipelineFile(PipelineConfig):
    """What a file may hold: the general form, the seed form, or seed stages plus extras."""

    name: Name | None = None  # type: ignore[assignment]
    agents: list[AgentSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list)
    etl_stages: list[EtlStage] | None = None
    processing_stages: list[ProcessingStage] | None = None
    analysis_stages: list[AnalysisStage] | None = None


def _default_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip(".-")[:100]
    return re.sub(r"\.{2,}", ".", name) or "pipeline"


def _fail(
    source: str, problems: list[ConfigProblem], marks: dict[str, tuple[int, int]]
) -> NoReturn:
    located = []
    for problem in problems:
        line, column = problem.line, problem.column
        if line is None:
            line, column = locate(marks, problem.path)
        located.append(ConfigProblem(problem.path, problem.message, problem.kind, line, column))
    located.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
    raise PipelineConfigError(source, located)


def parse_pipeline(
    data: str | bytes | Mapping[str, Any],
    *,
    source: str = "<pipeline>",
    default_name: str | None = None,
) -> PipelineConfig:
    """Validate a pipeline given as YAML text or as already-parsed data.

    Accepts the general DAG form and the seed form (converted to a chain).
    Raises :class:`PipelineConfigError` (a ``ConfigError``) listing every problem,
    each with ``source``, the line and column when known, and the field path.
    """
    marks: dict[str, tuple[int, int]] = {}
    if isinstance(data, (str, bytes)):
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = ConfigProblem("", f"not UTF-8 text (byte {exc.start})", "syntax")
                raise PipelineConfigError(source, [problem]) from None
        try:
            doc = parse_yaml(data)
        except YamlSyntaxError as exc:
            raise PipelineConfigError(source, [exc.problem]) from None
        if doc.problems:
            _fail(source, doc.problems, doc.marks)
        marks, raw = doc.marks, doc.data
    else:
        raw = data
    if raw is None:
        problem = ConfigProblem("", "the pipeline is empty; expected a mapping with tasks")
        raise PipelineConfigError(source, [problem])
    if not isinstance(raw, Mapping):
        problem = ConfigProblem(
            "",
            f"expected a mapping (name, agents, tasks, ...) at the top, got {type(raw).__name__}",
        )
        raise PipelineConfigError(source, [problem])
    try:
        parsed = _PipelineFile.model_validate(dict(raw))
    except ValidationError as exc:
        problems = [
            ConfigProblem(format_path(loc), message)
            for loc, message in translate_errors(exc, model=_PipelineFile)
        ]
        _fail(source, problems, marks)
    name = parsed.name or _default_name(default_name or "pipeline")
    general = {k: getattr(parsed, k) for k in PipelineConfig.model_fields if k not in _GENERAL_ONLY}
    general["name"] = name
    if any(getattr(parsed, key) is not None for key in SEED_KEYS):
        config, where = to_general(
            general,
            parsed.etl_stages or [],
            parsed.processing_stages or [],
            parsed.analysis_stages or [],
            parsed.agents,
            parsed.tasks,
        )
    else:
        config = PipelineConfig.model_construct(**general, agents=parsed.agents, tasks=parsed.tasks)
        where = Locations.general(config)
    problems = config_problems(config, where)
    if problems:
        _fail(source, problems, marks)
    return config


def validate_pipeline(config: PipelineConfig, *, source: str | None = None) -> PipelineConfig:
    """Run the DAG and params checks on a config built in Python; return it if valid."""
    problems = config_problems(config, Locations.general(config))
    if problems:
        _fail(source or config.name, problems, {})
    return config


def load_pipeline(path: str | os.PathLike[str]) -> PipelineConfig:
    """Read and validate the pipeline file at ``path`` (YAML, general or seed form).

    The pipeline's name defaults to the file name without its extension.
    """
    file = Path(path)
    source = os.fspath(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise PipelineConfigError(source, [ConfigProblem("", "file not found")]) from None
    except IsADirectoryError:
        raise PipelineConfigError(
            source, [ConfigProblem("", "is a directory, not a file")]
        ) from None
    except OSError as exc:
        problem = ConfigProblem("", f"cannot read: {exc.strerror or exc}")
        raise PipelineConfigError(source, [problem]) from None
    return parse_pipeline(data, source=source, default_name=file.stem)
