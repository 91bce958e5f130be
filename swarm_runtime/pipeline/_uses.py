"""Resolve an agent's ``uses: "package.module:callable"`` to the object it names."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

__all__ = ["import_callable"]


def import_callable(uses: str) -> Any:
    """Import ``package.module:attr.path`` and return the object.

    The module is looked up on ``sys.path`` (the working directory first under
    ``python -m``). Raises :class:`ConfigError` saying what could not be found.
    """
    module_name, sep, attr_path = uses.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"expected 'package.module:callable', got {uses!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for uses {uses!r}: {exc}; run from the "
            "directory that contains it, or add that directory to PYTHONPATH"
        ) from exc
    except Exception as exc:  # the user's module raised while importing
        raise ConfigError(
            f"importing {module_name!r} for uses {uses!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr_path!r} (from uses {uses!r})"
            ) from None
    if not callable(target):
        raise ConfigError(f"{uses!r} names a {type(target).__name__}, which is not callable")
    return target
