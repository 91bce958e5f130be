"""A process that publishes and consumes on a file queue until it is killed (crash tests).

Usage: ``python crash_worker.py QUEUE_DIR RECORD_DIR ROUND [--drain] [--batches] [--nacks]``

Producers write each id to ``published.ROUND`` once ``publish`` has returned; consumers
write each id to ``delivered.ROUND`` when it arrives and to ``acked.ROUND`` once
``acknowledge`` has returned. Records are appended with unbuffered ``os.write`` calls, so a
``kill -9`` loses none of them. ``--drain`` publishes nothing, consumes until the queue is
empty, closes cleanly and exits 0. ``--batches``: producers call ``publish_many`` (even
ones) or ``publish_all`` (odd ones, messages with their own priorities and correlation ids,
recorded in ``published_all.ROUND``) and consumers ``acknowledge_many``; each batch's ids
are written as one line (one write). ``--nacks`` (with ``--batches``): every third batch a
consumer gets is given back with ``nack_many(ids, error=TAG)`` instead, TAG unique per
batch; ``events.ROUND`` records, in order, each delivered batch (``D id=last_error ...``)
and each returned ``nack_many`` (``N TAG id ...``), so the harness can tell whether a
batch's records survived a kill.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import anyio

import swarm_runtime as sr
from swarm_runtime.queue.file import FileQueue

PRODUCERS = 8
CONSUMERS = 2
BATCH = 16
PUBLISH_BATCH = 50
PREFETCH = 128  # the file queue's default


class Recorder:
    def __init__(self, directory: Path, name: str) -> None:
        self._fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, message_id: str) -> None:
        os.write(self._fd, f"{message_id}\n".encode())

    def add_batch(self, message_ids: list[str]) -> None:
        os.write(self._fd, f"{' '.join(message_ids)}\n".encode())


async def main(
    queue_dir: str, record_dir: str, round_: int, drain: bool, batches: bool, nacks: bool
) -> None:
    records = Path(record_dir)
    published = Recorder(records, f"published.{round_}")
    published_all = Recorder(records, f"published_all.{round_}")
    delivered = Recorder(records, f"delivered.{round_}")
    acked = Recorder(records, f"acked.{round_}")
    events = Recorder(records, f"events.{round_}")
    nacked = 0
    queue = await sr.MessageQueue.open(f"file://{queue_dir}", max_attempts=1000)
    assert isinstance(queue, FileQueue)

    async def produce(k: int) -> None:
        n = 0
        while batches and k % 2:
            messages = [
                sr.Outgoing(
                    "jobs",
                    {"round": round_, "producer": k, "n": n + i},
                    priority=i % 3,
                    correlation_id=f"{k}.{n + i}",
                )
                for i in range(PUBLISH_BATCH)
            ]
            published_all.add_batch(await queue.publish_all(messages))
            n += PUBLISH_BATCH
        while batches:
            payloads = [{"round": round_, "producer": k, "n": n + i} for i in range(PUBLISH_BATCH)]
            published.add_batch(await queue.publish_many("jobs", payloads))
            n += PUBLISH_BATCH
        while True:
            message_id = await queue.publish("jobs", {"round": round_, "producer": k, "n": n})
            published.add(message_id)
            n += 1

    async def consume(done: anyio.Event | None) -> None:
        nonlocal nacked
        while True:
            batch = await queue.subscribe("jobs", batch_size=BATCH, timeout=0.5 if drain else None)
            if not batch and done is not None:
                done.set()
                return
            if nacks and batch:
                seen = [f"{m.id}={(m.last_error or '-').replace(' ', '_')}" for m in batch]
                events.add_batch(["D", *seen])
            if batches and batch:
                ids = [message.id for message in batch]
                delivered.add_batch(ids)
                nacked += 1
                if nacks and not drain and nacked % 3 == 0:
                    tag = f"nack-{round_}-{nacked}"
                    await queue.nack_many(ids, error=tag)
                    events.add_batch(["N", tag, *ids])
                    continue
                await queue.acknowledge_many(ids)
                acked.add_batch(ids)
                continue
            for message in batch:
                delivered.add(message.id)
                await queue.acknowledge(message.id)
                acked.add(message.id)

    if drain:
        done = anyio.Event()
        await consume(done)
        stats = await queue.stats("jobs")
        await queue.close()
        print(f"drained depth={stats.depth}", flush=True)
        return

    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.maintain)
        for k in range(PRODUCERS):
            tg.start_soon(produce, k)
        for _ in range(CONSUMERS):
            tg.start_soon(consume, None)
        print("ready", flush=True)


if __name__ == "__main__":
    directory, record_dir, round_text = sys.argv[1:4]
    flags = sys.argv[4:]
    asyncio.run(
        main(
            directory,
            record_dir,
            int(round_text),
            "--drain" in flags,
            "--batches" in flags,
            "--nacks" in flags,
        )
    )
