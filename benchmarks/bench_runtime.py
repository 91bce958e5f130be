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
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

import swarm_runtime as sr


async def bare_floor(n: int) -> float:
    requests: asyncio.Queue[Any] = asyncio.Queue()
    replies: asyncio.Queue[Any] = asyncio.Queue()

    async def echo() -> None:
        while True:
            item = await requests.get()
            await replies.put({"echo": item})

    task = asyncio.create_task(echo())
    start = time.perf_counter()
    for i in range(n):
        await requests.put({"i": i})
        await replies.get()
    elapsed = time.perf_counter() - start
    task.cancel()
    return n / elapsed


async def passthrough(msg: sr.Message, ctx: sr.Context, call_next: Any) -> Any:
    return await call_next(msg, ctx)


async def runtime_round_trips(n: int, services: bool, layers: int = 0) -> float:
    middleware = [passthrough] * layers
    async with sr.Runtime(queue="memory://", services=services, middleware=middleware) as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            return {"echo": msg.payload}

        for i in range(200):  # warm-up
            await rt.request("echo", {"i": i})
        start = time.perf_counter()
        for i in range(n):
            await rt.request("echo", {"i": i})
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sr.configure_logging("warning")

    floor = max(asyncio.run(bare_floor(args.n)) for _ in range(args.repeat))
    runtime = max(asyncio.run(runtime_round_trips(args.n, False)) for _ in range(args.repeat))
    rows = [
        ["bare asyncio.Queue ping-pong", floor, 1e6 / floor, 1.0],
        ["Runtime.request, services off", runtime, 1e6 / runtime, floor / runtime],
    ]
    result: dict[str, Any] = {
        "n": args.n,
        "floor_rps": floor,
        "runtime_rps": runtime,
        "ratio_floor_over_runtime": floor / runtime,
        "goal": "ratio <= 4",
    }
    with_services = max(asyncio.run(runtime_round_trips(args.n, True)) for _ in range(args.repeat))
    rows.append(
        ["Runtime.request, services on", with_services, 1e6 / with_services, floor / with_services]
    )
    result["runtime_with_services_rps"] = with_services
    result["services_throughput_loss"] = 1 - with_services / runtime
    with_layer = max(asyncio.run(runtime_round_trips(args.n, True, 1)) for _ in range(args.repeat))
    rows.append(
        ["services on + 1 user middleware", with_layer, 1e6 / with_layer, floor / with_layer]
    )
    result["runtime_with_user_middleware_rps"] = with_layer
    print_table(
        f"request/response round trips, n={args.n}, best of {args.repeat}",
        ["path", "round trips/s", "µs/trip", "x floor"],
        rows,
    )
    print(f"\nruntime is {floor / runtime:.2f}x the bare floor (goal: <= 4x)")
    if "services_throughput_loss" in result:
        print(
            f"services on: {result['services_throughput_loss']:.1%} throughput loss (goal <= 15%)"
        )
    write_json("runtime", result)


if __name__ == "__main__":
    main()
