"""The baseline a user would otherwise write: a durable queue on SQLite, for bench_queue.py.

WAL, ``synchronous=FULL`` (every commit is fsync'd), one writer thread that commits whatever
is waiting in one transaction (group commit); asyncio callers await a future per call.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, body BLOB NOT NULL,
                              leased_until REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS q_ready ON q (topic, leased_until, id);
"""


class SqliteQueue:
    """publish / publish_many / lease / acknowledge_many, committed by one writer thread."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._loop = asyncio.get_running_loop()
        self._waiting: list[tuple[Any, tuple[Any, ...], asyncio.Future[Any]]] = []
        self._wake = threading.Condition()
        self._stop = False
        self._writer = threading.Thread(target=self._run, daemon=True)
        self._writer.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._stop:
                    self._wake.wait()
                if self._stop and not self._waiting:
                    return
                jobs, self._waiting = self._waiting, []
            self._db.execute("BEGIN")
            results = [fn(*args) for fn, args, _ in jobs]
            self._db.execute("COMMIT")  # one fsync for everything that was waiting
            self._loop.call_soon_threadsafe(_settle, [job[2] for job in jobs], results)

    async def _call(self, fn: Any, *args: Any) -> Any:
        future = self._loop.create_future()
        with self._wake:
            self._waiting.append((fn, args, future))
            self._wake.notify()
        return await future

    async def publish(self, topic: str, payload: Any) -> int:
        return int(await self._call(self._put, topic, [orjson.dumps(payload)]))

    async def publish_many(self, topic: str, payloads: list[Any]) -> list[int]:
        bodies = [orjson.dumps(p) for p in payloads]
        last = await self._call(self._put, topic, bodies)
        return list(range(last - len(bodies) + 1, last + 1))

    def _put(self, topic: str, bodies: list[bytes]) -> int:
        self._db.executemany(
            "INSERT INTO q (topic, body) VALUES (?, ?)", [(topic, b) for b in bodies]
        )
        return int(self._db.execute("SELECT last_insert_rowid()").fetchone()[0])

    async def lease(self, topic: str, count: int, seconds: float = 30.0) -> list[tuple[int, Any]]:
        rows = await self._call(self._lease, topic, count, seconds)
        return [(row_id, orjson.loads(body)) for row_id, body in rows]

    def _lease(self, topic: str, count: int, seconds: float) -> list[tuple[int, bytes]]:
        now = time.time()
        return self._db.execute(
            "UPDATE q SET leased_until = ? WHERE id IN (SELECT id FROM q WHERE topic = ? AND "
            "leased_until < ? ORDER BY id LIMIT ?) RETURNING id, body",
            (now + seconds, topic, now, count),
        ).fetchall()

    async def acknowledge_many(self, ids: list[int]) -> int:
        return int(await self._call(self._ack, ids))

    def _ack(self, ids: list[int]) -> int:
        return self._db.executemany("DELETE FROM q WHERE id = ?", [(i,) for i in ids]).rowcount

    async def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        await asyncio.to_thread(self._writer.join)
        self._db.close()


def _settle(futures: list[asyncio.Future[Any]], results: list[Any]) -> None:
    for future, result in zip(futures, results, strict=True):
        if not future.done():
            future.set_result(result)
