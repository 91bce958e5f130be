"""The file queue's directory: one owner however the LOCK file is treated, private files,
and no queue planted in a directory that holds something else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import structlog

import swarm_runtime as sr
from swarm_runtime.queue.file import FileQueue

from .filequeue_helpers import drop_snapshot, open_file_queue, segments, start_owner


def _owner_script(path: Path) -> str:
    return (
        "import asyncio, sys, swarm_runtime as sr\n"
        "async def main():\n"
        f"    q = await sr.MessageQueue.open({f'file://{path}'!r})\n"
        "    for i in range(100):\n"
        "        await q.publish('t', i)\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n"
        "    for i in range(100, 200):\n"
        "        await q.publish('t', i)\n"
        "    await q.close()\n"
        "    print('closed', flush=True)\n"
        "asyncio.run(main())\n"
    )


async def test_removing_the_lock_file_does_not_admit_a_second_owner(tmp_path: Path) -> None:
    """Unlinking LOCK under a live owner leaves the queue locked: no second writer, no loss."""
    path = tmp_path / "q"
    async with await start_owner(_owner_script(path)) as proc:
        (path / "LOCK").unlink()
        with pytest.raises(sr.QueueLockedError):
            await open_file_queue(path)
        (path / "LOCK").write_text("0\n")  # replaced by somebody else's file
        with pytest.raises(sr.QueueLockedError):
            await open_file_queue(path)
        assert proc.stdin is not None
        await proc.stdin.send(b"go\n")
        assert await proc.wait() == 0
    queue = await open_file_queue(path)
    try:
        got = []
        while batch := await queue.subscribe("t", batch_size=256, lease=30):
            got.extend(m.payload for m in batch)
            for message in batch:
                await queue.acknowledge(message.id)
        assert sorted(got) == list(range(200))
    finally:
        await queue.close()


async def test_the_owner_puts_a_removed_lock_file_back(tmp_path: Path) -> None:
    """The owner's upkeep restores LOCK with its pid, so errors can name the holder again."""
    queue = await open_file_queue(tmp_path / "q")
    assert isinstance(queue, FileQueue)
    try:
        lock = tmp_path / "q" / "LOCK"
        lock.unlink()
        queue._dir.lock.verify()
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(sr.QueueLockedError, match=str(os.getpid())):
            await open_file_queue(tmp_path / "q")
    finally:
        await queue.close()


async def test_queue_files_are_private_by_default(tmp_path: Path) -> None:
    """Payloads are readable by their owner only: files 0600, directories 0700."""
    path = tmp_path / "q"
    queue = await open_file_queue(path)
    await queue.publish("t", {"secret": 1})
    await queue.close()  # writes the snapshot too
    created = [path, *path.rglob("*")]
    assert len(created) >= 5
    for item in created:
        mode = stat.S_IMODE(item.stat().st_mode)
        assert mode == (0o700 if item.is_dir() else 0o600), (item, oct(mode))


async def test_file_mode_is_configurable(tmp_path: Path) -> None:
    """``file_mode`` (octal in a URL) sets the files' mode; directories get search bits."""
    path = tmp_path / "q"
    queue = await sr.MessageQueue.open(f"file://{path}?file_mode=640")
    await queue.publish("t", 1)
    await queue.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    for item in (path / "log").iterdir():
        assert stat.S_IMODE(item.stat().st_mode) == 0o640


@pytest.mark.parametrize("mode", [0o400, 0o777, 0o1600, "rw"])
def test_a_bad_file_mode_is_a_config_error(tmp_path: Path, mode: object) -> None:
    """A mode that would lock the owner out, or make files executable, is refused."""
    with pytest.raises(sr.ConfigError, match="file_mode"):
        FileQueue(tmp_path / "q", file_mode=mode)  # type: ignore[arg-type]


async def test_a_non_empty_directory_that_is_not_a_queue_is_refused(tmp_path: Path) -> None:
    """Opening file:// on somebody's data names what is there and writes nothing into it."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "photos").mkdir()
    with pytest.raises(sr.ConfigError, match=r"not a queue directory.*notes\.txt"):
        await open_file_queue(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "photos"]  # noqa: ASYNC240


async def test_an_empty_or_readme_only_directory_becomes_a_queue(tmp_path: Path) -> None:
    """The repository's queue/ (a README only) and an empty directory are fine."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "README.md").write_text("queue data")
    for name in ("a", "b"):
        queue = await open_file_queue(tmp_path / name)
        await queue.publish("t", 1)
        await queue.close()
        again = await open_file_queue(tmp_path / name)  # reopening an existing queue
        assert (await again.stats("t")).ready == 1
        await again.close()


async def test_a_missing_middle_segment_is_reported_with_what_was_lost(tmp_path: Path) -> None:
    """Deleting a segment between others is damage: warned about, counted, shown in stats."""
    path = tmp_path / "q"
    queue = await open_file_queue(path, segment_size=65536, prefetch=0, fsync="never")
    for start in range(0, 3000, 100):
        for i in range(start, start + 100):
            await queue.publish("t", {"i": i, "pad": "x" * 150})
    # lease everything once, so that later segments refer to messages in earlier ones
    leased = []
    while batch := await queue.subscribe("t", batch_size=500, lease=60):
        leased.extend(batch)
    for message in leased[:1000]:
        await queue.acknowledge(message.id)
    await queue.close()
    files = segments(path)
    assert len(files) >= 6
    victim = files[len(files) // 2]  # holds messages that were delivered, not acked
    victim.unlink()
    drop_snapshot(path)
    with structlog.testing.capture_logs() as logs:
        again = await open_file_queue(path)
    try:
        report = again.recovery
        assert report is not None
        number = int(victim.name.split(".")[0])
        assert report.missing_segments == [number]
        assert report.lost > 0
        assert any("missing" in p and str(number) in p for p in report.problems)
        warnings = [e for e in logs if e["log_level"] == "warning" and "missing" in e["problem"]]
        assert len(warnings) == 1
        assert f"at least {report.lost}" in warnings[0]["problem"]
    finally:
        await again.close()


async def test_segments_removed_from_the_front_are_not_a_gap(tmp_path: Path) -> None:
    """Compaction removes the oldest segments: a log starting later is healthy."""
    path = tmp_path / "q"
    queue = await open_file_queue(path, segment_size=65536, fsync="never")
    for i in range(2000):
        await queue.publish("t", {"i": i, "pad": "x" * 150})
    await queue.close()
    files = segments(path)
    assert len(files) >= 3
    files[0].unlink()
    drop_snapshot(path)
    again = await open_file_queue(path)
    try:
        assert again.recovery is not None
        assert again.recovery.missing_segments == []
        assert not any("missing" in p for p in again.recovery.problems)
    finally:
        await again.close()
