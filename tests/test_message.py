"""Message envelope, strict JSON payloads (property-tested) and topic validation."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import swarm_runtime as sr
from swarm_runtime import _json
from swarm_runtime.message import validate_topic

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_json_payloads_round_trip(value: Any) -> None:
    """Every JSON value encodes and decodes to itself."""
    assert _json.loads(_json.dumps(value)) == value


class Opaque:
    pass


@given(json_values, st.data())
def test_a_bad_value_anywhere_is_named_by_its_path(value: Any, data: st.DataObject) -> None:
    """Planting a non-JSON object anywhere yields a PayloadError whose path leads to it."""
    bad = Opaque()
    path = "payload"
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        value[key] = bad
        path = f"payload.{key}"
    elif isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        value[index] = bad
        path = f"payload[{index}]"
    else:
        value = bad
    with pytest.raises(sr.PayloadError) as info:
        _json.dumps(value)
    assert info.value.path == path
    assert info.value.type_name == "Opaque"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    """NaN and infinities cannot travel as JSON and are refused, not turned into null."""
    with pytest.raises(sr.PayloadError, match=r"payload\.x\[1\] is a non-finite float"):
        _json.dumps({"x": [1.0, bad]})
    assert _json.dumps({"x": None}) == b'{"x":null}'


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return {"outer": value}


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ({"outer": {"x": 2**70}}, "payload.outer.x", "integer out of range"),
        ({"outer": {"x": -(2**64)}}, "payload.outer.x", "integer out of range"),
        ({"outer": ["ok", "\ud800"]}, "payload.outer[1]", "invalid unicode"),
        ({"outer": {"k\udfff": 1}}, "payload.outer key", "invalid unicode"),
        (_nested(300), "payload.outer" + ".a" * 254, "nesting too deep"),
    ],
    ids=["big-int", "small-int", "surrogate", "surrogate-key", "deep"],
)
def test_values_orjson_refuses_are_named_with_a_reason(value: Any, path: str, reason: str) -> None:
    """Out-of-range integers, lone surrogates and deep nesting name their path and why."""
    with pytest.raises(sr.PayloadError, match=reason) as info:
        _json.dumps(value)
    assert info.value.path == path
    assert "got dict" not in str(info.value)
    assert len(str(info.value)) < 300


def test_the_largest_accepted_values_still_encode() -> None:
    """The edges of orjson's ranges stay accepted: 64-bit integers, 255 levels of nesting."""
    assert (
        _json.dumps({"x": [2**64 - 1, -(2**63)]})
        == b'{"x":[18446744073709551615,-9223372036854775808]}'
    )
    deep: Any = 1
    for _ in range(254):
        deep = [deep]
    assert _json.loads(_json.dumps(deep)) == deep


def test_message_round_trips_through_json() -> None:
    """A message serialises to JSON and back with every field."""
    msg = sr.Message(
        topic="t", payload={"a": [1, 2]}, sender="s", headers={"k": "v"}, workflow_id="w"
    )
    again = sr.Message.from_json(msg.to_json())
    assert again == msg
    assert len(msg.id) == 32


def test_message_model_rejects_unknown_fields() -> None:
    """The pydantic model refuses misspelt fields."""
    with pytest.raises(ValueError, match="paylod"):
        sr.Message(topic="t", paylod=1)  # type: ignore[call-arg]


@given(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_:@+=-]{0,60}", fullmatch=True))
def test_valid_topics_are_accepted(topic: str) -> None:
    """Names made of the allowed characters pass validation."""
    assert validate_topic(topic) == topic


@given(st.text(max_size=12), st.sampled_from(["/", "\\", "..", "../"]), st.text(max_size=12))
def test_topics_with_path_tricks_are_refused(prefix: str, trick: str, suffix: str) -> None:
    """Path separators and '..' are always refused."""
    with pytest.raises(sr.InvalidTopicError):
        validate_topic(prefix + trick + suffix)


async def test_delivered_messages_behave_as_pydantic_models_each_of_its_own(
    make_queue: Any,
) -> None:
    """Messages a queue builds without validation copy, compare and update like any model,
    and changing one (assignment, model_copy) changes no other."""
    queue = await make_queue()
    await queue.publish_many("t", [{"n": 1}, {"n": 2}])
    first, second = await queue.subscribe("t", batch_size=2)
    every = set(sr.Message.model_fields)
    assert first.model_fields_set == every
    assert second.model_fields_set == every
    copied = first.model_copy(update={"attempts": 9, "payload": {"n": 3}})
    assert (copied.attempts, copied.payload) == (9, {"n": 3})
    assert (first.attempts, first.payload) == (1, {"n": 1})
    first.payload = {"n": 4}
    assert second.payload == {"n": 2}
    assert second.model_fields_set == every
    assert sr.Message.model_validate(second.model_dump()) == second
    assert copied.model_fields_set == every
