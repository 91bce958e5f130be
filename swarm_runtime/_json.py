"""JSON encoding of payloads: strict, fast, and precise about what was wrong."""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from typing import Any

import orjson

from .errors import PayloadError

__all__ = ["check_json", "dumps", "dumps_many", "loads"]

_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

loads = orjson.loads


def _refuse(obj: Any) -> Any:
    raise TypeError(type(obj).__name__)


def dumps(value: Any, *, what: str = "payload") -> bytes:
    """Encode ``value`` as JSON bytes, refusing anything that would not round-trip.

    Raises :class:`PayloadError` naming the path and type of the first bad value.
    """
    try:
        data = orjson.dumps(value, default=_refuse, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        path, type_name, reason = _find_bad(value, what)
        raise PayloadError(
            f"{_short(path)} is not JSON-serialisable: {reason}",
            path=path,
            type_name=type_name,
        ) from exc
    if b"null" in data and _has_nonfinite(value):
        # orjson writes NaN and infinities as null: name the first one.
        bad = _find_nonfinite(value, what)
        if bad is not None:
            raise PayloadError(
                f"{bad} is a non-finite float (NaN or infinity), which JSON cannot carry",
                path=bad,
                type_name="float",
            )
    return data


def dumps_many(values: Sequence[Any], *, what: str = "payloads") -> list[bytes]:
    """:func:`dumps` of each value (a batch); an error names the position: ``payloads[3]``."""
    encode = orjson.dumps
    try:
        out = [encode(value, default=_refuse, option=_OPTIONS) for value in values]
    except (TypeError, orjson.JSONEncodeError):
        for i, value in enumerate(values):
            dumps(value, what=f"{what}[{i}]")
        raise
    if any(map(operator.contains, out, itertools.repeat(b"null"))):  # scanned in C
        for i, data in enumerate(out):
            if b"null" in data and _has_nonfinite(values[i]):
                dumps(values[i], what=f"{what}[{i}]")
    return out


def check_json(value: Any, *, what: str = "payload") -> None:
    """Raise :class:`PayloadError` unless ``value`` is JSON-serialisable."""
    dumps(value, what=what)


#: orjson's limits: integers must fit 64 bits, containers nest at most 255 deep.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
MAX_DEPTH = 255
_WRONG_TYPE = "got {}; use dict, list, str, int, float, bool or None"


def _find_bad(value: Any, path: str) -> tuple[str, str, str]:
    """``(path, type name, reason)`` of the first value orjson refuses, depth first."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        obj, where, depth = stack.pop()
        kind = type(obj)
        if obj is None or kind is bool or kind is float:
            continue
        if kind is int:
            if not _INT_MIN <= obj <= _INT_MAX:
                return where, "int", "integer out of range (JSON numbers here are 64-bit)"
            continue
        if kind is str:
            if not _is_utf8(obj):
                return where, "str", "invalid unicode (a lone surrogate cannot be encoded)"
            continue
        if kind in (list, tuple, dict):
            if depth >= MAX_DEPTH:
                return where, kind.__name__, f"nesting too deep (more than {MAX_DEPTH} levels)"
            if kind is dict:
                for key, item in obj.items():
                    if not isinstance(key, str):
                        name = f"{type(key).__name__} (keys must be str)"
                        return f"{where} key {key!r}", name, f"got {name}"
                    if not _is_utf8(key):
                        return f"{where} key", "str", "invalid unicode in a key"
                    stack.append((item, f"{where}.{key}", depth + 1))
            else:
                for i in range(len(obj) - 1, -1, -1):
                    stack.append((obj[i], f"{where}[{i}]", depth + 1))
            continue
        return where, kind.__name__, _WRONG_TYPE.format(kind.__name__)
    kind_name = type(value).__name__
    return path, kind_name, _WRONG_TYPE.format(kind_name)


def _short(path: str, limit: int = 120) -> str:
    """``path`` for a message: a very deep one keeps its start and end."""
    return path if len(path) <= limit else f"{path[:60]}...{path[-50:]}"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_nonfinite(value: Any) -> bool:
    """Whether ``value`` holds a NaN or an infinity anywhere (fast: no paths built)."""
    if type(value) is float:
        return value - value != 0.0
    stack = [value]
    while stack:
        obj = stack.pop()
        kind = type(obj)
        items = obj.values() if kind is dict else obj if kind is list or kind is tuple else ()
        for item in items:
            kind = type(item)
            if kind is float:
                if item - item != 0.0:  # inf - inf and nan - nan are nan
                    return True
            elif kind is dict or kind is list or kind is tuple:
                stack.append(item)
    return False


def _find_nonfinite(value: Any, path: str) -> str | None:
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        obj, where = stack.pop()
        if isinstance(obj, float):
            if not math.isfinite(obj):
                return where
        elif isinstance(obj, (list, tuple)):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(obj))
        elif isinstance(obj, dict):
            stack.extend((item, f"{where}.{key}") for key, item in obj.items())
    return None
