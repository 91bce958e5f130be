"""One replica of an agent: a coroutine worker competing for the agent's inbox."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from .. import _json
from .._logging import get_logger, task_context
from ..agents.base import FunctionAgent
from ..errors import Defer, HandoffError, QueueClosedError, QueueError, Retry, Veto
from ..events import Outcome, TaskEvent
from ..handoff import Handoff
from ..message import Message
from ..middleware._verdict import verdict
from ..middleware.retries import message_delay
from ._slots import Slots
from .context import Context

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream

    from ..agents.base import Agent
    from ..middleware import Handler
    from ..services.load_balancer import Assignment, LoadBalancer
    from .runtime import Runtime

__all__ = ["BATCH_WAIT", "MAX_BATCH", "OVERDUE", "Replica", "handler_core"]

log = get_logger("swarm_runtime.replica")

#: most messages a replica leases with one ``subscribe``
MAX_BATCH = 64
#: seconds the last message of a batch may expect to wait for its handler to start (at most
#: a quarter of the lease): batches are for short handlers, where a subscribe per message
#: costs as much as the work
BATCH_WAIT = 0.02
#: a batch still running this many times its budget hands back the messages not started: a
#: handler turned slow (a cache miss after hits) must not hold them while other replicas idle
OVERDUE = 5
#: weight of the newest handler duration in a replica's running mean
_NEW_WEIGHT = 0.2
_set_context = task_context.set
_reset_context = task_context.reset


def handler_core(agent: Agent) -> Handler:
    """The innermost layer of an agent's stack: its handler, and a check of what it returned
    (so every layer sees only results that can be sent: JSON, or its own handoff)."""
    # call a function agent's handler directly: one coroutine layer less per message
    call = agent._handler if isinstance(agent, FunctionAgent) else agent.handle

    async def core(msg: Message, ctx: Context) -> Any:
        result = await call(msg, ctx)
        if isinstance(result, Handoff):
            if all(h.id != result.id for h in ctx._pending_handoffs):
                raise HandoffError(f"returned handoff {result.id!r} was not made by this handler")
        else:
            _json.check_json(result, what="result")
        return result

    return core


class Replica:
    """Leases messages from the agent's inbox and runs the handler on each.

    **Batches.** A replica leases as many messages as it can start soon with one
    ``subscribe``: its free concurrency slots times a *depth*, the number of messages a slot
    handles back to back. The depth starts at 1, at most doubles per batch, and is bounded
    by a running mean of the handler's durations so that the last message of a batch
    expects to start within :data:`BATCH_WAIT` seconds (and a quarter of the lease): a fast
    no-op agent leases up to :data:`MAX_BATCH` at once, a slow one (an LLM call) one per
    free slot, so no message sits leased behind slow work while another worker idles.
    Messages waiting in a batch have their leases kept alive by the runtime's heartbeat
    like those being handled.

    **Settling.** Handled messages are acknowledged together, one ``acknowledge_many``
    when the batch is done or before the replica waits for more (a nack, a release or a
    dead-letter stays one call per message). The at-least-once window: a message handled
    but not yet acknowledged when the process dies is delivered again after its lease.
    At shutdown (``stop_receiving``), on cancellation and when a middleware defers a
    message (``Defer``, e.g. an open circuit), the messages of the batch not started yet
    are handed back at once with ``release``: their attempt is not counted and nothing
    waits out a lease. So are they when the batch runs :data:`OVERDUE` times past its
    budget (a handler turned slow, e.g. a cache miss after hits): another replica or
    worker takes them instead of waiting behind it.

    Receiving stops at shutdown while handlers in flight finish; the runtime cancels them
    after its grace period, handing their messages back. With a dispatcher (load balancing
    over several replicas) messages arrive on a channel instead, each with the balancer's
    assignment, released when the message settles.

    Each message goes through the agent's middleware stack (``chain``, folded once per
    agent by the runtime) down to the handler; the replica then settles it: ack and reply
    on success, nack with the retry delay or dead-letter on failure, hand it back on
    ``Defer`` (pausing for the delay) or at shutdown.
    """

    def __init__(self, runtime: Runtime, agent: Agent, index: int) -> None:
        self.runtime = runtime
        self.agent = agent
        self.index = index
        self.topic = runtime.comm.inbox(agent.name)
        self._receive_scope: anyio.CancelScope | None = None
        self._stopping = False
        self.chain: Handler = runtime._chain_for(agent)
        self._hold = 0.0  # seconds to take nothing for, asked by a Defer
        tunable = agent.max_concurrency is not None
        self.slots = Slots(agent.concurrency) if agent.concurrency > 1 or tunable else None
        self._lease = agent.lease or runtime.queue.options.lease
        self.channel: MemoryObjectReceiveStream[tuple[Message, Assignment | None]] | None = None
        self.balancer: LoadBalancer | None = None
        self._work: TaskGroup | None = None
        self._waiting: deque[Message] = deque()  # leased, not started yet
        self._acks: list[str] = []  # handled, acknowledged with the rest of their batch
        self._mean: float | None = None  # running mean of handler durations, seconds
        self._budget = min(BATCH_WAIT, self._lease / 4)
        self._fits = 1  # messages per slot that the mean says start within the budget
        self._depth = 1  # messages per free slot in the last batch
        self._batches = 0  # batches leased so far (names the current one for its timer)
        self._overdue_event: anyio.Event | None = None  # set by an overdue batch's timer

    def stop_receiving(self) -> None:
        self._stopping = True
        if self._receive_scope is not None:
            self._receive_scope.cancel()
        queue = self.runtime.queue
        if self.channel is None and queue.supports_interrupt and queue.is_open:
            queue.interrupt(self.topic)
        if self._waiting and self._work is not None:
            # the loop may be busy with a handler for a while: hand the rest back now
            self._work.start_soon(self._hand_back)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with anyio.create_task_group() as work:
                self._work = work
                if self.channel is not None:
                    await self._run_from_channel(work, self.channel)
                else:
                    watcher = await work.start(self._hand_back_overdue)
                    try:
                        await self._run_from_queue(work)
                    finally:
                        watcher.cancel()
        finally:
            self._work = None
            with anyio.CancelScope(shield=True):
                await self._hand_back()
                if self._acks:
                    await self._flush()
            if self.balancer is not None:
                self.balancer.release_replica(self.agent.name, self.index)

    async def _run_from_queue(self, work: TaskGroup) -> None:
        rt = self.runtime
        queue = rt.queue
        leases = rt._leases
        clock = rt.clock
        topic = self.topic
        agent_lease = self.agent.lease
        lease = self._lease
        slots = self.slots
        waiting = self._waiting
        interruptible = queue.supports_interrupt
        call_later = asyncio.get_running_loop().call_later
        overdue = OVERDUE * self._budget
        while not self._stopping:
            if self._hold:
                await self._pause()
                continue
            free = 1
            if slots is not None:
                if not await self._take_slot(slots):
                    break
                free += slots.free
            if self._acks:
                await self._flush()  # settle what is done before waiting for more
            batch: list[Message] = []
            try:
                if self._stopping:  # stop_receiving() ran during the awaits above
                    break
                # depth: at most double the last one, within what the mean allows
                depth = self._depth * 2
                if depth > self._fits:
                    depth = self._fits
                self._depth = depth
                size = depth if free == 1 else min(free * depth, MAX_BATCH)
                if interruptible:
                    # cheap path: stop_receiving() interrupts the wait
                    batch = await queue.subscribe(topic, size, agent_lease, timeout=None)
                else:
                    with anyio.CancelScope() as scope:
                        self._receive_scope = scope
                        batch = await queue.subscribe(topic, size, agent_lease, timeout=None)
                    self._receive_scope = None
            except QueueClosedError:
                self._stopping = True
            finally:
                if slots is not None and not batch:
                    slots.release()
            if not batch:
                continue
            if slots is None and len(batch) == 1 and not (self._stopping or self._hold):
                # a batch of one (requests one at a time): nothing waits, nothing to hand back
                started = time.perf_counter()
                await self.handle(batch[0])
                self._observe(time.perf_counter() - started, 1)
                continue
            deadline = clock.time() + lease
            for message in batch:  # the heartbeat keeps waiting messages leased too
                leases[message.id] = [deadline, lease]
            waiting.extend(batch)
            self._batches += 1
            timer = call_later(overdue, self._overdue, self._batches)
            if slots is None:
                handled = 0
                started = time.perf_counter()
                while waiting and not (self._stopping or self._hold):
                    await self.handle(waiting.popleft())
                    handled += 1
                if handled:
                    self._observe((time.perf_counter() - started) / handled, handled)
            else:
                held = True  # the slot taken before subscribing
                while waiting and not (self._stopping or self._hold):
                    if held:
                        work.start_soon(self._handle_then_release, waiting.popleft(), None)
                        held = False
                    elif not (held := await self._take_slot(slots)):
                        break
                if held:
                    slots.release()
            timer.cancel()
            if waiting:
                await self._hand_back()  # stopping, or a Defer: the rest goes back now

    def _overdue(self, batch: int) -> None:
        """Timer of a batch: if it still has messages waiting, have them handed back."""
        event = self._overdue_event
        if batch == self._batches and self._waiting and event is not None:
            event.set()

    async def _hand_back_overdue(
        self, *, task_status: TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hand back the waiting messages of batches whose timer fired, until cancelled
        (the receiving loop cancels it when it ends)."""
        with anyio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                self._overdue_event = event = anyio.Event()
                await event.wait()
                log.debug(
                    "batch overdue; handing back its waiting messages", count=len(self._waiting)
                )
                await self._hand_back()

    def _observe(self, duration: float, count: int) -> None:
        """Fold ``count`` handler runs of ``duration`` seconds each into the running mean,
        and size batches by it: the last message of a batch of ``fits`` per slot expects
        to start within the budget (``BATCH_WAIT``, at most a quarter of the lease)."""
        mean = self._mean
        if mean is None:
            mean = duration
        elif count == 1:
            mean += (duration - mean) * _NEW_WEIGHT
        else:
            mean += (duration - mean) * (1.0 - (1.0 - _NEW_WEIGHT) ** count)
        self._mean = mean
        budget = self._budget
        self._fits = MAX_BATCH if mean * MAX_BATCH <= budget else 1 + int(budget / mean)

    async def _take_slot(self, slots: Slots) -> bool:
        """Take a concurrency slot, waiting for one unless stop_receiving() ends the wait
        (then False)."""
        if slots.try_acquire():
            return True
        if self._stopping:
            return False
        with anyio.CancelScope() as scope:
            self._receive_scope = scope
            try:
                await slots.acquire()
                return True
            finally:
                self._receive_scope = None
        return False

    async def _run_from_channel(
        self,
        work: TaskGroup,
        channel: MemoryObjectReceiveStream[tuple[Message, Assignment | None]],
    ) -> None:
        async with channel:
            async for message, assignment in channel:
                if self._stopping:  # placed, not started: back to the queue at once
                    self._waiting.append(message)
                    await self._hand_back()
                    if assignment is not None and self.balancer is not None:
                        self.balancer.release(assignment)
                    continue
                if self._hold:
                    await self._pause()
                if self.slots is not None:
                    await self.slots.acquire()
                    work.start_soon(self._handle_then_release, message, assignment)
                else:
                    try:
                        await self.handle(message, assignment)
                    finally:
                        if assignment is not None and self.balancer is not None:
                            self.balancer.release(assignment)

    async def _handle_then_release(self, message: Message, assignment: Assignment | None) -> None:
        started = time.perf_counter()
        try:
            await self.handle(message, assignment)
            self._observe(time.perf_counter() - started, 1)
        finally:
            if self.slots is not None:
                self.slots.release()
            if assignment is not None and self.balancer is not None:
                self.balancer.release(assignment)

    async def _pause(self) -> None:
        """A middleware deferred a message (e.g. an open circuit): take nothing for a while."""
        delay, self._hold = self._hold, 0.0
        if self._acks:
            await self._flush()  # the rest of the batch was handed back
        with anyio.CancelScope() as scope:  # stop_receiving() ends the pause
            self._receive_scope = scope
            await self.runtime.clock.sleep(delay)
        self._receive_scope = None

    async def _flush(self) -> None:
        """Acknowledge the handled messages that wait for it, together: when the last
        message of a batch is handled, before the replica waits for more, and at exit.

        Until then a handled message stays leased, its lease kept alive by the heartbeat;
        if the process dies first it is delivered again (the at-least-once window).
        """
        ids, self._acks = self._acks, []
        queue = self.runtime.queue
        try:
            if len(ids) == 1:
                await queue.acknowledge(ids[0])
            else:
                await queue.acknowledge_many(ids)
        except QueueError as error:
            log.error("could not acknowledge messages", count=len(ids), error=str(error))
        except BaseException:
            self._acks.extend(ids)  # cancelled: the replica's last, shielded flush sends them
            raise
        leases = self.runtime._leases
        for message_id in ids:
            leases.pop(message_id, None)

    async def _hand_back(self) -> None:
        """Release the leased messages not started yet: back to the queue now, their
        attempt not counted, rather than left to wait out their lease."""
        waiting = self._waiting
        if not waiting:
            return
        rt = self.runtime
        queue = rt.queue
        with anyio.CancelScope(shield=True):
            while waiting:
                message = waiting.popleft()
                rt._leases.pop(message.id, None)
                if queue.is_open:
                    await self._settle(queue.release(message.id))

    async def handle(self, msg: Message, assignment: Assignment | None = None) -> None:
        """Run one leased message through the agent's stack and settle it.

        ``assignment``: the balancer's placement, when the dispatcher placed the message.
        """
        rt = self.runtime
        agent = self.agent
        queue = rt.queue
        listeners = rt.listeners
        started_at = rt.clock.time()
        t0 = time.perf_counter()
        rt._task_started()
        leases = rt._leases
        if msg.id not in leases:  # registered when leased, unless handed in some other way
            lease = self._lease
            leases[msg.id] = [started_at + lease, lease]
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
        if assignment is not None:
            ctx.assignment = assignment
        outcome: Outcome = "ok"
        failure: BaseException | None = None
        dead = False
        acked_later = False  # success: acknowledged with the batch, leased until then
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
            try:
                result = await self.chain(msg, ctx)
                acked_later = await self._succeed(msg, ctx, result, handoff_id)
            except Defer as exc:
                outcome, failure = "rejected", exc
                self._hold = max(self._hold, exc.delay)
                await self._settle(queue.release(msg.id))
            except Exception as exc:
                outcome, failure, dead = await self._fail(msg, ctx, exc, handoff_id)
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
            if not acked_later:
                leases.pop(msg.id, None)
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
    ) -> bool:
        """Settle a handled message: deliver its handoffs, answer, acknowledge. Returns
        True if the ack waits for the rest of the batch (see :meth:`_flush`)."""
        rt = self.runtime
        forward: Handoff | None = None
        if ctx._pending_handoffs:
            forward = result if isinstance(result, Handoff) else None
            await self._deliver_handoffs(msg, ctx, forward)
        if forward is None:
            if handoff_id is not None:
                await rt.handoffs.complete_handoff(handoff_id, True, result=result)
            reply_to = msg.reply_to
            if reply_to is not None and msg.correlation_id is not None:
                body = {
                    "ok": True,
                    "result": result,
                    "agent": self.agent.name,
                    "attempts": msg.attempts,
                }
                if not rt._reply_here(reply_to, msg.correlation_id, body):
                    await self._settle(
                        rt.queue.publish(reply_to, body, correlation_id=msg.correlation_id)
                    )
        elif handoff_id is not None:
            await rt.handoffs.forward(handoff_id, forward.id)
        acks = self._acks
        if acks or self._waiting:
            acks.append(msg.id)
            if self._waiting:
                return True  # more of its batch to come: acknowledged with them
            await self._flush()  # the batch is done
            return False
        try:  # a batch of one
            await rt.queue.acknowledge(msg.id)
        except QueueError as error:
            log.error("could not acknowledge message", error=str(error))
        return False

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
        self, msg: Message, ctx: Context, exc: Exception, handoff_id: str | None
    ) -> tuple[Outcome, BaseException, bool]:
        """Nack with the retry delay (or dead-letter); on the last attempt tell the
        requester and the handoff. Returns the outcome, the error and whether it is dead.

        The delay is the one a :class:`Retry` asks for (the Retries middleware turns every
        failure into one when the services run), else the agent's retry policy.
        """
        rt = self.runtime
        outcome, error, _ = verdict(exc, msg, rt.queue.options.max_attempts)
        text = f"{type(error).__name__}: {error}"
        for pending in ctx._pending_handoffs:
            await rt.handoffs.complete_handoff(pending.id, False, error=f"source failed: {text}")
        if isinstance(exc, Retry):
            delay, force_dead = exc.delay, exc.dead_letter
        elif isinstance(exc, Veto):
            delay, force_dead = 0.0, True
        else:
            delay = message_delay(msg, rt.policy_for(self.agent).delay(msg.attempts))
            force_dead = False
        try:
            settled = await rt.queue.nack(msg.id, delay=delay, error=text, dead_letter=force_dead)
        except QueueError as problem:
            log.error("could not nack message", error=str(problem))
            return outcome, error, False
        if settled != "dead_lettered":
            log.warning(
                "handler failed; will retry",
                error=text,
                attempt=msg.attempts,
                retry_in=round(delay, 3),
            )
            return outcome, error, False
        if isinstance(exc, Veto):
            log.warning("message vetoed; dead-lettered", reason=str(exc))
        else:
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
                        "error_type": type(error).__name__,
                        "error": str(error) or text,
                        "attempts": msg.attempts,
                        "agent": self.agent.name,
                    },
                )
            )
        return outcome, error, True

    @staticmethod
    async def _settle(operation: Any) -> None:
        """Run a queue operation whose failure must not kill the replica (logged)."""
        try:
            await operation
        except QueueError as error:
            log.error("queue operation failed", error=str(error))
