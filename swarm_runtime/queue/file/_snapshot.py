"""The index snapshot written at a clean close, so reopening needs no log scan.

``DIR/index.snap`` holds the index's arrays as raw bytes plus a JSON description, and the
exact list of segments (numbers and sizes) it describes. It is used only if the log is
byte-for-byte that size again: after a crash the log has grown, shrunk or lost segments,
the snapshot no longer matches, and the queue is rebuilt from the log instead. The file
is deleted as soon as it has been loaded, before anything new is written.

Layout: magic ``SWRMQIDX``, version (u32), JSON length (u32), JSON, the arrays back to
back in the order the JSON lists them, CRC-32 of everything before it (u32).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from array import array
from pathlib import Path
from typing import Any

import orjson

from ._index import Index, ReadyList
from ._log import fsync_directory

__all__ = ["SNAPSHOT_NAME", "discard_snapshot", "load_snapshot", "save_snapshot"]

SNAPSHOT_NAME = "index.snap"
_MAGIC = b"SWRMQIDX"
_VERSION = 1
_HEAD = struct.Struct("<8sII")

_COLUMNS = ("loc", "size", "topic", "prio", "attempts", "max_attempts", "free", "table")


def save_snapshot(
    directory: Path,
    index: Index,
    segments: dict[int, int],
    dedup: dict[str, tuple[str, float, int]],
    *,
    file_mode: int = 0o600,
) -> int:
    """Write the snapshot atomically (temp file, fsync, rename); returns its size."""
    blobs: list[bytes] = [bytes(index.keys), bytes(index.state)]
    parts: list[dict[str, Any]] = [
        {"name": "keys", "type": "bytes", "len": len(blobs[0])},
        {"name": "state", "type": "bytes", "len": len(blobs[1])},
    ]
    for name in _COLUMNS:
        column: array[int] = getattr(index, name)
        blob = column.tobytes()
        blobs.append(blob)
        parts.append({"name": name, "type": column.typecode, "len": len(blob)})
    topics = []
    for topic in index.topics:
        lists = {}
        for priority, rl in topic.lists.items():
            items = rl.items[rl.head :]
            if not len(items):
                continue
            blob = items.tobytes()
            blobs.append(blob)
            parts.append({"name": f"list:{topic.id}:{priority}", "type": "I", "len": len(blob)})
            lists[str(priority)] = len(parts) - 1
        dead = array("I", topic.dead).tobytes()
        blobs.append(dead)
        parts.append({"name": f"dead:{topic.id}", "type": "I", "len": len(dead)})
        topics.append(
            {
                "name": topic.name,
                "n_ready": topic.n_ready,
                "n_delayed": topic.n_delayed,
                "lists": lists,
                "dead": len(parts) - 1,
            }
        )
    dues: array[float] = array("d")
    slots: array[int] = array("I")
    for due, slot in index.delayed.entries():
        dues.append(due)
        slots.append(slot)
    blobs.extend((dues.tobytes(), slots.tobytes()))
    parts.append({"name": "delayed_due", "type": "d", "len": len(blobs[-2])})
    parts.append({"name": "delayed_slot", "type": "I", "len": len(blobs[-1])})
    meta = orjson.dumps(
        {
            "segments": {str(n): size for n, size in segments.items()},
            "count": index.count,
            "mask": index.mask,
            "errors": {str(slot): error for slot, error in index.errors.items()},
            "seg_live": {str(n): c for n, c in index.seg_live.items()},
            "seg_bytes": {str(n): c for n, c in index.seg_bytes.items()},
            "dedup": dedup,
            "topics": topics,
            "parts": parts,
        }
    )
    path = directory / SNAPSHOT_NAME
    tmp = path.with_suffix(".tmp")
    crc = 0
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode)
    with open(fd, "wb") as f:
        for chunk in (_HEAD.pack(_MAGIC, _VERSION, len(meta)), meta, *blobs):
            f.write(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
        f.write(struct.pack("<I", crc))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(directory)
    return size + 4


def discard_snapshot(directory: Path) -> None:
    """Delete the snapshot (after loading it, or when it is stale) durably."""
    removed = False
    for name in (SNAPSHOT_NAME, SNAPSHOT_NAME.replace(".snap", ".tmp")):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / name)
            removed = True
    if removed:
        fsync_directory(directory)


def load_snapshot(
    directory: Path, segments: dict[int, int]
) -> tuple[Index | None, dict[str, tuple[str, float, int]], str]:
    """The index saved in the snapshot, if the snapshot describes exactly ``segments``.

    Returns ``(index, dedup, "")``, or ``(None, {}, reason)`` when there is no usable
    snapshot.
    """
    path = directory / SNAPSHOT_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, {}, "no snapshot"
    except OSError as exc:
        return None, {}, f"snapshot unreadable: {exc.strerror}"
    index = Index()
    try:
        dedup = _load(data, index, segments)
    except (
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        orjson.JSONDecodeError,
        struct.error,
    ) as exc:
        return None, {}, str(exc) or type(exc).__name__
    return index, dedup, ""


def _load(data: bytes, index: Index, segments: dict[int, int]) -> dict[str, tuple[str, float, int]]:
    if len(data) < _HEAD.size + 4:
        raise ValueError("snapshot truncated")
    magic, version, meta_len = _HEAD.unpack_from(data, 0)
    if magic != _MAGIC or version != _VERSION:
        raise ValueError("not a snapshot of this version")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(memoryview(data)[:-4]) != crc:
        raise ValueError("snapshot checksum mismatch")
    meta = orjson.loads(memoryview(data)[_HEAD.size : _HEAD.size + meta_len])
    recorded = {int(n): size for n, size in meta["segments"].items()}
    if recorded != segments:
        raise ValueError("the log changed since the snapshot was written")
    view = memoryview(data)
    pos = _HEAD.size + meta_len
    blobs: list[memoryview] = []
    for part in meta["parts"]:
        end = pos + part["len"]
        if end > len(data) - 4:
            raise ValueError("snapshot shorter than its description")
        blobs.append(view[pos:end])
        pos = end
    by_name = {part["name"]: i for i, part in enumerate(meta["parts"])}
    index.keys = bytearray(blobs[by_name["keys"]])
    index.state = bytearray(blobs[by_name["state"]])
    for name in _COLUMNS:
        column: array[int] = array(getattr(index, name).typecode)
        column.frombytes(blobs[by_name[name]])
        setattr(index, name, column)
    n = len(index.state)
    if len(index.keys) != 16 * n or any(
        len(getattr(index, c)) != n for c in ("loc", "size", "topic", "prio", "attempts")
    ):
        raise ValueError("snapshot columns disagree in length")
    index.count = int(meta["count"])
    index.mask = int(meta["mask"])
    if len(index.table) != index.mask + 1:
        raise ValueError("snapshot hash table has the wrong size")
    index.errors = {int(slot): str(error) for slot, error in meta["errors"].items()}
    index.seg_live = {int(k): int(v) for k, v in meta["seg_live"].items()}
    index.seg_bytes = {int(k): int(v) for k, v in meta["seg_bytes"].items()}
    for entry in meta["topics"]:
        topic = index.topic_index(entry["name"])
        topic.n_ready = int(entry["n_ready"])
        topic.n_delayed = int(entry["n_delayed"])
        for priority, part in entry["lists"].items():
            rl = ReadyList()
            rl.items.frombytes(blobs[part])
            topic.lists[int(priority)] = rl
        topic.order = sorted(topic.lists, reverse=True)
        dead: array[int] = array("I")
        dead.frombytes(blobs[entry["dead"]])
        topic.dead = dict.fromkeys(dead)
    dues: array[float] = array("d")
    dues.frombytes(blobs[by_name["delayed_due"]])
    slots: array[int] = array("I")
    slots.frombytes(blobs[by_name["delayed_slot"]])
    for due, slot in zip(dues, slots, strict=True):
        index.delayed.push(slot, due)
    return {str(k): (str(v[0]), float(v[1]), int(v[2])) for k, v in meta["dedup"].items()}
