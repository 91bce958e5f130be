"""The runtime gets its backend from the queue URL, or wraps the queue it was given."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import swarm_runtime as sr
from swarm_runtime.backends import Backend, backend_class


async def test_a_queue_the_user_opened_is_wrapped_and_left_open() -> None:
    """Runtime(queue=MessageQueue) keeps working: the backend wraps the queue, hands out the
    stores, and leaves closing the queue to whoever opened it."""
    queue = await sr.MessageQueue.open("memory://")
    async with sr.Runtime(queue=queue, services=False) as rt:
        assert rt.backend.queue is queue
        assert rt.queue is queue
        assert not rt.backend.shared
    assert queue.is_open
    await queue.close()


async def test_a_url_backend_is_opened_and_closed_by_the_runtime(tmp_path: Path) -> None:
    rt = sr.Runtime(queue=f"file://{tmp_path / 'q'}", services=False)
    assert rt.backend.durable
    assert not rt.backend.shared
    async with rt:
        assert rt.backend.queue.is_open
        store = sr.WorkflowOrchestrator(rt).store
        assert store is rt.backend.run_store()
    assert rt.backend.queue.is_closed


def test_capabilities_are_known_from_the_url_alone() -> None:
    """backend_class(url) names the backend without opening anything (the CLI's worker
    checks ``shared`` this way); a bad URL is a ConfigError."""
    assert backend_class("memory://").shared is False
    assert backend_class("some/dir").durable is True  # a plain path is file://
    with pytest.raises(sr.ConfigError, match="unknown queue URL scheme 'ftp'"):
        backend_class("ftp://x")


async def test_a_closed_queue_is_refused_with_the_fix() -> None:
    queue = await sr.MessageQueue.open("memory://")
    await queue.close()
    with pytest.raises(sr.QueueClosedError, match="open a new one"):
        await Backend.wrap(queue).start()


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend is imported only when its URL is used; without redis-py that is a
    BackendUnavailableError saying what to install (as for the queue alone)."""
    for name in list(sys.modules):
        if name == "redis" or name.startswith(
            ("redis.", "swarm_runtime.queue.redis", "swarm_runtime.backends.redis")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)
    assert backend_class("memory://").durable is False  # other schemes are unaffected
    with pytest.raises(sr.BackendUnavailableError, match=r"swarm-runtime\[redis\]"):
        sr.Runtime(queue="redis://127.0.0.1:6379/0")


def test_every_queue_scheme_has_a_backend() -> None:
    """A scheme the queue registry opens is one the backend registry serves (``rediss://``
    is the redis backend over TLS)."""
    from swarm_runtime.backends import _registry as backends
    from swarm_runtime.queue import _registry as queues

    assert set(backends.BACKENDS) == set(queues.BACKENDS)
    assert backend_class("rediss://127.0.0.1:6380/0").shared is True
