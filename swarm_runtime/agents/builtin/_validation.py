"""Turn pydantic validation errors into one readable line per problem.

Shared by the built-in agents (runtime params checks) and the pipeline loader,
which adds the file, the line and the column.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = [
    "describe_value",
    "did_you_mean",
    "format_path",
    "join_path",
    "translate_errors",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Loc = tuple[str | int, ...]

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def format_path(loc: Iterable[str | int]) -> str:
    """``("tasks", 2, "depends_on", 0)`` → ``tasks[2].depends_on[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def join_path(base: str, *parts: str | int) -> str:
    """``join_path("tasks[0]", "params", "ops", 1)`` → ``tasks[0].params.ops[1]``."""
    tail = format_path(parts)
    if not base or not tail:
        return base or tail
    return base + tail if tail.startswith("[") else f"{base}.{tail}"


def describe_value(value: object) -> str:
    """A short, YAML-flavoured description of a bad input: ``str 'abc'``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = str(value) if isinstance(value, (datetime.date, datetime.time)) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if isinstance(value, (int, float, str)):
        return text
    return f"{type(value).__name__} {text}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(annotation) if _is_model(a)]
            return models[0] if len(models) == 1 else annotation
        else:
            return annotation


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validated the mapping at ``loc`` (None if unknown)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, str) and _is_model(current):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif isinstance(part, int) and typing.get_origin(current) in (list, tuple):
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if _is_model(current) else None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _message(error: Any, root: type[BaseModel] | None) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    loc: Loc = tuple(error["loc"])
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1]) if root is not None else None
        if model is None:
            return "unknown field"
        names = _field_names(model)
        hint = did_you_mean(str(loc[-1]), names)
        return f"unknown field{hint}; expected one of: {', '.join(names)}"
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {describe_value(value)}"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        noun = "an integer" if type(value) is int else "a number"
        return f"expected {noun} {op} {ctx.get(key)}, got {describe_value(value)}"
    if kind == "literal_error":
        expected = ctx.get("expected", "one of the allowed values")
        return f"expected {expected}, got {describe_value(value)}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        plural = "s" if bound != 1 else ""
        return f"expected {word} {bound} item{plural}, got {ctx.get('actual_length')}"
    if kind in ("string_too_short", "string_too_long"):
        if kind == "string_too_short" and ctx.get("min_length") == 1:
            return "expected a non-empty string"
        word = "at least" if kind == "string_too_short" else "at most"
        bound = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        return f"expected a string of {word} {bound} characters"
    message: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


def translate_errors(
    exc: ValidationError, *, model: type[BaseModel] | None = None
) -> list[tuple[Loc, str]]:
    """``(loc, message)`` per error, ``loc`` cleaned of pydantic's internal markers."""
    out: list[tuple[Loc, str]] = []
    seen: set[tuple[Loc, str]] = set()
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p == "[key]"))
        message = _message(error, model)
        if "[key]" in error["loc"]:
            message = f"mapping keys must be strings, got {describe_value(error.get('input'))}"
        if (loc, message) not in seen:
            seen.add((loc, message))
            out.append((loc, message))
    return out
