"""DataProcessingAgent (seed slide 3): safe normalisation and a processing summary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import swarm_runtime as sr


def test_normalises_by_the_largest_magnitude() -> None:
    """[10..50] becomes [0.2..1.0]; the summary counts the items and shows the last one."""
    agent = sr.DataProcessingAgent("data_proc_1")
    records = agent.process_data([10, 20, 30, 40, 50])
    assert [r["normalized"] for r in records] == [0.2, 0.4, 0.6, 0.8, 1.0]
    summary = agent.get_processing_summary()
    assert summary["items_processed"] == 5
    assert summary["last_processing"]["original"] == 50.0


def test_zero_max_and_junk_do_not_crash() -> None:
    """An all-zero batch maps to 0.0 (no division by zero); non-numbers are skipped."""
    agent = sr.DataProcessingAgent()
    records = agent.process_data([0, 0.0, "x", None, True, float("nan")])
    assert [r["normalized"] for r in records] == [0.0, 0.0]
    assert agent.get_processing_summary()["items_skipped"] == 4
    with pytest.raises(sr.PayloadError, match="list of numbers"):
        agent.process_data("10,20")  # type: ignore[arg-type]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=50))
def test_normalised_values_keep_order_and_stay_in_range(values: list[float]) -> None:
    """Every normalised value is in [-1, 1] and the order of the inputs is preserved."""
    records = sr.DataProcessingAgent().process_data(values)
    normalized = [r["normalized"] for r in records]
    assert all(-1.0 <= v <= 1.0 for v in normalized)
    for (a, x), (b, y) in zip(
        zip(values, normalized, strict=True),
        zip(values[1:], normalized[1:], strict=True),
        strict=False,
    ):
        if a < b:
            assert x <= y


async def test_runs_as_an_agent_in_the_runtime() -> None:
    """Sent {"data": [...]}, it replies with the processed list and keeps a summary in state."""
    async with sr.Runtime(queue="memory://") as rt:
        rt.add_agent(sr.DataProcessingAgent("proc"))
        reply = await rt.request("proc", {"data": [1, -2, 4]})
        assert [r["normalized"] for r in reply] == [0.25, -0.5, 1.0]
        state = await rt.state.get_state("proc")
        assert state["last_summary"]["items_processed"] == 3
