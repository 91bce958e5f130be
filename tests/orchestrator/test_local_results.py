"""Results handed to the scheduler in-process (the local results path), and its safety."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.orchestrator import TaskState, WorkflowOrchestrator
from swarm_runtime.orchestrator._runstore import decode_lines

from ._helpers import orchestrator

ROOT = Path(__file__).resolve().parents[2]
GUARD = 10
WAIT = 60.0  # seconds for the crashing subprocess


def task_records(path: Path, name: str) -> list[dict[str, Any]]:
    records, _, _ = decode_lines(path.read_bytes())
    return [r for r in records if r.get("k") == "task" and r.get("name") == name]


async def test_local_replies_skip_the_results_topic() -> None:
    """Replicas in this process hand results over in-process: nothing is published on the
    run's results topic, and the run completes with every result."""
    published: list[str] = []
    async with orchestrator() as orch:
        rt = orch.runtime
        publish = rt.queue.publish

        async def spy(topic: str, payload: Any = None, **options: Any) -> str:
            published.append(topic)
            return await publish(topic, payload, **options)

        publish_all = rt.queue.publish_all

        async def spy_all(messages: list[sr.Outgoing], *, routes: Any = None) -> list[str]:
            if routes is None:
                published.extend(m.to for m in messages)
            else:
                published.extend(route[0] for route in routes)
            return await publish_all(messages, routes=routes)

        rt.queue.publish = spy  # type: ignore[method-assign]
        rt.queue.publish_all = spy_all  # type: ignore[method-assign]
        orch.register_agent("w", _name)
        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"n": "a"}},
                {"name": "b", "depends_on": ["a"], "params": {"n": "b"}},
                {"name": "c", "depends_on": ["a"], "params": {"n": "c"}},
            ]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert result.results == {"a": "a", "b": "b", "c": "c"}
    assert published.count("agent.w") == 3
    assert f"workflow.{workflow_id}" not in published


async def _name(msg: sr.Message, ctx: sr.Context) -> str:
    return str(msg.payload["params"]["n"])


async def test_replies_through_the_queue_still_count() -> None:
    """A reply published on the results topic (as a replica in another process does) is
    read by the scheduler's receiver and recorded like an in-process one."""
    async with orchestrator() as orch:
        rt = orch.runtime

        @rt.agent("remote")  # answers through the queue only, like a worker process
        async def remote(msg: sr.Message, ctx: sr.Context) -> None:
            await rt.queue.publish(
                msg.reply_to or "",
                {"ok": True, "result": f"remote {msg.payload['params']['n']}"},
                correlation_id=msg.correlation_id,
            )
            msg.reply_to = None  # no in-process reply

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"n": 1}},
                {"name": "b", "depends_on": ["a"], "params": {"n": 2}},
            ]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
        assert await rt.queue.depth(f"workflow.{workflow_id}") == 0
    assert result.ok
    assert result.results == {"a": "remote 1", "b": "remote 2"}


async def test_redelivered_task_answered_twice_in_process_is_recorded_once(
    tmp_path: Path,
) -> None:
    """A task message delivered twice to an agent outside the guard is answered twice
    in-process; the first answer is logged once and passed downstream, the second dropped."""
    answers: list[str] = []
    async with orchestrator(f"file://{tmp_path / 'q'}") as orch:
        rt = orch.runtime

        @rt.agent("w")  # not behind the guard: a redelivery runs the handler again
        async def work(msg: sr.Message, ctx: sr.Context) -> Any:
            if msg.payload["params"].get("twice"):
                if not answers:  # the first delivery: deliver the same task message again
                    await rt.send(
                        "w",
                        msg.payload,
                        reply_to=msg.reply_to,
                        correlation_id=msg.correlation_id,
                        workflow_id=msg.workflow_id,
                    )
                answers.append(f"answer {len(answers) + 1}")
                return answers[-1]
            return msg.payload["inputs"]

        workflow_id = await orch.create_workflow(
            [{"name": "a", "params": {"twice": True}}, {"name": "b", "depends_on": ["a"]}]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
            while len(answers) < 2:
                await anyio.sleep(0.01)
            await rt.join()
    assert answers == ["answer 1", "answer 2"]
    assert result.results == {"a": "answer 1", "b": {"a": "answer 1"}}
    done = task_records(tmp_path / "q" / "runs" / workflow_id / "run.log", "a")
    assert [r["result"] for r in done] == ["answer 1"]


CRASHING_RUN = """
import os
import signal
import sys

import anyio

import swarm_runtime as sr
from swarm_runtime.backends.file import _runs
from swarm_runtime.orchestrator import WorkflowOrchestrator

queue, executions = sys.argv[1], sys.argv[2]
write = _runs._FileRunLog._write_sync


def die_before_logging_b(self, records):
    '''Write the records before b's, then die: b's result was handed over in-process
    (its replica acked the task message) but never reached the run log.'''
    for i, record in enumerate(records):
        if record.get("k") == "task" and record.get("name") == "b":
            write(self, records[:i])
            os.kill(os.getpid(), signal.SIGKILL)
    write(self, records)


_runs._FileRunLog._write_sync = die_before_logging_b


async def record(msg, ctx):
    name = msg.payload["params"]["name"]
    with open(executions, "a") as f:
        f.write(name + "\\n")
        f.flush()
        os.fsync(f.fileno())
    return name + "!"


async def main():
    async with sr.Runtime(queue=queue) as rt:
        orch = WorkflowOrchestrator(rt)
        orch.register_agent("rec", record)
        tasks = [
            {"name": "a", "params": {"name": "a"}},
            {"name": "b", "depends_on": ["a"], "params": {"name": "b"}},
            {"name": "c", "depends_on": ["b"], "params": {"name": "c"}},
        ]
        run_id = await orch.create_workflow(tasks, name="window")
        print(run_id, flush=True)
        await orch.execute_workflow(run_id)


anyio.run(main)
"""


@pytest.mark.slow
async def test_result_handed_over_but_not_logged_is_dispatched_again(tmp_path: Path) -> None:
    """Kill -9 after a task's result was handed over in-process and its task message acked,
    before the run log recorded it: the result is in neither the log nor the queue, and the
    resumed run dispatches that task again, records it once and finishes."""
    script = tmp_path / "crashing_run.py"
    script.write_text(textwrap.dedent(CRASHING_RUN))
    executions = tmp_path / "executions.txt"
    queue = f"file://{tmp_path / 'q'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = await anyio.run_process(
        [sys.executable, str(script), queue, str(executions)],
        env=env,
        check=False,
    )
    assert first.returncode == -signal.SIGKILL, first.stderr.decode()
    run_id = first.stdout.decode().split()[0]
    ran = Counter(executions.read_text().split())
    # c may have started on b's in-process result before the process died
    assert sorted(ran.elements()) in (["a", "b"], ["a", "b", "c"])
    run_log = tmp_path / "q" / "runs" / run_id / "run.log"
    assert [r["state"] for r in task_records(run_log, "a")] == ["completed"]
    assert task_records(run_log, "b") == []

    # The worst case: the replica's ack of b's task message reached the disk too (a file
    # queue writes acks lazily, so it may not have: settle it here to be sure).
    async with await sr.MessageQueue.open(queue) as q:
        assert await q.depth(f"workflow.{run_id}") == 0  # the result never went there
        for message in await q.subscribe("agent.rec", 100, timeout=0):
            await q.acknowledge(message.id)

    with anyio.fail_after(WAIT):
        async with sr.Runtime(queue=queue) as rt:
            orch = WorkflowOrchestrator(rt)
            orch.register_agent("rec", _record_into(executions))
            status = await orch.load_workflow(run_id)
            assert status.tasks["a"].state is TaskState.COMPLETED
            assert status.tasks["b"].state is not TaskState.COMPLETED
            result = await orch.resume_workflow(run_id)
    assert result.ok
    assert result.results == {"a": "a!", "b": "b!", "c": "c!"}
    assert Counter(executions.read_text().split()) == ran + Counter(["b", "c"])
    assert [r["result"] for r in task_records(run_log, "b")] == ["b!"]


def _record_into(executions: Path) -> Any:
    async def record(msg: sr.Message, ctx: sr.Context) -> str:
        name = str(msg.payload["params"]["name"])
        with executions.open("a") as file:
            file.write(name + "\n")
        return name + "!"

    return record


async def test_reply_after_the_session_ended_counts_in_the_next() -> None:
    """A handler that finishes after its session was interrupted replies through the queue
    (the results topic has no local consumer any more); the next session takes that result
    instead of running the task again."""
    calls: list[str] = []
    started = anyio.Event()
    release = anyio.Event()
    async with orchestrator() as orch:
        rt = orch.runtime

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            name = str(msg.payload["params"]["n"])
            calls.append(name)
            if name == "a":
                started.set()
                await release.wait()
                return "late a"
            return f"{name} after {msg.payload['inputs']}"

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"n": "a"}},
                {"name": "b", "depends_on": ["a"], "params": {"n": "b"}},
            ]
        )
        topic = f"workflow.{workflow_id}"
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(orch.execute_workflow, workflow_id)
                await started.wait()
                tg.cancel_scope.cancel()
            assert orch.get_workflow_status(workflow_id).state.value == "interrupted"
            release.set()
            while await rt.queue.depth(topic) == 0:  # the late reply, through the queue
                await anyio.sleep(0.01)
            result = await orch.execute_workflow(workflow_id)
    assert result.ok
    assert result.results == {"a": "late a", "b": "b after {'a': 'late a'}"}
    assert calls == ["a", "b"]


async def test_queued_reply_read_but_not_recorded_is_handed_back() -> None:
    """A reply the receiver took from the queue just as the session was cancelled is
    released, not left leased, so a later session can still count it."""
    async with orchestrator() as orch:
        rt = orch.runtime
        workflow_id = ""

        @rt.agent("remote")  # answers through the queue, then the run is cancelled
        async def remote(msg: sr.Message, ctx: sr.Context) -> None:
            await rt.queue.publish(
                msg.reply_to or "",
                {"ok": True, "result": "done elsewhere"},
                correlation_id=msg.correlation_id,
            )
            msg.reply_to = None
            await orch.cancel_workflow(workflow_id)

        workflow_id = await orch.create_workflow(["a"], agent="remote")
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
            await rt.join()
            handed_back = await rt.queue.subscribe(f"workflow.{workflow_id}", 10, timeout=0)
    assert result.status.state.value == "cancelled"
    assert [m.payload["result"] for m in handed_back] == ["done elsewhere"]


async def test_run_whose_results_topic_is_taken_is_refused() -> None:
    """A run whose results topic already has a local consumer in this runtime (another
    orchestrator executing it) is refused with a clear error, not run twice."""
    async with orchestrator() as orch:
        orch.register_agent("w", _name)
        workflow_id = await orch.create_workflow([{"name": "a", "params": {"n": "a"}}])
        orch.runtime.register_local_topic(f"workflow.{workflow_id}", lambda corr, body: None)
        with anyio.fail_after(GUARD), pytest.raises(sr.WorkflowError, match="already being"):
            await orch.execute_workflow(workflow_id)
