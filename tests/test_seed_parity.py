"""Seed parity: the example usage of each of the seed's 13 slides, run against our API.

Each test states what its slide promises (not the slide's code, which is a naive sketch),
made async where the component does I/O, and checks the defects the design lists are gone.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.orchestrator import DataPipelineOrchestrator, WorkflowOrchestrator
from swarm_runtime.services import (
    ErrorHandler,
    LoadBalancer,
    MetricsCollector,
    MonitoringSystem,
    SelfOptimizer,
)


async def test_slide_01_agent_processes_a_message_and_keeps_history() -> None:
    """Slide 1: an agent with a name and a role processes a message and remembers it."""

    class Analyzer(sr.Agent):
        async def handle(self, msg: sr.Message, ctx: sr.Context) -> dict[str, str]:
            return {
                "sender": ctx.agent,
                "status": "processed",
                "content": f"Processed message from {msg.sender}",
            }

    async with sr.Runtime(queue="memory://") as rt:
        agent = rt.add_agent(Analyzer("agent_1", role="analyzer", history_size=10))
        response = await rt.request("agent_1", {"content": "analyze_data"}, sender="agent_2")
    assert response == {
        "sender": "agent_1",
        "status": "processed",
        "content": "Processed message from agent_2",
    }
    assert agent.role == "analyzer"
    assert [m.payload for m in agent.history] == [{"content": "analyze_data"}]
    assert agent.history.maxlen == 10  # bounded, unlike the seed's list


async def test_slide_02_handoff_is_initiated_then_completed() -> None:
    """Slide 2: a handoff goes pending -> completed, and settles only once."""
    handoff = sr.HandoffProtocol()
    task = {"type": "data_analysis", "priority": "high"}
    handoff_id = await handoff.initiate_handoff("agent_1", "agent_2", task)
    assert (await handoff.get(handoff_id)).status == "pending"  # type: ignore[union-attr]
    assert await handoff.complete_handoff(handoff_id, True) is True
    record = await handoff.get(handoff_id)
    assert record is not None
    assert record.status == "completed"
    assert await handoff.complete_handoff(handoff_id, False) is False


def test_slide_03_data_processing_agent_normalises_and_summarises() -> None:
    """Slide 3: the processor normalises numbers and summarises; a zero max is safe."""
    processor = sr.DataProcessingAgent("data_proc_1")
    results = processor.process_data([10, 20, 30, 40, 50])
    assert [r["normalized"] for r in results] == [0.2, 0.4, 0.6, 0.8, 1.0]
    summary = processor.get_processing_summary()
    assert summary["items_processed"] == 5
    assert summary["last_processing"]["original"] == 50
    assert [r["normalized"] for r in processor.process_data([0, 0])] == [0.0, 0.0]


async def test_slide_04_communication_system_delivers_and_refuses_unknown() -> None:
    """Slide 4: a message sent to a registered agent is fetched by it; unknown → error."""
    async with sr.MessageQueue.open("memory://") as queue:
        comm = sr.CommunicationSystem(queue)
        comm.register_agent("agent_1")
        comm.register_agent("agent_2")
        msg_id = await comm.send_message("agent_1", "agent_2", {"action": "process_data"})
        [message] = await comm.fetch_messages("agent_2")
        assert (message.id, message.payload) == (msg_id, {"action": "process_data"})
        with pytest.raises(sr.UnknownAgentError, match="agent_1, agent_2"):
            await comm.send_message("agent_1", "agent_3", {})


async def test_slide_05_workflow_runs_in_dependency_order() -> None:
    """Slide 5: a two-task workflow runs analyze_results after process_data and completes;
    with no free agent it waits instead of spinning."""
    order: list[str] = []
    async with sr.Runtime(queue="memory://") as rt:
        orchestrator = WorkflowOrchestrator(rt)

        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            await anyio.sleep(0.01)
            order.append(ctx.agent)
            return ctx.agent

        orchestrator.register_agent("agent_1", work, role="processor")
        orchestrator.register_agent("agent_2", work, role="analyzer")
        workflow = await orchestrator.create_workflow(
            tasks=[
                {"name": "process_data", "agent": "agent_1"},
                {"name": "analyze_results", "agent": "agent_2"},
            ],
            dependencies={"analyze_results": ["process_data"]},
        )
        result = await orchestrator.execute_workflow(workflow)
    assert result.ok
    assert order == ["agent_1", "agent_2"]


async def test_slide_06_state_updates_and_history() -> None:
    """Slide 6: register, update, read a copy and the history of one agent's state."""
    state_manager = sr.StateManager()
    await state_manager.register_agent_state("agent_1", {"status": "idle", "tasks_completed": 0})
    await state_manager.update_state("agent_1", {"status": "processing", "tasks_completed": 1})
    current = await state_manager.get_state("agent_1")
    current["status"] = "mutated"  # a copy: the manager is not affected
    assert await state_manager.get_state("agent_1") == {
        "status": "processing",
        "tasks_completed": 1,
    }
    history = await state_manager.get_state_history("agent_1")
    assert [h.state["status"] for h in history] == ["idle", "processing"]


def test_slide_07_monitoring_raises_an_alert_over_threshold() -> None:
    """Slide 7: response_time 0.8 is fine, queue_size 120 > 100 raises a medium alert."""
    monitor = MonitoringSystem()
    monitor.record_metric("agent_1", "response_time", 0.8)
    monitor.record_metric("agent_1", "queue_size", 120)
    assert len(monitor.get_agent_metrics("agent_1")) == 2
    [alert] = monitor.alerts
    assert (alert.metric, alert.severity) == ("queue_size", "medium")


def test_slide_08_task_failure_is_retried_with_backoff() -> None:
    """Slide 8: a task failure on retry 1 is answered with a retry after a backoff."""
    error_handler = ErrorHandler(retry=sr.RetryPolicy(max_attempts=3, base_delay=1, jitter=False))
    result = error_handler.handle_error(
        "agent_1", "task_failure", {"task_id": "process_data", "retry_count": 1}
    )
    assert result.action == "retry"
    assert result.kind == "task_failure"
    assert result.delay == 2.0  # 1 s doubled after the second attempt


async def test_slide_09_load_balancer_assigns_and_releases() -> None:
    """Slide 9: a task goes to an agent with room, and its load is released afterwards."""
    balancer = LoadBalancer()
    balancer.register_agent("agent_1", capacity=1.0)
    balancer.register_agent("agent_2", capacity=0.8)
    assignment = await balancer.assign_task({"id": "task_1", "load_estimate": 0.3})
    assert assignment.agent in {"agent_1", "agent_2"}
    assert balancer.release(assignment) is True
    assert all(r.in_flight == 0 for r in balancer.snapshot())


def test_slide_10_self_optimizer_keeps_parameters_in_bounds() -> None:
    """Slide 10: recording performance returns tuned parameters within their bounds."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("agent_1", {"batch_size": 10, "timeout": 5, "retry_limit": 3})
    params = optimizer.record_performance(
        "agent_1", {"throughput": 100, "latency": 0.5, "success_rate": 0.95}
    )
    assert 1 <= params["batch_size"] <= 100
    assert 1 <= params["timeout"] <= 30
    assert params["retry_limit"] == 3


async def test_slide_11_data_pipeline_runs_etl_processing_and_analysis(tmp_path: Path) -> None:
    """Slide 11: the seed's stage config runs extraction, feature engineering and the
    statistical analysis in order, on a database source."""
    database = tmp_path / "sales.db"
    with sqlite3.connect(database) as connection:
        connection.execute("create table sales (units real, price real, region text)")
        connection.executemany(
            "insert into sales values (?, ?, ?)",
            [(i, 10.0 + (i * 7) % 5, "north" if i % 2 else "south") for i in range(1, 41)],
        )
    config: dict[str, Any] = {
        "name": "seed",
        "queue": "memory://",
        "etl_stages": [
            {
                "name": "data_extraction",
                "source": {"type": "sqlite", "path": str(database), "table": "sales"},
                "transforms": ["normalize", "clean"],
            }
        ],
        "processing_stages": [
            {"name": "feature_engineering", "operations": ["scaling", "encoding"]}
        ],
        "analysis_stages": [
            {"name": "statistical_analysis", "metrics": ["correlation", "distribution"]}
        ],
    }
    orchestrator = DataPipelineOrchestrator(runs_dir=tmp_path / "runs")
    pipeline_id = orchestrator.create_pipeline(config)
    results = await orchestrator.execute_pipeline(pipeline_id, input_data={"raw_data": [1, 2]})
    assert results.ok, results.error
    analysis = results.results["statistical_analysis"]
    assert analysis["rows"] == 40
    assert set(analysis["distribution"]) >= {"units", "price"}
    assert "correlation" in analysis


async def test_slide_12_message_queue_publish_subscribe_ack_nack() -> None:
    """Slide 12: published messages are delivered, acked ones are gone, nacked ones return."""
    async with sr.MessageQueue.open("memory://") as queue:
        message_id = await queue.publish(
            "data_processing", {"action": "process", "data": [1, 2, 3]}
        )
        first = await queue.publish("data_processing", {"action": "fail"})
        for msg in await queue.subscribe("data_processing", batch_size=10):
            if msg.payload["action"] == "process":
                await queue.acknowledge(msg.id)
            else:
                await queue.nack(msg.id, error="could not process")
        [again] = await queue.subscribe("data_processing")
        assert (again.id, again.attempts, again.last_error) == (first, 2, "could not process")
        assert message_id != first


def test_slide_13_metrics_alerts_and_time_range_queries() -> None:
    """Slide 13: configured alerts fire on breach; metrics are queried by time range
    (in memory, so synchronous)."""
    metrics = MetricsCollector()
    metrics.configure_alert("response_time", {"max": 1.0})
    metrics.configure_alert("error_rate", {"max": 0.05})
    metrics.record_metric("agent_1", "response_time", 0.8)
    metrics.record_metric("agent_1", "error_rate", 0.02)
    metrics.record_metric("agent_1", "response_time", 1.5)
    recent = metrics.get_metrics("agent_1", "response_time", (time.time() - 3600, time.time() + 1))
    assert [sample.value for sample in recent] == [0.8, 1.5]
    assert len(metrics.alerts) == 1
