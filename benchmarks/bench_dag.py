"""A 10,000-task DAG of no-op tasks through the full runtime, beside a floor and Dask.

Each task depends on 1 to 3 earlier tasks chosen at random (fixed seed). Compared:

* floor: a bare ``graphlib.TopologicalSorter`` driven by asyncio (one asyncio task per
  node, finished nodes reported through an ``asyncio.Queue``): the least any asyncio DAG
  runner can do;
* Dask's threaded scheduler (``dask.threaded.get``) on the same graph, if installed;
* ``WorkflowOrchestrator.execute_workflow`` on ``memory://``: every task is a message
  published to an agent's inbox, leased by a replica, handled (behind the workflow
  guard), answered on the run's results topic, recorded, and its dependents dispatched;
* the same on ``file://`` (fsync'd group commits, durable run log).

Per-task overhead is the wall time of the run divided by the number of tasks.
Goals: <= 30 µs per task on memory, <= 100 µs on file.

    python benchmarks/bench_dag.py [--n 10000] [--repeat 3] [--profile memory|file]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import graphlib
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

import swarm_runtime as sr
from swarm_runtime.orchestrator import WorkflowOrchestrator

SEED = 20240601
GOALS = {"memory": 30.0, "file": 100.0}


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
    start = time.perf_counter()
    dask.threaded.get(dsk, list(graph))
    return time.perf_counter() - start


# ---------------------------------------------------------------------- runtime


async def runtime_run(
    graph: dict[str, list[str]],
    queue: str,
    replicas: int,
    profiler: cProfile.Profile | None = None,
) -> dict[str, float]:
    """Seconds to create and to execute the workflow on ``queue`` (``profiler``: of the
    execution only)."""
    async with sr.Runtime(queue=queue, log_level="warning") as rt:
        orch = WorkflowOrchestrator(rt)

        @orch.agent("noop", replicas=replicas)
        async def noop(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        tasks = [{"name": name, "depends_on": deps} for name, deps in graph.items()]
        t0 = time.perf_counter()
        run_id = await orch.create_workflow(tasks, name="bench")
        if profiler is not None:
            profiler.enable()
        t1 = time.perf_counter()
        result = await orch.execute_workflow(run_id)
        t2 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        if not result.ok:
            raise SystemExit(f"benchmark run failed: {result.error}")
        return {"create": t1 - t0, "execute": t2 - t1}


def run_backend(
    graph: dict[str, list[str]],
    backend: str,
    replicas: int,
    profiler: cProfile.Profile | None = None,
) -> dict[str, float]:
    if backend == "memory":
        return asyncio.run(runtime_run(graph, "memory://", replicas, profiler))
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        return asyncio.run(runtime_run(graph, f"file://{tmp}/queue", replicas, profiler))


def profile(graph: dict[str, list[str]], backend: str, replicas: int) -> None:
    """Print where the execution of the workflow spends its time."""
    profiler = cProfile.Profile()
    run_backend(graph, backend, replicas, profiler)
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(35)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-replicas", type=int, default=1)
    parser.add_argument("--file-replicas", type=int, default=64)
    parser.add_argument("--profile", choices=["memory", "file"])
    args = parser.parse_args()
    sr.configure_logging("warning")
    graph = make_dag(args.n)
    n = len(graph)
    if args.profile:
        replicas = args.memory_replicas if args.profile == "memory" else args.file_replicas
        profile(graph, args.profile, replicas)
        return

    floor_s = min(asyncio.run(floor(graph)) for _ in range(args.repeat))
    dask_runs = [dask_threaded(graph) for _ in range(args.repeat)]
    dask_s = min((d for d in dask_runs if d is not None), default=None)
    memory = min(
        (run_backend(graph, "memory", args.memory_replicas) for _ in range(args.repeat)),
        key=lambda r: r["execute"],
    )
    file_runs = [run_backend(graph, "file", args.file_replicas) for _ in range(args.repeat)]
    file = min(file_runs, key=lambda r: r["execute"])

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    rows: list[list[Any]] = [["graphlib + asyncio (floor)", us(floor_s), 1.0, "-"]]
    if dask_s is not None:
        rows.append(["dask threaded scheduler", us(dask_s), dask_s / floor_s, 1.0])
    for label, run in (("runtime, memory://", memory), ("runtime, file://", file)):
        rows.append(
            [
                label,
                us(run["execute"]),
                run["execute"] / floor_s,
                run["execute"] / dask_s if dask_s else "-",
            ]
        )
    print_table(
        f"DAG of {n:,} no-op tasks (1-3 dependencies each, seed {SEED}), best of {args.repeat}",
        ["scheduler", "µs/task", "x floor", "x dask"],
        rows,
    )
    mem_us, file_us = us(memory["execute"]), us(file["execute"])
    print(
        f"\nmemory: {mem_us:.1f} µs/task (goal <= {GOALS['memory']:g}); "
        f"file: {file_us:.1f} µs/task (goal <= {GOALS['file']:g}); "
        f"create_workflow: {us(memory['create']):.1f} µs/task (validation, not scheduling)"
    )
    write_json(
        "dag",
        {
            "n": n,
            "seed": SEED,
            "repeat": args.repeat,
            "floor_us_per_task": us(floor_s),
            "dask_threaded_us_per_task": us(dask_s) if dask_s is not None else None,
            "memory_us_per_task": mem_us,
            "file_us_per_task": file_us,
            "memory_x_floor": memory["execute"] / floor_s,
            "file_x_floor": file["execute"] / floor_s,
            "memory_x_dask": memory["execute"] / dask_s if dask_s else None,
            "file_x_dask": file["execute"] / dask_s if dask_s else None,
            "create_us_per_task": us(memory["create"]),
            "replicas": {"memory": args.memory_replicas, "file": args.file_replicas},
            "goals_us_per_task": GOALS,
            "meets_goals": mem_us <= GOALS["memory"] and file_us <= GOALS["file"],
        },
    )


if __name__ == "__main__":
    main()
