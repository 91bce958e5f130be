"""The :class:`Builtin` record and the helpers every built-in agent uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from ...errors import ConfigProblem, DataError, PipelineConfigError
from ._table import Table
from ._validation import format_path, translate_errors

__all__ = ["Builtin", "BuiltinKind", "pick_input", "pick_table"]

BuiltinKind = Literal["source", "transform", "analysis", "sink"]
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Builtin(Generic[P]):
    """A built-in data agent's work: validated params in, JSON result out.

    ``run`` is synchronous and may block on files: call it in a worker thread.
    ``needs_input`` says whether the task must have an upstream task.
    """

    name: str
    kind: BuiltinKind
    description: str
    params_model: type[P]
    work: Callable[[P, Mapping[str, Any]], Any]

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

    def run(self, params: Mapping[str, Any], inputs: Mapping[str, Any]) -> Any:
        """Validate ``params`` and do the work on ``inputs`` (upstream task name → result)."""
        return self.work(self.validate(params), inputs)

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


def pick_table(builtin: str, inputs: Mapping[str, Any], name: str | None) -> Table:
    """Like :func:`pick_input`, checked to be a table."""
    source, value = pick_input(builtin, inputs, name)
    return Table.from_json(value, what=f"{builtin}: the result of {source!r}")
