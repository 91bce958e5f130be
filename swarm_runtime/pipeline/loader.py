"""Load and validate pipeline files: ``load_pipeline(path)`` and ``parse_pipeline(text)``.

Every problem is reported at once, one line each, as
``FILE:LINE:COLUMN: field.path: what was expected`` in a
:class:`~swarm_runtime.errors.PipelineConfigError`; nothing else escapes.

Big files load fast: the text is read by yaml-rs when nothing in it could be read
differently than by PyYAML (:mod:`._fastyaml`), and positions are looked up only when
there is a problem to report (:mod:`._locate`); anything else goes through PyYAML with
positions, as before. Files over :data:`MAX_PIPELINE_BYTES` or nesting deeper than
:data:`~._yaml.MAX_NESTING` levels are refused with a clear error.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from pydantic import Field, ValidationError

from ..agents.builtin._validation import format_path, translate_errors
from ..errors import ConfigProblem, PipelineConfigError
from ._checks import config_problems
from ._fastyaml import UNSURE, fast_load
from ._locate import locate_paths
from ._seed import SEED_KEYS, AnalysisStage, EtlStage, Locations, ProcessingStage, to_general
from ._yaml import MAX_NESTING, YamlSyntaxError, locate, parse_yaml
from .config import AgentSpec, Name, PipelineConfig, TaskSpec

__all__ = [
    "MAX_NESTING",
    "MAX_PIPELINE_BYTES",
    "load_pipeline",
    "parse_pipeline",
    "validate_pipeline",
]

#: the largest pipeline file accepted (a 100,000-task file is about 6 MB)
MAX_PIPELINE_BYTES = 64 * 1024 * 1024

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
    source: str, problems: list[ConfigProblem], marks: dict[str, tuple[int, int]] | None
) -> NoReturn:
    if marks is None:  # placed by the caller (it knows how to find the positions)
        raise PipelineConfigError(source, problems)
    located = []
    for problem in problems:
        line, column = problem.line, problem.column
        if line is None:
            line, column = locate(marks, problem.path)
        located.append(ConfigProblem(problem.path, problem.message, problem.kind, line, column))
    located.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
    raise PipelineConfigError(source, located)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a big file's many containers are built: they
    are all alive, and collections would walk them again and again (3x the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _too_large(source: str, size: int) -> PipelineConfigError:
    problem = ConfigProblem(
        "",
        f"the file is {size / 1024 / 1024:.1f} MiB; pipeline files are limited to "
        f"{MAX_PIPELINE_BYTES // 1024 // 1024} MiB (split the pipeline, or generate it in "
        "Python and pass a PipelineConfig)",
        "too_large",
    )
    return PipelineConfigError(source, [problem])


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
    if not isinstance(data, (str, bytes)):
        return _validate(data, source, default_name, None)
    if len(data) > MAX_PIPELINE_BYTES:
        raise _too_large(source, len(data))
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = ConfigProblem("", f"not UTF-8 text (byte {exc.start})", "syntax")
            raise PipelineConfigError(source, [problem]) from None
    with _gc_paused():
        raw = fast_load(data)
        if raw is not UNSURE:
            _check_top(raw, source)
            try:
                return _validate(raw, source, default_name, None)
            except PipelineConfigError as exc:
                unplaced = (p.path for p in exc.problems if p.line is None)
                found = locate_paths(data, unplaced, raw)
                _fail(source, list(exc.problems), found)
        try:
            doc = parse_yaml(data)
        except YamlSyntaxError as exc:
            raise PipelineConfigError(source, [exc.problem]) from None
        if doc.problems:
            _fail(source, doc.problems, doc.marks)
        return _validate(doc.data, source, default_name, doc.marks)


def _check_top(raw: Any, source: str) -> None:
    """A pipeline is a mapping: say so plainly (no position) when it is not."""
    if raw is None:
        problem = ConfigProblem("", "the pipeline is empty; expected a mapping with tasks")
        raise PipelineConfigError(source, [problem])
    if not isinstance(raw, Mapping):
        problem = ConfigProblem(
            "",
            f"expected a mapping (name, agents, tasks, ...) at the top, got {type(raw).__name__}",
        )
        raise PipelineConfigError(source, [problem])


def _validate(
    raw: Any,
    source: str,
    default_name: str | None,
    marks: dict[str, tuple[int, int]] | None,
) -> PipelineConfig:
    """The config of parsed data; ``marks`` place the problems (None: leave them unplaced)."""
    _check_top(raw, source)
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
        size = file.stat().st_size
        if size > MAX_PIPELINE_BYTES and file.is_file():
            raise _too_large(source, size)
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
