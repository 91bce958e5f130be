"""Request/response round trips through the runtime (memory backend) vs a bare asyncio.Queue.

Measured with the background services off (the core path), on (their middleware layers:
metrics and monitoring, tuning, retries, circuit breaker, around every handler), and on with
one user middleware layer more (what an ``async def layer(msg, ctx, call_next)`` costs).
The floor is the cheapest possible in-process ping-pong: a client coroutine puts on one
asyncio.Queue and awaits the echo on another. The runtime does the same trip through a
durable-queue interface (publish, lease, handler, reply, ack). Goals: within 4x of the
floor; services on lose at most 15% of the throughput.

    python benchmarks/bench_runtime.py [--n 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

import swarm_runtime as sr

Rate = tuple[float, float]
"""Round trips per second by the wall clock and per second of this process's CPU time."""


def _rate(n: int, wall: float, cpu: float) -> Rate:
    return n / (time.perf_counter() - wall), n / max(1e-9, time.process_time() - cpu)


async def bare_floor(n: int) -> Rate:
    requests: asyncio.Queue[Any] = asyncio.Queue()
    replies: asyncio.Queue[Any] = asyncio.Queue()

    async def echo() -> None:
        while True:
            item = await requests.get()
            await replies.put({"echo": item})

    task = asyncio.create_task(echo())
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        await requests.put({"i": i})
        await replies.get()
    rate = _rate(n, wall, cpu)
    task.cancel()
    return rate


async def passthrough(msg: sr.Message, ctx: sr.Context, call_next: Any) -> Any:
    return await call_next(msg, ctx)


async def runtime_round_trips(n: int, services: bool, layers: int = 0) -> Rate:
    middleware = [passthrough] * layers
    async with sr.Runtime(queue="memory://", services=services, middleware=middleware) as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            return {"echo": msg.payload}

        for i in range(200):  # warm-up
            await rt.request("echo", {"i": i})
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            await rt.request("echo", {"i": i})
        return _rate(n, wall, cpu)


PATHS: dict[str, Callable[[int], Coroutine[Any, Any, Rate]]] = {
    "bare asyncio.Queue ping-pong": bare_floor,
    "Runtime.request, services off": lambda n: runtime_round_trips(n, False),
    "Runtime.request, services on": lambda n: runtime_round_trips(n, True),
    "services on + 1 user middleware": lambda n: runtime_round_trips(n, True, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sr.configure_logging("warning")

    # interleaved (one of each path per round), so a busy spell on a shared machine hits
    # every path alike; CPU time per trip is far steadier than the wall clock under load
    runs: dict[str, list[Rate]] = {name: [] for name in PATHS}
    for _ in range(args.repeat):
        for name, path in PATHS.items():
            runs[name].append(asyncio.run(path(args.n)))
    best = {name: (max(w for w, _ in r), max(c for _, c in r)) for name, r in runs.items()}
    median = {
        name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
        for name, r in runs.items()
    }
    floor = best["bare asyncio.Queue ping-pong"]
    rows = [[name, *best[name], *median[name], floor[1] / best[name][1]] for name in PATHS]
    off, on = "Runtime.request, services off", "Runtime.request, services on"
    cpu_loss_best = 1 - best[on][1] / best[off][1]
    cpu_loss_median = 1 - median[on][1] / median[off][1]
    result: dict[str, Any] = {
        "n": args.n,
        "repeat": args.repeat,
        "floor_rps": floor[0],
        "runtime_rps": best[off][0],
        "ratio_floor_over_runtime": floor[0] / best[off][0],
        "ratio_floor_over_runtime_cpu": floor[1] / best[off][1],
        "goal": "ratio <= 4",
        "runtime_with_services_rps": best[on][0],
        "services_throughput_loss": 1 - best[on][0] / best[off][0],
        "services_cpu_loss_best": cpu_loss_best,
        "services_cpu_loss_median": cpu_loss_median,
        "runtime_with_user_middleware_rps": best["services on + 1 user middleware"][0],
        "runs": {name: [list(rate) for rate in r] for name, r in runs.items()},
    }
    print_table(
        f"request/response round trips, n={args.n}, {args.repeat} interleaved rounds",
        ["path", "wall rps best", "CPU rps best", "wall median", "CPU median", "x floor (CPU)"],
        rows,
    )
    print(
        f"\nruntime is {result['ratio_floor_over_runtime']:.2f}x the bare floor by the wall clock,"
        f" {result['ratio_floor_over_runtime_cpu']:.2f}x by CPU time (goal: <= 4x)"
    )
    print(
        f"services on cost {cpu_loss_best:.1%} (best) / {cpu_loss_median:.1%} (median) of the"
        f" throughput per CPU second (goal <= 15%)"
    )
    write_json("runtime", result)


if __name__ == "__main__":
    main()
