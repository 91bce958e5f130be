"""Every bad argument to a public method raises a SwarmError that names it, and is still a
ValueError (or TypeError, for a wrong type) for callers that catch those."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.message import build_message

from .conftest import QueueFactory

Call = Callable[[Any], Awaitable[Any]]

# (id, call on an open queue, builtin class it must also be, word the message names)
QUEUE_CASES: list[tuple[str, Call, type[Exception], str]] = [
    ("topic-list", lambda q: q.publish(["a"], 1), ValueError, "topic"),
    ("topic-empty", lambda q: q.publish("", 1), ValueError, "topic"),
    ("topic-slash", lambda q: q.publish("a/b", 1), ValueError, "topic"),
    ("delay-negative", lambda q: q.publish("t", 1, delay=-1), ValueError, "delay"),
    ("delay-nan", lambda q: q.publish("t", 1, delay=float("nan")), ValueError, "delay"),
    ("delay-inf", lambda q: q.publish("t", 1, delay=float("inf")), ValueError, "delay"),
    ("delay-str", lambda q: q.publish("t", 1, delay="5"), TypeError, "delay"),
    ("delay-bool", lambda q: q.publish("t", 1, delay=True), TypeError, "delay"),
    ("priority-float", lambda q: q.publish("t", 1, priority=1.5), TypeError, "priority"),
    ("priority-str", lambda q: q.publish("t", 1, priority="high"), TypeError, "priority"),
    ("max-attempts-0", lambda q: q.publish("t", 1, max_attempts=0), ValueError, "max_attempts"),
    ("max-attempts-str", lambda q: q.publish("t", 1, max_attempts="3"), TypeError, "max_attempts"),
    ("dedup-empty", lambda q: q.publish("t", 1, dedup_key=""), ValueError, "dedup_key"),
    ("dedup-int", lambda q: q.publish("t", 1, dedup_key=7), TypeError, "dedup_key"),
    ("headers-list", lambda q: q.publish("t", 1, headers=["h"]), TypeError, "headers"),
    (
        "delayed-priority-float",
        lambda q: q.publish("t", 1, delay=1, priority=0.5),
        TypeError,
        "priority",
    ),
    (
        "message-delay",
        lambda q: q.publish_message(build_message("t", 1), delay=-2),
        ValueError,
        "delay",
    ),
    ("many-str", lambda q: q.publish_many("t", "abc"), TypeError, "payloads"),
    ("many-delay", lambda q: q.publish_many("t", [1], delay=-1), ValueError, "delay"),
    (
        "many-dedup-count",
        lambda q: q.publish_many("t", [1, 2], dedup_keys=["a"]),
        ValueError,
        "dedup_keys",
    ),
    ("many-dedup-empty", lambda q: q.publish_many("t", [1], dedup_keys=[""]), ValueError, "dedup"),
    (
        "all-priority",
        lambda q: q.publish_all([sr.Outgoing("t"), sr.Outgoing("t", priority="1")]),
        TypeError,
        "messages[1].priority",
    ),
    (
        "all-delay",
        lambda q: q.publish_all([sr.Outgoing("t"), sr.Outgoing("t", delay=float("nan"))]),
        ValueError,
        "messages[1].delay",
    ),
    (
        "all-topic",
        lambda q: q.publish_all([sr.Outgoing("t"), sr.Outgoing("a/b")]),
        ValueError,
        "messages[1].to",
    ),
    ("all-one", lambda q: q.publish_all(sr.Outgoing("t")), TypeError, "messages"),
    ("all-tuple", lambda q: q.publish_all([("t", 1)]), TypeError, "messages[0]"),
    ("ack-many-str", lambda q: q.acknowledge_many("x" * 32), TypeError, "message_ids"),
    ("nack-many-delay", lambda q: q.nack_many(["x" * 32], delay=-1), ValueError, "delay"),
    ("nack-many-str", lambda q: q.nack_many("x" * 32), TypeError, "message_ids"),
    ("nack-many-bytes", lambda q: q.nack_many(b"x" * 32), TypeError, "message_ids"),
    ("nack-many-set", lambda q: q.nack_many({"x" * 32}), TypeError, "message_ids"),
    ("nack-many-item", lambda q: q.nack_many(["x" * 32, 7]), TypeError, "message_ids[1]"),
    ("nack-many-delay-str", lambda q: q.nack_many(["x" * 32], delay="1"), TypeError, "delay"),
    ("batch-size-0", lambda q: q.subscribe("t", batch_size=0), ValueError, "batch_size"),
    ("batch-size-str", lambda q: q.subscribe("t", batch_size="2"), TypeError, "batch_size"),
    ("lease-0", lambda q: q.subscribe("t", lease=0), ValueError, "lease"),
    ("lease-negative", lambda q: q.subscribe("t", lease=-1.5), ValueError, "lease"),
    ("lease-str", lambda q: q.subscribe("t", lease="30"), TypeError, "lease"),
    ("subscribe-timeout", lambda q: q.subscribe("t", timeout=-1), ValueError, "timeout"),
    ("subscribe-topic", lambda q: q.subscribe(("t",)), ValueError, "topic"),
    ("nack-delay", lambda q: q.nack("x" * 32, delay=-1), ValueError, "delay"),
    ("extend-lease", lambda q: q.extend("x" * 32, 0), ValueError, "lease"),
    ("peek-limit", lambda q: q.peek("t", -1), ValueError, "limit"),
    ("dead-letters-limit", lambda q: q.dead_letters("t", limit=-1), ValueError, "limit"),
    ("stats-topic", lambda q: q.stats(".hidden"), ValueError, "topic"),
]


def _check(error: BaseException, builtin: type[Exception], word: str) -> None:
    assert isinstance(error, sr.SwarmError), repr(error)
    assert isinstance(error, builtin), repr(error)
    assert isinstance(error, sr.InvalidArgumentError), repr(error)
    assert word in str(error), str(error)


@pytest.mark.parametrize(
    ("call", "builtin", "word"),
    [case[1:] for case in QUEUE_CASES],
    ids=[case[0] for case in QUEUE_CASES],
)
async def test_queue_argument_errors(
    make_queue: QueueFactory, call: Call, builtin: type[Exception], word: str
) -> None:
    """Each backend refuses each bad queue argument with an InvalidArgumentError naming it,
    and stores nothing."""
    queue = await make_queue()
    with pytest.raises(builtin) as caught:
        await call(queue)
    _check(caught.value, builtin, word)
    assert await queue.topics() == []


async def _unused(msg: sr.Message, ctx: sr.Context) -> None:
    return None


async def _update_state(rt: sr.Runtime, updates: Any) -> Any:
    await rt.state.register_agent_state("a")
    return await rt.state.update_state("a", updates)


RUNTIME_CASES: list[tuple[str, Call, type[Exception], str]] = [
    ("send-delay", lambda rt: rt.send("a", 1, delay=-1), ValueError, "delay"),
    ("send-priority", lambda rt: rt.send("a", 1, priority="1"), TypeError, "priority"),
    ("send-agent-list", lambda rt: rt.send(["a"], 1), TypeError, "agent"),
    ("send-dedup", lambda rt: rt.send("a", 1, dedup_key=""), ValueError, "dedup_key"),
    (
        "send-all-priority",
        lambda rt: rt.send_all([sr.Outgoing("a"), sr.Outgoing("a", priority="1")]),
        TypeError,
        "messages[1].priority",
    ),
    ("send-all-agent", lambda rt: rt.send_all([sr.Outgoing(["a"])]), TypeError, "messages[0].to"),
    ("send-all-one", lambda rt: rt.send_all(sr.Outgoing("a")), TypeError, "messages"),
    ("send-all-item", lambda rt: rt.send_all([("a", 1)]), TypeError, "messages[0]"),
    ("request-timeout-0", lambda rt: rt.request("a", 1, timeout=0), ValueError, "timeout"),
    ("request-timeout-str", lambda rt: rt.request("a", 1, timeout="1"), TypeError, "timeout"),
    (
        "request-timeout-nan",
        lambda rt: rt.request("a", 1, timeout=float("nan")),
        ValueError,
        "timeout",
    ),
    ("request-delay", lambda rt: rt.request("a", 1, delay=-1), ValueError, "delay"),
    ("publish-topic", lambda rt: rt.publish(["t"], 1), ValueError, "topic"),
    ("publish-headers", lambda rt: rt.publish("t", 1, headers="h"), TypeError, "headers"),
    ("join-timeout", lambda rt: rt.join(timeout=-1), ValueError, "timeout"),
    (
        "ctx-send",
        lambda rt: sr.Context(rt, "a", 0, build_message("agent.a", None)).send("a", delay=-1),
        ValueError,
        "delay",
    ),
    (
        "ctx-request",
        lambda rt: sr.Context(rt, "a", 0, build_message("agent.a", None)).request("a", timeout=-5),
        ValueError,
        "timeout",
    ),
    (
        "ctx-publish",
        lambda rt: sr.Context(rt, "a", 0, build_message("agent.a", None)).publish("t/x"),
        ValueError,
        "topic",
    ),
    (
        "comm-send-message",
        lambda rt: rt.comm.send_message(None, "a", 1, priority=2.5),
        TypeError,
        "priority",
    ),
    ("comm-fetch", lambda rt: rt.comm.fetch_messages("a", 0), ValueError, "max_messages"),
    ("state-update", lambda rt: _update_state(rt, 5), TypeError, "updates"),
    ("state-updater-result", lambda rt: _update_state(rt, lambda s: 5), TypeError, "mapping"),
    ("state-history", lambda rt: rt.state.get_state_history("a", -1), ValueError, "limit"),
    (
        "handoff-target",
        lambda rt: rt.handoffs.initiate_handoff("a", ["b"]),
        TypeError,
        "target",
    ),
    ("handoff-wait", lambda rt: rt.handoffs.wait("h", timeout=-1), ValueError, "timeout"),
]


@pytest.mark.parametrize(
    ("call", "builtin", "word"),
    [case[1:] for case in RUNTIME_CASES],
    ids=[case[0] for case in RUNTIME_CASES],
)
async def test_runtime_argument_errors(call: Call, builtin: type[Exception], word: str) -> None:
    """Runtime, Context, CommunicationSystem, StateManager and HandoffProtocol refuse each
    bad argument with an InvalidArgumentError naming it; nothing is queued."""
    async with sr.Runtime(queue="memory://", services=False) as rt:
        rt.agent("a")(_unused)
        rt.subscribe("t", "a")
        with pytest.raises(builtin) as caught:
            await call(rt)
        _check(caught.value, builtin, word)
        assert await rt.queue.depth("agent.a") == 0


def test_constructor_and_clock_argument_errors() -> None:
    """Bad constructor arguments and a clock sent backwards are SwarmErrors too."""
    with pytest.raises(ValueError) as caught:
        sr.HandoffProtocol(max_records=0)
    _check(caught.value, ValueError, "max_records")
    with pytest.raises(ValueError) as caught:
        ManualClock().advance(-1)
    _check(caught.value, ValueError, "backwards")
    with pytest.raises(sr.ConfigError, match="grace_period"):
        sr.Runtime(grace_period=-1)
    metrics = sr.MetricsCollector()
    with pytest.raises(ValueError) as caught:
        metrics.record_metric("a", "latency", float("nan"))
    _check(caught.value, ValueError, "finite")
    with pytest.raises(TypeError) as caught:
        metrics.record_metric("a", "latency", "fast")  # type: ignore[arg-type]
    _check(caught.value, TypeError, "finite")
    with pytest.raises(ValueError) as caught:
        metrics.increment("a", "requests", -1)
    _check(caught.value, ValueError, "only go up")
