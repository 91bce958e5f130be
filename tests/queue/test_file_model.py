"""Stateful property test: the file queue against a model, across clean reopens and crashes.

Hypothesis drives random publishes (three priorities), batch subscribes, acks, nacks,
``nack_many`` batches (some to the DLQ at once), releases, clean close/reopen cycles and
simulated ``kill -9`` (the files as they are, after a flush) on one file queue, and checks
every delivery against a small model: which message comes next, with which attempt count,
and what ends in the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import swarm_runtime as sr
from swarm_runtime.queue.file import FileQueue

from .filequeue_helpers import crash_copy

MAX_ATTEMPTS = 3
PRIORITIES = (0, 1, 2)


@dataclass
class Entry:
    order: int  # publish order: a crash recovery lines messages up this way
    priority: int
    attempts: int = 0


@dataclass
class Model:
    entries: dict[str, Entry] = field(default_factory=dict)
    lines: dict[int, deque[str]] = field(default_factory=lambda: {p: deque() for p in PRIORITIES})
    leased: list[str] = field(default_factory=list)  # in the order delivered
    dead: list[str] = field(default_factory=list)

    def next_ids(self, n: int) -> list[str]:
        out: list[str] = []
        for priority in sorted(PRIORITIES, reverse=True):
            line = self.lines[priority]
            while line and len(out) < n:
                out.append(line.popleft())
        return out

    def kill(self, message_id: str) -> None:
        self.dead.append(message_id)

    def reopen(self, *, crash: bool) -> None:
        """What the queue makes of its leased messages when it is opened again."""
        back = []
        for message_id in self.leased:
            if self.entries[message_id].attempts >= MAX_ATTEMPTS:
                self.kill(message_id)
            else:
                back.append(message_id)
        self.leased = []
        if crash:  # rebuilt from the log: every line in publish order
            for message_id in back:
                self.lines[self.entries[message_id].priority].append(message_id)
            for priority, line in self.lines.items():
                self.lines[priority] = deque(sorted(line, key=lambda i: self.entries[i].order))
        else:  # the snapshot: leased ones first in line, in the order delivered
            for message_id in reversed(back):
                self.lines[self.entries[message_id].priority].appendleft(message_id)


class FileQueueMachine(RuleBasedStateMachine):
    """Random operations on a file queue, every result checked against :class:`Model`."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(prefix="swarm-model-"))
        self.generation = 0
        self.path = self.root / "q0"
        self.queue = self.run(self._open())
        self.model = Model()
        self.published = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> FileQueue:
        queue = await sr.MessageQueue.open(
            f"file://{self.path}", max_attempts=MAX_ATTEMPTS, prefetch=0, fsync="never"
        )
        assert isinstance(queue, FileQueue)
        return queue

    def teardown(self) -> None:
        self.run(self.queue.close())
        self.loop.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ operations

    @rule(priority=st.sampled_from(PRIORITIES), count=st.integers(1, 4))
    def publish(self, priority: int, count: int) -> None:
        for _ in range(count):
            message_id = self.run(self.queue.publish("t", self.published, priority=priority))
            self.model.entries[message_id] = Entry(self.published, priority)
            self.model.lines[priority].append(message_id)
            self.published += 1

    @rule(batch=st.integers(1, 6))
    def subscribe(self, batch: int) -> None:
        got = self.run(self.queue.subscribe("t", batch_size=batch, lease=3600))
        expected = self.model.next_ids(batch)
        assert [m.id for m in got] == expected
        for message in got:
            entry = self.model.entries[message.id]
            entry.attempts += 1
            assert message.attempts == entry.attempts
            assert message.payload == entry.order
            self.model.leased.append(message.id)

    @precondition(lambda self: self.model.leased)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.model.leased))
        assert self.run(self.queue.acknowledge(message_id)) is True
        self.model.leased.remove(message_id)

    @precondition(lambda self: self.model.leased)
    @rule(data=st.data())
    def ack_many(self, data: st.DataObject) -> None:
        leased = self.model.leased
        batch = data.draw(st.lists(st.sampled_from(leased), min_size=1, max_size=len(leased) + 2))
        ready = [m for line in self.model.lines.values() for m in line]
        if ready:  # a ready message acked by id is settled too
            batch.append(data.draw(st.sampled_from(ready)))
        unique = list(dict.fromkeys(batch))
        assert self.run(self.queue.acknowledge_many(batch)) == len(unique)
        for message_id in unique:
            if message_id in leased:
                leased.remove(message_id)
            else:
                for line in self.model.lines.values():
                    if message_id in line:
                        line.remove(message_id)

    @precondition(lambda self: self.model.leased)
    @rule(data=st.data())
    def nack(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.model.leased))
        outcome = self.run(self.queue.nack(message_id, error="nope"))
        self.model.leased.remove(message_id)
        entry = self.model.entries[message_id]
        if entry.attempts >= MAX_ATTEMPTS:
            assert outcome == "dead_lettered"
            self.model.kill(message_id)
        else:
            assert outcome == "requeued"
            self.model.lines[entry.priority].append(message_id)

    @precondition(lambda self: self.model.leased)
    @rule(data=st.data())
    def nack_many(self, data: st.DataObject) -> None:
        leased = self.model.leased
        batch = data.draw(st.lists(st.sampled_from(leased), min_size=1, max_size=len(leased) + 2))
        dead_letter = data.draw(st.booleans())
        outcomes = self.run(self.queue.nack_many(batch, error="nope", dead_letter=dead_letter))
        expected = []
        for message_id in batch:
            if message_id not in leased:  # repeated: nacked already
                expected.append("unknown")
                continue
            leased.remove(message_id)
            entry = self.model.entries[message_id]
            if dead_letter or entry.attempts >= MAX_ATTEMPTS:
                expected.append("dead_lettered")
                self.model.kill(message_id)
            else:
                expected.append("requeued")
                self.model.lines[entry.priority].append(message_id)
        assert outcomes == expected

    @precondition(lambda self: self.model.leased)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(self.model.leased))
        assert self.run(self.queue.release(message_id)) is True
        self.model.leased.remove(message_id)
        entry = self.model.entries[message_id]
        entry.attempts -= 1
        self.model.lines[entry.priority].append(message_id)

    @rule()
    def reopen_cleanly(self) -> None:
        self.run(self.queue.close())
        self.queue = self.run(self._open())
        assert self.queue.recovery is not None
        assert self.queue.recovery.from_snapshot
        self.model.reopen(crash=False)

    @rule()
    def crash(self) -> None:
        self.run(self.queue.flush())
        self.generation += 1
        crashed = crash_copy(self.path, self.root / f"q{self.generation}")
        self.run(self.queue.close())
        self.path = crashed
        self.queue = self.run(self._open())
        assert self.queue.recovery is not None
        assert not self.queue.recovery.from_snapshot
        self.model.reopen(crash=True)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def counts_match(self) -> None:
        stats = self.run(self.queue.stats("t"))
        ready = sum(len(line) for line in self.model.lines.values())
        assert (stats.ready, stats.leased, stats.dead) == (
            ready,
            len(self.model.leased),
            len(self.model.dead),
        )

    @invariant()
    def dead_letters_match(self) -> None:
        dead = self.run(self.queue.dead_letters("t"))
        assert sorted(m.id for m in dead) == sorted(self.model.dead)


TestFileQueueAgainstModel = FileQueueMachine.TestCase
TestFileQueueAgainstModel.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
