"""The file backend beyond the conformance suite: durability, recovery, locking, bad input."""

from __future__ import annotations

import errno
import os
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import structlog

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.queue.file import FileQueue
from swarm_runtime.queue.file._format import RecordType, scan
from swarm_runtime.queue.file._log import Log
from swarm_runtime.queue.file._snapshot import SNAPSHOT_NAME

from .filequeue_helpers import (
    append,
    crash_copy,
    drop_snapshot,
    flip,
    open_file_queue,
    record_offsets,
    segments,
    start_owner,
    truncate,
)

REOPEN = pytest.mark.parametrize("how", ["snapshot", "scan"])


async def reopen(path: Path, how: str, **options: object) -> FileQueue:
    """Open again after a clean close, from the snapshot or by scanning the log."""
    if how == "scan":
        drop_snapshot(path)
    queue = await open_file_queue(path, **options)
    assert queue.recovery is not None
    assert queue.recovery.from_snapshot is (how == "snapshot")
    return queue


# ---------------------------------------------------------------------------- reopening


@REOPEN
async def test_reopen_keeps_every_message_its_envelope_and_order(tmp_path: Path, how: str) -> None:
    """Messages survive close/reopen with their envelope, priorities and FIFO order."""
    q = await open_file_queue(tmp_path / "q")
    ids = [
        await q.publish("t", {"i": i}, priority=p, headers={"h": i}, sender="s", workflow_id="w")
        for i, p in enumerate([0, 2, 0, 2, 1])
    ]
    custom = sr.Message(id="order-42", topic="t", payload="custom", correlation_id="c")
    await q.publish_message(custom)
    await q.close()

    q = await reopen(tmp_path / "q", how)
    got = await q.subscribe("t", batch_size=10)
    assert [m.id for m in got] == [ids[1], ids[3], ids[4], ids[0], ids[2], "order-42"]
    first = got[0]
    assert (first.payload, first.headers, first.sender, first.workflow_id) == (
        {"i": 1},
        {"h": 1},
        "s",
        "w",
    )
    assert got[-1].correlation_id == "c"
    assert all(m.attempts == 1 for m in got)
    for m in got:
        assert await q.acknowledge(m.id)
    await q.close()
    q = await reopen(tmp_path / "q", how)
    assert await q.depth("t") == 0
    await q.close()


@REOPEN
async def test_publish_all_runs_survive_reopen(tmp_path: Path, how: str) -> None:
    """publish_all's runs of messages (one topic, priority and attempts limit, each its
    own envelope), split by other topics, delays and dedup keys, come back after a
    reopen each with its own envelope, in order."""
    q = await open_file_queue(tmp_path / "q")
    specs = [("a", 0, None), ("a", 0, None), ("b", 0, None), ("a", 0, None), ("a", 3, None)]
    specs += [("a", 3, 2), ("a", 3, 2)]
    messages = [
        sr.Outgoing(t, i, priority=p, max_attempts=n, correlation_id=f"c{i}", headers={"i": i})
        for i, (t, p, n) in enumerate(specs)
    ]
    messages.insert(3, sr.Outgoing("a", "keyed", dedup_key="k", correlation_id="ck"))
    messages.append(sr.Outgoing("a", "later", delay=60, correlation_id="cl"))
    ids = await q.publish_all(messages)
    await q.close()

    q = await reopen(tmp_path / "q", how)
    got = await q.subscribe("a", batch_size=20)
    a = [i for i, m in enumerate(messages) if m.to == "a" and not m.delay]
    order = sorted(a, key=lambda i: -messages[i].priority)  # FIFO within a priority
    assert [m.id for m in got] == [ids[i] for i in order]
    for m, i in zip(got, order, strict=True):
        sent = messages[i]
        assert (m.payload, m.correlation_id, m.priority) == (
            sent.payload,
            sent.correlation_id,
            sent.priority,
        )
        assert m.max_attempts == sent.max_attempts
        assert m.headers == (sent.headers or {})
    [b] = await q.subscribe("b", batch_size=5)
    assert (b.id, b.correlation_id) == (ids[2], "c2")
    assert (await q.stats("a")).delayed == 1
    await q.close()


async def test_publish_all_interleaved_topics_keep_fifo(tmp_path: Path) -> None:
    """Plain messages to topics that interleave are gathered per topic and priority, but
    each topic still gets its messages in list order, whatever their attempts limits, and
    a message with a dedup key keeps its place among them."""
    q = await open_file_queue(tmp_path / "q")
    messages = []
    for i in range(12):
        limit = (None, 3, 3, 7)[i % 4]
        messages.append(sr.Outgoing("a", f"a{i}", max_attempts=limit))
        messages.append(sr.Outgoing("b", f"b{i}", priority=i % 2))
        if i == 5:
            messages.append(sr.Outgoing("a", "keyed", dedup_key="k"))
    ids = await q.publish_all(messages)
    await q.close()

    q = await reopen(tmp_path / "q", "scan")
    got = await q.subscribe("a", batch_size=50)
    expected = [i for i, m in enumerate(messages) if m.to == "a"]
    assert [m.id for m in got] == [ids[i] for i in expected]
    assert [m.max_attempts for m in got] == [messages[i].max_attempts for i in expected]
    got_b = await q.subscribe("b", batch_size=50)
    assert [m.payload for m in got_b] == [f"b{i}" for i in range(1, 12, 2)] + [
        f"b{i}" for i in range(0, 12, 2)
    ]
    await q.close()


async def test_publish_all_bad_envelope_in_a_run_stores_nothing(tmp_path: Path) -> None:
    """An envelope that is not JSON, inside a run of messages to one topic, refuses the
    whole publish_all, naming the message."""
    q = await open_file_queue(tmp_path / "q")
    messages = [sr.Outgoing("t", i, sender="s") for i in range(4)]
    messages[2] = sr.Outgoing("t", 2, sender=object())  # type: ignore[arg-type]
    with pytest.raises(sr.PayloadError, match=r"messages\[2\]: the message envelope"):
        await q.publish_all(messages)
    assert await q.depth("t") == 0
    await q.close()


@REOPEN
async def test_dead_letters_delays_and_errors_survive_reopen(tmp_path: Path, how: str) -> None:
    """Dead letters keep their last error, delayed messages their due time, nacks their error."""
    clock = ManualClock()
    q = await open_file_queue(tmp_path / "q", clock=clock, max_attempts=1)
    dead_id = await q.publish("t", "dies")
    [msg] = await q.subscribe("t")
    assert await q.nack(msg.id, error="boom") == "dead_lettered"
    later = await q.publish("t", "later", delay=100)
    await q.close()

    q = await reopen(tmp_path / "q", how, clock=clock, max_attempts=3)
    [dead] = await q.dead_letters("t")
    assert (dead.id, dead.last_error, dead.attempts) == (dead_id, "boom", 1)
    assert (await q.stats("t")).delayed == 1
    assert await q.subscribe("t") == []
    clock.advance(101)
    [msg] = await q.subscribe("t")
    assert msg.id == later
    assert await q.nack(msg.id, error="again") == "requeued"
    await q.close()

    q = await reopen(tmp_path / "q", how, clock=clock, max_attempts=3)
    [msg] = await q.subscribe("t")
    assert (msg.id, msg.attempts, msg.last_error) == (later, 2, "again")
    await q.close()


@REOPEN
async def test_dedup_key_is_remembered_across_reopen(tmp_path: Path, how: str) -> None:
    """A dedup key published before a restart still deduplicates within its window."""
    clock = ManualClock()
    q = await open_file_queue(tmp_path / "q", clock=clock, dedup_window=100)
    first = await q.publish("t", 1, dedup_key="k")
    await q.close()
    q = await reopen(tmp_path / "q", how, clock=clock, dedup_window=100)
    assert await q.publish("t", 2, dedup_key="k") == first
    clock.advance(101)
    assert await q.publish("t", 3, dedup_key="k") != first
    await q.close()


async def test_crash_makes_leased_messages_ready_with_the_attempt_counted(tmp_path: Path) -> None:
    """After a kill, a message that was leased is delivered again with attempts + 1."""
    q = await open_file_queue(tmp_path / "q")
    mid = await q.publish("t", "x")
    [msg] = await q.subscribe("t")
    assert msg.attempts == 1
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()

    q = await open_file_queue(crashed)
    assert q.recovery is not None
    assert q.recovery.released == 1
    assert not q.recovery.from_snapshot
    [msg] = await q.subscribe("t")
    assert (msg.id, msg.attempts) == (mid, 2)
    await q.close()


async def test_a_message_that_keeps_killing_its_consumer_ends_in_the_dlq(tmp_path: Path) -> None:
    """Deliveries are counted on disk, so a poison message cannot crash-loop forever."""
    path = tmp_path / "q0"
    q = await open_file_queue(path, max_attempts=3)
    mid = await q.publish("t", "poison")
    await q.close()
    for round_ in range(3):
        q = await open_file_queue(path, max_attempts=3)
        [msg] = await q.subscribe("t")
        assert msg.attempts == round_ + 1
        path = crash_copy(path, tmp_path / f"q{round_ + 1}")
        await q.close()
    q = await open_file_queue(path, max_attempts=3)
    assert await q.subscribe("t") == []
    [dead] = await q.dead_letters("t")
    assert dead.id == mid
    assert "stopped during attempt 3 of 3" in (dead.last_error or "")
    await q.close()


async def test_acks_written_before_a_crash_are_not_redelivered(tmp_path: Path) -> None:
    """Acks reach the log with the next queue call, and a restart does not redeliver them."""
    q = await open_file_queue(tmp_path / "q")
    for i in range(10):
        await q.publish("t", i)
    batch = await q.subscribe("t", batch_size=6)
    for m in batch:
        await q.acknowledge(m.id)
    await q.flush()
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed)
    rest = await q.subscribe("t", batch_size=20)
    assert [m.payload for m in rest] == [6, 7, 8, 9]
    await q.close()


async def test_unflushed_acks_are_the_only_redeliveries(tmp_path: Path) -> None:
    """An ack not yet written when the process dies means one redelivery, nothing worse."""
    q = await open_file_queue(tmp_path / "q", prefetch=0)
    for i in range(4):
        await q.publish("t", i)
    first = await q.subscribe("t", batch_size=2)
    for m in first:
        await q.acknowledge(m.id)
    second = await q.subscribe("t", batch_size=1)  # writes the acks of the first batch
    await q.acknowledge(second[0].id)  # this ack is still in memory at the "kill"
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed)
    again = await q.subscribe("t", batch_size=10)
    assert [m.payload for m in again] == [2, 3]
    assert again[0].attempts == 2
    await q.close()


async def test_a_nack_many_batch_is_one_chunk_kept_whole_or_not_at_all(tmp_path: Path) -> None:
    """nack_many appends its REQUEUE / DEAD records as one chunk (one write): a kill
    before it is written keeps none of the batch, one after keeps all of it."""
    path = tmp_path / "q"
    q = await open_file_queue(path, prefetch=0, max_attempts=3)
    await q.publish_many("t", list(range(6)))
    ids = [m.id for m in await q.subscribe("t", batch_size=6)]
    batch = q._journal.open_batch
    chunks = len(batch.chunks)
    assert await q.nack_many(ids[:3], error="batch") == ["requeued"] * 3
    assert await q.nack_many(ids[3:5], error="dead", dead_letter=True) == ["dead_lettered"] * 2
    assert q._journal.open_batch is batch
    kinds = [[rtype for _, rtype, _, _ in scan(chunk, 0)] for chunk in batch.chunks[chunks:]]
    assert kinds == [[RecordType.REQUEUE] * 3, [RecordType.DEAD] * 2]

    before = crash_copy(path, tmp_path / "before")  # killed before the trip that writes them
    await q.flush()
    after = crash_copy(path, tmp_path / "after")
    await q.close()

    q = await open_file_queue(before, max_attempts=3)
    again = await q.subscribe("t", batch_size=6)
    assert [(m.payload, m.attempts, m.last_error) for m in again] == [
        (i, 2, None) for i in range(6)
    ]
    assert await q.dead_letters("t") == []
    await q.close()

    q = await open_file_queue(after, max_attempts=3)
    again = await q.subscribe("t", batch_size=6)
    assert sorted((m.payload, m.attempts, m.last_error) for m in again) == [
        (0, 2, "batch"),
        (1, 2, "batch"),
        (2, 2, "batch"),
        (5, 2, None),
    ]
    dead = await q.dead_letters("t")
    assert [(m.payload, m.last_error) for m in dead] == [(3, "dead"), (4, "dead")]
    await q.close()


async def test_with_prefetch_unwritten_acks_are_bounded_by_the_prefetch(tmp_path: Path) -> None:
    """Prefetched subscribes skip the disk, so up to ``prefetch`` acks may be redelivered."""
    q = await open_file_queue(tmp_path / "q", prefetch=8)
    for i in range(40):
        await q.publish("t", i)
    for _ in range(20):
        [m] = await q.subscribe("t")
        await q.acknowledge(m.id)
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed)
    again = [m.payload for m in await q.subscribe("t", batch_size=50)]
    assert again == list(range(len(again) and 40 - len(again), 40))
    assert 20 <= len(again) <= 20 + 8  # the 20 never acked, plus at most 8 acked ones
    await q.close()


async def test_delayed_messages_are_kept_on_disk(tmp_path: Path) -> None:
    """A delayed message is in the log (not only in memory) and survives a crash."""
    clock = ManualClock()
    q = await open_file_queue(tmp_path / "q", clock=clock)
    await q.publish("t", "later", delay=30)
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed, clock=clock)
    assert (await q.stats("t")).delayed == 1
    clock.advance(31)
    [msg] = await q.subscribe("t")
    assert msg.payload == "later"
    await q.close()


# ---------------------------------------------------------------------------- damage


async def test_torn_tail_is_cut_off_with_a_warning(tmp_path: Path) -> None:
    """A half-written last record is detected by its checksum, cut off, and reported."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    for i in range(5):
        await q.publish("t", i)
    await q.close()
    drop_snapshot(path)
    [seg] = segments(path)
    offsets = record_offsets(seg)
    last_offset, _, end = offsets[-1]
    truncate(seg, end - 7)  # the last publish was torn by a crash
    with structlog.testing.capture_logs() as logs:
        q = await open_file_queue(path)
    assert q.recovery is not None
    assert q.recovery.truncated == [(1, last_offset)]
    assert any("torn tail" in entry.get("problem", "") for entry in logs)
    assert seg.stat().st_size == last_offset
    assert [m.payload for m in await q.subscribe("t", batch_size=10)] == [0, 1, 2, 3]
    await q.publish("t", "after")
    await q.close()
    drop_snapshot(path)
    q = await open_file_queue(path)
    assert (await q.stats("t")).depth == 5  # four leased at close, now ready, plus "after"
    await q.close()


async def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path) -> None:
    """Zeros or junk past the last valid record (a power cut) are removed at open."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    await q.publish("t", "kept")
    await q.close()
    drop_snapshot(path)
    [seg] = segments(path)
    size = seg.stat().st_size
    append(seg, b"\0" * 4096 + b"WQ" + os.urandom(100))
    q = await open_file_queue(path)
    assert seg.stat().st_size == size
    assert [m.payload for m in await q.subscribe("t")] == ["kept"]
    await q.close()


async def test_corrupt_record_in_the_middle_is_skipped_and_reported(tmp_path: Path) -> None:
    """A damaged record inside the log is skipped; the records around it are kept."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    for i in range(5):
        await q.publish("t", i)
    await q.close()
    drop_snapshot(path)
    [seg] = segments(path)
    offsets = record_offsets(seg)
    victim = offsets[2][0]
    data = bytearray(seg.read_bytes())
    data[victim + 40] ^= 0xFF
    seg.write_bytes(bytes(data))
    with structlog.testing.capture_logs() as logs:
        q = await open_file_queue(path)
    assert q.recovery is not None
    assert len(q.recovery.skipped) == 1
    assert q.recovery.truncated == []
    assert any("corrupt record" in entry.get("problem", "") for entry in logs)
    assert [m.payload for m in await q.subscribe("t", batch_size=10)] == [0, 1, 3, 4]
    await q.close()


async def test_damage_found_after_open_drops_only_that_message(tmp_path: Path) -> None:
    """A record damaged on disk while the queue runs is reported at read time, not fatal."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    for i in range(3):
        await q.publish("t", i)
    [seg] = segments(path)
    victim = record_offsets(seg)[1][0]
    flip(seg, victim + 60, 0x55)
    with structlog.testing.capture_logs() as logs:
        got = await q.subscribe("t", batch_size=10)
    assert [m.payload for m in got] == [0, 2]
    assert q.corrupt_reads == 1
    assert any(entry["event"].startswith("queue record unreadable") for entry in logs)
    assert await q.depth("t") == 2
    await q.close()


async def test_full_segments_are_sealed_and_trusted_only_while_intact(tmp_path: Path) -> None:
    """A full segment ends with a SEAL vouching for all its bytes; damage voids the seal."""
    path = tmp_path / "q"
    q = await open_file_queue(path, segment_size=64 * 1024, fsync="never")
    for i in range(600):
        await q.publish("t", {"i": i, "text": "x" * 200})
    await q.close()
    drop_snapshot(path)
    segs = segments(path)
    assert len(segs) >= 3
    sealed = [seg for seg in segs if record_offsets(seg)[-1][1] == RecordType.SEAL]
    assert sealed == segs[:-1]
    q = await open_file_queue(path)
    assert q.recovery is not None
    assert q.recovery.trusted == len(segs) - 1
    await q.close()
    drop_snapshot(path)
    victim = record_offsets(segs[0])[3]
    flip(segs[0], victim[0] + 30)
    q = await open_file_queue(path)
    assert q.recovery is not None
    assert q.recovery.trusted == len(segs) - 2
    assert len(q.recovery.skipped) == 1
    got = []
    while batch := await q.subscribe("t", batch_size=100):
        got.extend(m.payload["i"] for m in batch)
    assert got == [i for i in range(600) if i != 3]
    await q.close()


async def test_stale_snapshot_is_ignored(tmp_path: Path) -> None:
    """A snapshot that does not match the log byte for byte is not trusted."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    await q.publish("t", "a")
    await q.close()
    snapshot = (path / SNAPSHOT_NAME).read_bytes()
    q = await open_file_queue(path)
    await q.publish("t", "b")
    crashed = crash_copy(path, tmp_path / "after")
    await q.close()
    (crashed / SNAPSHOT_NAME).write_bytes(snapshot)  # an old snapshot next to a longer log
    q = await open_file_queue(crashed)
    assert q.recovery is not None
    assert not q.recovery.from_snapshot
    assert "changed" in q.recovery.snapshot_note
    assert [m.payload for m in await q.subscribe("t", batch_size=5)] == ["a", "b"]
    await q.close()


async def test_corrupt_snapshot_falls_back_to_the_log(tmp_path: Path) -> None:
    """A damaged snapshot is detected by its checksum and the log is scanned instead."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    await q.publish("t", "a")
    await q.close()
    snap = path / SNAPSHOT_NAME
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 1
    snap.write_bytes(bytes(data))
    q = await open_file_queue(path)
    assert q.recovery is not None
    assert not q.recovery.from_snapshot
    assert "checksum" in q.recovery.snapshot_note
    assert [m.payload for m in await q.subscribe("t")] == ["a"]
    await q.close()


# ---------------------------------------------------------------------------- ownership


async def test_second_open_gets_queue_locked_error_naming_the_pid(tmp_path: Path) -> None:
    """Only one owner at a time: a second open is refused with the holder's pid."""
    q = await open_file_queue(tmp_path / "q")
    with pytest.raises(sr.QueueLockedError, match=rf"locked by process {os.getpid()}") as info:
        await open_file_queue(tmp_path / "q")
    assert info.value.pid == os.getpid()
    await q.close()
    again = await open_file_queue(tmp_path / "q")
    await again.close()


async def test_lock_held_by_another_process(tmp_path: Path) -> None:
    """A queue owned by another process is refused, naming that process."""
    path = tmp_path / "q"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        import swarm_runtime as sr
        async def main():
            q = await sr.MessageQueue.open({f"file://{path}"!r})
            await q.publish("t", "from the other process")
            print("ready", flush=True)
            sys.stdin.readline()
            await q.close()
        asyncio.run(main())
        """
    )
    async with await start_owner(script) as proc:
        with pytest.raises(sr.QueueLockedError) as info:
            await open_file_queue(path)
        assert info.value.pid == proc.pid
        assert str(proc.pid) in str(info.value)
        inspect = await open_file_queue(path, read_only=True)
        assert (await inspect.stats("t")).ready == 1
        assert inspect.info().lock_holder == proc.pid
        with pytest.raises(sr.QueueError, match="read-only"):
            await inspect.publish("t", "nope")
        with pytest.raises(sr.QueueError, match="read-only"):
            await inspect.subscribe("t")
        await inspect.close()
        assert proc.stdin is not None
        await proc.stdin.send(b"\n")
        with anyio.fail_after(30):
            assert await proc.wait() == 0
    q = await open_file_queue(path)
    assert (await q.stats("t")).ready == 1
    await q.close()


async def test_kill_releases_the_lock(tmp_path: Path) -> None:
    """A killed owner leaves no stale lock: the next process opens the queue at once."""
    path = tmp_path / "q"
    script = (
        "import asyncio, sys, swarm_runtime as sr\n"
        "async def main():\n"
        f"    q = await sr.MessageQueue.open({f'file://{path}'!r})\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    async with await start_owner(script) as proc:
        proc.kill()
        with anyio.fail_after(30):
            await proc.wait()
    q = await open_file_queue(path)
    await q.close()


async def test_read_only_needs_an_existing_queue(tmp_path: Path) -> None:
    """Inspecting a directory that holds no queue says so."""
    with pytest.raises(sr.QueueError, match="no queue"):
        await open_file_queue(tmp_path / "nothing", read_only=True)


# ---------------------------------------------------------------------------- bad input


async def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    """A directory written by a newer format is refused with a message naming both versions."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    await q.close()
    (path / "FORMAT").write_text('{"format": 2}')
    with pytest.raises(sr.QueueFormatError, match="format version 2.*reads version 1"):
        await open_file_queue(path)


async def test_newer_segment_version_is_refused(tmp_path: Path) -> None:
    """A segment written by a newer format is refused, not misread."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    await q.publish("t", 1)
    await q.close()
    drop_snapshot(path)
    [seg] = segments(path)
    data = bytearray(seg.read_bytes())
    data[8:12] = (2).to_bytes(4, "little")
    data[20:24] = zlib.crc32(bytes(data[:20])).to_bytes(4, "little")
    seg.write_bytes(bytes(data))
    with pytest.raises(sr.QueueFormatError, match="version 2"):
        await open_file_queue(path)


async def test_a_file_that_is_not_a_format_file_is_refused(tmp_path: Path) -> None:
    """Opening a directory whose FORMAT file is not ours fails clearly."""
    path = tmp_path / "q"
    path.mkdir()
    (path / "FORMAT").write_text("hello")
    with pytest.raises(sr.QueueFormatError, match="really a queue directory"):
        await open_file_queue(path)


async def test_queue_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """A queue URL pointing at a regular file is a configuration error."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(sr.ConfigError, match="not a directory"):
        await open_file_queue(tmp_path / "f")


def _fail_first_write(
    monkeypatch: pytest.MonkeyPatch, partial: Callable[[memoryview], memoryview]
) -> None:
    """The log's next write puts ``partial(view)`` in the file, then fails with ENOSPC."""
    real_write = Log._write
    calls = {"n": 0}

    def failing_write(fd: int, view: memoryview, offset: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            real_write(fd, partial(view), offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, view, offset)

    monkeypatch.setattr(Log, "_write", staticmethod(failing_write))


async def test_disk_full_raises_queue_full_and_keeps_the_log_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC mid-write: the publisher gets QueueFullError, the partial write is cut off."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    kept = await q.publish("t", "kept")
    _fail_first_write(monkeypatch, lambda view: view[:10])  # part of the record reaches the file
    with pytest.raises(sr.QueueFullError, match="disk .* is full") as info:
        await q.publish("t", "lost")
    assert isinstance(info.value.__cause__, OSError)
    assert await q.depth("t") == 1
    after = await q.publish("t", "after")  # space is back
    [seg] = segments(path)
    assert all(rtype == RecordType.MSG for _, rtype, _ in record_offsets(seg))
    crashed = crash_copy(path, tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed)
    assert q.recovery is not None
    assert not q.recovery.problems
    assert [m.id for m in await q.subscribe("t", batch_size=5)] == [kept, after]
    await q.close()


async def test_disk_full_during_publish_many_stores_nothing_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while a publish_many batch is written: QueueFullError, none of the batch is
    stored (not after reopening either), and its dedup keys are free for the retry."""
    path = tmp_path / "q"
    q = await open_file_queue(path)
    kept = await q.publish("t", "kept")
    _fail_first_write(monkeypatch, lambda view: view[: len(view) // 2])  # half the batch
    with pytest.raises(sr.QueueFullError):
        await q.publish_many("t", list(range(50)), dedup_keys=[f"k{i}" for i in range(50)])
    assert await q.depth("t") == 1
    ids = await q.publish_many("t", list(range(50)), dedup_keys=[f"k{i}" for i in range(50)])
    assert len(set(ids)) == 50  # stored now: the failed batch held no dedup key
    crashed = crash_copy(path, tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed)
    got = await q.subscribe("t", batch_size=100)
    assert [m.id for m in got] == [kept, *ids]
    await q.close()


async def test_message_too_large_is_refused(tmp_path: Path) -> None:
    """A message beyond the size limit is refused with a PayloadError, nothing stored."""
    q = await open_file_queue(tmp_path / "q")
    with pytest.raises(sr.PayloadError, match="larger than"):
        await q.publish("t", "x" * (65 * 1024 * 1024))
    assert await q.depth("t") == 0
    await q.close()


async def test_priority_out_of_range_is_refused(tmp_path: Path) -> None:
    """Priorities are stored as 64-bit integers; larger ones are refused clearly."""
    q = await open_file_queue(tmp_path / "q")
    with pytest.raises(ValueError, match="64-bit"):
        await q.publish("t", 1, priority=2**70)
    await q.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://q?fsync=sometimes", "fsync must be one of"),
        ("file://q?colour=red", "unknown option"),
        ("file://q?segment_size=12", "segment_size"),
        ("file://q?prefetch=abc", "prefetch"),
        ("file://q?prefetch=-1", "prefetch"),
        ("file://q?fsync_interval=-1", "fsync_interval"),
        ("file://", "names no directory"),
    ],
)
async def test_bad_queue_urls_are_refused(url: str, message: str) -> None:
    """Mistakes in the queue URL are configuration errors naming the option."""
    with pytest.raises(sr.ConfigError, match=message):
        await sr.MessageQueue.open(url)


async def test_url_options_and_relative_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file://rel, file:///abs and query options all reach the queue."""
    monkeypatch.chdir(tmp_path)
    q = await sr.MessageQueue.open("file://rel?fsync=interval&fsync_interval=0.2&prefetch=0")
    assert isinstance(q, FileQueue)
    assert (q.directory, q.fsync, q.fsync_interval, q.prefetch) == (
        Path("rel"),
        "interval",
        0.2,
        0,
    )
    await q.close()
    q = await sr.MessageQueue.open(f"file://{tmp_path}/abs")
    assert isinstance(q, FileQueue)
    assert q.directory == tmp_path / "abs"
    await q.close()
    q = await sr.MessageQueue.open(str(tmp_path / "plain"))
    assert isinstance(q, FileQueue)
    await q.close()
    with pytest.raises(sr.ConfigError, match="both in the URL"):
        await sr.MessageQueue.open("file://rel?fsync=never", fsync="always")


# ---------------------------------------------------------------------------- group commit


async def test_concurrent_publishers_share_fsyncs(tmp_path: Path) -> None:
    """64 concurrent publishers need far fewer fsyncs than messages (group commit)."""
    q = await open_file_queue(tmp_path / "q")
    n = 640

    async def publisher(k: int) -> None:
        for i in range(n // 64):
            await q.publish("t", {"k": k, "i": i})

    async with anyio.create_task_group() as tg:
        for k in range(64):
            tg.start_soon(publisher, k)
    info = q.info()
    assert await q.depth("t") == n
    assert info.fsyncs < n / 4
    assert info.batches < n / 4
    await q.close()


@pytest.mark.parametrize("policy", ["interval", "never"])
async def test_relaxed_fsync_policies_still_store_everything(tmp_path: Path, policy: str) -> None:
    """fsync=interval and fsync=never write every record; only the fsync timing differs."""
    q = await open_file_queue(tmp_path / "q", fsync=policy, fsync_interval=10)
    for i in range(20):
        await q.publish("t", i)
    assert q.info().fsyncs == 0  # nothing was fsync'd on the way...
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")  # ...yet a process kill loses none
    await q.close()
    q = await open_file_queue(crashed)
    assert await q.depth("t") == 20
    await q.close()


async def test_close_writes_a_pending_publish(tmp_path: Path) -> None:
    """A publish waiting for its batch when the queue closes is written, not lost."""
    q = await open_file_queue(tmp_path / "q")
    results: list[str] = []

    async def publisher() -> None:
        results.append(await q.publish("t", "x"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        tg.start_soon(q.close)
    assert len(results) == 1
    q = await open_file_queue(tmp_path / "q")
    assert [m.id for m in await q.subscribe("t")] == results
    await q.close()


async def test_cancelled_subscriber_gives_its_messages_back(tmp_path: Path) -> None:
    """A subscribe cancelled while fetching from disk loses nothing and counts no attempt."""
    q = await open_file_queue(tmp_path / "q")
    for i in range(3):
        await q.publish("t", i)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await q.subscribe("t", batch_size=3)
    got = await q.subscribe("t", batch_size=3)
    assert [m.payload for m in got] == [0, 1, 2]
    assert [m.attempts for m in got] == [1, 1, 1]
    await q.close()


async def test_publishers_woken_together_share_the_next_write(tmp_path: Path) -> None:
    """64 publishers, each waiting for its fsync before publishing again: every round is one
    write (the first publisher of a round does not go alone, leaving the rest for a second)."""
    q = await open_file_queue(tmp_path / "q")
    journal = q._journal  # type: ignore[attr-defined]
    before = journal.batches

    async def publisher(n: int) -> None:
        for i in range(5):
            await q.publish("t", [n, i])

    async with anyio.create_task_group() as tg:
        for n in range(64):
            tg.start_soon(publisher, n)
    assert journal.batches - before == 5
    await q.close()


async def test_a_cancelled_publisher_leaves_the_shared_write_to_the_others(tmp_path: Path) -> None:
    """Publishers sharing one group commit: cancelling one of them while it waits for the
    fsync wakes no other early, and its message is stored all the same."""
    q = await open_file_queue(tmp_path / "q")
    ids: dict[int, str] = {}

    async def publish(i: int) -> None:
        ids[i] = await q.publish("t", i)

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(publish, i)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await q.publish("t", "cancelled")
    assert sorted(ids) == list(range(8))
    got = await q.subscribe("t", batch_size=20)
    assert sorted(m.payload for m in got if m.payload != "cancelled") == list(range(8))
    assert [m.payload for m in got].count("cancelled") == 1
    await q.close()


@pytest.mark.parametrize(("batch", "prefetch"), [(1, 32), (7, 32), (1, 0), (64, 32)])
async def test_every_batch_size_delivers_everything_in_order(
    tmp_path: Path, batch: int, prefetch: int
) -> None:
    """Whatever the batch size and prefetch, every message comes back once, in order."""
    q = await open_file_queue(tmp_path / "q", prefetch=prefetch, fsync="never")
    for i in range(300):
        await q.publish("t", {"i": i})
    seen = []
    while got := await q.subscribe("t", batch_size=batch):
        seen.extend(m.payload["i"] for m in got)
        assert all(m.attempts == 1 for m in got)
        for m in got:
            await q.acknowledge(m.id)
    assert seen == list(range(300))
    await q.close()


async def test_prefetch_spares_one_at_a_time_subscribers_a_disk_trip_each(tmp_path: Path) -> None:
    """subscribe(batch_size=1) records and reads 32 deliveries per trip to the disk."""
    q = await open_file_queue(tmp_path / "q", fsync="never")
    for i in range(320):
        await q.publish("t", i)
    before = q.info().batches
    for _ in range(320):
        [m] = await q.subscribe("t")
        await q.acknowledge(m.id)
    assert q.info().batches - before <= 320 // 12  # about one trip per 16 deliveries
    await q.close()


async def test_prefetched_messages_count_as_ready_and_peek_first(tmp_path: Path) -> None:
    """Prefetched messages are ready in stats, first in peek, and can be acked by id."""
    q = await open_file_queue(tmp_path / "q")
    ids = [await q.publish("t", i) for i in range(5)]
    [first] = await q.subscribe("t")
    stats = await q.stats("t")
    assert (stats.ready, stats.leased) == (4, 1)
    peeked = await q.peek("t", limit=10)
    assert [m.id for m in peeked] == ids[1:]
    assert all(m.attempts == 0 for m in peeked)
    assert await q.acknowledge(ids[2]) is True
    got = await q.subscribe("t", batch_size=10)
    assert [m.id for m in got] == [ids[1], ids[3], ids[4]]
    assert first.id == ids[0]
    await q.close()


async def test_acking_a_message_while_it_is_being_prefetched(tmp_path: Path) -> None:
    """A message settled while its prefetch read is under way is not delivered after all."""
    q = await open_file_queue(tmp_path / "q")
    ids = [await q.publish("t", i) for i in range(10)]
    [first] = await q.subscribe("t")  # starts prefetching the other nine
    assert await q.acknowledge(ids[5]) is True  # before the read is back
    got = await q.subscribe("t", batch_size=20)
    assert [m.payload for m in got] == [1, 2, 3, 4, 6, 7, 8, 9]
    assert first.payload == 0
    stats = await q.stats("t")
    assert (stats.ready, stats.leased) == (0, 9)
    await q.close()


async def test_higher_priority_overtakes_prefetched_messages(tmp_path: Path) -> None:
    """A message of higher priority published after a prefetch is still delivered first."""
    q = await open_file_queue(tmp_path / "q")
    for i in range(4):
        await q.publish("t", i)
    await q.subscribe("t")  # delivers 0, prefetches 1..3
    urgent = await q.publish("t", "urgent", priority=9)
    [m] = await q.subscribe("t")
    assert m.id == urgent
    assert [m.payload for m in await q.subscribe("t", batch_size=5)] == [1, 2, 3]
    await q.close()


@REOPEN
async def test_closing_returns_prefetched_messages_uncounted(tmp_path: Path, how: str) -> None:
    """After a clean close, prefetched messages come back with no attempt counted."""
    q = await open_file_queue(tmp_path / "q")
    for i in range(4):
        await q.publish("t", i)
    [m] = await q.subscribe("t")
    await q.acknowledge(m.id)
    await q.close()
    q = await reopen(tmp_path / "q", how)
    got = await q.subscribe("t", batch_size=10)
    assert [(m.payload, m.attempts) for m in got] == [(1, 1), (2, 1), (3, 1)]
    await q.close()


async def test_a_crash_counts_prefetched_deliveries_but_never_their_last(tmp_path: Path) -> None:
    """Prefetched messages are counted on disk; one on its last attempt is never prefetched."""
    q = await open_file_queue(tmp_path / "q", max_attempts=2)
    last = await q.publish("t", "last")
    for i in range(3):
        await q.publish("t", i)
    [m] = await q.subscribe("t")  # "last", attempt 1; starts prefetching 0, 1, 2
    await q.nack(m.id)
    await q.flush()  # the prefetch (and its LEASE record) has landed
    crashed = crash_copy(tmp_path / "q", tmp_path / "after")
    await q.close()
    q = await open_file_queue(crashed, max_attempts=2)
    got = await q.subscribe("t", batch_size=10)
    assert {m.payload: m.attempts for m in got} == {0: 2, 1: 2, 2: 2, "last": 2}
    assert [m.id for m in await q.dead_letters("t")] == []
    assert last in [m.id for m in got]
    await q.close()


# ---------------------------------------------------------------------------- compaction


async def test_log_does_not_grow_with_throughput(tmp_path: Path) -> None:
    """Settled segments are deleted: the directory stays small while messages flow."""
    q = await open_file_queue(tmp_path / "q", segment_size=64 * 1024, fsync="never")
    payload = {"text": "x" * 200}
    for _ in range(10):
        for _ in range(300):
            await q.publish("t", payload)
        while batch := await q.subscribe("t", batch_size=50):
            for m in batch:
                await q.acknowledge(m.id)
    assert q.info().segments <= 3
    assert q.info().log_bytes < 4 * 64 * 1024
    await q.close()


@REOPEN
async def test_long_lived_messages_are_moved_so_old_segments_can_go(
    tmp_path: Path, how: str
) -> None:
    """A dead letter and a far-off delayed message do not pin the oldest segment forever."""
    clock = ManualClock()
    path = tmp_path / "q"
    q = await open_file_queue(
        path,
        segment_size=64 * 1024,
        clock=clock,
        max_attempts=1,
        dedup_window=10**6,
        fsync="never",
    )
    dead_id = await q.publish("t", "dead")
    [msg] = await q.subscribe("t")
    await q.nack(msg.id, error="kept forever")
    later_id = await q.publish("t", "later", delay=10**5)
    deduped = await q.publish("t", "once", dedup_key="k")
    [once] = await q.subscribe("t")
    await q.acknowledge(once.id)
    payload = {"text": "x" * 200}
    for _ in range(12):
        for _ in range(300):
            await q.publish("t", payload)
        while batch := await q.subscribe("t", batch_size=50):
            for m in batch:
                await q.acknowledge(m.id)
    assert q.info().segments <= 4
    assert 1 not in [int(p.stem) for p in segments(path)]
    await q.close()
    q = await reopen(path, how, clock=clock, dedup_window=10**6)
    [dead] = await q.dead_letters("t")
    assert (dead.id, dead.last_error) == (dead_id, "kept forever")
    assert (await q.stats("t")).delayed == 1
    assert await q.publish("t", "twice", dedup_key="k") == deduped
    clock.advance(10**5 + 1)
    [msg] = await q.subscribe("t")
    assert msg.id == later_id
    assert await q.depth("t") == 1
    await q.close()


# ---------------------------------------------------------------------------- memory


async def test_index_needs_well_under_100_bytes_per_pending_message(tmp_path: Path) -> None:
    """The index is compact: payloads stay on disk, RAM holds ~60 bytes per message."""
    q = await open_file_queue(tmp_path / "q", fsync="never")
    n = 20_000

    async def publisher(k: int) -> None:
        for i in range(n // 50):
            await q.publish("t", {"k": k, "i": i, "text": "x" * 150})

    async with anyio.create_task_group() as tg:
        for k in range(50):
            tg.start_soon(publisher, k)
    info = q.info()
    assert info.live_messages == n
    assert info.index_bytes / n < 100
    await q.close()


# ---------------------------------------------------------------------------- background upkeep


async def test_maintain_redelivers_expired_leases_and_writes_acks(tmp_path: Path) -> None:
    """The upkeep task reaps expired leases (to the DLQ on the last attempt) and flushes acks."""
    clock = ManualClock()
    q = await open_file_queue(tmp_path / "q", clock=clock, max_attempts=1)
    doomed = await q.publish("t", "doomed")
    acked = await q.publish("t", "acked")
    batch = await q.subscribe("t", batch_size=2, lease=5)
    await q.acknowledge(acked)
    async with anyio.create_task_group() as tg:
        await tg.start(q.maintain, 0.01)
        clock.advance(6)
        with anyio.fail_after(10):
            while q.unwritten or q._leases:
                await anyio.sleep(0.01)
        crashed = crash_copy(tmp_path / "q", tmp_path / "after")
        await q.close()
    assert [m.id for m in batch] == [doomed, acked]
    q = await open_file_queue(crashed, clock=clock)
    [dead] = await q.dead_letters("t")
    assert dead.id == doomed
    assert "lease expired" in (dead.last_error or "")
    assert await q.depth("t") == 0
    await q.close()


async def test_runtime_on_a_file_queue_survives_a_restart(tmp_path: Path) -> None:
    """Runtime(queue="file://...") works end to end, and queued work survives a restart."""
    url = f"file://{tmp_path / 'q'}"
    async with sr.Runtime(queue=url) as rt:
        assert isinstance(rt.queue, FileQueue)
        await rt.start_background(rt.queue.maintain)  # the upkeep task, owned by the runtime

        @rt.agent("double")
        async def double(msg: sr.Message, ctx: sr.Context) -> dict[str, int]:
            return {"n": msg.payload["n"] * 2}

        with anyio.fail_after(20):
            assert await rt.request("double", {"n": 21}) == {"n": 42}
    q = await sr.MessageQueue.open(url)
    await q.publish("pending", {"n": 1})
    await q.close()
    q = await sr.MessageQueue.open(url)
    assert await q.depth("pending") == 1
    await q.close()
