"""Tool schemas from type hints, and arguments validated into those types."""

from __future__ import annotations

import enum
import functools
from typing import Any, Literal

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarm_runtime.errors import LLMError
from swarm_runtime.llm import compile_tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    zip_code: int


def rich(
    tags: list[str],
    mode: Literal["fast", "slow"],
    color: Color,
    address: Address,
    note: str | None = None,
    limit: int = 10,
    context_variables: dict[str, Any] | None = None,
) -> str:
    """Do a rich thing.

    With several lines of description.
    """
    return "ok"


def test_schema_from_type_hints_not_all_strings() -> None:
    """list[str], Literal, enums, Optional and pydantic models get JSON types (not strings)."""
    schema = compile_tool(rich).schema
    fn = schema["function"]
    assert fn["name"] == "rich"
    assert fn["description"].startswith("Do a rich thing.\n\nWith several lines")
    params = fn["parameters"]
    props = params["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["mode"] == {"enum": ["fast", "slow"], "type": "string"}
    assert props["color"] == {"$ref": "#/$defs/Color"}
    assert params["$defs"]["Color"]["enum"] == ["red", "blue"]
    assert props["address"] == {"$ref": "#/$defs/Address"}
    assert params["$defs"]["Address"]["properties"]["zip_code"]["type"] == "integer"
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["limit"]["default"] == 10


def test_defaults_are_not_required_and_context_variables_hidden() -> None:
    """Parameters with defaults are optional; context_variables never reaches the schema."""
    params = compile_tool(rich).schema["function"]["parameters"]
    assert sorted(params["required"]) == ["address", "color", "mode", "tags"]
    assert "context_variables" not in params["properties"]
    assert compile_tool(rich).wants_context


def test_context_variables_found_by_signature_not_co_varnames() -> None:
    """A local named context_variables is no parameter; a decorated function keeps its own."""

    def local_only(city: str) -> str:
        context_variables = {"x": 1}  # a local: Swarm's co_varnames check would pass it in
        return city + str(context_variables)

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return wrapper

    @decorate
    def wrapped(city: str, context_variables: dict[str, Any]) -> str:
        return city

    assert not compile_tool(local_only).wants_context
    tool = compile_tool(wrapped)
    assert tool.wants_context  # wrapper.__code__.co_varnames is (args, kwargs)
    assert list(tool.schema["function"]["parameters"]["properties"]) == ["city"]


def test_arguments_are_validated_into_their_types() -> None:
    """Arguments arrive as enum members and model instances; defaults fill the rest."""
    tool = compile_tool(rich)
    raw = (
        '{"tags": ["a"], "mode": "fast", "color": "blue", '
        '"address": {"street": "Main", "zip_code": "123"}}'
    )
    args = tool.parse(raw)
    assert args["color"] is Color.BLUE
    assert args["address"] == Address(street="Main", zip_code=123)
    assert args["limit"] == 10
    assert args["note"] is None
    with pytest.raises(pydantic.ValidationError):
        tool.parse('{"tags": "not a list", "mode": "x"}')
    with pytest.raises(ValueError):
        tool.parse("[1, 2]")


def test_unannotated_parameters_are_strings_as_in_swarm() -> None:
    """A parameter without a hint is a string, as Swarm describes it."""

    def plain(a, b=2):  # type: ignore[no-untyped-def]
        return a

    params = compile_tool(plain).schema["function"]["parameters"]
    assert params["properties"]["a"] == {"type": "string"}
    assert params["required"] == ["a"]


def test_a_function_that_cannot_be_a_tool_is_named() -> None:
    """A positional-only parameter cannot be passed by name: a clear LLMError."""

    def positional(a: int, /) -> str:
        return ""

    with pytest.raises(LLMError, match="'positional'.*positional-only"):
        compile_tool(positional)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True),
        st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none()),
        max_size=4,
    )
)
def test_kwargs_tool_accepts_only_declared_names(extra: dict[str, Any]) -> None:
    """Whatever extra keys the model sends, only declared parameters reach the function."""

    def one(x: int = 0) -> str:
        return str(x)

    import json

    payload = {k: v for k, v in extra.items() if k != "x"}
    assert set(compile_tool(one).parse(json.dumps(payload))) == {"x"}
