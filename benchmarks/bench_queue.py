"""The durable file queue against persist-queue and the disk's own group-commit ceiling.

Everything runs in one process run, on the same disk (a temporary directory next to the
repository unless ``--dir`` says otherwise), with ~200-byte messages:

* swarm-runtime ``file://`` queue, ``fsync="always"``: publish N messages with 1 and with
  64 concurrent publishers, then consume + ack them all (one consumer, batches of 256; and
  the runtime's own shape, batches of 1), and the whole publish + consume + ack cycle;
* persist-queue's ``SQLiteAckQueue`` (its default durable settings): put N, get + ack N;
  with 1 thread and with 64 threads putting;
* the raw ceiling: append 200-byte lines, fsync every 100 lines (and every line);
* reopen of a 1,000,000-message queue (after a clean close, and after a crash: no snapshot)
  in a fresh process, with resident memory per pending message.

Each throughput figure is the median of ``--repeat`` runs (the machine is shared and noisy).

    python benchmarks/bench_queue.py [--n 50000] [--repeat 3] [--reopen-n 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anyio
from _common import print_table, write_json
from _sqlite_queue import SqliteQueue

import swarm_runtime as sr

HERE = Path(__file__).resolve().parent
PAYLOAD = {"user": "u-0042", "event": "page_view", "path": "/products/123", "text": "x" * 110}
LINE = b"y" * 199 + b"\n"


def _fresh(root: Path, name: str) -> Path:
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    return path


# ---------------------------------------------------------------------------- swarm-runtime


async def _publish(queue: sr.MessageQueue, n: int, publishers: int) -> float:
    per = n // publishers

    async def publisher() -> None:
        for _ in range(per):
            await queue.publish("bench", PAYLOAD)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(publishers):
            tg.start_soon(publisher)
    return time.perf_counter() - start


async def _consume(queue: sr.MessageQueue, n: int, batch: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < n:
        messages = await queue.subscribe("bench", batch_size=batch, timeout=5)
        if not messages:
            raise RuntimeError(f"queue ran dry after {done} of {n} messages")
        for message in messages:
            await queue.acknowledge(message.id)
        done += len(messages)
    return time.perf_counter() - start


async def swarm_run(root: Path, n: int, publishers: int, batch: int) -> dict[str, float]:
    path = _fresh(root, f"swarm-{publishers}-{batch}")
    queue = await sr.MessageQueue.open(f"file://{path}", fsync="always")
    published = await _publish(queue, n, publishers)
    consumed = await _consume(queue, n // publishers * publishers, batch)
    fsyncs = queue.info().fsyncs  # type: ignore[attr-defined]
    await queue.close()
    shutil.rmtree(path, ignore_errors=True)
    count = n // publishers * publishers
    return {
        "publish": count / published,
        "consume_ack": count / consumed,
        "cycle": count / (published + consumed),
        "msgs_per_fsync": count / max(1, fsyncs),
    }


# ---------------------------------------------------------------------------- batches vs SQLite


class _FileSide:
    """The file queue behind the small interface both sides of the batch benchmark share."""

    name = "swarm file://"

    def __init__(self, queue: sr.MessageQueue) -> None:
        self.queue = queue

    @classmethod
    async def open(cls, path: Path) -> _FileSide:
        return cls(await sr.MessageQueue.open(f"file://{path}", fsync="always"))

    async def publish(self, payload: Any) -> object:
        return await self.queue.publish("bench", payload)

    async def publish_many(self, payloads: list[Any]) -> list[Any]:
        return await self.queue.publish_many("bench", payloads)

    async def lease(self, count: int) -> list[Any]:
        return [m.id for m in await self.queue.subscribe("bench", batch_size=count, timeout=5)]

    async def acknowledge_many(self, ids: list[Any]) -> int:
        return await self.queue.acknowledge_many(ids)

    async def settle(self) -> None:
        """Acks are written lazily: write and fsync them (inside the timing)."""
        await self.queue.flush()  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.queue.close()


class _SqliteSide:
    name = "SQLite WAL group commit"

    def __init__(self, queue: SqliteQueue) -> None:
        self.queue = queue

    @classmethod
    async def open(cls, path: Path) -> _SqliteSide:
        return cls(SqliteQueue(str(path / "queue.db")))

    async def publish(self, payload: Any) -> object:
        return await self.queue.publish("bench", payload)

    async def publish_many(self, payloads: list[Any]) -> list[Any]:
        return await self.queue.publish_many("bench", payloads)

    async def lease(self, count: int) -> list[Any]:
        return [row_id for row_id, _ in await self.queue.lease("bench", count)]

    async def acknowledge_many(self, ids: list[Any]) -> int:
        return await self.queue.acknowledge_many(ids)

    async def settle(self) -> None:
        """Every acknowledge_many was committed already."""

    async def close(self) -> None:
        await self.queue.close()


async def _in_parallel(publishers: int, rounds: int, fn: Callable[[], Any]) -> float:
    async def worker() -> None:
        for _ in range(rounds):
            await fn()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(publishers):
            tg.start_soon(worker)
    return time.perf_counter() - start


async def batch_run(side_type: Any, root: Path, n: int, n_many: int) -> dict[str, float]:
    """Single publish (64 publishers), publish_many (64 publishers, batches of 100), and the
    whole cycle: publish_many, then lease batches of 256 settled by acknowledge_many."""
    out: dict[str, float] = {}
    path = _fresh(root, "batch-single")
    side = await side_type.open(path)
    per = n // 64
    out["single"] = per * 64 / await _in_parallel(64, per, lambda: side.publish(PAYLOAD))
    await side.close()
    path = _fresh(root, "batch-many")
    side = await side_type.open(path)
    rounds = max(1, n_many // (64 * 100))
    batch = [PAYLOAD] * 100
    count = rounds * 64 * 100
    cpu = time.process_time()
    published = await _in_parallel(64, rounds, lambda: side.publish_many(batch))
    out["publish_many"] = count / published
    out["publish_many_per_cpu_s"] = count / (time.process_time() - cpu)
    start = time.perf_counter()
    done = 0
    while done < count:
        ids = await side.lease(256)
        if not ids:
            raise RuntimeError(f"{side.name} ran dry after {done} of {count} messages")
        done += await side.acknowledge_many(ids)
    await side.settle()
    consumed = time.perf_counter() - start
    await side.close()
    out["consume_ack_many"] = count / consumed
    out["cycle"] = count / (published + consumed)
    out["cycle_per_cpu_s"] = count / (time.process_time() - cpu)
    shutil.rmtree(_fresh(root, "batch-single"), ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- persist-queue


def persist_queue_run(root: Path, n: int, threads: int) -> dict[str, float]:
    from persistqueue import SQLiteAckQueue

    path = _fresh(root, f"pq-{threads}")
    queue = SQLiteAckQueue(str(path), multithreading=True, auto_commit=True)
    per = n // threads

    def putter() -> None:
        for _ in range(per):
            queue.put(PAYLOAD)

    start = time.perf_counter()
    if threads == 1:
        putter()
    else:
        workers = [threading.Thread(target=putter) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    published = time.perf_counter() - start
    count = per * threads
    start = time.perf_counter()
    for _ in range(count):
        item = queue.get(block=False)
        queue.ack(item)
    consumed = time.perf_counter() - start
    queue.close()
    shutil.rmtree(path, ignore_errors=True)
    return {
        "publish": count / published,
        "consume_ack": count / consumed,
        "cycle": count / (published + consumed),
    }


# ---------------------------------------------------------------------------- raw ceiling


def raw_lines(root: Path, n: int, every: int) -> float:
    path = root / f"raw-{every}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    sync = getattr(os, "fdatasync", os.fsync)
    start = time.perf_counter()
    for i in range(1, n + 1):
        os.write(fd, LINE)
        if i % every == 0:
            sync(fd)
    sync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    path.unlink()
    return n / elapsed


# ---------------------------------------------------------------------------- reopen


REOPEN_SCRIPT = r"""
import asyncio, json, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
import swarm_runtime as sr
from swarm_runtime.queue.file import FileQueue
async def main():
    base = rss()
    start = time.perf_counter()
    q = await sr.MessageQueue.open(sys.argv[1])
    elapsed = time.perf_counter() - start
    after = rss()
    depth = await q.depth("bench")
    snap = q.recovery.from_snapshot
    await q.close()
    print(json.dumps({"seconds": elapsed, "rss_delta": after - base, "depth": depth,
                      "from_snapshot": snap, "index_bytes": q.info().index_bytes}))
asyncio.run(main())
"""

FILL_SCRIPT = r"""
import asyncio, json, sys, time
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
import anyio
import swarm_runtime as sr
PAYLOAD = json.loads(sys.argv[3])
async def main():
    n = int(sys.argv[2])
    base = rss()
    q = await sr.MessageQueue.open(sys.argv[1], fsync="never")
    start = time.perf_counter()
    async def publisher(count):
        for _ in range(count):
            await q.publish("bench", PAYLOAD)
    async with anyio.create_task_group() as tg:
        for k in range(100):
            tg.start_soon(publisher, n // 100)
    elapsed = time.perf_counter() - start
    after = rss()
    await q.close()
    print(json.dumps({"seconds": elapsed, "rss_delta": after - base}))
asyncio.run(main())
"""


def _run_json(script: str, *args: str) -> dict[str, Any]:
    import json

    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def reopen_run(root: Path, n: int) -> dict[str, Any]:
    import json

    path = _fresh(root, "reopen")
    url = f"file://{path}"
    fill = _run_json(FILL_SCRIPT, url, str(n), json.dumps(PAYLOAD))
    clean = _run_json(REOPEN_SCRIPT, url)  # writes a fresh snapshot when it closes
    (path / "index.snap").unlink()  # what a crash leaves: no snapshot, scan the log
    crashed = _run_json(REOPEN_SCRIPT, url)
    log_bytes = sum(p.stat().st_size for p in (path / "log").iterdir())
    shutil.rmtree(path, ignore_errors=True)
    return {"n": n, "fill": fill, "clean": clean, "crash": crashed, "log_bytes": log_bytes}


# ---------------------------------------------------------------------------- main


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _repeat(repeat: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The median of ``repeat`` runs, plus the best run's figures as ``best_<key>``."""
    runs = [fn() for _ in range(repeat)]
    out = _median(runs)
    out.update({f"best_{key}": max(r[key] for r in runs) for key in runs[0]})
    return out


def batch_figures(root: Path, n: int, repeat: int) -> dict[str, Any]:
    """The file queue and SQLite, run after run (the same load on both); best and median."""
    n_many = 4 * n
    runs: dict[str, list[dict[str, float]]] = {"file": [], "sqlite": []}
    for _ in range(repeat):
        runs["file"].append(asyncio.run(batch_run(_FileSide, root, n, n_many)))
        runs["sqlite"].append(asyncio.run(batch_run(_SqliteSide, root, n, n_many)))
    out: dict[str, Any] = {"runs": runs}
    rows = []
    keys = [
        "single",
        "publish_many",
        "consume_ack_many",
        "cycle",
        "publish_many_per_cpu_s",
        "cycle_per_cpu_s",
    ]
    for kind, label in (("file", "swarm file://"), ("sqlite", "SQLite WAL group commit")):
        best = {k: max(r[k] for r in runs[kind]) for k in keys}
        median = {k: statistics.median(r[k] for r in runs[kind]) for k in keys}
        out[kind] = {"best": best, "median": median}
        rows.append([f"{label}, best"] + [best[k] for k in keys])
        rows.append([f"{label}, median"] + [median[k] for k in keys])
    ratios = {
        k: statistics.median(f[k] / q[k] for f, q in zip(runs["file"], runs["sqlite"], strict=True))
        for k in keys
    }
    out["ratio_to_sqlite"] = ratios
    rows.append(["file / SQLite (median of per-run ratios)"] + [ratios[k] for k in keys])
    print_table(
        f"batches, msgs/s, fsync on every commit, {repeat} runs: single publish (64 "
        "publishers); publish_many (64 publishers x 100); lease 256 + acknowledge_many; "
        "whole cycle; and messages per CPU-second of the process (all threads: robust to a "
        "loaded machine)",
        ["", "single", "publish_many", "consume+ack_many", "cycle", "many/CPU-s", "cycle/CPU-s"],
        rows,
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="messages per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--reopen-n", type=int, default=1_000_000, help="messages for reopen")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the queues")
    parser.add_argument("--quick", action="store_true", help="n=10000, repeat=1, reopen 100k")
    parser.add_argument(
        "--batches-only", action="store_true", help="only the batch figures against SQLite"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat, args.reopen_n = 10_000, 1, 100_000
    base = args.dir or HERE.parent
    root = Path(tempfile.mkdtemp(prefix=".bench-queue-", dir=base))
    n, repeat = args.n, args.repeat
    size = len(sr.Message(topic="bench", payload=PAYLOAD).to_json())
    print(
        f"queue benchmark: n={n:,} messages of ~{size} bytes (envelope included), "
        f"repeat={repeat}, directory {root}"
    )
    try:
        results: dict[str, Any] = {"n": n, "message_bytes": size, "repeat": repeat}
        results["batches"] = batch_figures(root, n, repeat)
        if args.batches_only:
            write_json("queue_batches", results)
            return 0
        raw100 = statistics.median(raw_lines(root, n * 2, 100) for _ in range(repeat))
        raw1 = statistics.median(raw_lines(root, 2000, 1) for _ in range(repeat))
        results["raw"] = {"fsync_every_100": raw100, "fsync_every_1": raw1}

        def swarm(publishers: int, batch: int, count: int) -> dict[str, float]:
            return asyncio.run(swarm_run(root, count, publishers, batch))

        s64 = _repeat(repeat, lambda: swarm(64, 256, n))
        s64_b1 = _repeat(1, lambda: swarm(64, 1, n))
        s1 = _repeat(1, lambda: swarm(1, 256, n))
        results["swarm"] = {"p64": s64, "p64_batch1": s64_b1, "p1": s1}
        pq1 = _repeat(1, lambda: persist_queue_run(root, n, 1))
        pq64 = _repeat(1, lambda: persist_queue_run(root, n, 64))
        results["persist_queue"] = {"t1": pq1, "t64": pq64}
        reopen = reopen_run(root, args.reopen_n)
        results["reopen"] = reopen
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ["swarm file://, 64 publishers", s64["publish"], s64["consume_ack"], s64["cycle"]],
        [
            "swarm file://, 64 pub., consume batch 1",
            s64_b1["publish"],
            s64_b1["consume_ack"],
            s64_b1["cycle"],
        ],
        ["swarm file://, 1 publisher", s1["publish"], s1["consume_ack"], s1["cycle"]],
        [
            "persist-queue SQLiteAckQueue, 1 thread",
            pq1["publish"],
            pq1["consume_ack"],
            pq1["cycle"],
        ],
        [
            "persist-queue SQLiteAckQueue, 64 threads",
            pq64["publish"],
            pq64["consume_ack"],
            pq64["cycle"],
        ],
        ["raw lines, fsync every 100", raw100, "", ""],
        ["raw lines, fsync every line", raw1, "", ""],
    ]
    print_table(
        f"msgs/s, fsync always, median of {repeat} (swarm 64 publishers: "
        f"{s64['msgs_per_fsync']:.0f} msgs per fsync)",
        ["", "publish", "consume+ack", "whole cycle"],
        rows,
    )
    print(
        f"best of {repeat}, swarm 64 publishers: publish {s64['best_publish']:,.0f}, "
        f"consume+ack {s64['best_consume_ack']:,.0f}, whole cycle {s64['best_cycle']:,.0f} msgs/s"
    )
    best_pq = max(pq1["publish"], pq64["publish"])
    best_pq_cycle = max(pq1["cycle"], pq64["cycle"])
    ratios = {
        "publish_vs_persist_queue": s64["publish"] / best_pq,
        "consume_vs_persist_queue": s64["consume_ack"]
        / max(pq1["consume_ack"], pq64["consume_ack"]),
        "cycle_vs_persist_queue": s64["cycle"] / best_pq_cycle,
        "publish_vs_raw_ceiling": s64["publish"] / raw100,
    }
    results["ratios"] = ratios
    print_table(
        "ratios",
        ["", "x"],
        [
            ["swarm publish (64) / best persist-queue publish", ratios["publish_vs_persist_queue"]],
            ["swarm consume+ack / best persist-queue get+ack", ratios["consume_vs_persist_queue"]],
            ["swarm whole cycle / best persist-queue cycle", ratios["cycle_vs_persist_queue"]],
            ["swarm publish (64) / raw fsync-every-100 ceiling", ratios["publish_vs_raw_ceiling"]],
        ],
    )
    rn = reopen["n"]
    print_table(
        f"reopen of a {rn:,}-message queue ({reopen['log_bytes'] / 2**20:.0f} MiB of log), "
        "fresh process",
        ["", "seconds", "RSS delta MiB", "bytes/message"],
        [
            [
                "after a clean close (snapshot)",
                reopen["clean"]["seconds"],
                reopen["clean"]["rss_delta"] / 2**20,
                reopen["clean"]["rss_delta"] / rn,
            ],
            [
                "after a crash (log scan)",
                reopen["crash"]["seconds"],
                reopen["crash"]["rss_delta"] / 2**20,
                reopen["crash"]["rss_delta"] / rn,
            ],
            [
                "while filling (the publishing process)",
                reopen["fill"]["seconds"],
                reopen["fill"]["rss_delta"] / 2**20,
                reopen["fill"]["rss_delta"] / rn,
            ],
        ],
    )
    write_json("queue", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
