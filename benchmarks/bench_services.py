"""Cost of the background services per task event, and of the balancer's assign/release.

Every task the runtime handles makes two listener calls (started, finished); this measures
what each service adds to them, in isolation, against an empty listener. The end-to-end
figure (runtime throughput with services on) is ``bench_runtime.py``'s last row.

    python benchmarks/bench_services.py [--n 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

import swarm_runtime as sr
from swarm_runtime.events import TaskEvent
from swarm_runtime.services import (
    ErrorHandler,
    LoadBalancer,
    MetricsCollector,
    MonitoringSystem,
    PrometheusExporter,
    SelfOptimizer,
    Services,
)


class _Empty:
    def on_task_started(self, event: TaskEvent) -> None:
        pass

    def on_task_finished(self, event: TaskEvent) -> None:
        pass


def _events(n: int) -> list[tuple[TaskEvent, TaskEvent]]:
    pairs = []
    for i in range(n):
        failed = i % 20 == 0
        pairs.append(
            (
                TaskEvent("a", i % 4, f"m{i}", "agent.a", 1, "started", 0.0),
                TaskEvent(
                    "a",
                    i % 4,
                    f"m{i}",
                    "agent.a",
                    1,
                    "error" if failed else "ok",
                    0.0,
                    0.001 * (i % 50),
                    error=RuntimeError("x") if failed else None,
                ),
            )
        )
    return pairs


def _per_task(listener: Any, pairs: list[tuple[TaskEvent, TaskEvent]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for started, finished in pairs:
            listener.on_task_started(started)
            listener.on_task_finished(finished)
        best = min(best, time.perf_counter() - start)
    return best / len(pairs) * 1e6


async def _assign_release(n: int) -> float:
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=8, replicas=4)
    start = time.perf_counter()
    for i in range(n):
        balancer.release(await balancer.assign_task(agent="a", task_id=f"t{i}"))
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sr.configure_logging("warning")
    pairs = _events(args.n)
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 8})
    candidates: list[tuple[str, Any]] = [
        ("empty listener (floor)", _Empty()),
        ("MetricsCollector", MetricsCollector()),
        ("MonitoringSystem (own collector)", MonitoringSystem()),
        ("ErrorHandler", ErrorHandler()),
        ("LoadBalancer (nothing assigned)", LoadBalancer()),
        ("SelfOptimizer (agent tuned)", optimizer),
        ("PrometheusExporter (own tallies)", PrometheusExporter()),
        ("Services hub (all of them)", Services.create().listeners[0]),
    ]
    rows = []
    result: dict[str, Any] = {"n": args.n, "us_per_task": {}}
    for name, listener in candidates:
        cost = _per_task(listener, pairs, args.repeat)
        rows.append([name, cost])
        result["us_per_task"][name] = cost
    assign = asyncio.run(_assign_release(args.n // 4))
    rows.append(["LoadBalancer assign_task + release", assign])
    result["assign_release_us"] = assign
    print_table(
        f"listener cost per task (started + finished), n={args.n}, best of {args.repeat}",
        ["service", "µs/task"],
        rows,
    )
    write_json("services", result)


if __name__ == "__main__":
    main()
