"""Logging: every line a handler logs is bound to agent, message and workflow ids."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
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


ROOT = Path(__file__).resolve().parents[1]

STDLIB_SCRIPT = """
import asyncio, logging, sys

import swarm_runtime as sr

if sys.argv[1] == "basicConfig":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)


async def main() -> None:
    retry = sr.RetryPolicy(max_attempts=2, base_delay=0, max_delay=0)
    async with sr.Runtime(queue="memory://", retry=retry) as rt:

        @rt.agent("bad")
        async def bad(msg: sr.Message, ctx: sr.Context) -> None:
            ctx.log.info("about to fail", size=3)
            raise ValueError("nope")

        try:
            await rt.request("bad", None, workflow_id="wf-1", timeout=10)
        except sr.AgentError:
            pass


asyncio.run(main())
"""


def _run_script(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(STDLIB_SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_runtime_prints_nothing_on_its_own(tmp_path: Path) -> None:
    """An application that configures no logging sees nothing from the runtime, not even
    its warnings and errors (a library adds only a NullHandler)."""
    result = _run_script(tmp_path, "quiet")
    assert (result.stdout, result.stderr) == ("", "")


def test_basic_config_receives_the_runtime_records(tmp_path: Path) -> None:
    """``logging.basicConfig`` in the application gets the runtime's records, their text
    naming the agent, message and workflow."""
    result = _run_script(tmp_path, "basicConfig")
    lines = result.stdout.splitlines()
    retry = [line for line in lines if "handler failed; will retry" in line]
    assert len(retry) == 1, result.stdout
    assert retry[0].startswith("WARNING:swarm_runtime.replica:")
    assert "agent='bad'" in retry[0]
    assert "workflow_id='wf-1'" in retry[0]
    assert "message_id='" in retry[0]
    assert any(line.startswith("ERROR:swarm_runtime.replica:handler failed;") for line in lines)
    [own] = [line for line in lines if "about to fail" in line and "attempt" not in line][:1]
    assert own.startswith("INFO:swarm_runtime.agent:about to fail")
    assert "size=3" in own
    assert result.stderr == ""


async def test_stdlib_records_carry_the_ids_as_attributes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With structlog unconfigured, records reach stdlib handlers with ``agent``,
    ``message_id`` and ``workflow_id`` attributes (for a handler's own formatter/filter)."""
    structlog.reset_defaults()  # the autouse fixture puts the configuration back
    caplog.set_level(logging.INFO, logger="swarm_runtime")
    async with sr.Runtime(queue="memory://", services=False) as rt:

        @rt.agent("worker")
        async def worker(msg: sr.Message, ctx: sr.Context) -> str:
            ctx.log.info("working", rows=10)
            return msg.id

        message_id = await rt.request("worker", None, workflow_id="wf-7")
    [record] = [r for r in caplog.records if r.name == "swarm_runtime.agent"]
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("working ")
    fields = vars(record)
    assert fields["agent"] == "worker"
    assert fields["message_id"] == message_id
    assert fields["workflow_id"] == "wf-7"
    assert fields["rows"] == 10


def test_runtime_configures_no_logging() -> None:
    """Starting a runtime configures neither structlog nor the root logger."""
    structlog.reset_defaults()
    root_handlers = list(logging.getLogger().handlers)

    async def main() -> None:
        async with sr.Runtime(queue="memory://"):
            pass

    anyio.run(main)
    assert not structlog.is_configured()
    assert logging.getLogger().handlers == root_handlers


def test_package_loggers_go_through_the_library_proxy() -> None:
    """No module of the package takes a structlog logger directly or configures logging
    (that would print on its own or bypass the application's stdlib handlers)."""
    package = ROOT / "swarm_runtime"
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "_logging.py":
            continue
        text = path.read_text()
        for needle in ("structlog.get_logger(", "structlog.configure(", "logging.basicConfig("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
