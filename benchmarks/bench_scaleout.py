"""The 10,000-task DAG of ``bench_dag.py`` on Redis, run by 1, 2 and 4 worker processes.

Each case: N real ``python -m swarm_runtime worker`` processes host a no-op agent
(``--replicas`` replicas each, default 4: a replica leases one message per Redis round
trip, so one replica alone is bound by that latency) on a fresh key prefix; this process
runs the workflow with no agent of its own (what ``run --no-agents`` does): every task is
published to the agent's inbox, taken by some worker, answered on the run's results topic
through Redis, recorded in the Redis run store (exactly once per task) and its dependents
dispatched. For reference, the same DAG with the agent hosted in the orchestrating process
itself (``run`` on redis:// without workers: results come back in-process). Wall time
covers ``execute_workflow`` only (workers are up before it starts). CPU seconds are
reported per component: the orchestrating process, the workers (together) and the Redis
server, which tells what bounds the scaling on this machine.

    python benchmarks/bench_scaleout.py [--n 10000] [--workers 1,2,4] [--replicas 4]
        [--repeat 2] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json
from bench_dag import make_dag

import swarm_runtime as sr
from swarm_runtime.agents.base import FunctionAgent
from swarm_runtime.orchestrator import WorkflowOrchestrator
from swarm_runtime.orchestrator._scaleout import DispatchRuntime

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


async def noop(msg: sr.Message, ctx: sr.Context) -> None:
    """The benchmark's agent: does nothing (the cost measured is the runtime's)."""
    return None


def _pipeline(directory: Path, concurrency: int, replicas: int) -> Path:
    path = directory / "scaleout.yaml"
    path.write_text(
        "name: bench-scaleout\n"
        "agents:\n"
        f'  - {{name: noop, uses: "bench_scaleout:noop", concurrency: {concurrency}, '
        f"replicas: {replicas}}}\n"
        "tasks:\n"
        "  - {name: only, agent: noop}\n"
    )
    return path


def _start_workers(count: int, pipeline: Path, url: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "swarm_runtime", "worker", str(pipeline), "--queue", url],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if b" ready: " not in line:
            raise SystemExit(f"a worker did not start: {line.decode().strip()}")
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(procs: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds the processes used so far (Linux /proc; 0 elsewhere)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def _run_dag(
    graph: dict[str, list[str]], url: str, hosted: bool, concurrency: int, replicas: int
) -> tuple[float, int]:
    """Seconds for execute_workflow, and the tasks recorded in the Redis run store."""
    agent = FunctionAgent("noop", noop, concurrency=concurrency, replicas=replicas)
    if hosted:
        runtime: sr.Runtime = sr.Runtime(url, services=False)
        runtime.add_agent(agent)
    else:
        runtime = DispatchRuntime(url, remote=[agent], services=False)
    async with runtime:
        orch = WorkflowOrchestrator(runtime)
        tasks = [
            {"name": name, "depends_on": deps, "agent": "noop"} for name, deps in graph.items()
        ]
        run_id = await orch.create_workflow(tasks, name="dag")
        start = time.perf_counter()
        result = await orch.execute_workflow(run_id)
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise SystemExit(f"the run failed: {result.error}")
        [summary] = [s for s in await orch.list_runs() if s.run_id == run_id]
    return elapsed, summary.completed


def _case(
    graph: dict[str, list[str]],
    base_url: str,
    workers: int,
    concurrency: int,
    replicas: int,
    tmp: Path,
) -> dict[str, Any]:
    prefix = f"benchscale:{uuid.uuid4().hex[:10]}"
    url = f"{base_url}?prefix={prefix}"
    client = redis.Redis.from_url(base_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = _start_workers(workers, _pipeline(tmp, concurrency, replicas), url)
        redis_before, self_before, workers_before = (
            _redis_cpu(client),
            _cpu_self(),
            _cpu_of(procs),
        )
        elapsed, recorded = asyncio.run(_run_dag(graph, url, workers == 0, concurrency, replicas))
        redis_cpu = _redis_cpu(client) - redis_before
        self_cpu = _cpu_self() - self_before
        workers_cpu = _cpu_of(procs) - workers_before
    finally:
        _stop_workers(procs)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
    if recorded != len(graph):
        raise SystemExit(f"{recorded} of {len(graph)} tasks recorded")
    return {
        "workers": workers,
        "seconds": elapsed,
        "tasks_per_s": len(graph) / elapsed,
        "us_per_task": elapsed / len(graph) * 1e6,
        "cpu_orchestrator_s": self_cpu,
        "cpu_workers_s": workers_cpu,
        "cpu_redis_s": redis_cpu,
    }


def _check_redis(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        # Like the tests: skip on a laptop without Redis, fail in CI (which starts one).
        in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        print(
            f"{'error' if in_ci else 'skipped'}: no Redis server answers at {url}: {exc}",
            file=sys.stderr,
        )
        sys.exit(2 if in_ci else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=64, help="per replica")
    parser.add_argument("--replicas", type=int, default=4, help="agent replicas per worker")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument(
        "--url", default=os.environ.get("SWARM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--no-hosted", action="store_true", help="skip the in-process case")
    args = parser.parse_args()
    _check_redis(args.url)
    graph = make_dag(args.n)
    counts = [int(c) for c in args.workers.split(",")]
    cases = ([] if args.no_hosted else [0]) + counts
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in cases:
            tries = [
                _case(graph, args.url, workers, args.concurrency, args.replicas, Path(tmp))
                for _ in range(args.repeat)
            ]
            row = min(tries, key=lambda r: r["seconds"])
            row["all_seconds"] = [r["seconds"] for r in tries]
            rows.append(row)
            label = "in-process" if workers == 0 else f"{workers} worker(s)"
            print(f"{label}: {row['seconds']:.2f} s", flush=True)
    one = next((r for r in rows if r["workers"] == 1), None)
    table = []
    for row in rows:
        speedup = one["seconds"] / row["seconds"] if one and row["workers"] else None
        table.append(
            [
                "run hosts the agent" if row["workers"] == 0 else f"{row['workers']} worker(s)",
                row["seconds"],
                row["tasks_per_s"],
                row["us_per_task"],
                "-" if speedup is None else f"{speedup:.2f}x",
                row["cpu_orchestrator_s"],
                row["cpu_workers_s"],
                row["cpu_redis_s"],
            ]
        )
        row["speedup_vs_1"] = speedup
    print_table(
        f"{args.n:,}-task DAG on Redis ({os.cpu_count()} CPUs), {args.replicas} agent "
        f"replicas per worker (or in the run), concurrency {args.concurrency} each, "
        f"best of {args.repeat}",
        [
            "case",
            "seconds",
            "tasks/s",
            "µs/task",
            "vs 1 worker",
            "CPU s: orchestrator",
            "workers",
            "redis",
        ],
        table,
    )
    write_json(
        "scaleout",
        {
            "n": args.n,
            "replicas": args.replicas,
            "concurrency": args.concurrency,
            "url": args.url,
            "cases": rows,
        },
    )


if __name__ == "__main__":
    main()
