"""The :class:`Builtin` record and the helpers every built-in agent uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import polars as pl
from pydantic import BaseModel, ValidationError

from ...artifacts import (
    ArtifactRef,
    TableInput,
    frame_from_json,
    frame_to_json,
    is_artifact_ref,
    is_json_table,
    open_table,
    polars_error,
)
from ...errors import ConfigProblem, DataError, PipelineConfigError
from ._validation import format_path, translate_errors

__all__ = ["Builtin", "BuiltinKind", "is_frame", "pick_input", "pick_table", "prepare_inputs"]

BuiltinKind = Literal["source", "transform", "analysis", "sink"]
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Builtin(Generic[P]):
    """A built-in data agent's work: validated params in, a table or JSON out.

    ``work(params, inputs)`` gets upstream tables as Polars lazy frames (see
    :func:`prepare_inputs`) and returns a frame (a table result) or JSON (analyses,
    sinks). :meth:`compute` is what the pipeline runs (the caller stores a frame as an
    artifact); :meth:`run` is the same with JSON tables in and out. Both are synchronous
    and may block on files and CPU: call them in a worker thread. ``needs_input`` says
    whether the task must have an upstream task; ``many_inputs`` that it may have several
    without naming one in ``params.input``.
    """

    name: str
    kind: BuiltinKind
    description: str
    params_model: type[P]
    work: Callable[[P, Mapping[str, Any]], Any]
    many_inputs: bool = False  # works on several upstream results at once (join, sql, json_sink)

    @property
    def needs_input(self) -> bool:
        """Sources read files; every other kind works on an upstream result."""
        return self.kind != "source"

    def validate(self, params: Mapping[str, Any]) -> P:
        """Check ``params``; :class:`PipelineConfigError` lists every problem (``params.x``)."""
        try:
            return self.params_model.model_validate(dict(params))
        except ValidationError as exc:
            problems = [
                ConfigProblem(format_path(("params", *loc)), message)
                for loc, message in translate_errors(exc, model=self.params_model)
            ]
            raise PipelineConfigError(self.name, problems) from None

    def compute(self, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        """Validate ``params`` and do the work on ``inputs`` (upstream task name → result:
        artifact references, JSON tables, frames or any JSON); a table comes back as a
        Polars frame (lazy when it can stream)."""
        return self.work(self.validate(params), prepare_inputs(inputs))

    def run(self, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        """:meth:`compute` with a table result as JSON ``{"columns", "rows"}``."""
        result = self.compute(params, inputs)
        if not is_frame(result):
            return result
        try:
            return frame_to_json(result)
        except pl.exceptions.PolarsError as exc:
            raise polars_error(self.name, exc) from exc

    def params_schema(self) -> dict[str, Any]:
        """JSON schema of the params (for docs and ``--help`` style listings)."""
        return self.params_model.model_json_schema()


def pick_input(builtin: str, inputs: Mapping[str, Any], name: str | None) -> tuple[str, Any]:
    """The upstream result to work on: ``params.input`` if given, else the only one."""
    if name is not None:
        if name not in inputs:
            upstream = ", ".join(inputs) or "none"
            raise DataError(
                f"{builtin}: params.input is {name!r}, which is not an upstream task of this "
                f"task (upstream: {upstream}); add it to depends_on"
            )
        return name, inputs[name]
    if len(inputs) == 1:
        return next(iter(inputs.items()))
    if not inputs:
        raise DataError(f"{builtin} needs an upstream result: give the task a depends_on")
    raise DataError(
        f"{builtin}: the task has {len(inputs)} upstream results ({', '.join(inputs)}); "
        "set params.input to the one to use"
    )


def is_frame(value: object) -> bool:
    """True for a Polars frame (eager or lazy)."""
    return isinstance(value, (pl.DataFrame, pl.LazyFrame))


def prepare_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream results with every table as a lazy frame: artifact references are opened
    (verified), JSON tables and :class:`TableInput` converted; other JSON is kept."""
    prepared: dict[str, Any] = {}
    for name, value in inputs.items():
        if is_artifact_ref(value):
            value = open_table(ArtifactRef.from_json(value))
        elif isinstance(value, TableInput):
            value = value.to_lazy()
        elif isinstance(value, pl.DataFrame):
            value = value.lazy()
        elif is_json_table(value):
            value = frame_from_json(value, what=f"the result of {name!r}").lazy()
        prepared[name] = value
    return prepared


def pick_table(builtin: str, inputs: Mapping[str, Any], name: str | None) -> pl.LazyFrame:
    """Like :func:`pick_input`, checked to be a table (as prepared by :func:`prepare_inputs`)."""
    source, value = pick_input(builtin, inputs, name)
    if isinstance(value, pl.LazyFrame):
        return value
    if isinstance(value, pl.DataFrame):
        return value.lazy()
    if isinstance(value, Mapping):
        # the JSON shape, checked here so the error names what is wrong
        return frame_from_json(value, what=f"{builtin}: the result of {source!r}").lazy()
    raise DataError(
        f"{builtin}: the result of {source!r} is not a table: "
        f'expected a table {{"columns": [names...], "rows": [[values...], ...]}}, '
        f"got {type(value).__name__}"
    )
