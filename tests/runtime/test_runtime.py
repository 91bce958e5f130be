"""The Runtime: agents, requests, retries, dead letters, timeouts and shutdown."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.events import TaskEvent

FAST = sr.RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


class Recorder:
    """A RuntimeListener that keeps every event."""

    def __init__(self) -> None:
        self.started: list[TaskEvent] = []
        self.finished: list[TaskEvent] = []

    def on_task_started(self, event: TaskEvent) -> None:
        self.started.append(dataclasses.replace(event))  # the event is updated in place

    def on_task_finished(self, event: TaskEvent) -> None:
        self.finished.append(dataclasses.replace(event))


async def test_request_returns_the_agents_result() -> None:
    """rt.request sends durably and returns what the agent returned."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("summarize", role="analyzer", replicas=2)
        async def summarize(msg: sr.Message, ctx: sr.Context) -> dict[str, int]:
            return {"words": len(msg.payload["text"].split())}

        assert await rt.request("summarize", {"text": "a b c"}) == {"words": 3}
        assert rt.agents["summarize"].role == "analyzer"


async def test_send_is_fire_and_forget_and_join_drains() -> None:
    """rt.send returns a message id at once; join waits until the agent has handled it."""
    seen: list[Any] = []
    rt = sr.Runtime(queue="memory://")

    @rt.agent("sink")
    async def sink(msg: sr.Message, ctx: sr.Context) -> None:
        await anyio.sleep(0.01)
        seen.append(msg.payload)

    async with rt:
        ids = [await rt.send("sink", {"i": i}) for i in range(5)]
        assert len(set(ids)) == 5
        await rt.join(timeout=10)
        assert sorted(p["i"] for p in seen) == list(range(5))


async def test_class_agent_with_state_and_history() -> None:
    """A class agent keeps bounded history and per-agent state through ctx.state."""

    class Counter(sr.Agent):
        role = "counter"
        history_size = 3

        async def handle(self, msg: sr.Message, ctx: sr.Context) -> int:
            state = await ctx.state.update(lambda s: {**s, "n": s.get("n", 0) + msg.payload})
            return int(state["n"])

    async with sr.Runtime(queue="memory://") as rt:
        agent = rt.add_agent(Counter("counter"))
        results = [await rt.request("counter", i) for i in range(1, 6)]
        assert results == [1, 3, 6, 10, 15]
        assert [m.payload for m in agent.history] == [3, 4, 5]
        assert await rt.state.get_state("counter") == {"n": 15}


async def test_failing_agent_is_retried_then_succeeds() -> None:
    """An exception nacks the message; the retry succeeds and the requester gets the result."""
    calls = 0
    async with sr.Runtime(queue="memory://", retry=FAST) as rt:

        @rt.agent("flaky")
        async def flaky(msg: sr.Message, ctx: sr.Context) -> str:
            nonlocal calls
            calls += 1
            if msg.attempts < 3:
                raise RuntimeError(f"boom {msg.attempts}")
            return "ok"

        assert await rt.request("flaky", None, timeout=10) == "ok"
        assert calls == 3


async def test_always_failing_agent_is_dead_lettered_and_requester_told() -> None:
    """After max_attempts the message is in the DLQ with its error; request raises AgentError."""
    recorder = Recorder()
    async with sr.Runtime(queue="memory://", retry=FAST, listeners=[recorder]) as rt:

        @rt.agent("broken")
        async def broken(msg: sr.Message, ctx: sr.Context) -> None:
            raise ValueError("bad input")

        with pytest.raises(sr.AgentError, match="broken.*3 attempt.*ValueError: bad input") as info:
            await rt.request("broken", {"x": 1}, timeout=10)
        assert info.value.error_type == "ValueError"
        [dead] = await rt.queue.dead_letters("agent.broken")
        assert dead.last_error == "ValueError: bad input"
        assert dead.attempts == 3
        # the runtime is still alive
        assert rt.running
    outcomes = [e.outcome for e in recorder.finished]
    assert outcomes == ["error", "error", "error"]
    assert [e.dead_lettered for e in recorder.finished] == [False, False, True]


async def test_agent_that_hangs_past_its_timeout() -> None:
    """A handler past its timeout is cancelled, retried, then dead-lettered as a timeout."""
    recorder = Recorder()
    retry = sr.RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
    async with sr.Runtime(queue="memory://", retry=retry, listeners=[recorder]) as rt:

        @rt.agent("sleepy", timeout=0.05)
        async def sleepy(msg: sr.Message, ctx: sr.Context) -> None:
            await anyio.sleep_forever()

        with pytest.raises(sr.AgentError, match="longer than 0.05s"):
            await rt.request("sleepy", None, timeout=10)
        [dead] = await rt.queue.dead_letters("agent.sleepy")
        assert "TimeoutError" in (dead.last_error or "")
    assert [e.outcome for e in recorder.finished] == ["timeout", "timeout"]


async def test_handler_raising_timeout_error_itself_is_an_error_not_a_timeout() -> None:
    """A TimeoutError raised by the handler's own code is classified as an error."""
    recorder = Recorder()
    retry = sr.RetryPolicy(max_attempts=1, base_delay=0.0, max_delay=0.0)
    async with sr.Runtime(queue="memory://", retry=retry, listeners=[recorder]) as rt:

        @rt.agent("t", timeout=30)
        async def t(msg: sr.Message, ctx: sr.Context) -> None:
            raise TimeoutError("upstream API timed out")

        with pytest.raises(sr.AgentError, match="upstream API"):
            await rt.request("t", None, timeout=10)
    assert [e.outcome for e in recorder.finished] == ["error"]


async def test_request_timeout() -> None:
    """No reply within the timeout raises RequestTimeoutError (also a TimeoutError)."""
    async with sr.Runtime(queue="memory://", grace_period=0) as rt:

        @rt.agent("slow")
        async def slow(msg: sr.Message, ctx: sr.Context) -> None:
            await anyio.sleep_forever()

        with pytest.raises(sr.RequestTimeoutError, match="slow.*0.05s"):
            await rt.request("slow", None, timeout=0.05)
        with pytest.raises(TimeoutError):
            await rt.request("slow", None, timeout=0.05)


async def test_shutdown_drains_in_flight_work_within_grace() -> None:
    """Leaving the runtime waits for handlers in flight (up to the grace period)."""
    finished: list[int] = []
    queue = await sr.MessageQueue.open("memory://")
    rt = sr.Runtime(queue=queue, grace_period=5)

    @rt.agent("worker", concurrency=4)
    async def worker(msg: sr.Message, ctx: sr.Context) -> None:
        await anyio.sleep(0.1)
        finished.append(msg.payload)

    async with rt:
        for i in range(4):
            await rt.send("worker", i)
        while rt.inflight < 4:
            await anyio.sleep(0.01)
    assert sorted(finished) == [0, 1, 2, 3]
    assert await queue.depth("agent.worker") == 0
    await queue.close()


async def test_cancellation_during_shutdown_hands_messages_back() -> None:
    """A handler still running after the grace period is cancelled; its message goes back."""
    queue = await sr.MessageQueue.open("memory://")
    cancelled = anyio.Event()
    rt = sr.Runtime(queue=queue, grace_period=0.05)

    @rt.agent("stuck")
    async def stuck(msg: sr.Message, ctx: sr.Context) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async with rt:
        await rt.send("stuck", "payload")
        while rt.inflight == 0:
            await anyio.sleep(0.01)
    assert cancelled.is_set()
    assert not queue.is_closed  # not owned by the runtime
    [msg] = await queue.subscribe("agent.stuck")
    assert msg.payload == "payload"
    assert msg.attempts == 1  # the cancelled attempt was not counted
    await queue.close()


async def test_exception_in_the_body_stops_the_runtime_cleanly() -> None:
    """An error in the application's block cancels the agents and propagates."""
    rt = sr.Runtime(queue="memory://")

    @rt.agent("a")
    async def a(msg: sr.Message, ctx: sr.Context) -> None:
        await anyio.sleep_forever()

    with pytest.raises(KeyError):
        async with rt:
            await rt.send("a", 1)
            raise KeyError("app bug")
    assert not rt.running
    with pytest.raises(sr.RuntimeStateError, match="closed"):
        await rt.send("a", 1)


async def test_runtime_on_a_closed_queue_is_refused() -> None:
    """A second Runtime on a queue that was closed gets a clear QueueClosedError."""
    queue = await sr.MessageQueue.open("memory://")
    async with sr.Runtime(queue=queue):
        pass
    await queue.close()
    with pytest.raises(sr.QueueClosedError, match="closed"):
        async with sr.Runtime(queue=queue):
            pass


async def test_runtime_cannot_be_reused_or_used_before_start() -> None:
    """Using a runtime before start or after close raises RuntimeStateError."""
    rt = sr.Runtime(queue="memory://")
    with pytest.raises(sr.RuntimeStateError, match="not running"):
        await rt.send("x", 1)
    async with rt:
        pass
    with pytest.raises(sr.RuntimeStateError, match="new Runtime"):
        async with rt:
            pass


async def test_unknown_agent_names_the_known_ones() -> None:
    """Sending to an unknown agent raises UnknownAgentError listing registered agents."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("alpha")
        async def alpha(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        with pytest.raises(sr.UnknownAgentError, match=r"'beta'.*known agents: alpha"):
            await rt.send("beta", 1)
        with pytest.raises(sr.UnknownAgentError):
            await rt.request("beta", 1)


async def test_send_all_queues_each_message_for_its_agent() -> None:
    """send_all delivers each message to the agent it names, with its own envelope; a
    message's max_attempts defaults to its agent's retry policy."""
    got: dict[str, list[sr.Message]] = {"a": [], "b": []}
    done = anyio.Event()
    async with sr.Runtime(queue="memory://", services=False, retry=FAST) as rt:

        async def record(msg: sr.Message, ctx: sr.Context) -> None:
            got[ctx.agent].append(msg)
            if sum(map(len, got.values())) == 4:
                done.set()

        rt.agent("a")(record)
        rt.agent("b", retry=sr.RetryPolicy(max_attempts=7))(record)
        ids = await rt.send_all(
            [
                sr.Outgoing("a", 1, correlation_id="c1", priority=3),
                sr.Outgoing("b", 2, workflow_id="w2", headers={"h": "2"}),
                sr.Outgoing("a", 3, max_attempts=9, sender="me"),
                sr.Outgoing("b", 4, reply_to="back"),
            ]
        )
        with anyio.fail_after(5):
            await done.wait()
    assert len(set(ids)) == 4
    by_id = {m.id: m for msgs in got.values() for m in msgs}
    a1, b2, a3, b4 = (by_id[i] for i in ids)
    assert [m.payload for m in got["a"]] == [1, 3]
    assert [m.payload for m in got["b"]] == [2, 4]
    assert (a1.correlation_id, a1.priority, a1.max_attempts) == ("c1", 3, FAST.max_attempts)
    assert (b2.workflow_id, b2.headers, b2.max_attempts) == ("w2", {"h": "2"}, 7)
    assert (a3.sender, a3.max_attempts) == ("me", 9)
    assert (b4.reply_to, b4.max_attempts) == ("back", 7)


async def test_send_all_unknown_agent_queues_nothing() -> None:
    """An unknown agent at any position raises UnknownAgentError before anything is
    queued; so does a bad message, naming its position."""
    got: list[Any] = []
    marker = anyio.Event()
    async with sr.Runtime(queue="memory://", services=False) as rt:

        @rt.agent("alpha")
        async def alpha(msg: sr.Message, ctx: sr.Context) -> None:
            got.append(msg.payload)
            if msg.payload == "marker":
                marker.set()

        with pytest.raises(sr.UnknownAgentError, match=r"'beta'.*known agents: alpha"):
            await rt.send_all([sr.Outgoing("alpha", 1), sr.Outgoing("beta", 2)])
        with pytest.raises(sr.PayloadError, match=r"messages\[1\]\.payload"):
            await rt.send_all([sr.Outgoing("alpha", 1), sr.Outgoing("alpha", {1})])
        assert await rt.send_all([]) == []
        await rt.send_all([sr.Outgoing("alpha", "marker")])
        with anyio.fail_after(5):
            await marker.wait()
    assert got == ["marker"]


async def test_bad_payload_is_refused_at_send() -> None:
    """A non-JSON payload is refused when sent, naming its path and type."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> None:
            return None

        with pytest.raises(sr.PayloadError, match=r"payload\.when is not JSON.*datetime"):
            import datetime

            await rt.send("a", {"when": datetime.datetime.now()})
        assert await rt.queue.depth("agent.a") == 0


async def test_non_json_result_is_a_handler_failure() -> None:
    """A handler returning something that is not JSON fails like an exception would."""
    retry = sr.RetryPolicy(max_attempts=1, base_delay=0, max_delay=0)
    async with sr.Runtime(queue="memory://", retry=retry) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> object:
            return object()

        with pytest.raises(sr.AgentError, match="PayloadError.*result is not JSON"):
            await rt.request("a", None, timeout=5)


async def test_concurrency_limit_and_replicas() -> None:
    """replicas x concurrency bounds how many messages run at once, and is reached."""
    running = 0
    peak = 0
    release = anyio.Event()
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("w", replicas=2, concurrency=3)
        async def w(msg: sr.Message, ctx: sr.Context) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1

        for i in range(20):
            await rt.send("w", i)
        with anyio.fail_after(10):
            while peak < 6:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        assert peak == 6
        assert (await rt.queue.stats("agent.w")).leased == 6
        release.set()
        await rt.join(timeout=10)
    assert peak == 6


async def test_replicas_compete_for_the_inbox() -> None:
    """Each replica takes part of the work."""
    by_replica: dict[int, int] = {}
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("w", replicas=3)
        async def w(msg: sr.Message, ctx: sr.Context) -> None:
            by_replica[ctx.replica] = by_replica.get(ctx.replica, 0) + 1
            await anyio.sleep(0.005)

        for i in range(30):
            await rt.send("w", i)
        await rt.join(timeout=10)
    assert sum(by_replica.values()) == 30
    assert set(by_replica) == {0, 1, 2}


async def test_agent_added_while_running_starts_at_once() -> None:
    """add_agent on a running runtime starts its replicas immediately."""
    async with sr.Runtime(queue="memory://") as rt:

        class Late(sr.Agent):
            async def handle(self, msg: sr.Message, ctx: sr.Context) -> str:
                return "late"

        rt.add_agent(Late("late"))
        assert await rt.request("late", None, timeout=5) == "late"


async def test_context_send_and_request_between_agents() -> None:
    """Agents talk to each other with ctx.request and ctx.send; workflow ids propagate."""
    seen: list[str | None] = []
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("double")
        async def double(msg: sr.Message, ctx: sr.Context) -> int:
            seen.append(msg.workflow_id)
            return int(msg.payload) * 2

        @rt.agent("log")
        async def log_agent(msg: sr.Message, ctx: sr.Context) -> None:
            seen.append(msg.workflow_id)

        @rt.agent("front")
        async def front(msg: sr.Message, ctx: sr.Context) -> int:
            value = await ctx.request("double", msg.payload)
            await ctx.send("log", value)
            return int(value) + 1

        assert await rt.request("front", 20, workflow_id="wf-1", timeout=5) == 41
        await rt.join(timeout=5)
    assert seen == ["wf-1", "wf-1"]


async def test_listeners_get_started_and_finished_events() -> None:
    """Every handled message produces a started and a finished event with its duration."""
    recorder = Recorder()
    async with sr.Runtime(queue="memory://", listeners=[recorder]) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 1

        await rt.request("a", None)
    assert [e.outcome for e in recorder.started] == ["started"]
    [done] = recorder.finished
    assert done.outcome == "ok"
    assert done.agent == "a"
    assert done.duration is not None
    assert done.duration >= 0


async def test_broken_listener_does_not_break_handling() -> None:
    """A listener that raises is logged and ignored."""

    class Broken:
        def on_task_started(self, event: TaskEvent) -> None:
            raise RuntimeError("listener bug")

        def on_task_finished(self, event: TaskEvent) -> None:
            raise RuntimeError("listener bug")

    async with sr.Runtime(queue="memory://", listeners=[Broken()]) as rt:

        @rt.agent("a")
        async def a(msg: sr.Message, ctx: sr.Context) -> int:
            return 7

        assert await rt.request("a", None) == 7


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"replicas": 0}, "replicas"),
        ({"concurrency": -1}, "concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"topics": ["bad topic"]}, "invalid topic"),
    ],
)
def test_invalid_agent_options_are_refused(options: dict[str, Any], match: str) -> None:
    """Agent options are validated when the agent is registered."""
    rt = sr.Runtime(queue="memory://")

    async def handler(msg: sr.Message, ctx: sr.Context) -> None:
        return None

    with pytest.raises((sr.ConfigError, sr.InvalidTopicError), match=match):
        rt.agent("a", **options)(handler)


def test_sync_handler_and_duplicate_names_are_refused() -> None:
    """A plain def handler and a second agent with the same name are refused."""
    rt = sr.Runtime(queue="memory://")

    def not_async(msg: sr.Message, ctx: sr.Context) -> None:
        return None

    with pytest.raises(sr.ConfigError, match="async def"):
        rt.agent("a")(not_async)  # type: ignore[type-var]

    async def handler(msg: sr.Message, ctx: sr.Context) -> None:
        return None

    rt.agent("b")(handler)
    with pytest.raises(sr.ConfigError, match="already registered"):
        rt.agent("b")(handler)


def test_invalid_runtime_options_are_refused() -> None:
    """Runtime options are validated at construction."""
    with pytest.raises(sr.ConfigError, match="grace_period"):
        sr.Runtime(grace_period=-1)
    with pytest.raises(sr.ConfigError, match="queue must be"):
        sr.Runtime(queue=42)  # type: ignore[arg-type]
    with pytest.raises(sr.ConfigError, match="unknown queue URL scheme"):
        import swarm_runtime.queue._registry as registry

        registry.create("ftp://x")


async def test_lease_heartbeat_keeps_a_slow_handler_s_message() -> None:
    """A handler running past its lease keeps the message: heartbeats extend the lease,
    so no other replica gets it and the handler runs once."""
    runs: list[int] = []
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("slow", replicas=2, lease=0.2)
        async def slow(msg: sr.Message, ctx: sr.Context) -> str:
            runs.append(ctx.replica)
            await anyio.sleep(0.8)
            return "done"

        assert await rt.request("slow", None, timeout=10) == "done"
        await rt.join(timeout=5)
    assert len(runs) == 1


async def test_message_retry_header_overrides_the_backoff() -> None:
    """A message's own headers["retry"] (a workflow task's delays) wins over the policy."""
    retry = sr.RetryPolicy(max_attempts=3, base_delay=30, max_delay=60)
    async with sr.Runtime(queue="memory://", retry=retry) as rt:

        @rt.agent("flaky")
        async def flaky(msg: sr.Message, ctx: sr.Context) -> int:
            if msg.attempts < 2:
                raise RuntimeError("once")
            return msg.attempts

        headers = {"retry": {"base_delay": 0.01, "max_delay": 0.01, "jitter": False}}
        assert await rt.request("flaky", None, headers=headers, timeout=10) == 2


async def test_runtime_runs_the_queue_upkeep_once(tmp_path: Path) -> None:
    """The runtime runs its queue's maintain() loop while it runs; a second runtime on the
    same queue does not start another one."""
    queue = await sr.MessageQueue.open(f"file://{tmp_path / 'q'}")
    try:
        async with sr.Runtime(queue=queue):
            assert queue.maintained
            async with sr.Runtime(queue=queue) as second:
                assert queue.maintained
                assert second.running
            assert queue.maintained  # still the first runtime's loop
        assert not queue.maintained
    finally:
        await queue.close()


def test_forked_children_make_their_own_ids() -> None:
    """Message ids made in a forked child never repeat the parent's."""
    import os
    import warnings

    from swarm_runtime.message import new_id

    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about fork() in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent_id = new_id()
    assert len(child_id) == 32
    assert child_id[12:24] != parent_id[12:24]  # the per-process tag differs
