"""Queue throughput on Redis: RedisQueue beside raw redis-py streams, in the same run.

50,000 messages of ~200 bytes: publish them all, then consume + ack them all.

* raw: redis-py's asyncio client on one stream and group, XADD pipelined 1,000 at a time;
  then rounds of one pipeline holding the XACK of the previous batch (all its ids in one
  XACK) and an XREADGROUP COUNT 1000. No Lua, no leases, no deletes: the ceiling.
* RedisQueue: 64 concurrent publishers calling ``publish`` (concurrent calls share one
  script call); then 64 consumers, each looping ``subscribe(batch_size=...)`` and
  ``acknowledge`` of every message it got (concurrent acks share one script call).

Goal: RedisQueue at >= 60% of raw for publish, consume + ack and the whole cycle. Runs
alternate (raw, queue, raw, queue, ...) so both see the same machine; best of ``--repeat``.

A second section measures ``nack_many`` against a loop of ``nack`` over the same leased
batches (256 messages, leased again and again), on ``redis://`` (one script call against
one per message) and ``file://`` (one record chunk against one per message); only the nack
calls are timed, the two alternate, best and median of ``--repeat`` (``nack_many.json``).

    python benchmarks/bench_redis.py [--n 50000] [--repeat 3] [--url redis://127.0.0.1:6379/0]
                                     [--nack-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anyio
import redis.asyncio as aioredis
from _common import print_table, write_json

import swarm_runtime as sr

PAYLOAD = {"text": "x" * 170, "n": 0}  # ~200 bytes as JSON


async def raw(url: str, n: int, prefix: str) -> tuple[float, float]:
    """Seconds to publish and to consume + ack ``n`` messages with bare redis-py."""
    client = aioredis.Redis.from_url(url)
    key = f"{prefix}:raw"
    try:
        await client.xgroup_create(key, "g", id="0", mkstream=True)
        body = sr.Message(topic="t", payload=PAYLOAD).to_json()
        start = time.perf_counter()
        for first in range(0, n, 1000):
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(first, min(n, first + 1000)):
                    pipe.xadd(key, {"m": body})
                await pipe.execute()
        published = time.perf_counter()
        got = 0
        ids: list[Any] = []
        while got < n:
            async with client.pipeline(transaction=False) as pipe:
                if ids:
                    pipe.xack(key, "g", *ids)
                pipe.xreadgroup("g", "c", {key: ">"}, count=1000)
                replies = await pipe.execute()
            ids = [entry_id for entry_id, _ in replies[-1][0][1]] if replies[-1] else []
            got += len(ids)
        await client.xack(key, "g", *ids)
        consumed = time.perf_counter()
        return published - start, consumed - published
    finally:
        await client.delete(key)
        await client.aclose()


async def queue(
    url: str, n: int, prefix: str, publishers: int, consumers: int, batch: int
) -> tuple[float, float]:
    """Seconds to publish and to consume + ack ``n`` messages through RedisQueue."""
    async with sr.MessageQueue.open(url, prefix=prefix) as q:
        start = time.perf_counter()

        async def publisher(first: int) -> None:
            for _ in range(first, n, publishers):
                await q.publish("bench", PAYLOAD)

        async with anyio.create_task_group() as tg:
            for first in range(publishers):
                tg.start_soon(publisher, first)
        published = time.perf_counter()
        left = n

        async def consumer() -> None:
            nonlocal left
            while left > 0:
                messages = await q.subscribe("bench", batch, timeout=0.05)
                left -= len(messages)
                for message in messages:
                    await q.acknowledge(message.id)

        async with anyio.create_task_group() as tg:
            for _ in range(consumers):
                tg.start_soon(consumer)
        consumed = time.perf_counter()
        assert await q.depth("bench") == 0
        return published - start, consumed - published


async def nack_runs(
    url: str, options: dict[str, Any], repeat: int, rounds: int, batch: int
) -> dict[str, list[float]]:
    """Nacks per second of ``nack_many`` and of a loop of ``nack``, ``repeat`` runs of each
    (alternating), each run nacking ``rounds`` leased batches of ``batch`` messages."""
    out: dict[str, list[float]] = {"loop": [], "many": []}
    async with sr.MessageQueue.open(url, max_attempts=10**9, **options) as q:
        await q.publish_many("nack", [PAYLOAD] * batch)
        for _ in range(repeat):
            for mode in ("loop", "many"):
                spent = 0.0
                for _ in range(rounds):
                    ids = [m.id for m in await q.subscribe("nack", batch_size=batch)]
                    assert len(ids) == batch
                    start = time.perf_counter()
                    if mode == "many":
                        await q.nack_many(ids, error="bench")
                    else:
                        for message_id in ids:
                            await q.nack(message_id, error="bench")
                    spent += time.perf_counter() - start
                out[mode].append(rounds * batch / spent)
        await q.purge("nack")
    return out


def nack_section(url: str, prefix: str, repeat: int, rounds: int, batch: int) -> None:
    """Print and record nack_many against a loop of nack on redis:// and file://."""
    with tempfile.TemporaryDirectory(prefix=".bench-nack-", dir=Path(__file__).parent) as tmp:
        runs = {
            "redis": asyncio.run(nack_runs(url, {"prefix": prefix}, repeat, rounds, batch)),
            "file": asyncio.run(nack_runs(f"file://{tmp}/q", {}, repeat, rounds, batch)),
        }
    rows = []
    results: dict[str, Any] = {}
    for backend, got in runs.items():
        ratios = [many / loop for many, loop in zip(got["many"], got["loop"], strict=True)]
        figures = {
            "loop_best": max(got["loop"]),
            "loop_median": statistics.median(got["loop"]),
            "many_best": max(got["many"]),
            "many_median": statistics.median(got["many"]),
            "ratio_median": statistics.median(ratios),
        }
        results[backend] = figures
        rows.append(
            [
                f"{backend}://",
                figures["loop_best"],
                figures["loop_median"],
                figures["many_best"],
                figures["many_median"],
                f"{figures['ratio_median']:.1f}x",
            ]
        )
    print_table(
        f"nacks/s of leased batches of {batch} ({rounds} batches a run, {repeat} runs each, "
        f"alternating; only the nack calls timed; load {os.getloadavg()[0]:.2f})",
        ["", "nack loop best", "loop median", "nack_many best", "many median", "many / loop"],
        rows,
    )
    write_json(
        "nack_many",
        {
            "batch": batch,
            "rounds": rounds,
            "repeat": repeat,
            "load_1min": os.getloadavg()[0],
            "nacks_per_s": results,
        },
    )


async def leftover_keys(url: str, prefix: str) -> int:
    """Delete whatever the runs left under ``prefix`` (nothing, if the queue cleans up)."""
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        # Waiter flags and bells expire by themselves; anything else would be a leak.
        leaks = [k for k in keys if not k.endswith((b":w", b":bell"))]
        if keys:
            await client.delete(*keys)
        return len(leaks)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("SWARM_REDIS", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--publishers", type=int, default=64)
    parser.add_argument("--consumers", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--nack-batch", type=int, default=256)
    parser.add_argument("--nack-rounds", type=int, default=40)
    parser.add_argument("--nack-only", action="store_true", help="only nack_many vs nack")
    args = parser.parse_args()
    sr.configure_logging("warning")
    prefix = f"swarmbench:{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_ping(args.url))
    except Exception as exc:
        # Like the tests: skip on a laptop without Redis, fail in CI (which starts one).
        in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        print(
            f"{'error' if in_ci else 'skipped'}: no Redis server answers at {args.url}: {exc}",
            file=sys.stderr,
        )
        sys.exit(2 if in_ci else 0)

    if args.nack_only:
        nack_section(args.url, prefix, args.repeat, args.nack_rounds, args.nack_batch)
        leaks = asyncio.run(leftover_keys(args.url, prefix))
        if leaks:
            print(f"warning: {leaks} key(s) left behind under {prefix}:*", file=sys.stderr)
        return

    raw_runs: list[tuple[float, float]] = []
    ours_runs: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        raw_runs.append(asyncio.run(raw(args.url, args.n, prefix)))
        ours_runs.append(
            asyncio.run(
                queue(args.url, args.n, prefix, args.publishers, args.consumers, args.batch)
            )
        )
    nack_section(args.url, prefix, args.repeat, args.nack_rounds, args.nack_batch)
    leaks = asyncio.run(leftover_keys(args.url, prefix))

    def best(runs: list[tuple[float, float]]) -> dict[str, float]:
        n = args.n
        return {
            "publish": max(n / p for p, _ in runs),
            "consume_ack": max(n / c for _, c in runs),
            "cycle": max(n / (p + c) for p, c in runs),
        }

    base, ours = best(raw_runs), best(ours_runs)
    ratios = {phase: ours[phase] / base[phase] for phase in base}
    rows = [
        [phase.replace("_", " + "), base[phase], ours[phase], f"{ratios[phase]:.0%}"]
        for phase in ("publish", "consume_ack", "cycle")
    ]
    print_table(
        f"Redis queue throughput, {args.n:,} messages of ~200 bytes, best of {args.repeat} "
        f"(msgs/s; {args.publishers} publishers, {args.consumers} consumers x "
        f"batch {args.batch})",
        ["phase", "raw redis-py", "RedisQueue", "of raw"],
        rows,
    )
    worst = min(ratios.values())
    print(f"\nRedisQueue is at {worst:.0%} of raw in its weakest phase (goal: >= 60%)")
    if leaks:
        print(f"warning: {leaks} key(s) left behind under {prefix}:*", file=sys.stderr)
    write_json(
        "redis",
        {
            "n": args.n,
            "repeat": args.repeat,
            "publishers": args.publishers,
            "consumers": args.consumers,
            "batch": args.batch,
            "raw_msgs_per_s": base,
            "queue_msgs_per_s": ours,
            "ratio": ratios,
            "goal": "ratio >= 0.6 in every phase",
            "leftover_keys": leaks,
        },
    )


async def _ping(url: str) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
