"""A 10,000-task DAG of no-op tasks through the full runtime, beside a floor and Dask.

Each task depends on 1 to 3 earlier tasks chosen at random (fixed seed). Compared:

* floor: a bare ``graphlib.TopologicalSorter`` driven by asyncio (one asyncio task per
  node, finished nodes reported through an ``asyncio.Queue``): the least any asyncio DAG
  runner can do;
* Dask's threaded scheduler (``dask.threaded.get``) on the same graph, if installed;
* the runtime's message path alone, no scheduling: every task message published up
  front (with ``send_all``, in batches and by as many senders as the orchestrator uses),
  handled by the agent, and
  answered either in-process (``Runtime.register_local_topic``, as the orchestrator's
  replies travel: the bound for the orchestrator) or on a results topic consumed in
  batches (how replies travelled before; still the path from other processes);
* ``WorkflowOrchestrator.execute_workflow`` on ``memory://``: every task is a message
  published to an agent's inbox, leased by a replica, handled (behind the workflow
  guard), its result handed to the scheduler in-process, recorded, and its dependents
  dispatched;
* the same on ``file://`` (fsync'd group commits for task messages, the run log fsync'd
  in batches: a result is acknowledged as done only once its record is on disk);

each with the runtime's background services off and on (the default).
Per-task overhead is the wall time of the run divided by the number of tasks. Each
timed section starts after a ``gc.collect()`` (the garbage collector stays on while it
runs), so that a full collection owed to setting up - importing, building the graph,
``create_workflow`` - does not land in it.
Goals: <= 30 µs per task on memory, <= 100 µs on file.

    python benchmarks/bench_dag.py [--n 10000] [--repeat 3] [--profile memory|file]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import graphlib
import itertools
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

import swarm_runtime as sr
from swarm_runtime.orchestrator import WorkflowOrchestrator
from swarm_runtime.orchestrator._scheduler import SEND_BATCH, SENDERS, YIELD_EVERY

SEED = 20240601
GOALS = {"memory": 30.0, "file": 100.0}
#: replicas of the no-op agent on file://: replies are handed over in-process, so a
#: replica never waits for an fsync and a few are enough (more only add task switches);
#: with queued replies each replica waits for its reply's fsync, so that row uses more
FILE_REPLICAS = 4
FILE_REPLICAS_QUEUED = 64


def make_dag(n: int, seed: int = SEED) -> dict[str, list[str]]:
    """``{task: [dependencies]}``: task i depends on 1 to 3 of the tasks before it."""
    rng = random.Random(seed)
    graph: dict[str, list[str]] = {"t0": []}
    for i in range(1, n):
        k = min(i, rng.randint(1, 3))
        graph[f"t{i}"] = [f"t{j}" for j in rng.sample(range(i), k)]
    return graph


# ---------------------------------------------------------------------- floor


async def _noop() -> None:
    return None


async def floor(graph: dict[str, list[str]]) -> float:
    """Seconds for graphlib + asyncio to run every node as an asyncio task."""
    gc.collect()  # no garbage left over from setting up
    start = time.perf_counter()
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    finished: asyncio.Queue[str] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()

    async def run(node: str) -> None:
        await _noop()
        finished.put_nowait(node)

    while sorter.is_active():
        for node in sorter.get_ready():
            task = asyncio.create_task(run(node))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sorter.done(await finished.get())
        while not finished.empty():
            sorter.done(finished.get_nowait())
    return time.perf_counter() - start


# ---------------------------------------------------------------------- dask


def dask_threaded(graph: dict[str, list[str]]) -> float | None:
    """Seconds for Dask's threaded scheduler on the same graph (None if Dask is absent)."""
    try:
        import dask.threaded
    except ImportError:
        return None

    def noop(*_: Any) -> None:
        return None

    dsk = {name: (noop, *deps) for name, deps in graph.items()}
    gc.collect()  # no garbage left over from setting up
    start = time.perf_counter()
    dask.threaded.get(dsk, list(graph))
    return time.perf_counter() - start


# ---------------------------------------------------------------------- runtime


async def message_path(
    n: int, queue: str, replicas: int, services: bool, local: bool
) -> dict[str, float]:
    """Seconds for the runtime alone to carry ``n`` task messages and their replies.

    ``local``: replies are handed over in-process (``Runtime.register_local_topic``, as
    the orchestrator does); otherwise they are published on a results topic and consumed
    back in batches.
    """
    async with sr.Runtime(queue=queue, services=services) as rt:

        @rt.agent("noop", replicas=replicas)
        async def noop(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        q = rt.queue
        numbers = iter(range(n))
        got = 0
        done = anyio.Event()

        def take(correlation_id: str, body: dict[str, Any]) -> None:
            nonlocal got
            got += 1
            if got == n:
                done.set()

        if local:
            rt.register_local_topic("results", take)

        size = YIELD_EVERY if queue == "memory://" else SEND_BATCH  # as the orchestrator

        async def sender() -> None:
            payload = {"params": {}, "inputs": {"t0": None}}
            while batch := list(itertools.islice(numbers, size)):  # shared by the senders
                await rt.send_all(
                    [
                        sr.Outgoing("noop", payload, reply_to="results", correlation_id=f"c{i}")
                        for i in batch
                    ]
                )

        gc.collect()  # no garbage left over from setting up
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(1 if queue == "memory://" else SENDERS):  # as the orchestrator
                tg.start_soon(sender)
        if local:
            await done.wait()
        while got < n:
            batch = await q.subscribe("results", 512, 300, timeout=None)
            for message in batch:
                await q.acknowledge(message.id)
            got += len(batch)
        return {"create": 0.0, "execute": time.perf_counter() - start}


async def runtime_run(
    graph: dict[str, list[str]],
    queue: str,
    replicas: int,
    services: bool = True,
    profiler: cProfile.Profile | None = None,
) -> dict[str, float]:
    """Seconds to create and to execute the workflow on ``queue`` (``profiler``: of the
    execution only)."""
    async with sr.Runtime(queue=queue, services=services) as rt:
        orch = WorkflowOrchestrator(rt)

        @orch.agent("noop", replicas=replicas)
        async def noop(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        tasks = [{"name": name, "depends_on": deps} for name, deps in graph.items()]
        t0 = time.perf_counter()
        run_id = await orch.create_workflow(tasks, name="bench")
        created = time.perf_counter() - t0
        gc.collect()  # no garbage left over from setting up
        if profiler is not None:
            profiler.enable()
        t1 = time.perf_counter()
        result = await orch.execute_workflow(run_id)
        t2 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        if not result.ok:
            raise SystemExit(f"benchmark run failed: {result.error}")
        return {"create": created, "execute": t2 - t1}


def run_backend(
    graph: dict[str, list[str]],
    backend: str,
    replicas: int,
    services: bool = True,
    profiler: cProfile.Profile | None = None,
    kind: str = "workflow",
) -> dict[str, float]:
    """One run of ``kind``: ``workflow``, or the message path alone with its replies
    ``local`` (in-process) or ``queued`` (through a results topic)."""
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        queue = "memory://" if backend == "memory" else f"file://{tmp}/queue"
        if kind != "workflow":
            local = kind == "local"
            return asyncio.run(message_path(len(graph), queue, replicas, services, local))
        return asyncio.run(runtime_run(graph, queue, replicas, services, profiler))


def profile(graph: dict[str, list[str]], backend: str, replicas: int, services: bool) -> None:
    """Print where the execution of the workflow spends its time."""
    profiler = cProfile.Profile()
    run_backend(graph, backend, replicas, services, profiler)
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(35)


KINDS = {
    "queued": "messages only, replies queued",
    "local": "messages only, replies in-process",
    "workflow": "workflow",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-replicas", type=int, default=1)
    parser.add_argument("--file-replicas", type=int, default=FILE_REPLICAS)
    parser.add_argument("--file-replicas-queued", type=int, default=FILE_REPLICAS_QUEUED)
    parser.add_argument("--profile", choices=["memory", "file"])
    parser.add_argument("--services", action="store_true", help="profile with services on")
    args = parser.parse_args()
    sr.configure_logging("error")
    graph = make_dag(args.n)
    n = len(graph)
    replicas = {"memory": args.memory_replicas, "file": args.file_replicas}
    if args.profile:
        profile(graph, args.profile, replicas[args.profile], args.services)
        return

    def best(backend: str, services: bool, kind: str) -> float:
        count = replicas[backend]
        if backend == "file" and kind == "queued":
            count = args.file_replicas_queued
        runs = [
            run_backend(graph, backend, count, services, None, kind) for _ in range(args.repeat)
        ]
        return min(run["execute"] for run in runs)

    floor_s = min(asyncio.run(floor(graph)) for _ in range(args.repeat))
    dask_runs = [dask_threaded(graph) for _ in range(args.repeat)]
    dask_s = min((d for d in dask_runs if d is not None), default=None)
    seconds: dict[str, float] = {}
    for backend in ("memory", "file"):
        for services in (False, True):
            tag = f"{backend}_services_{'on' if services else 'off'}"
            for kind in KINDS:
                seconds[f"{kind}_{tag}"] = best(backend, services, kind)
    create_s = asyncio.run(runtime_run(graph, "memory://", 1, False))["create"]

    def us(value: float) -> float:
        return value / n * 1e6

    rows: list[list[Any]] = [["graphlib + asyncio (floor)", us(floor_s), 1.0, "-"]]
    if dask_s is not None:
        rows.append(["dask threaded scheduler", us(dask_s), dask_s / floor_s, 1.0])
    for backend in ("memory", "file"):
        for services in ("off", "on"):
            for kind, label in KINDS.items():
                value = seconds[f"{kind}_{backend}_services_{services}"]
                rows.append(
                    [
                        f"{label}, {backend}://, services {services}",
                        us(value),
                        value / floor_s,
                        value / dask_s if dask_s else "-",
                    ]
                )
    print_table(
        f"DAG of {n:,} no-op tasks (1-3 dependencies each, seed {SEED}), best of {args.repeat}; "
        f"replicas: memory {replicas['memory']}, file {replicas['file']} "
        f"({args.file_replicas_queued} with queued replies)",
        ["scheduler", "µs/task", "x floor", "x dask"],
        rows,
    )
    per_task = {key: us(value) for key, value in seconds.items()}
    for backend in ("memory", "file"):
        for services in ("off", "on"):
            tag = f"{backend}_services_{services}"
            workflow, messages = per_task[f"workflow_{tag}"], per_task[f"local_{tag}"]
            print(
                f"{backend}, services {services}: {workflow:.1f} µs/task "
                f"(goal <= {GOALS[backend]:g}); the runtime's message path alone "
                f"{messages:.1f} (replies in-process, as the orchestrator uses it; "
                f"{per_task[f'queued_{tag}']:.1f} through the queue), "
                f"scheduling adds {workflow - messages:.1f}"
            )
    print(f"create_workflow (validation, not scheduling): {us(create_s):.1f} µs/task")
    write_json(
        "dag",
        {
            "n": n,
            "seed": SEED,
            "repeat": args.repeat,
            "replicas": {**replicas, "file_queued": args.file_replicas_queued},
            "floor_us_per_task": us(floor_s),
            "dask_threaded_us_per_task": us(dask_s) if dask_s is not None else None,
            "us_per_task": per_task,
            "x_floor": {key: value / floor_s for key, value in seconds.items()},
            "x_dask": {key: value / dask_s for key, value in seconds.items()} if dask_s else None,
            "create_us_per_task": us(create_s),
            "goals_us_per_task": GOALS,
            "meets_goals": {
                f"{backend}_services_{services}": per_task[
                    f"workflow_{backend}_services_{services}"
                ]
                <= GOALS[backend]
                for backend in ("memory", "file")
                for services in ("off", "on")
            },
        },
    )


if __name__ == "__main__":
    main()
