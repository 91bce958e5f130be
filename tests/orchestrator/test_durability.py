"""Durable runs: the run log, resuming after an interruption, results recorded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.orchestrator import DirectoryRunStore, TaskState, WorkflowState
from swarm_runtime.orchestrator._runstore import LoadedRun, decode_lines, encode_record

from ._helpers import FAST_RETRY, orchestrator

GUARD = 10


def read_log(path: Path) -> list[dict[str, Any]]:
    records, _, _ = decode_lines(path.read_bytes())
    return records


def test_records_round_trip_and_torn_tail_is_cut() -> None:
    """Records decode back; a torn last line is left out of the valid prefix and a damaged
    middle line is skipped and counted."""
    good = [encode_record({"k": "run", "i": i}) for i in range(3)]
    data = good[0] + good[1] + good[2][:-5]
    records, valid, bad = decode_lines(data)
    assert records == [{"k": "run", "i": 0}, {"k": "run", "i": 1}]
    assert valid == len(good[0]) + len(good[1])
    assert bad == 0
    damaged = good[0] + good[1].replace(b'"i":1', b'"i":7') + good[2]
    records, valid, bad = decode_lines(damaged)
    assert [r["i"] for r in records] == [0, 2]
    assert bad == 1
    assert valid == len(damaged)


def test_first_completed_record_wins() -> None:
    """A task's result is the first completed record; later ones for it are ignored."""
    run = LoadedRun.from_records(
        "r1",
        [
            {"k": "run", "name": "w", "created_at": 1.0, "tasks": [{"name": "a"}]},
            {"k": "session", "at": 2.0},
            {"k": "task", "name": "a", "state": "completed", "result": 1, "at": 3.0},
            {"k": "task", "name": "a", "state": "completed", "result": 2, "at": 4.0},
        ],
    )
    assert run.completed["a"]["result"] == 1
    assert run.state is WorkflowState.INTERRUPTED  # a session without an end
    assert run.summary().unfinished


async def test_duplicate_result_is_recorded_once(tmp_path: Path) -> None:
    """When a task's reply arrives twice (one through the queue, one in-process), the
    first to reach the scheduler is kept, logged once, and passed downstream; the second
    is dropped."""
    queue = f"file://{tmp_path / 'q'}"
    async with orchestrator(queue) as orch:
        rt = orch.runtime

        @rt.agent("twice")  # not behind the guard: it may answer twice
        async def twice(msg: sr.Message, ctx: sr.Context) -> Any:
            if msg.payload["params"].get("dup"):
                await rt.queue.publish(
                    msg.reply_to or "",
                    {"ok": True, "result": "first"},
                    correlation_id=msg.correlation_id,
                )
                return "second"
            return msg.payload["inputs"]

        workflow_id = await orch.create_workflow(
            [{"name": "a", "params": {"dup": True}}, {"name": "b", "depends_on": ["a"]}]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
            await rt.join()
    kept = result.results["a"]
    assert kept in ("first", "second")
    assert result.results == {"a": kept, "b": {"a": kept}}
    records = read_log(tmp_path / "q" / "runs" / workflow_id / "run.log")
    done = [r for r in records if r.get("k") == "task" and r["name"] == "a"]
    assert [r["result"] for r in done] == [kept]


async def test_duplicate_task_message_does_not_run_again() -> None:
    """A task message delivered again after its task completed is dropped by the guard
    before any user code runs."""
    calls: list[str] = []
    kept: dict[str, sr.Message] = {}
    async with orchestrator() as orch:
        rt = orch.runtime

        @orch.agent("w")
        async def work(msg: sr.Message, ctx: sr.Context) -> str:
            name = msg.payload["params"]["name"]
            calls.append(name)
            if name == "a":
                kept["a"] = msg
            else:  # b runs after a completed: deliver a's message again
                old = kept["a"]
                await rt.send(
                    "w",
                    old.payload,
                    reply_to=old.reply_to,
                    correlation_id=old.correlation_id,
                    workflow_id=old.workflow_id,
                )
            return name

        workflow_id = await orch.create_workflow(
            [
                {"name": "a", "params": {"name": "a"}},
                {"name": "b", "depends_on": ["a"], "params": {"name": "b"}},
            ]
        )
        with anyio.fail_after(GUARD):
            result = await orch.execute_workflow(workflow_id)
            await rt.join()
    assert result.ok
    assert calls == ["a", "b"]


async def test_resume_after_interruption_on_file_queue(tmp_path: Path) -> None:
    """A run interrupted in one runtime is resumed in a fresh runtime on the same queue
    directory: completed tasks are not run again, the rest run once more."""
    queue = f"file://{tmp_path / 'q'}"
    calls: list[str] = []
    started = anyio.Event()

    async def work(msg: sr.Message, ctx: sr.Context) -> str:
        name = msg.payload["params"]["name"]
        calls.append(name)
        if name == "b" and calls.count("b") == 1:  # hang the first time only
            started.set()
            await anyio.sleep_forever()
        return name + "!"

    tasks = [
        {"name": "a", "params": {"name": "a"}},
        {"name": "b", "depends_on": ["a"], "params": {"name": "b", "hang": True}},
        {"name": "c", "depends_on": ["a"], "params": {"name": "c"}},
        {"name": "d", "depends_on": ["b", "c"], "params": {"name": "d"}},
    ]
    with anyio.fail_after(GUARD):
        async with orchestrator(queue) as orch:
            orch.register_agent("w", work, concurrency=2)
            workflow_id = await orch.create_workflow(tasks, name="resumable")
            async with anyio.create_task_group() as tg:
                tg.start_soon(orch.execute_workflow, workflow_id)
                await started.wait()
                while orch.get_task_status(workflow_id, "c").state is not TaskState.COMPLETED:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        assert sorted(calls) == ["a", "b", "c"]

        async with orchestrator(queue) as orch:
            orch.register_agent("w", work, concurrency=2)
            found = await orch.find_unfinished("resumable")
            assert found is not None
            assert found.run_id == workflow_id
            assert found.completed == 2
            result = await orch.resume_workflow(workflow_id)
            assert await orch.find_unfinished("resumable") is None
    assert result.ok
    assert result.results == {"a": "a!", "b": "b!", "c": "c!", "d": "d!"}
    assert sorted(calls) == ["a", "b", "b", "c", "d"]
    assert result.tasks["a"].resumed
    assert not result.tasks["d"].resumed
    assert result.status.sessions == 2


async def test_runs_listed_with_their_states(tmp_path: Path) -> None:
    """A directory store lists runs with state and progress; ``store=`` may be any directory,
    also for a memory queue."""
    async with sr.Runtime(queue="memory://", retry=FAST_RETRY) as rt:
        from swarm_runtime.orchestrator import WorkflowOrchestrator

        orch = WorkflowOrchestrator(rt, store=tmp_path / "runs")
        orch.register_agent("w", _ok)
        first = await orch.create_workflow(["a", "b"], name="listed")
        await orch.execute_workflow(first)
        second = await orch.create_workflow(["a"], name="listed")
    runs = await DirectoryRunStore(tmp_path / "runs").list_runs()
    by_id = {run.run_id: run for run in runs}
    assert by_id[first].state is WorkflowState.COMPLETED
    assert by_id[first].completed == 2
    assert by_id[second].state is WorkflowState.PENDING
    assert not by_id[second].unfinished


async def _ok(msg: sr.Message, ctx: sr.Context) -> str:
    return "ok"


async def test_torn_tail_is_cut_before_appending(tmp_path: Path) -> None:
    """A half-written last record (a crash mid-write) is ignored on load and cut off
    before the next append, so the log stays valid line by line."""
    store = DirectoryRunStore(tmp_path)
    header = {"k": "run", "run_id": "r1", "name": "w", "created_at": 1.0, "tasks": []}
    run_log = await store.create(header)
    run_log.append({"k": "session", "at": 2.0})
    await run_log.close()
    path = tmp_path / "r1" / "run.log"
    with path.open("ab") as file:
        file.write(encode_record({"k": "end", "state": "completed"})[:-4])  # torn
    loaded, run_log = await store.load("r1")
    assert loaded.state is WorkflowState.INTERRUPTED  # the torn end record does not count
    run_log.append({"k": "end", "state": "failed", "at": 3.0})
    await run_log.close()
    records, valid, bad = decode_lines(path.read_bytes())
    assert [r["k"] for r in records] == ["run", "session", "end"]
    assert records[-1]["state"] == "failed"
    assert (valid, bad) == (path.stat().st_size, 0)


async def test_batch_handed_to_the_writer_survives_a_cancellation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation that reaches the log writer just as it hands a batch to its thread
    (the session ended at that moment) does not drop the batch: the records reach the
    disk, and the run log closes with every record appended."""
    store = DirectoryRunStore(tmp_path)
    header = {"k": "run", "run_id": "r1", "name": "w", "created_at": 1.0, "tasks": []}
    run_log = await store.create(header)
    run_sync = anyio.to_thread.run_sync
    acked: list[str] = []

    async def ack(message_ids: list[str]) -> None:
        acked.extend(message_ids)

    with anyio.CancelScope() as scope:

        async def cancelled_on_the_way(func: Any, *args: Any) -> Any:
            scope.cancel()  # the session ends while the batch is on its way to the thread
            await anyio.lowlevel.checkpoint()
            return await run_sync(func, *args)

        monkeypatch.setattr(anyio.to_thread, "run_sync", cancelled_on_the_way)
        run_log.append({"k": "task", "name": "a", "state": "completed"}, "m1")
        await run_log.flush(ack)
    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)
    run_log.append({"k": "end", "state": "completed", "at": 2.0})
    await run_log.close(ack)
    records = read_log(tmp_path / "r1" / "run.log")
    assert [r["k"] for r in records] == ["run", "task", "end"]
    assert acked == ["m1"]


async def test_a_failed_log_write_keeps_its_records_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails (disk trouble) raises WorkflowError, acks nothing, and keeps its
    records: the next flush writes them and only then acknowledges their results."""
    store = DirectoryRunStore(tmp_path)
    header = {"k": "run", "run_id": "r1", "name": "w", "created_at": 1.0, "tasks": []}
    run_log = await store.create(header)
    acked: list[str] = []

    async def ack(message_ids: list[str]) -> None:
        acked.extend(message_ids)

    real = type(run_log)._write_sync
    failures = [OSError(28, "No space left on device")]

    def flaky(self: Any, records: list[dict[str, Any]]) -> None:
        if failures:
            raise failures.pop()
        real(self, records)

    monkeypatch.setattr(type(run_log), "_write_sync", flaky)
    run_log.append({"k": "task", "name": "a", "state": "completed", "at": 2.0}, "m1")
    with pytest.raises(sr.WorkflowError, match="No space left"):
        await run_log.flush(ack)
    assert acked == []
    await run_log.flush(ack)
    assert acked == ["m1"]
    await run_log.close()
    loaded, _ = await store.load("r1")
    assert set(loaded.completed) == {"a"}
