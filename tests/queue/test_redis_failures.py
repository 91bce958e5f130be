"""The redis:// backend when things go wrong: bad URLs, no server, a connection lost mid-run,
a server that forgot the scripts, a missing driver."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.exceptions
import structlog

import swarm_runtime as sr
from swarm_runtime.queue._registry import create
from swarm_runtime.queue.redis import RedisQueue

from ..conftest import REDIS_URL, require_redis
from .redis_helpers import delete_keys, new_prefix, redis_proxy

pytestmark = pytest.mark.redis


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A private key prefix (for tests that need a server), deleted afterwards."""
    require_redis()
    value = new_prefix()
    yield value
    await delete_keys(value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis://127.0.0.1:notaport/0", "bad port"),
        ("redis://127.0.0.1:99999/0", "bad port"),
        ("redis://127.0.0.1:6379/zero", "bad database"),
        ("redis://127.0.0.1:6379/-1", "bad database"),
        ("redis://127.0.0.1:6379/0?poll_interval=soon", "poll_interval"),
        ("redis://127.0.0.1:6379/0?colour=blue", "unknown option.*colour"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, match: str) -> None:
    """A malformed redis:// URL is a ConfigError naming what is wrong."""
    with pytest.raises(sr.ConfigError, match=match):
        create(url)


def test_url_parts_and_options_are_read() -> None:
    """Host, port, database, credentials and query options come from the URL; keywords win."""
    queue = create("redis://user:s%40cret@example.com:6380/3?prefix=app&lease=9", prefix="mine")
    assert isinstance(queue, RedisQueue)
    assert (queue.host, queue.port, queue.db, queue.prefix) == ("example.com", 6380, 3, "mine")
    assert queue.options.lease == 9
    assert queue.url == "redis://example.com:6380/3"  # no password in messages
    defaults = create("redis://")
    assert isinstance(defaults, RedisQueue)
    assert (defaults.host, defaults.port, defaults.db, defaults.prefix) == (
        "127.0.0.1",
        6379,
        0,
        "swarm",
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a b"}, "prefix"),
        ({"retries": -1}, "retries"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": 20}, "socket_timeout"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], match: str) -> None:
    """Backend options are checked when the queue is made."""
    with pytest.raises(sr.ConfigError, match=match):
        create("redis://127.0.0.1:6379/0", **options)


async def test_unreachable_server_is_backend_unavailable_naming_the_url() -> None:
    """Opening a queue where no server listens fails at once, naming the URL."""
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    with pytest.raises(sr.BackendUnavailableError, match=f"no Redis server answers at {url}"):
        await sr.MessageQueue.open(url, connect_timeout=2)


async def test_database_the_server_does_not_have_is_refused_clearly() -> None:
    """A database number the server does not have is a BackendUnavailableError saying so."""
    require_redis()
    with pytest.raises(sr.BackendUnavailableError, match="refused the queue.*database"):
        await sr.MessageQueue.open(REDIS_URL.rsplit("/", 1)[0] + "/12345")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py installed the backend cannot load, and the error says what to install."""
    for name in list(sys.modules):
        if name == "redis" or name.startswith(("redis.", "swarm_runtime.queue.redis")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(sr.BackendUnavailableError, match=r"swarm-runtime\[redis\]"):
        create("redis://127.0.0.1:6379/0")


async def test_lost_connection_is_retried_with_a_log_line(prefix: str) -> None:
    """Connections dropped under a running queue are re-made: the next calls succeed, and
    a warning says what happened."""
    async with redis_proxy() as proxy:
        q = await sr.MessageQueue.open(proxy.url, prefix=prefix, retry_backoff=0.01)
        try:
            first = await q.publish("t", 1)
            proxy.cut()
            with structlog.testing.capture_logs() as logs:
                second = await q.publish("t", 2)
                got = await q.subscribe("t", batch_size=5)
            assert [m.id for m in got] == [first, second]
            [line] = [
                entry for entry in logs if entry["event"] == "redis connection lost; retrying"
            ]
            assert line["log_level"] == "warning"
            assert line["url"] == proxy.url
        finally:
            await q.close()


async def test_server_gone_raises_queue_error_after_retries(prefix: str) -> None:
    """When Redis stays unreachable, a call gives up after its retries with a QueueError
    naming the URL, the Redis error chained; nothing is reported as published."""
    async with redis_proxy() as proxy:
        q = await sr.MessageQueue.open(proxy.url, prefix=prefix, retries=2, retry_backoff=0.01)
        try:
            await q.publish("t", "stored")
            proxy.stop()
            with (
                structlog.testing.capture_logs() as logs,
                anyio.fail_after(10),
                pytest.raises(sr.QueueError, match="lost the connection") as info,
            ):
                await q.publish("t", "not stored")
            assert proxy.url in str(info.value)
            assert not isinstance(info.value, sr.BackendUnavailableError)
            assert isinstance(info.value.__cause__, (redis.exceptions.ConnectionError, OSError))
            assert sum(entry["event"] == "redis connection lost; retrying" for entry in logs) == 2
            with pytest.raises(sr.QueueError):
                await q.subscribe("t")
        finally:
            await q.close()
    check = await sr.MessageQueue.open(REDIS_URL, prefix=prefix)
    try:
        assert [m.payload for m in await check.peek("t")] == ["stored"]
    finally:
        await check.close()


async def test_scripts_forgotten_by_the_server_are_loaded_again(prefix: str) -> None:
    """After a Redis restart (scripts flushed) the queue reloads its scripts by itself."""
    q = await sr.MessageQueue.open(REDIS_URL, prefix=prefix)
    try:
        assert isinstance(q, RedisQueue)
        for script in q._scripts.values():
            script.sha = "0" * 40  # what a restarted server would not know
        await q.publish("t", 1)
        [m] = await q.subscribe("t")
        assert await q.acknowledge(m.id) is True
    finally:
        await q.close()


async def test_closed_queue_refuses_calls_and_stops_waiting(prefix: str) -> None:
    """close() wakes a subscriber waiting in Redis with QueueClosedError at once."""
    q = await sr.MessageQueue.open(REDIS_URL, prefix=prefix, poll_interval=30, socket_timeout=60)
    errors: list[BaseException] = []

    async def wait() -> None:
        try:
            await q.subscribe("t", timeout=None)
        except sr.QueueClosedError as exc:
            errors.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.1)
            await q.close()
    assert len(errors) == 1
    with pytest.raises(sr.QueueClosedError):
        await q.publish("t", 1)
