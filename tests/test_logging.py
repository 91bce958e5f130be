"""Logging: every line a handler logs is bound to agent, message and workflow ids."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

import swarm_runtime as sr


async def test_handler_logs_carry_agent_message_and_workflow_ids() -> None:
    """ctx.log and module loggers inside a handler carry the ids via contextvars."""
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("worker")
        async def worker(msg: sr.Message, ctx: sr.Context) -> str:
            ctx.log.info("from ctx.log")
            structlog.get_logger("user.module").info("from a plain logger")
            return msg.id

        with capture_logs(processors=[sr.merge_runtime_context]) as logs:
            message_id = await rt.request("worker", None, workflow_id="wf-9")
    lines = {entry["event"]: entry for entry in logs}
    for event in ("from ctx.log", "from a plain logger"):
        entry = lines[event]
        assert entry["agent"] == "worker"
        assert entry["message_id"] == message_id
        assert entry["workflow_id"] == "wf-9"


async def test_failure_logs_name_the_error_and_attempt() -> None:
    """A failing handler's retry is logged with the error and the attempt number."""
    retry = sr.RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    async with sr.Runtime(queue="memory://", retry=retry) as rt:

        @rt.agent("bad")
        async def bad(msg: sr.Message, ctx: sr.Context) -> None:
            raise ValueError("nope")

        with capture_logs(processors=[sr.merge_runtime_context]) as logs:
            try:
                await rt.request("bad", None, timeout=5)
            except sr.AgentError:
                pass
    events = [(e["event"], e.get("attempt") or e.get("attempts"), e["agent"]) for e in logs]
    assert ("handler failed; will retry", 1, "bad") in events
    assert ("handler failed; message dead-lettered", 2, "bad") in events


def test_configure_logging_json_lines() -> None:
    """configure_logging(json=True, force=True) renders JSON lines with the bound ids."""
    import io
    import json
    import sys

    buffer = io.StringIO()
    old = sys.stderr
    sys.stderr = buffer
    try:
        sr.configure_logging("info", json=True, force=True)
        structlog.contextvars.bind_contextvars(agent="a1")
        try:
            structlog.get_logger("t").info("hello", x=1)
        finally:
            structlog.contextvars.unbind_contextvars("agent")
    finally:
        sys.stderr = old
        structlog.reset_defaults()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert (line["event"], line["agent"], line["x"], line["level"]) == ("hello", "a1", 1, "info")
