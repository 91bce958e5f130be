"""Helpers for the Redis backend tests: private prefixes, key listing, a proxy to cut."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import redis.asyncio as aioredis
from anyio.abc import SocketStream, TaskGroup

import swarm_runtime as sr

from ..conftest import REDIS_URL

OpenQueue = Callable[..., Awaitable[sr.MessageQueue]]


def new_prefix() -> str:
    return f"swarmtest:{uuid.uuid4().hex[:12]}"


async def keys(client: aioredis.Redis, prefix: str) -> list[str]:
    """Every key under ``prefix``, sorted, as text."""
    return sorted([key.decode() async for key in client.scan_iter(match=f"{prefix}:*")])


async def delete_keys(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        found = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if found:
            await client.delete(*found)
    finally:
        await client.aclose()


class Proxy:
    """A TCP proxy in front of Redis that a test can cut (drop every connection) or stop
    (drop them and refuse new ones), to play a network failure or a server going away."""

    def __init__(self, tg: TaskGroup) -> None:
        self._tg = tg
        parts = urlsplit(REDIS_URL)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._connections: list[anyio.CancelScope] = []
        self._serving = anyio.CancelScope()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{urlsplit(REDIS_URL).path.strip('/') or 0}"

    async def start(self) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._serving = anyio.CancelScope()
        self._tg.start_soon(self._serve, listener, self._serving)

    async def _serve(self, listener: Any, scope: anyio.CancelScope) -> None:
        with scope:
            async with listener:
                await listener.serve(self._handle)

    async def _handle(self, client: SocketStream) -> None:
        async with client:
            try:
                upstream = await anyio.connect_tcp(*self._target)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                self._connections.append(tg.cancel_scope)
                tg.start_soon(self._pipe, client, upstream, tg.cancel_scope)
                tg.start_soon(self._pipe, upstream, client, tg.cancel_scope)

    @staticmethod
    async def _pipe(src: SocketStream, dst: SocketStream, scope: anyio.CancelScope) -> None:
        try:
            async for chunk in src:
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            scope.cancel()

    def cut(self) -> None:
        """Drop every open connection (new ones are still accepted)."""
        for scope in self._connections:
            scope.cancel()
        self._connections.clear()

    def stop(self) -> None:
        """Drop every connection and stop listening."""
        self._serving.cancel()
        self.cut()


@asynccontextmanager
async def redis_proxy() -> AsyncIterator[Proxy]:
    async with anyio.create_task_group() as tg:
        proxy = Proxy(tg)
        await proxy.start()
        try:
            yield proxy
        finally:
            proxy.stop()
            tg.cancel_scope.cancel()
