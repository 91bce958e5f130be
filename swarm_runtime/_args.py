"""Checks of public-call arguments; every failure is an :class:`InvalidArgumentError`.

The hot paths test their arguments inline and call these only to build the error (or
call the ``check_*`` helpers off the hot path), so a bad argument reads the same from
every backend and every layer: ``delay must be a finite number of seconds >= 0, got -1``.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["bad_argument", "check_count", "check_seconds", "is_number"]


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def bad_argument(
    name: str, value: object, expected: str, *, kind: bool | None = None
) -> InvalidArgumentError:
    """The error for ``name=value`` where ``expected`` was wanted: an
    :class:`ArgumentTypeError` when ``kind`` is False (the value is not even of the right
    type), else an :class:`InvalidArgumentError`."""
    text = f"{name} must be {expected}, got {value!r}"
    if kind is False:
        return ArgumentTypeError(f"{text} ({type(value).__name__})")
    return InvalidArgumentError(text)


def check_seconds(
    name: str, value: Any, *, positive: bool = False, none: bool = False
) -> float | None:
    """``value`` as seconds: a finite number >= 0 (> 0 if ``positive``; None if ``none``)."""
    if value is None and none:
        return None
    expected = f"a finite number of seconds {'> 0' if positive else '>= 0'}" + (
        " or None" if none else ""
    )
    if not is_number(value):
        raise bad_argument(name, value, expected, kind=False)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise bad_argument(name, value, expected)
    return float(value)


def check_count(name: str, value: Any, *, minimum: int = 1, none: bool = False) -> int | None:
    """``value`` as a whole number >= ``minimum`` (None if ``none``)."""
    if value is None and none:
        return None
    expected = f"an int >= {minimum}" + (" or None" if none else "")
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_argument(name, value, expected, kind=False)
    if value < minimum:
        raise bad_argument(name, value, expected)
    return int(value)
