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
from ..errors import ConfigError, HandoffError, QueueClosedError, QueueError
from ..events import Outcome, TaskEvent
from ..handoff import Handoff
from ..message import Message
from ..retry import RetryPolicy
from ._slots import Slots
from .context import Context

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from ..agents.base import Agent
    from ..services.error_handler import ErrorHandler
    from ..services.load_balancer import Assignment, LoadBalancer
    from .runtime import Runtime

__all__ = ["Replica"]

log = structlog.get_logger("swarm_runtime.replica")
_set_context = task_context.set
_reset_context = task_context.reset


def _delay_from_header(spec: dict[str, Any], attempt: int, fallback: float) -> float:
    """The backoff a message asks for itself (``headers["retry"]``: a workflow task's own
    ``base_delay`` / ``max_delay`` / ``jitter``); the fallback if the header is malformed."""
    try:
        policy = RetryPolicy(
            max_attempts=max(1, attempt),
            base_delay=float(spec.get("base_delay", 0.5)),
            max_delay=float(spec.get("max_delay", 30.0)),
            jitter=bool(spec.get("jitter", True)),
        )
    except (TypeError, ValueError, ConfigError):
        return fallback
    return policy.delay(attempt)


class Replica:
    """Leases messages from the agent's inbox and runs the handler on each.

    Receiving stops at shutdown (``stop_receiving``) while handlers in flight finish;
    the runtime cancels them after its grace period, handing their messages back.
    With a dispatcher (load balancing over several replicas) messages arrive on a channel
    instead, each with the balancer's assignment, released when the message settles.
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
        tunable = agent.max_concurrency is not None
        self.slots = Slots(agent.concurrency) if agent.concurrency > 1 or tunable else None
        self._lease = agent.lease or runtime.queue.options.lease
        self.channel: MemoryObjectReceiveStream[tuple[Message, Assignment | None]] | None = None
        self.balancer: LoadBalancer | None = None

    def stop_receiving(self) -> None:
        self._stopping = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        queue = self.runtime.queue
        if self.channel is None and queue.supports_interrupt and queue.is_open:
            queue.interrupt(self.topic)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with anyio.create_task_group() as work:
                if self.channel is not None:
                    await self._run_from_channel(work, self.channel)
                else:
                    await self._run_from_queue(work)
        finally:
            if self.balancer is not None:
                self.balancer.release_replica(self.agent.name, self.index)

    async def _run_from_queue(self, work: TaskGroup) -> None:
        queue = self.runtime.queue
        agent = self.agent
        slots = self.slots
        errors = self.runtime.services.errors if self.runtime.services is not None else None
        interruptible = queue.supports_interrupt
        while not self._stopping:
            if slots is not None:
                await slots.acquire()
                if self._stopping:
                    slots.release()
                    break
            if errors is not None and errors._breakers and not errors.allows(agent.name):
                await self._wait_for_circuit(errors)
                if slots is not None:
                    slots.release()
                continue
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
                if errors is not None and errors._breakers and not errors.try_acquire(agent.name):
                    await self._reject(message, errors)
                    if slots is not None:
                        slots.release()
                elif slots is None:
                    await self.handle(message)
                else:
                    work.start_soon(self._handle_then_release, message, None)

    async def _run_from_channel(
        self,
        work: TaskGroup,
        channel: MemoryObjectReceiveStream[tuple[Message, Assignment | None]],
    ) -> None:
        async with channel:
            async for message, assignment in channel:
                if self.slots is not None:
                    await self.slots.acquire()
                    work.start_soon(self._handle_then_release, message, assignment)
                else:
                    try:
                        await self.handle(message)
                    finally:
                        if assignment is not None and self.balancer is not None:
                            self.balancer.release(assignment)

    async def _handle_then_release(self, message: Message, assignment: Assignment | None) -> None:
        try:
            await self.handle(message)
        finally:
            if self.slots is not None:
                self.slots.release()
            if assignment is not None and self.balancer is not None:
                self.balancer.release(assignment)

    async def _wait_for_circuit(self, errors: ErrorHandler) -> None:
        """The agent's circuit is open: take nothing until it lets a probe through."""
        delay = max(0.01, errors.retry_after(self.agent.name))
        with anyio.CancelScope() as scope:
            self._receive_scope = scope
            await anyio.sleep(delay)
        self._receive_scope = None

    async def _reject(self, msg: Message, errors: ErrorHandler) -> None:
        """Hand a message back untouched because the circuit refused it, then wait."""
        started_at = self.runtime.clock.time()
        self.runtime._task_started()
        if self.runtime.listeners:
            self._emit(True, msg, "started", started_at, None, None, False)
        try:
            await self._settle(self.runtime.queue.release(msg.id))
        finally:
            self.runtime._task_finished()
            if self.runtime.listeners:
                self._emit(False, msg, "rejected", started_at, 0.0, None, False)
        await self._wait_for_circuit(errors)

    async def handle(self, msg: Message) -> None:
        """Run the handler on one leased message and settle it (ack, nack or release)."""
        rt = self.runtime
        agent = self.agent
        queue = rt.queue
        listeners = rt.listeners
        started_at = rt.clock.time()
        t0 = time.perf_counter()
        rt._task_started()
        lease = self._lease
        rt._leases[msg.id] = [started_at + lease, lease]
        if agent.history.maxlen:
            agent.history.append(msg)
        event: TaskEvent | None = None
        if listeners:
            event = TaskEvent(
                agent.name,
                self.index,
                msg.id,
                msg.topic,
                msg.attempts,
                "started",
                started_at,
                None,
                msg.workflow_id,
                None,
                False,
            )
            for listener in listeners:
                try:
                    listener.on_task_started(event)
                except Exception as exc:  # a broken listener must not break handling
                    log.error("runtime listener failed", listener=repr(listener), error=repr(exc))
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
                if handoff_id is None and not ctx._pending_handoffs and type(result) is not Handoff:
                    # the common case, inlined: check the result, answer, acknowledge
                    _json.check_json(result, what="result")
                    reply_to = msg.reply_to
                    if reply_to is not None and msg.correlation_id is not None:
                        body = {"ok": True, "result": result, "agent": agent.name}
                        if not rt._reply_here(reply_to, msg.correlation_id, body):
                            await self._settle(
                                queue.publish(reply_to, body, correlation_id=msg.correlation_id)
                            )
                    try:
                        await queue.acknowledge(msg.id)
                    except QueueError as error:
                        log.error("could not acknowledge message", error=str(error))
                else:
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
            rt._leases.pop(msg.id, None)
            rt._task_finished()
            if event is not None:
                # the started event, updated in place: one object per message, not two
                event.outcome = outcome
                event.duration = time.perf_counter() - t0
                event.error = failure
                event.dead_lettered = dead
                for listener in listeners:
                    try:
                        listener.on_task_finished(event)
                    except Exception as exc:  # a broken listener must not break handling
                        log.error(
                            "runtime listener failed", listener=repr(listener), error=repr(exc)
                        )

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
                if not rt._reply_here(reply_to, msg.correlation_id, body):
                    await self._settle(
                        rt.queue.publish(reply_to, body, correlation_id=msg.correlation_id)
                    )
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
        services = rt.services
        force_dead = False
        if services is not None:
            decision = services.errors.decide(
                self.agent.name, exc, attempt=msg.attempts, max_attempts=msg.max_attempts
            )
            delay = decision.delay
            force_dead = decision.action == "dead_letter"
        else:
            delay = rt.policy_for(self.agent).delay(msg.attempts)
        override = msg.headers.get("retry") if msg.headers else None
        if isinstance(override, dict) and not force_dead:
            delay = _delay_from_header(override, msg.attempts, delay)
        try:
            outcome = await rt.queue.nack(msg.id, delay=delay, error=text, dead_letter=force_dead)
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
            self.agent.name,
            self.index,
            msg.id,
            msg.topic,
            msg.attempts,
            outcome,
            started_at,
            duration,
            msg.workflow_id,
            error,
            dead,
        )
        for listener in self.runtime.listeners:
            try:
                (listener.on_task_started if start else listener.on_task_finished)(event)
            except Exception as exc:  # a broken listener must not break message handling
                log.error("runtime listener failed", listener=repr(listener), error=repr(exc))
