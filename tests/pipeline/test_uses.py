"""Resolving ``uses: "module:callable"`` to user code."""

from __future__ import annotations

import json

import pytest

from swarm_runtime.errors import ConfigError
from swarm_runtime.pipeline import import_callable


def test_imports_a_dotted_attribute() -> None:
    """A module path and a dotted attribute path resolve to the callable."""
    assert import_callable("json:dumps") is json.dumps
    assert import_callable("json:JSONDecoder.decode") is json.JSONDecoder.decode


@pytest.mark.parametrize(
    ("uses", "expected"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("json:nope", "module 'json' has no attribute 'nope'"),
        ("json:__doc__", "names a str, which is not callable"),
        ("json", "expected 'package.module:callable'"),
    ],
)
def test_bad_references_say_what_is_missing(uses: str, expected: str) -> None:
    """A reference that cannot be resolved raises ConfigError naming the missing piece."""
    with pytest.raises(ConfigError, match=expected):
        import_callable(uses)
