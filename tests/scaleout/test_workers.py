"""Worker processes on Redis: a run shared by real `worker` subprocesses, one SIGKILLed
mid-run, one stopped by SIGTERM; and clear errors when Redis is down at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import redis.asyncio as aioredis

from swarm_runtime.orchestrator import DataPipelineOrchestrator
from swarm_runtime.orchestrator._pipeline_agents import DEFAULT_TASK_LEASE

from ..conftest import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _pipeline(tmp: Path, url: str, tasks: int, sleep: float) -> Path:
    """A pipeline of ``tasks`` independent recorded tasks and a final one joining them."""
    out = tmp / "executions"
    out.mkdir(exist_ok=True)
    lines = [
        "name: scaleout",
        f"queue: {url}",
        "agents:",
        '  - {name: rec, uses: "tests.scaleout.agents:record", concurrency: 2,',
        f'     params: {{out: "{out}", sleep: {sleep}}}}}',
        "tasks:",
    ]
    names = [f"t{i}" for i in range(tasks)]
    lines += [f"  - {{name: {n}, agent: rec, params: {{task: {n}}}}}" for n in names]
    lines.append(f"  - {{name: join, agent: rec, depends_on: [{', '.join(names)}],")
    lines.append("     params: {task: join}}")
    path = tmp / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _executions(tmp: Path) -> dict[int, list[str]]:
    """pid -> the lines its executions wrote (``start T`` / ``done T``)."""
    found: dict[int, list[str]] = {}
    for path in (tmp / "executions").glob("*.log"):
        found[int(path.stem)] = path.read_text().splitlines()
    return found


class Workers:
    """`python -m swarm_runtime worker` subprocesses, always killed at the end."""

    def __init__(self, tmp: Path, pipeline: Path) -> None:
        self.tmp = tmp
        self.pipeline = pipeline
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, *args: str, stall: bool = False) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SWARM_TEST_STALL", None)
        if stall:
            env["SWARM_TEST_STALL"] = "1"
        log = self.tmp / f"worker{len(self.procs)}.err"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "swarm_runtime", "worker", str(self.pipeline), *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    async def ready(self) -> None:
        """Wait until every worker has said it is ready (or fail if one died)."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            while b" ready: " not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                await anyio.sleep(0.05)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@contextmanager
def workers(tmp: Path, pipeline: Path) -> Iterator[Workers]:
    group = Workers(tmp, pipeline)
    try:
        yield group
    finally:
        group.kill_all()


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    """``python -m swarm_runtime ARGS`` with captured output."""
    return subprocess.Popen(
        [sys.executable, "-m", "swarm_runtime", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _wait_started(tmp: Path, pid: int) -> list[str]:
    """Wait until process ``pid`` has started a task; returns the tasks it started."""
    path = tmp / "executions" / f"{pid}.log"
    while True:
        if path.exists():
            started = [line.split()[1] for line in path.read_text().splitlines()]
            if started:
                return started
        await anyio.sleep(0.02)


async def _recorded(prefix: str, run_id: str) -> tuple[Counter[str], int]:
    """How often each task's completed record is in the run log, and the done-set size."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        raw = await client.lrange(f"{prefix}:wf:r:{run_id}:log", 0, -1)
        done = await client.hlen(f"{prefix}:wf:r:{run_id}:done")
    finally:
        await client.aclose()
    records: list[dict[str, Any]] = [orjson.loads(item) for item in raw]
    completed = Counter(
        str(r["name"]) for r in records if r.get("k") == "task" and r.get("state") == "completed"
    )
    return completed, int(done)


async def test_killed_worker_tasks_are_finished_by_the_others(tmp_path: Path, prefix: str) -> None:
    """Three workers share a run; one is SIGKILLed holding tasks, which the other two
    finish after the lease; every result is recorded exactly once."""
    url = f"{REDIS_URL}?prefix={prefix}"
    pipeline = _pipeline(tmp_path, url, tasks=12, sleep=0.1)
    with workers(tmp_path, pipeline) as group:
        victim = group.start("--lease", "1.5", stall=True)  # takes tasks, never finishes them
        group.start("--lease", "1.5")
        group.start("--lease", "1.5")
        await group.ready()
        orch = DataPipelineOrchestrator(queue=url, host_agents=False, services=False)
        pipeline_id = orch.create_pipeline(pipeline)
        result: list[Any] = []

        async def execute() -> None:
            result.append(await orch.execute_pipeline(pipeline_id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(execute)
            stranded = await _wait_started(tmp_path, victim.pid)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        [outcome] = result
        assert outcome.ok, outcome.error
        survivors = [p.pid for p in group.procs if p is not victim]
        for proc in group.procs[1:]:
            proc.send_signal(signal.SIGTERM)
        codes = [await anyio.to_thread.run_sync(proc.wait) for proc in group.procs[1:]]
        assert codes == [0, 0]  # a graceful stop
    executions = _executions(tmp_path)
    assert set(stranded) <= {f"t{i}" for i in range(12)}
    done_by = {
        line.split()[1]: pid
        for pid, lines in executions.items()
        for line in lines
        if line.startswith("done ")
    }
    assert set(done_by) == {*(f"t{i}" for i in range(12)), "join"}
    assert not any(line.startswith("done ") for line in executions[victim.pid])
    for task in stranded:  # the killed worker's leased tasks, finished by the others
        assert done_by[task] in survivors
    assert {outcome.results[task]["task"] for task in outcome.results} == set(done_by)
    finished = sum(line.startswith("done ") for lines in executions.values() for line in lines)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        state = orjson.loads(await client.get(f"{prefix}:state:a:rec"))
    finally:
        await client.aclose()
    assert state == {"done": finished}  # agent state shared by the workers, no update lost
    completed, done = await _recorded(prefix, outcome.run_id)
    assert done == 13
    assert set(completed.values()) == {1}
    assert len(completed) == 13


async def test_sigterm_hands_leased_tasks_back_at_once(tmp_path: Path, prefix: str) -> None:
    """A worker stopped by SIGTERM exits 0 and hands its tasks back (no lease wait), so
    another worker finishes the run that `run --no-agents` started."""
    url = f"{REDIS_URL}?prefix={prefix}"
    pipeline = _pipeline(tmp_path, url, tasks=3, sleep=0.0)
    with workers(tmp_path, pipeline) as group:
        # a lease far longer than the test: only the hand-back can free the tasks in time
        stuck = group.start("--grace-period", "0.2", "--lease", "600", stall=True)
        await group.ready()
        run = _spawn("run", str(pipeline), "--no-agents")
        try:
            await _wait_started(tmp_path, stuck.pid)
            stuck.send_signal(signal.SIGTERM)
            assert await anyio.to_thread.run_sync(stuck.wait) == 0
            group.start()
            await group.ready()
            out, err = await anyio.to_thread.run_sync(run.communicate)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        assert run.returncode == 0, err.decode()
        assert b"4/4 tasks completed" in out
        assert b"SIGTERM, stopping" in group.logs[0].read_bytes()


@pytest.mark.parametrize("command", ["worker", "run"])
def test_redis_down_at_start_is_one_clear_line(tmp_path: Path, command: str) -> None:
    """With no Redis at the URL, `worker` and `run --no-agents` print one line naming it
    and exit with code 3."""
    pipeline = _pipeline(tmp_path, DOWN_URL, tasks=1, sleep=0.0)
    extra = ["--no-agents"] if command == "run" else []
    done = subprocess.run(
        [sys.executable, "-m", "swarm_runtime", command, str(pipeline), *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 3
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no Redis server answers at redis://127.0.0.1:1/0")


def test_worker_refuses_an_unshared_queue(tmp_path: Path) -> None:
    """A worker on a file:// queue is a usage error (exit code 2) that asks for redis://."""
    pipeline = _pipeline(tmp_path, f"file://{tmp_path / 'queue'}", tasks=1, sleep=0.0)
    done = subprocess.run(
        [sys.executable, "-m", "swarm_runtime", "worker", str(pipeline)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"redis://" in done.stderr


async def test_run_hosting_agents_shares_tasks_with_a_worker(tmp_path: Path, prefix: str) -> None:
    """A run that hosts the agents itself and a worker process share the tasks: the
    worker's replies come through the queue, the run's own in-process, each recorded once."""
    url = f"{REDIS_URL}?prefix={prefix}"
    pipeline = _pipeline(tmp_path, url, tasks=16, sleep=0.2)
    with workers(tmp_path, pipeline) as group:
        worker = group.start("--lease", "5")
        await group.ready()
        orch = DataPipelineOrchestrator(queue=url, services=False)
        outcome = await orch.execute_pipeline(orch.create_pipeline(pipeline))
        assert outcome.ok, outcome.error
        pids = {result["pid"] for result in outcome.results.values()}
        assert pids == {os.getpid(), worker.pid}
    completed, done = await _recorded(prefix, outcome.run_id)
    assert done == 17
    assert set(completed.values()) == {1}


async def test_a_killed_workers_task_is_retaken_within_the_default_lease(
    tmp_path: Path, prefix: str
) -> None:
    """With no --lease, a worker SIGKILLed mid-task stalls its run for about one default
    lease (heartbeats keep live tasks' leases alive), not an hour; the task that ran twice
    reports two attempts."""
    url = f"{REDIS_URL}?prefix={prefix}"
    pipeline = _pipeline(tmp_path, url, tasks=1, sleep=3.0)
    with workers(tmp_path, pipeline) as group:
        victim = group.start(stall=True)
        await group.ready()
        orch = DataPipelineOrchestrator(queue=url, host_agents=False, services=False)
        pipeline_id = orch.create_pipeline(pipeline)
        result: list[Any] = []

        async def execute() -> None:
            result.append(await orch.execute_pipeline(pipeline_id))

        with anyio.fail_after(DEFAULT_TASK_LEASE + 30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(execute)
                assert await _wait_started(tmp_path, victim.pid) == ["t0"]
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                group.start()
                await group.ready()
        [outcome] = result
        assert outcome.ok, outcome.error
    assert outcome.results["t0"]["pid"] != victim.pid
    report = outcome.to_report()  # the task ran twice: the report says so
    assert report.task("t0").attempts == 2
    assert report.task("join").attempts == 1
