"""``uses: builtin.llm`` in pipeline YAML: model, instructions, functions, handoffs; a
task's inputs become its user message. Over HTTP with the real openai client."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from swarm_runtime import DataPipelineOrchestrator
from swarm_runtime.errors import ConfigError, PipelineConfigError
from swarm_runtime.pipeline import parse_pipeline
from swarm_runtime.testing import ScriptedServer, reply, tool_call

from . import yaml_tools

PIPELINE = """
name: support
queue: memory://
agents:
  - name: triage
    uses: builtin.llm
    model: gpt-4o-mini
    instructions: Route the customer to the right team.
    functions: ["tests.llm.yaml_tools:lookup_order"]
    handoffs: [refunds]
  - {name: refunds, uses: builtin.llm, instructions: Issue refunds.}
  - {name: summary, uses: builtin.llm, instructions: Summarise.}
tasks:
  - {name: ticket, agent: triage, params: {prompt: "Order 17 arrived broken, refund me"}}
  - {name: report, agent: summary, depends_on: [ticket]}
"""


@pytest.fixture
def openai_env(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "scripted")
    return server


async def test_yaml_llm_agents_with_tools_and_a_handoff(
    openai_env: ScriptedServer, tmp_path: Path
) -> None:
    """triage looks the order up and hands off to refunds; summary gets ticket's result."""
    server = openai_env
    server.script.add(
        tool_call("lookup_order", {"order_id": 17}),
        tool_call("transfer_to_refunds"),
        reply("Refund of order 17 issued."),
        reply("Customer refunded for a broken kettle."),
    )
    path = tmp_path / "support.yaml"
    path.write_text(PIPELINE)
    orch = DataPipelineOrchestrator()
    pipeline_id = orch.create_pipeline(str(path))
    with anyio.fail_after(30):
        result = await orch.execute_pipeline(pipeline_id)
    assert result.ok, result.error
    assert result.results["ticket"]["content"] == "Refund of order 17 issued."
    assert result.results["ticket"]["agent"] == "refunds"
    assert result.results["report"]["content"] == "Customer refunded for a broken kettle."
    assert yaml_tools.LOOKUPS[-1] == 17
    first = server.requests[0].body
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"][0]["content"] == "Route the customer to the right team."
    assert first["messages"][1] == {"role": "user", "content": "Order 17 arrived broken, refund me"}
    names = [tool["function"]["name"] for tool in first["tools"]]
    assert names == ["lookup_order", "transfer_to_refunds"]
    assert server.requests[2].body["messages"][0]["content"] == "Issue refunds."
    summary_user = server.requests[3].body["messages"][1]["content"]
    assert "Refund of order 17 issued." in summary_user


def test_llm_fields_only_on_llm_agents() -> None:
    """model/instructions/functions/handoffs on another agent are a config error."""
    bad = PIPELINE.replace(
        "uses: builtin.llm, instructions: Summarise.", "uses: builtin.transform, instructions: x"
    )
    with pytest.raises(PipelineConfigError, match="instructions only apply to 'uses: builtin.llm'"):
        parse_pipeline(bad, source="p.yaml")


def test_unknown_handoff_or_function_fails_at_create() -> None:
    """A handoff to an unknown agent, or a function that does not import, fails early."""
    orch = DataPipelineOrchestrator()
    with pytest.raises(ConfigError, match=r"handoffs\[0\]: unknown agent 'refundz'"):
        orch.create_pipeline(parse_pipeline(PIPELINE.replace("[refunds]", "[refundz]")))
    with pytest.raises(ConfigError, match="no attribute 'nope'"):
        orch.create_pipeline(
            parse_pipeline(PIPELINE.replace("yaml_tools:lookup_order", "yaml_tools:nope"))
        )
