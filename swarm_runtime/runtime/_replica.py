"""One replica of an agent: a coroutine worker competing for the agent's inbox."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskStatus

from .. import _json
from .._logging import task_context
from ..agents.base import FunctionAgent
from ..errors import HandoffError, QueueClosedError, QueueError
from ..events import Outcome, TaskEvent
from ..handoff import Handoff
from ..message import Message
from .context import Context

if TYPE_CHECKING:
    from ..agents.base import Agent
    from .runtime import Runtime

__all__ = ["Replica"]

log = structlog.get_logger("swarm_runtime.replica")
_set_context = task_context.set
_reset_context = task_context.reset


class Replica:
    """Leases messages from the agent's inbox and runs the handler on each.

    Receiving stops at shutdown (``stop_receiving``) while handlers in flight finish;
    the runtime cancels them after its grace period, handing their messages back.
    """

    def __init__(self, runtime: Runtime, agent: Agent, index: int) -> None:
        self.runtime = runtime
        self.agent = agent
        self.index = index
        self.topic = runtime.comm.inbox(agent.name)
        self._receive_scope: anyio.CancelScope | None = None
        self._stopping = False
        # call a function agent's handler directly: one coroutine layer less per message
        self._call = agent._handler if isinstance(agent, FunctionAgent) else agent.handle

    def stop_receiving(self) -> None:
        self._stopping = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        queue = self.runtime.queue
        if queue.supports_interrupt and queue.is_open:
            queue.interrupt(self.topic)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        queue = self.runtime.queue
        agent = self.agent
        limit = agent.concurrency
        slots = anyio.Semaphore(limit) if limit > 1 else None
        task_status.started()
        interruptible = queue.supports_interrupt
        async with anyio.create_task_group() as work:
            while not self._stopping:
                if slots is not None:
                    await slots.acquire()
                    if self._stopping:
                        slots.release()
                        break
                batch: list[Message] = []
                try:
                    if interruptible:
                        # cheap path: stop_receiving() interrupts the wait
                        batch = await queue.subscribe(self.topic, 1, agent.lease, timeout=None)
                    else:
                        with anyio.CancelScope() as scope:
                            self._receive_scope = scope
                            batch = await queue.subscribe(self.topic, 1, agent.lease, timeout=None)
                        self._receive_scope = None
                except QueueClosedError:
                    self._stopping = True
                finally:
                    if slots is not None and not batch:
                        slots.release()
                for message in batch:
                    if slots is None:
                        await self.handle(message)
                    else:
                        work.start_soon(self._handle_then_release, message, slots)

    async def _handle_then_release(self, message: Message, slots: anyio.Semaphore) -> None:
        try:
            await self.handle(message)
        finally:
            slots.release()

    async def handle(self, msg: Message) -> None:
        """Run the handler on one leased message and settle it (ack, nack or release)."""
        rt = self.runtime
        agent = self.agent
        queue = rt.queue
        listeners = rt.listeners
        started_at = rt.clock.time()
        t0 = time.perf_counter()
        rt._task_started()
        if agent.history.maxlen:
            agent.history.append(msg)
        if listeners:
            self._emit(True, msg, "started", started_at, None, None, False)
        handoff_id = msg.headers.get("handoff_id") if msg.headers else None
        ctx = Context(rt, agent.name, self.index, msg)
        outcome: Outcome = "ok"
        failure: BaseException | None = None
        dead = False
        token = _set_context((agent.name, msg.id, msg.workflow_id))
        try:
            if handoff_id is not None:
                try:
                    await rt.handoffs.verify(handoff_id, agent.name)
                except HandoffError as exc:
                    outcome, failure = "rejected", exc
                    log.warning("handoff rejected", handoff_id=handoff_id, reason=str(exc))
                    await self._settle(queue.acknowledge(msg.id))
                    return
            timeout = agent.timeout
            scope: anyio.CancelScope | None = None
            try:
                if timeout is None:
                    result = await self._call(msg, ctx)
                else:
                    with anyio.fail_after(timeout) as scope:
                        result = await self._call(msg, ctx)
                await self._succeed(msg, ctx, result, handoff_id)
            except Exception as exc:
                timed_out = (
                    isinstance(exc, TimeoutError) and scope is not None and scope.cancel_called
                )
                outcome = "timeout" if timed_out else "error"
                failure = exc
                text = (
                    f"TimeoutError: handler took longer than {timeout:g}s"
                    if timed_out and timeout is not None
                    else f"{type(exc).__name__}: {exc}"
                )
                dead = await self._fail(msg, ctx, exc, text, handoff_id)
        except BaseException as exc:
            # Cancelled (shutdown past the grace period): hand the message back untouched.
            outcome, failure = "cancelled", exc
            with anyio.CancelScope(shield=True):
                await self._settle(queue.release(msg.id))
                for pending in ctx._pending_handoffs:
                    await rt.handoffs.complete_handoff(pending.id, False, error="source cancelled")
            raise
        finally:
            _reset_context(token)
            rt._task_finished()
            if listeners:
                self._emit(False, msg, outcome, started_at, time.perf_counter() - t0, failure, dead)

    async def _succeed(
        self, msg: Message, ctx: Context, result: Any, handoff_id: str | None
    ) -> None:
        rt = self.runtime
        forward: Handoff | None = None
        if isinstance(result, Handoff):
            forward = result
            if all(h.id != forward.id for h in ctx._pending_handoffs):
                raise HandoffError(f"returned handoff {forward.id!r} was not made by this handler")
        else:
            _json.check_json(result, what="result")
        if ctx._pending_handoffs:
            await self._deliver_handoffs(msg, ctx, forward)
        if forward is None:
            if handoff_id is not None:
                await rt.handoffs.complete_handoff(handoff_id, True, result=result)
            reply_to = msg.reply_to
            if reply_to is not None and msg.correlation_id is not None:
                body = {"ok": True, "result": result, "agent": self.agent.name}
                if reply_to == rt._reply_topic:
                    rt._reply_local(msg.correlation_id, body)
                else:
                    await self._settle(rt._reply(reply_to, msg.correlation_id, body))
        elif handoff_id is not None:
            await rt.handoffs.forward(handoff_id, forward.id)
        try:
            await rt.queue.acknowledge(msg.id)
        except QueueError as error:
            log.error("could not acknowledge message", error=str(error))

    async def _deliver_handoffs(self, msg: Message, ctx: Context, forward: Handoff | None) -> None:
        rt = self.runtime
        for number, handoff in enumerate(ctx._pending_handoffs):
            forwarding = forward is not None and forward.id == handoff.id
            target = rt.agents[handoff.target]
            message_id = await rt.queue.publish(
                rt.comm.inbox(handoff.target),
                handoff.task_data,
                sender=self.agent.name,
                headers={"handoff_id": handoff.id},
                workflow_id=msg.workflow_id,
                reply_to=msg.reply_to if forwarding else None,
                correlation_id=msg.correlation_id if forwarding else None,
                dedup_key=f"handoff:{msg.id}:{number}",
                max_attempts=rt.policy_for(target).max_attempts,
            )
            await rt.handoffs.attach_message(handoff.id, message_id)

    async def _fail(
        self, msg: Message, ctx: Context, exc: Exception, text: str, handoff_id: str | None
    ) -> bool:
        """Nack with backoff; on the last attempt tell the requester and the handoff."""
        rt = self.runtime
        for pending in ctx._pending_handoffs:
            await rt.handoffs.complete_handoff(pending.id, False, error=f"source failed: {text}")
        policy = rt.policy_for(self.agent)
        delay = policy.delay(msg.attempts)
        try:
            outcome = await rt.queue.nack(msg.id, delay=delay, error=text)
        except QueueError as error:
            log.error("could not nack message", error=str(error))
            return False
        if outcome != "dead_lettered":
            log.warning(
                "handler failed; will retry",
                error=text,
                attempt=msg.attempts,
                retry_in=round(delay, 3),
            )
            return False
        log.error("handler failed; message dead-lettered", error=text, attempts=msg.attempts)
        if handoff_id is not None:
            await rt.handoffs.complete_handoff(handoff_id, False, error=text)
        if msg.reply_to is not None:
            await self._settle(
                rt._reply(
                    msg.reply_to,
                    msg.correlation_id,
                    {
                        "ok": False,
                        "error_type": type(exc).__name__,
                        "error": text.partition(": ")[2] or text,
                        "attempts": msg.attempts,
                        "agent": self.agent.name,
                    },
                )
            )
        return True

    @staticmethod
    async def _settle(operation: Any) -> None:
        """Run a queue operation whose failure must not kill the replica (logged)."""
        try:
            await operation
        except QueueError as error:
            log.error("queue operation failed", error=str(error))

    def _emit(
        self,
        start: bool,
        msg: Message,
        outcome: Outcome,
        started_at: float,
        duration: float | None,
        error: BaseException | None,
        dead: bool,
    ) -> None:
        event = TaskEvent(
            agent=self.agent.name,
            replica=self.index,
            message_id=msg.id,
            topic=msg.topic,
            attempts=msg.attempts,
            outcome=outcome,
            started_at=started_at,
            duration=duration,
            workflow_id=msg.workflow_id,
            error=error,
            dead_lettered=dead,
        )
        for listener in self.runtime.listeners:
            try:
                if start:
                    listener.on_task_started(event)
                else:
                    listener.on_task_finished(event)
            except Exception as exc:  # a broken listener must not break message handling
                log.error("runtime listener failed", listener=repr(listener), error=repr(exc))
