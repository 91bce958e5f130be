"""JSON encoding of payloads: strict, fast, and precise about what was wrong."""

from __future__ import annotations

import math
from typing import Any

import orjson

from .errors import PayloadError

__all__ = ["check_json", "dumps", "loads"]

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
        path, type_name = _find_bad(value, what)
        raise PayloadError(
            f"{path} is not JSON-serialisable: got {type_name}; use dict, list, str, int, "
            "float, bool or None",
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


def check_json(value: Any, *, what: str = "payload") -> None:
    """Raise :class:`PayloadError` unless ``value`` is JSON-serialisable."""
    dumps(value, what=what)


def _find_bad(value: Any, path: str) -> tuple[str, str]:
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        obj, where = stack.pop()
        if obj is None or isinstance(obj, (bool, int, float, str)):
            if type(obj) in (bool, int, float, str) or obj is None:
                continue
            return where, type(obj).__name__
        if type(obj) in (list, tuple):
            for i in range(len(obj) - 1, -1, -1):
                stack.append((obj[i], f"{where}[{i}]"))
            continue
        if type(obj) is dict:
            for key, item in obj.items():
                if not isinstance(key, str):
                    return f"{where} key {key!r}", f"{type(key).__name__} (keys must be str)"
                stack.append((item, f"{where}.{key}"))
            continue
        return where, type(obj).__name__
    return path, type(value).__name__


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
