"""The middleware stack: veto, wrap, order, errors inside layers, Defer and Retry."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.events import TaskEvent
from swarm_runtime.middleware import (
    Breaker,
    CallNext,
    Metrics,
    Middleware,
    Retries,
    TimeLimit,
    Tuning,
    as_middleware,
)

FAST = sr.RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


class Recorder:
    """A RuntimeListener that keeps every finished event."""

    def __init__(self) -> None:
        self.finished: list[TaskEvent] = []

    def on_task_started(self, event: TaskEvent) -> None:
        pass

    def on_task_finished(self, event: TaskEvent) -> None:
        self.finished.append(dataclasses.replace(event))


class RequireToken(Middleware):
    """Auth: refuse messages without the right token header."""

    async def before(self, msg: sr.Message, ctx: sr.Context) -> None:
        if (msg.headers or {}).get("token") != "s3cret":
            raise sr.Veto("missing or wrong token")


async def test_a_vetoed_message_is_dead_lettered_at_once_and_the_requester_told() -> None:
    """Veto: the handler never runs, no retry, the DLQ holds 'Veto: reason', request fails."""
    recorder = Recorder()
    ran: list[Any] = []
    async with sr.Runtime(
        queue="memory://", retry=FAST, middleware=[RequireToken()], listeners=[recorder]
    ) as rt:

        @rt.agent("vault")
        async def vault(msg: sr.Message, ctx: sr.Context) -> str:
            ran.append(msg.payload)
            return "opened"

        with pytest.raises(sr.AgentError, match="1 attempt.*Veto: missing or wrong token") as info:
            await rt.request("vault", "no token", timeout=10)
        assert info.value.error_type == "Veto"
        [dead] = await rt.queue.dead_letters("agent.vault")
        assert dead.attempts == 1
        assert dead.last_error == "Veto: missing or wrong token"
        assert await rt.request("vault", "ok", headers={"token": "s3cret"}) == "opened"
        assert rt.services is not None
        totals = rt.services.metrics.task_totals("vault")
        assert totals is not None
        assert totals.outcomes == {"rejected": 1, "ok": 1}
        assert totals.dead_letters == 1
    assert ran == ["ok"]
    assert [(e.outcome, e.dead_lettered) for e in recorder.finished] == [
        ("rejected", True),
        ("ok", False),
    ]


async def test_a_wrapping_middleware_sees_the_result_and_the_time_taken() -> None:
    """A function layer times the rest of the stack, sees the result and may replace it."""
    seen: list[tuple[Any, float]] = []

    async def timing(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> Any:
        start = time.perf_counter()
        result = await call_next(msg, ctx)
        seen.append((result, time.perf_counter() - start))
        return {"wrapped": result}

    async with sr.Runtime(queue="memory://", middleware=[timing]) as rt:

        @rt.agent("double")
        async def double(msg: sr.Message, ctx: sr.Context) -> int:
            await anyio.sleep(0.01)
            return int(msg.payload) * 2

        assert await rt.request("double", 21) == {"wrapped": 42}
    [(result, elapsed)] = seen
    assert result == 42
    assert elapsed >= 0.01


async def test_layers_run_in_order_and_the_services_are_outermost() -> None:
    """User layers nest in the order given, inside the services' layers, outside TimeLimit."""
    trail: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def before(self, msg: sr.Message, ctx: sr.Context) -> None:
            trail.append(f"{self.name}>")

        async def after(self, msg: sr.Message, ctx: sr.Context, result: Any) -> None:
            trail.append(f"<{self.name}")

    async def inner(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> Any:
        trail.append("c>")
        try:
            return await call_next(msg, ctx)
        finally:
            trail.append("<c")

    rt = sr.Runtime(queue="memory://", middleware=[Tag("a"), Tag("b")])
    rt.add_middleware(inner)
    kinds = [type(layer) for layer in rt.middleware]
    assert kinds[:4] == [Metrics, Tuning, Retries, Breaker]
    assert kinds[-1] is TimeLimit
    async with rt:

        @rt.agent("echo")
        async def echo(msg: sr.Message, ctx: sr.Context) -> Any:
            trail.append("handler")
            return msg.payload

        assert await rt.request("echo", 1) == 1
    assert trail == ["a>", "b>", "c>", "handler", "<c", "<b", "<a"]


async def test_an_error_inside_a_middleware_fails_the_message_like_a_handler_error() -> None:
    """A hook that raises is the message's failure: retried, then dead-lettered with it."""
    calls: list[int] = []

    class Broken(Middleware):
        async def before(self, msg: sr.Message, ctx: sr.Context) -> None:
            calls.append(msg.attempts)
            raise KeyError("tracing backend misconfigured")

    async with sr.Runtime(queue="memory://", retry=FAST, middleware=[Broken()]) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            raise AssertionError("the handler must not run")

        with pytest.raises(sr.AgentError, match="3 attempt.*KeyError.*misconfigured"):
            await rt.request("a", None, timeout=10)
        assert rt.running
    assert calls == [1, 2, 3]


async def test_on_error_sees_the_failure_and_can_replace_it() -> None:
    """on_error gets the handler's exception; raising another replaces it (chained)."""
    seen: list[BaseException] = []

    class Translate(Middleware):
        async def on_error(self, msg: sr.Message, ctx: sr.Context, error: Exception) -> None:
            seen.append(error)
            raise sr.DataError(f"upstream said: {error}") from error

    async with sr.Runtime(queue="memory://", retry=FAST, middleware=[Translate()]) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            raise ValueError("boom")

        # DataError is fatal for the error handler: dead-lettered at the first attempt
        with pytest.raises(sr.AgentError, match="1 attempt.*DataError: upstream said: boom"):
            await rt.request("a", None, timeout=10)
    assert [type(e) for e in seen] == [ValueError]


async def test_a_failing_after_hook_fails_the_message() -> None:
    """An exception in ``after`` turns a success into a failure (no reply of the result)."""

    class Audit(Middleware):
        async def after(self, msg: sr.Message, ctx: sr.Context, result: Any) -> None:
            raise RuntimeError("audit log unavailable")

    retry = sr.RetryPolicy(max_attempts=1)
    async with sr.Runtime(queue="memory://", retry=retry, middleware=[Audit()]) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        with pytest.raises(sr.AgentError, match="audit log unavailable"):
            await rt.request("a", None, timeout=10)


async def test_defer_hands_the_message_back_without_counting_an_attempt() -> None:
    """Defer releases the message untouched and pauses the replica; it is handled later."""
    deferred: list[int] = []

    async def rate_limit(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> Any:
        if not deferred:
            deferred.append(msg.attempts)
            raise sr.Defer(0.02, "rate limit")
        return await call_next(msg, ctx)

    recorder = Recorder()
    async with sr.Runtime(
        queue="memory://", middleware=[rate_limit], listeners=[recorder], services=False
    ) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return msg.attempts

        attempts = await rt.request("a", None, timeout=10)
    assert deferred == [1]
    assert attempts == 1  # the deferred delivery was not counted
    assert [e.outcome for e in recorder.finished] == ["rejected", "ok"]
    assert not recorder.finished[0].dead_lettered


async def test_a_handler_may_ask_for_its_own_retry_delay_or_a_dead_letter() -> None:
    """Retry(delay) retries the message after that delay; Retry(dead_letter=True) stops."""
    clock = sr.ManualClock()
    seen: list[int] = []
    async with sr.Runtime(queue="memory://", clock=clock, retry=FAST) as rt:

        @rt.agent("poll")
        async def poll(msg: sr.Message, ctx: sr.Context) -> str:
            seen.append(msg.attempts)
            if msg.attempts == 1:
                raise sr.Retry(60.0, reason="not ready yet")
            if msg.payload == "give up":
                raise sr.Retry(dead_letter=True) from LookupError("gone for good")
            return "ready"

        await rt.send("poll", "wait")
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.001)
        await anyio.sleep(0.05)
        assert seen == [1]  # waiting for the clock: 60 s of backoff
        clock.advance(61)
        with anyio.fail_after(5):
            while len(seen) < 2:
                await anyio.sleep(0.001)
        await rt.join(timeout=5)
        seen.clear()
        request = rt.request("poll", "give up", timeout=1e6)  # on the manual clock
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(_advance_until, clock, seen, 2)
                with pytest.raises(sr.AgentError, match="LookupError: gone for good"):
                    await request
        [dead] = await rt.queue.dead_letters("agent.poll")
        assert dead.attempts == 2


async def _advance_until(clock: sr.ManualClock, seen: list[int], count: int) -> None:
    """Move the manual clock on until the handler has run ``count`` times."""
    while len(seen) < count:
        clock.advance(61)
        await anyio.sleep(0.001)


async def test_middleware_added_while_running_applies_to_the_next_message() -> None:
    """add_middleware on a running runtime refolds the running agents' stacks."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        assert await rt.request("a", None) == 1

        async def plus_one(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> Any:
            return await call_next(msg, ctx) + 1

        rt.add_middleware(plus_one)
        assert await rt.request("a", None) == 2


async def test_a_layer_can_skip_agents() -> None:
    """applies_to(agent) False leaves that agent's stack without the layer."""

    class OnlyBilling(Middleware):
        def applies_to(self, agent: sr.Agent) -> bool:
            return agent.name == "billing"

        def wrap(self, call_next: CallNext, agent: sr.Agent) -> Any:
            async def layer(msg: sr.Message, ctx: sr.Context) -> Any:
                return {"billed": await call_next(msg, ctx)}

            return layer

    async with sr.Runtime(queue="memory://", middleware=[OnlyBilling()]) as rt:

        @rt.agent("billing")
        async def billing(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        @rt.agent("other")
        async def other(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        assert await rt.request("billing", None) == {"billed": 1}
        assert await rt.request("other", None) == 1


def test_bad_middleware_is_a_config_error() -> None:
    """A class instead of an instance, or a sync function, is refused with a clear error."""
    with pytest.raises(sr.ConfigError, match=r"instance of RequireToken, e.g. RequireToken\(\)"):
        as_middleware(RequireToken)  # type: ignore[arg-type]

    def sync(msg: sr.Message, ctx: sr.Context, call_next: CallNext) -> Any:
        return None

    with pytest.raises(sr.ConfigError, match="async def layer"):
        sr.Runtime(middleware=[sync])
    with pytest.raises(sr.ConfigError, match="got int"):
        sr.Runtime(middleware=[3])  # type: ignore[list-item]

    async def two_args(msg: sr.Message, ctx: sr.Context) -> Any:
        return None

    with pytest.raises(sr.ConfigError, match=r"must take \(msg, ctx, call_next\)"):
        sr.Runtime(middleware=[two_args])  # type: ignore[list-item]


async def test_the_agents_own_retry_policy_sets_the_delay_with_services_on() -> None:
    """With the services' Retries layer, an agent's retry= policy gives its backoff (as it
    does with services off), not the runtime's default."""
    clock = sr.ManualClock()
    seen: list[int] = []
    async with sr.Runtime(queue="memory://", clock=clock, retry=FAST) as rt:

        @rt.agent("slow_retry", retry=sr.RetryPolicy(3, base_delay=60, max_delay=60, jitter=False))
        async def slow_retry(msg: sr.Message, ctx: sr.Context) -> None:
            seen.append(msg.attempts)
            if msg.attempts == 1:
                raise ConnectionError("flaky upstream")

        await rt.send("slow_retry", None)
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.001)
        await anyio.sleep(0.05)
        assert seen == [1]  # FAST (the runtime's policy) would have retried at once
        clock.advance(59)
        await anyio.sleep(0.05)
        assert seen == [1]
        clock.advance(2)
        with anyio.fail_after(5):
            while len(seen) < 2:
                await anyio.sleep(0.001)
    assert seen == [1, 2]
