"""The Runtime's lifetime: one task group in a host task, fixtures of both async plugins,
deadlines on the injectable clock, failures of background tasks reported at exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock


async def _echo(msg: sr.Message, ctx: sr.Context) -> Any:
    return msg.payload


@pytest.fixture
async def echo_runtime() -> AsyncIterator[sr.Runtime]:
    """A running runtime as a pytest-asyncio fixture: set up and torn down in other tasks
    than the test's."""
    async with sr.Runtime(queue="memory://") as rt:
        rt.agent("echo")(_echo)
        yield rt
    assert not rt.running


async def test_runtime_works_as_a_pytest_asyncio_fixture(echo_runtime: sr.Runtime) -> None:
    """A request through a runtime made by an async generator fixture; its teardown (another
    task) stops it cleanly."""
    assert await echo_runtime.request("echo", {"n": 1}) == {"n": 1}


ANYIO_TESTS = """
from collections.abc import AsyncIterator

import pytest

import swarm_runtime as sr


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def runtime(anyio_backend: str) -> AsyncIterator[sr.Runtime]:
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> object:
            return msg.payload

        yield rt
    assert not rt.running


@pytest.mark.anyio
async def test_request(runtime: sr.Runtime) -> None:
    assert await runtime.request("echo", [1, 2]) == [1, 2]
"""


def test_runtime_works_as_an_anyio_fixture(tmp_path: Path) -> None:
    """A runtime made by a fixture of anyio's pytest plugin serves a request and stops
    cleanly (run in a pytest of its own: this suite's pytest-asyncio auto mode would take
    the test over from anyio's plugin)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (tmp_path / "test_anyio_runtime.py").write_text(ANYIO_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:asyncio", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


async def test_enter_and_exit_in_different_tasks() -> None:
    """__aenter__ in one task and __aexit__ in another (a framework's exit stack) work, and
    no task of the runtime is left behind."""
    rt = sr.Runtime(queue="memory://")
    rt.agent("echo")(_echo)
    before = asyncio.all_tasks()
    await asyncio.create_task(rt.__aenter__())
    assert await rt.request("echo", 7) == 7
    await asyncio.create_task(rt.__aexit__(None, None, None))
    assert not rt.running
    assert asyncio.all_tasks() == before


async def test_request_timeout_follows_the_manual_clock() -> None:
    """A request's deadline is on the runtime's clock: it times out when the clock passes it,
    not before, however long the wall clock waits."""
    clock = ManualClock()
    entered = anyio.Event()
    release = anyio.Event()
    async with sr.Runtime(queue="memory://", clock=clock, grace_period=0) as rt:

        @rt.agent("slow")
        async def slow(msg: sr.Message, ctx: sr.Context) -> str:
            entered.set()
            await release.wait()
            return "late"

        outcome: list[Any] = []

        async def ask() -> None:
            try:
                outcome.append(await rt.request("slow", None, timeout=5))
            except sr.RequestTimeoutError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await entered.wait()
            clock.advance(4.9)
            await anyio.sleep(0.05)  # real time passes; the manual clock does not
            assert outcome == []
            clock.advance(0.2)
            with anyio.fail_after(3):  # well before 5 real seconds
                while not outcome:
                    await anyio.sleep(0.01)
        release.set()
    assert len(outcome) == 1
    assert isinstance(outcome[0], sr.RequestTimeoutError)
    assert "within 5s" in str(outcome[0])


async def test_an_earlier_deadline_wakes_the_timer() -> None:
    """A short request made while a long one waits still times out on time (the one timer
    re-arms for the earlier deadline)."""
    clock = ManualClock()
    release = anyio.Event()
    async with sr.Runtime(queue="memory://", clock=clock, grace_period=0) as rt:

        @rt.agent("slow", concurrency=4)
        async def slow(msg: sr.Message, ctx: sr.Context) -> None:
            await release.wait()

        results: dict[str, Any] = {}

        async def ask(name: str, timeout: float) -> None:
            try:
                await rt.request("slow", None, timeout=timeout)
            except sr.RequestTimeoutError as exc:
                results[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "long", 100)
            await anyio.sleep(0.05)
            tg.start_soon(ask, "short", 1)
            await anyio.sleep(0.05)
            clock.advance(1.5)
            with anyio.fail_after(5):
                while "short" not in results:
                    await anyio.sleep(0.01)
            assert "long" not in results
            tg.cancel_scope.cancel()
        release.set()


async def test_a_failed_background_task_is_raised_at_exit() -> None:
    """A background task that fails stops the runtime: waiting requests and new sends get
    RuntimeStateError, and the failure itself (not an exception group) leaves the block."""

    async def doomed(*, task_status: TaskStatus[None]) -> None:
        task_status.started()
        await anyio.sleep(0.05)
        raise OSError("disk on fire")

    release = anyio.Event()
    with pytest.raises(OSError, match="disk on fire"):
        async with sr.Runtime(queue="memory://", grace_period=0) as rt:

            @rt.agent("slow")
            async def slow(msg: sr.Message, ctx: sr.Context) -> None:
                await release.wait()

            await rt.start_background(doomed)
            with pytest.raises(sr.RuntimeStateError, match="stopped before the reply"):
                await rt.request("slow", None, timeout=30)
            with pytest.raises(sr.RuntimeStateError):
                await rt.send("slow", None)
    assert not rt.running


async def test_a_failed_start_raises_the_error_itself_and_closes() -> None:
    """An agent whose on_start fails makes ``async with`` raise that error (not a group),
    and the runtime ends closed with its queue closed."""

    class Broken(sr.Agent):
        async def on_start(self, runtime: sr.Runtime) -> None:
            raise LookupError("no model file")

        async def handle(self, msg: sr.Message, ctx: sr.Context) -> None:
            return None

    queue = await sr.MessageQueue.open("memory://")
    rt = sr.Runtime(queue="memory://")
    rt.add_agent(Broken("broken"))
    with pytest.raises(LookupError, match="no model file"):
        async with rt:
            pytest.fail("the body must not run")
    assert not rt.running
    with pytest.raises(sr.RuntimeStateError, match="new Runtime"):
        async with rt:
            pass
    await queue.close()


async def test_cancelled_body_stops_without_grace() -> None:
    """Cancelling the task inside ``async with`` stops the runtime at once: the handler in
    flight is cancelled and its message handed back, not waited for."""
    queue = await sr.MessageQueue.open("memory://")
    entered = anyio.Event()
    with anyio.move_on_after(5) as outer:
        async with sr.Runtime(queue=queue, grace_period=60) as rt:

            @rt.agent("stuck")
            async def stuck(msg: sr.Message, ctx: sr.Context) -> None:
                entered.set()
                await anyio.sleep_forever()

            await rt.send("stuck", 1)
            await entered.wait()
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert not rt.running
    stats = await queue.stats(sr.CommunicationSystem.inbox("stuck"))
    assert (stats.ready, stats.leased) == (1, 0)
    await queue.close()
