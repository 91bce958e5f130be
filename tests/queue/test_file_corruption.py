"""Property tests: damaged segment files never stop the queue from opening or lose intact data.

A template queue directory is built once; every example copies it, truncates or flips bytes
of one segment, reopens it and drains it. Whatever the damage, the queue opens, everything
published before the damage (and, for flipped bytes, after it) that was not acknowledged is
delivered with its payload intact, and nothing is invented.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_runtime.queue.file._codec import decode_msg
from swarm_runtime.queue.file._format import KEY_SIZE, RecordType, scan

from .filequeue_helpers import crash_copy, open_file_queue, segments


@dataclass(frozen=True)
class Published:
    id: str
    payload: object
    segment: int  # position in the sorted segment list
    start: int
    end: int


@dataclass(frozen=True)
class Template:
    path: Path
    sizes: list[int]
    published: list[Published]
    acked: frozenset[str]


async def _build(path: Path) -> None:
    q = await open_file_queue(path, segment_size=64 * 1024, fsync="never")
    ids = []
    for i in range(90):
        ids.append(await q.publish("t", {"i": i, "text": f"{i:04d}" * 500}, priority=i % 3))
    for _ in range(2):
        batch = await q.subscribe("t", batch_size=8)
        for m in batch[:6]:
            await q.acknowledge(m.id)
        await q.nack(batch[6].id, error="retry me")
        # batch[7] stays leased: it must come back after the "crash"
    for i in range(90, 110):
        await q.publish("u", {"i": i})
    await q.flush()
    crash_copy(path, path.with_name("template"))
    await q.close()


def _describe(path: Path) -> Template:
    published: list[Published] = []
    acked: set[bytes] = set()
    keys: dict[bytes, str] = {}
    sizes = []
    for position, seg in enumerate(segments(path)):
        data = seg.read_bytes()
        sizes.append(len(data))
        for offset, rtype, start, end in scan(data):
            assert offset >= 0, "the template itself must be intact"
            if rtype == RecordType.MSG:
                key, _, _, _, _, _, _, meta, payload, _ = decode_msg(data[offset:end])
                keys[key] = meta[0]
                published.append(Published(meta[0], payload, position, offset, end))
            elif rtype == RecordType.ACK:
                acked.update(data[k : k + KEY_SIZE] for k in range(start, end, KEY_SIZE))
    assert len(sizes) >= 3, "the template must span several segments"
    return Template(path, sizes, published, frozenset(keys[k] for k in acked))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("corruption")
    anyio.run(_build, root / "q")
    return _describe(root / "template")


def _drain(path: Path) -> dict[str, object]:
    async def run() -> dict[str, object]:
        q = await open_file_queue(path)
        got: dict[str, object] = {}
        for topic in ("t", "u"):
            while batch := await q.subscribe(topic, batch_size=50):
                for m in batch:
                    assert m.id not in got, "delivered twice in one drain"
                    got[m.id] = m.payload
                    await q.acknowledge(m.id)
        await q.close()
        return got

    return anyio.run(run)


def _assert_survivors(
    template: Template, got: dict[str, object], damaged: set[tuple[int, int]], before: int
) -> None:
    """``damaged``: (segment, record start) of damaged records; ``before``: global byte position
    (segment * 2**32 + offset) where damage starts - records ending before it must survive."""
    everything = {p.id: p.payload for p in template.published}
    assert set(got) <= set(everything), "the queue invented messages"
    for message_id, payload in got.items():
        assert payload == everything[message_id], "a payload changed"
    for p in template.published:
        if p.id in template.acked or (p.segment, p.start) in damaged:
            continue
        if (p.segment << 32) + p.end <= before:
            assert p.id in got, f"lost {p.id} published before the damage"


def _copy(template: Template) -> Path:
    target = Path(tempfile.mkdtemp(prefix="swarm-corrupt-")) / "q"
    shutil.copytree(template.path, target)
    return target


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(data=st.data())
def test_truncating_a_segment_loses_nothing_before_the_cut(
    template: Template, data: st.DataObject
) -> None:
    """Cut any segment anywhere: the queue opens and keeps every record before the cut."""
    segment = data.draw(st.integers(0, len(template.sizes) - 1), label="segment")
    cut = data.draw(st.integers(0, template.sizes[segment] - 1), label="cut")
    path = _copy(template)
    try:
        seg = segments(path)[segment]
        with open(seg, "r+b") as f:
            f.truncate(cut)
        got = _drain(path)
        # a cut in a sealed segment loses its tail only; later segments are intact
        damaged = {
            (p.segment, p.start) for p in template.published if p.segment == segment and p.end > cut
        }
        _assert_survivors(template, got, damaged, before=(segment << 32) + cut)
        if segment < len(template.sizes) - 1:
            _assert_survivors(template, got, damaged, before=2**62)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


@SETTINGS
@given(data=st.data())
def test_flipping_bytes_loses_only_the_records_hit(template: Template, data: st.DataObject) -> None:
    """Flip bytes anywhere in a segment: only the records containing them can be lost."""
    segment = data.draw(st.integers(0, len(template.sizes) - 1), label="segment")
    size = template.sizes[segment]
    positions = data.draw(
        st.lists(st.integers(0, size - 1), min_size=1, max_size=4, unique=True), label="where"
    )
    masks = data.draw(
        st.lists(st.integers(1, 255), min_size=len(positions), max_size=len(positions)),
        label="masks",
    )
    path = _copy(template)
    try:
        seg = segments(path)[segment]
        raw = bytearray(seg.read_bytes())
        for pos, mask in zip(positions, masks, strict=True):
            raw[pos] ^= mask
        seg.write_bytes(bytes(raw))
        got = _drain(path)
        damaged = {
            (p.segment, p.start)
            for p in template.published
            if p.segment == segment and any(p.start <= pos < p.end for pos in positions)
        }
        _assert_survivors(template, got, damaged, before=2**62)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


@SETTINGS
@given(data=st.data())
def test_flipped_bytes_behind_a_clean_close_snapshot(
    template: Template, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Damage after a clean close (index from the snapshot) is caught when the record is read."""
    path = _copy(template)
    try:

        async def close_cleanly() -> None:
            q = await open_file_queue(path)
            await q.close()

        anyio.run(close_cleanly)
        assert (path / "index.snap").exists()
        segment = data.draw(st.integers(0, len(template.sizes) - 1), label="segment")
        seg = segments(path)[segment]
        raw = bytearray(seg.read_bytes())
        pos = data.draw(st.integers(0, len(raw) - 1), label="where")
        raw[pos] ^= data.draw(st.integers(1, 255), label="mask")
        seg.write_bytes(bytes(raw))
        got = _drain(path)
        damaged = {
            (p.segment, p.start)
            for p in template.published
            if p.segment == segment and p.start <= pos < p.end
        }
        _assert_survivors(template, got, damaged, before=2**62)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
