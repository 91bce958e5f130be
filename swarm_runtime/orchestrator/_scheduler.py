"""Ready-set scheduling of one session of a workflow run.

Every task is dispatched the moment its last dependency completes (no level barrier),
best priority first, within the run's concurrency limit and per-agent limits. A task is
a message on its agent's inbox with ``reply_to`` the run's results topic; a replica
handles it and replies. Nothing here runs a handler: there are no direct calls.

Replies reach the scheduler two ways, both into one inbox that the scheduling loop takes
in batches: a replica in this process hands its reply over in-process (the results topic
is registered with :meth:`Runtime.register_local_topic`: no publish, lease or ack per
result), and replicas elsewhere (``worker`` processes) or replies that arrive between
sessions come through the queue, read by a receiver task. An in-process reply is not
durable until its run-log record is; if the process dies first, the task is neither
in the log nor in the queue (its replica acked the task message), and the next session
dispatches it again like every task not completed in the log: at-least-once execution,
exactly-once recording.

Retries are the runtime's: a task message carries the task's ``max_attempts``, a failed
attempt is nacked with backoff by the replica and delivered again, and only the final
failure (dead-lettered) comes back as an error reply. The orchestrator therefore never
re-publishes a failed task, and the attempt counter is the queue's.

Ready tasks are ordered by ``priority``, then (``scheduling: critical_path``, the default)
by their longest remaining path under the current duration estimates, see
:mod:`._critical`; with ``fifo``, by declaration order. Durations are measured on the
runtime's clock and teach the estimates as tasks finish.

Hot path, per task: a share of one ``rt.send_all`` (a sender task publishes what is in the
outbox as one batch: one group commit on ``file://``, one transaction on Redis, and a few
senders overlap their waits), one in-process reply, a few dict operations and a run-log
record. No cancel scope, timer or task is created per task.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._logging import get_logger
from ..errors import ConfigError, QueueClosedError, QueueError, SwarmError, WorkflowError
from ..pipeline.dag import ReadySet
from ..queue.base import Outgoing
from ._critical import CriticalPathOrder
from ._durations import DurationModel
from ._run import Run, Task, correlation, task_of
from .status import TaskState, WorkflowState

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..runtime.runtime import Runtime
    from ._runstore import RunLog

__all__ = ["Scheduler"]

log = get_logger("swarm_runtime.orchestrator")

RESULT_BATCH = 512
#: results are logged and acknowledged within a batch or two; a short lease means a batch
#: whose subscribe reply was lost (Redis connection cut) comes back quickly
RESULT_LEASE = 30.0
#: concurrent senders on backends whose publish waits (fsync, network): while one waits
#: for its batch to be written, the others gather and send the next ones
SENDERS = 4
#: the most tasks one sender publishes in one ``send_all`` on such backends
SEND_BATCH = 256
_SENDER = "orchestrator"
#: tasks per ``send_all`` on a backend whose publish does not wait (memory), with a yield
#: to the event loop after each (see Scheduler.sender)
YIELD_EVERY = 32


class Scheduler:
    """Runs one session of ``run`` on ``runtime`` until it completes, fails or is cancelled."""

    def __init__(
        self,
        runtime: Runtime,
        run: Run,
        log_: RunLog,
        *,
        on_dispatch: Callable[[Task, str], None] | None = None,
    ) -> None:
        self.rt = runtime
        self.clock = runtime.clock
        self.queue = runtime.queue
        self.run = run
        self.log = log_
        self.on_dispatch = on_dispatch  # told the message id of tasks of unguarded agents
        # correlation ids of this session's dispatches: wf|<run id>|<token><n>|<task>
        self.prefix = correlation(run.id, secrets.token_hex(4), "")[:-1]
        self.counter = 0
        self.inflight = 0
        self.agent_inflight: dict[str, int] = dict.fromkeys(run.agent_limits, 0)
        self.outbox: deque[tuple[Task, str, Outgoing]] = deque()  # to send, best first
        self.idle: deque[asyncio.Future[None]] = deque()  # senders waiting for work
        self.stop = False  # fail_fast tripped
        self.ready: ReadySet | None = None
        self.model: DurationModel | None = None
        self.order: CriticalPathOrder | None = None  # critical_path scheduling
        self._to_ack: list[str] = []  # result messages to ack (memory run logs)
        # a publish that is not made durable does no I/O: one sender keeps up
        durable = runtime.backend.durable
        self.senders = SENDERS if durable else 1
        self.send_batch = SEND_BATCH if durable else YIELD_EVERY
        # replies not yet taken by the loop: (correlation id, body, queue message id or
        # None for an in-process reply)
        self._inbox: list[tuple[str | None, Any, str | None]] = []
        self._waiter: asyncio.Future[None] | None = None  # the loop waits for replies

    # ------------------------------------------------------------------ driving

    async def drive(self, tg: TaskGroup, on_start: Callable[[], Any] | None = None) -> None:
        """Drain earlier results, dispatch the ready tasks, take replies until done.

        ``on_start`` is called once the earlier results are in, before the first dispatch.
        The receiver of queued replies is started in ``tg``.
        """
        run = self.run
        await self._drain_earlier_results()
        if on_start is not None:
            on_start()
        completed = [name for name, task in run.tasks.items() if task.state is TaskState.COMPLETED]
        self.ready = ready = ReadySet(run.dag, completed, rank=self._start_order(completed))
        topic = run.topic
        try:
            self.rt.register_local_topic(topic, self.deliver)
        except ConfigError:
            raise WorkflowError(
                f"workflow {run.id!r} is already being executed by another orchestrator "
                "of this runtime"
            ) from None
        try:
            tg.start_soon(self.receive)
            self._dispatch()
            take = self._take
            loop = asyncio.get_running_loop()
            while not self.stop and not ready.finished:
                if not self._inbox:
                    waiter = self._waiter = loop.create_future()
                    try:
                        await waiter
                    finally:
                        self._waiter = None
                batch, self._inbox = self._inbox, []
                take(batch)
                self._dispatch()
                if self._to_ack:
                    await self.settle()
        finally:
            self.rt.unregister_local_topic(topic)

    def _start_order(self, completed: list[str]) -> dict[str, float] | None:
        """Set up the duration estimates (and the ranks, for critical-path scheduling);
        the ranks the ready set orders by, or None for declaration order."""
        run = self.run
        tasks = run.tasks
        model = run.durations = self.model = DurationModel(
            {name: task.agent for name, task in tasks.items()},
            {name: task.estimate for name, task in tasks.items() if task.estimate is not None},
            run.recorded,
        )
        for name in completed:  # what earlier sessions of this run measured
            seconds = _seconds(tasks[name])
            if seconds is not None:
                model.observe(tasks[name].agent, seconds)
        if run.scheduling != "critical_path":
            return None
        self.order = CriticalPathOrder(run.dag, model, completed)
        return self.order.rank

    def deliver(self, correlation_id: str, body: dict[str, Any]) -> None:
        """Take a reply from a replica in this process (the results topic's local consumer)."""
        self._inbox.append((correlation_id, body, None))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> None:
        """Take replies that come through the queue (replicas in other processes, late
        replies of an earlier session) into the inbox, in batches."""
        queue = self.queue
        topic = self.run.topic
        while True:
            batch = await queue.subscribe(topic, RESULT_BATCH, RESULT_LEASE, timeout=None)
            inbox = self._inbox
            for message in batch:
                inbox.append((message.correlation_id, message.payload, message.id))
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _drain_earlier_results(self) -> None:
        """Take results that reached the results topic in an earlier session but were not
        recorded (the process stopped first): the work was done, so it counts."""
        run = self.run
        while True:
            batch = await self.queue.subscribe(run.topic, RESULT_BATCH, RESULT_LEASE, timeout=0)
            if not batch:
                return
            for message in batch:
                found = task_of(message.correlation_id)
                body = message.payload if isinstance(message.payload, dict) else {}
                task = run.tasks.get(found[1]) if found and found[0] == run.id else None
                if task is None or task.state is TaskState.COMPLETED or not body.get("ok"):
                    self._to_ack.append(message.id)
                    continue
                task.attempts = max(task.attempts, int(body.get("attempts") or 1))
                self._record_completed(task, body.get("result"), self.clock.time(), message.id)
            await self.settle()

    # ------------------------------------------------------------------ dispatching

    def _dispatch(self) -> None:
        ready = self.ready
        assert ready is not None
        if self.stop or not ready.ready_count:
            return
        run = self.run
        limit = None if run.concurrency is None else run.concurrency - self.inflight
        if limit is not None and limit <= 0:
            return
        names = ready.take(limit, self._accept if run.agent_limits else None)
        if not names:
            return
        tasks = run.tasks
        results = run.results
        current = run.current
        outbox = self.outbox
        now = self.clock.time()
        estimate = self.order.estimate if self.order is not None else self._estimate
        root_inputs = {"input": run.inputs} if run.inputs is not None else {}
        prefix = self.prefix
        counter = self.counter
        topic = run.topic
        run_id = run.id
        for name in names:
            task = tasks[name]
            counter += 1
            corr = f"{prefix}{counter:x}|{name}"
            task.corr = corr
            task.state = TaskState.RUNNING
            task.dispatched_at = now
            task.estimated = estimate(name)
            current[corr] = task
            deps = task.deps
            inputs = {dep: results[dep] for dep in deps} if deps else root_inputs
            message = Outgoing(
                task.agent,
                {"params": task.params, "inputs": inputs},
                reply_to=topic,
                correlation_id=corr,
                workflow_id=run_id,
                priority=task.priority,
                max_attempts=task.max_attempts,
                sender=_SENDER,
                headers={"retry": task.retry} if task.retry else None,
            )
            outbox.append((task, corr, message))
        self.counter = counter
        self.inflight += len(names)
        self._wake(len(names))

    def _estimate(self, name: str) -> float | None:
        """A task's estimate under FIFO scheduling (for the reports): given, recorded or
        its agent's mean so far (None before anything is known)."""
        model = self.model
        assert model is not None
        value = model.fixed.get(name)
        if value is None:
            stats = model.agents[model.agent_of[name]]
            value = stats.mean if stats.count else None
        return value

    def _accept(self, name: str) -> bool:
        """Take a ready task only if its agent is under its limit (then count it)."""
        agent = self.run.tasks[name].agent
        limit = self.run.agent_limits.get(agent)
        if limit is None:
            return True
        running = self.agent_inflight[agent]
        if running >= limit:
            return False
        self.agent_inflight[agent] = running + 1
        return True

    def _wake(self, count: int) -> None:
        """Wake idle senders for ``count`` new tasks in the outbox (one per batch)."""
        count = -(-count // self.send_batch)
        idle = self.idle
        while count > 0 and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    async def sender(self) -> None:
        """Publish dispatched tasks: take what is in the outbox (up to ``send_batch``, best
        first) and send it with one ``send_all``; several senders run at once, so that one
        gathers the next batch while another waits for its write.

        On a backend whose publish does not wait (``memory://``) a batch never suspends, so
        a large ready set would be published whole before any replica could start its first
        task: there a batch is :data:`YIELD_EVERY` tasks, with a yield to the event loop
        after each, and the tasks sent first (the most critical) start while the rest are
        still being sent.
        """
        outbox = self.outbox
        current = self.run.current
        cap = self.send_batch
        pause = cap == YIELD_EVERY  # the backend does not wait: yield between batches
        loop = asyncio.get_running_loop()
        while True:
            if not outbox:
                waiter = loop.create_future()
                self.idle.append(waiter)
                await waiter  # cancelled with the session: the waiter is left behind
                continue
            batch: list[tuple[Task, str, Outgoing]] = []
            while outbox and len(batch) < cap:
                item = outbox.popleft()
                if current.get(item[1]) is item[0]:  # else cancelled before it was sent
                    batch.append(item)
            if not batch:
                continue
            try:
                ids: list[str | None] = [*await self.rt.send_all([m for _, _, m in batch])]
            except QueueClosedError:
                raise
            except SwarmError:
                # e.g. an agent that left the runtime: send one by one, so that only the
                # tasks that cannot be sent fail
                ids = [await self._send_one(corr, m) for _, corr, m in batch]
            on_dispatch = self.on_dispatch
            if on_dispatch is not None:
                for (task, _, _), message_id in zip(batch, ids, strict=True):
                    if message_id is not None and not task.wrapped:
                        on_dispatch(task, message_id)
            if pause and outbox:
                await asyncio.sleep(0)

    async def _send_one(self, corr: str, message: Outgoing) -> str | None:
        """Send the message of the task dispatched as ``corr``; if it cannot be sent, fail
        the task like any failure (through the loop's inbox) and return None."""
        try:
            return (await self.rt.send_all([message]))[0]
        except QueueClosedError:
            raise
        except SwarmError as exc:
            self.deliver(
                corr,
                {
                    "ok": False,
                    "error_type": type(exc).__name__,
                    "error": f"could not dispatch: {exc}",
                    "attempts": 0,
                },
            )
            return None

    # ------------------------------------------------------------------ results

    def _take(self, batch: list[tuple[str | None, Any, str | None]]) -> None:
        """Record a batch of replies (``message_id``: the reply's queue message, None if it
        was handed over in-process) and mark the completed tasks' dependents ready."""
        run = self.run
        current = run.current
        results = run.results
        ready = self.ready
        assert ready is not None
        complete = ready.complete
        append = self._append
        limits = self.agent_inflight if run.agent_limits else None
        completed = TaskState.COMPLETED
        now = self.clock.time()
        measured: list[tuple[str, float]] = []  # (agent, seconds) of the completed tasks
        measure = measured.append
        for corr, body, message_id in batch:
            task = current.pop(corr, None) if corr is not None else None
            if task is None:
                task = self._late_success(corr, body)
                if task is None:
                    if message_id is not None:
                        self._to_ack.append(message_id)
                    continue
            if type(body) is not dict:
                body = {"ok": False, "error": f"malformed reply {body!r}"}
            self.inflight -= 1
            if limits is not None and task.agent in limits:
                limits[task.agent] -= 1
            if not body.get("ok"):
                self._record_failed(task, body, now, message_id)
                continue
            # completed (as _record_completed, inlined: the hot path)
            result = body.get("result")
            task.state = completed
            task.result = result
            history = task.history
            if history and history[-1][4] is not None:
                last = history[-1]
                task.finished_at = last[4]
                measure((task.agent, last[4] - last[3]))
            else:
                task.finished_at = now
                seconds = _seconds(task)
                if seconds is not None:
                    measure((task.agent, seconds))
            task.corr = None
            results[task.name] = result
            attempts = body.get("attempts") or 1  # deliveries (a worker killed mid-task: 2)
            if task.attempts < attempts:
                task.attempts = attempts
            append(task.record(result), message_id)
            complete(task.name)
        if measured:
            if self.order is not None:
                if self.order.finished(measured, ready.completed):
                    ready.reorder()
            elif self.model is not None:
                self.model.observe_many(measured)

    def _late_success(self, corr: str | None, body: Any) -> Task | None:
        """A reply to an older dispatch of a task that is running again: a success still
        counts (its work is done); anything else is ignored."""
        found = task_of(corr)
        if found is None or found[0] != self.run.id or type(body) is not dict:
            return None
        task = self.run.tasks.get(found[1])
        if task is None or task.state is not TaskState.RUNNING or not body.get("ok"):
            return None
        if task.corr is not None:
            self.run.current.pop(task.corr, None)
        return task

    def _record_completed(
        self, task: Task, result: Any, now: float, message_id: str | None
    ) -> None:
        task.state = TaskState.COMPLETED
        task.result = result
        history = task.history
        task.finished_at = history[-1][4] or now if history else now
        task.corr = None
        self.run.results[task.name] = result
        if task.attempts == 0:
            task.attempts = 1
        self._append(task.record(result), message_id)

    def _record_failed(
        self, task: Task, body: dict[str, Any], now: float, message_id: str | None
    ) -> None:
        run = self.run
        error_type = body.get("error_type") or "Error"
        error = f"{error_type}: {body.get('error', '')}"
        task.state = TaskState.FAILED
        task.error = error
        task.attempts = max(task.attempts, int(body.get("attempts") or 0))
        history = task.history
        task.finished_at = history[-1][4] or now if history else now
        task.corr = None
        self._append(task.record(), message_id)
        if run.error is None:
            run.error = (
                f"task {task.name!r} failed after {task.attempts} attempt(s): {error}"
                if task.attempts
                else f"task {task.name!r} failed: {error}"
            )
        log.warning("workflow task failed", workflow_id=run.id, task=task.name, error=error)
        assert self.ready is not None
        if run.failure_policy == "fail_fast":
            self.stop = True
            return
        for name in self.ready.fail(task.name):
            skipped = run.tasks[name]
            skipped.state = TaskState.SKIPPED
            skipped.error = f"upstream task {task.name!r} failed"
            skipped.finished_at = now
            self._append(skipped.record(), None)

    def _append(self, record: dict[str, Any], message_id: str | None) -> None:
        if self.log.durable:
            self.log.append(record, message_id)
        else:
            self.log.append(record)
            if message_id is not None:
                self._to_ack.append(message_id)

    async def settle(self) -> None:
        """Acknowledge results whose records need no disk (memory runs)."""
        if self._to_ack:
            acks, self._to_ack = self._to_ack, []
            await self.queue.acknowledge_many(acks)

    async def release_unread(self) -> None:
        """Hand back queued replies the session ended before reading, so that the next
        session counts them (shielded final bookkeeping)."""
        unread, self._inbox = self._inbox, []
        for _, _, message_id in unread:
            if message_id is not None:
                try:
                    await self.queue.release(message_id)
                except QueueError:
                    pass  # leased still: it comes back when the lease runs out

    # ------------------------------------------------------------------ ending

    def finish(self, state: WorkflowState) -> None:
        """Final bookkeeping (sync, so it cannot be interrupted): every task not finished
        is cancelled (or left pending for a resume when the session was interrupted)."""
        run = self.run
        now = self.clock.time()
        run.current.clear()  # the guard now drops whatever is still queued for this run
        for task in run.tasks.values():
            if task.state in (TaskState.PENDING, TaskState.RUNNING):
                if state is WorkflowState.INTERRUPTED:
                    task.state = TaskState.PENDING
                    task.corr = None
                    continue
                task.state = TaskState.CANCELLED
                task.corr = None
                task.finished_at = now if task.dispatched_at is not None else None
                if task.history and task.history[-1][4] is None:
                    task.attempt_finished("cancelled", None, now)
                self._append(task.record(), None)
        run.state = state
        run.finished_at = now
        if state is WorkflowState.CANCELLED and run.error is None:
            run.error = "the workflow was cancelled"
        elif state is WorkflowState.INTERRUPTED and run.error is None:
            run.error = "the workflow was interrupted before it finished; resume it"
        self.log.append({"k": "end", "state": state.value, "error": run.error, "at": now})

    async def ack(self, message_ids: list[str]) -> None:
        """Acknowledge result messages (once their records are durable), as one batch."""
        try:
            await self.queue.acknowledge_many(message_ids)
        except QueueClosedError:
            pass  # the queue went away first: the result is redelivered and recorded once


def _seconds(task: Task) -> float | None:
    """How long a finished task's last attempt took (from its dispatch if no replica
    reported its start, e.g. one in another process)."""
    history = task.history
    if history:
        last = history[-1]
        if last[4] is not None:
            return max(0.0, float(last[4]) - float(last[3]))
    start = task.started_at or task.dispatched_at
    if start is None or task.finished_at is None:
        return None
    return max(0.0, task.finished_at - start)
