"""Runtime: one event loop hosting coroutine agents on a message queue."""

from __future__ import annotations

import asyncio
import enum
import math
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._args import bad_argument, check_seconds
from .._logging import get_logger
from ..agents.base import Agent, AgentHandler, FunctionAgent
from ..backends import Backend
from ..clock import Clock, SystemClock
from ..communication import CommunicationSystem
from ..errors import (
    AgentError,
    ConfigError,
    QueueClosedError,
    QueueError,
    RequestTimeoutError,
    RuntimeStateError,
    UnknownAgentError,
)
from ..events import RuntimeListener
from ..handoff import HandoffProtocol
from ..message import Message, new_id, validate_topic
from ..middleware import Handler, LayerFunction, Middleware, TimeLimit, as_middleware, fold
from ..queue.base import MessageQueue, Outgoing
from ..retry import RetryPolicy
from ..services import Services
from ..services._alerts import AlertCallback
from ..services._probe import Reading
from ..services.load_balancer import Assignment, Strategy
from ..state import StateManager
from ._deadlines import Deadlines, Waiter
from ._dispatch import Dispatcher
from ._replica import Replica, handler_core

__all__ = ["Runtime"]

log = get_logger("swarm_runtime.runtime")
H = TypeVar("H", bound=AgentHandler)

LocalReply = Callable[[str, dict[str, Any]], None]
"""Takes a reply addressed to a local topic: ``callback(correlation_id, body)``."""


class _State(enum.Enum):
    UNSTARTED = "unstarted"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


class Runtime:
    """Hosts agents and every background task in one anyio task group.

    Background services (``services=True``, the default) run in the same task group:
    metrics and monitoring with alerts on ``thresholds``, error classification with a
    circuit breaker per agent, the self-optimizer for agents with ``max_concurrency``, and a
    Prometheus endpoint on 127.0.0.1 when ``metrics_port`` is given. Around every handler
    they are layers of the middleware stack, with yours (``middleware``, :meth:`add_middleware`)
    inside them: see :mod:`swarm_runtime.middleware`.

    Replicas compete for their agent's inbox and pull only when they have room, which
    balances by load already and costs nothing extra. ``balancer`` (``least_loaded``,
    ``round_robin``, ``weighted`` or ``p2c``) routes each message of a multi-replica agent
    through the :class:`~swarm_runtime.services.LoadBalancer` instead: a dispatcher takes a
    replica's room first (back-pressure), then leases a message for that replica.

    ``async with Runtime(queue="file://queue") as rt:`` opens the queue (a URL, or a
    :class:`MessageQueue` you opened yourself and keep ownership of), starts every
    registered agent's replicas, and on exit drains in-flight messages for up to
    ``grace_period`` seconds before cancelling what is left; cancelled messages are
    handed back to the queue untouched.

    A failing handler never stops the runtime: its message is nacked and retried with
    backoff (``retry``), and after ``retry.max_attempts`` deliveries it is dead-lettered
    with the error (a waiting requester gets :class:`AgentError`).
    """

    def __init__(
        self,
        queue: str | MessageQueue = "memory://",
        *,
        retry: RetryPolicy | None = None,
        grace_period: float = 10.0,
        request_timeout: float = 30.0,
        state: StateManager | None = None,
        handoffs: HandoffProtocol | None = None,
        state_snapshot: str | os.PathLike[str] | None = None,
        snapshot_interval: float = 30.0,
        listeners: Iterable[RuntimeListener] = (),
        clock: Clock | None = None,
        queue_options: Mapping[str, Any] | None = None,
        services: bool | Services = True,
        thresholds: Mapping[str, float | None] | None = None,
        on_alert: AlertCallback | None = None,
        metrics_port: int | None = None,
        balancer: Strategy | None = None,
        middleware: Iterable[Middleware | LayerFunction] = (),
    ) -> None:
        if not (grace_period >= 0 and math.isfinite(grace_period)):
            raise ConfigError(f"grace_period must be >= 0 seconds, got {grace_period!r}")
        if not (request_timeout > 0):
            raise ConfigError(f"request_timeout must be > 0 seconds, got {request_timeout!r}")
        if not (snapshot_interval > 0):
            raise ConfigError(f"snapshot_interval must be > 0 seconds, got {snapshot_interval!r}")
        if not isinstance(queue, (str, MessageQueue)):
            raise ConfigError(f"queue must be a URL or a MessageQueue, got {type(queue).__name__}")
        self.id = new_id()[-16:]
        self.clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.grace_period = grace_period
        self.request_timeout = request_timeout
        #: everything stored (queue, runs, state, handoffs...), chosen by the queue URL
        self.backend = (
            Backend.wrap(queue)
            if isinstance(queue, MessageQueue)
            else Backend.open(queue, clock=self.clock, **dict(queue_options or {}))
        )
        self.state = state or self.backend.state_manager(clock=self.clock)
        self.handoffs = handoffs or self.backend.handoff_protocol(clock=self.clock)
        self.state_snapshot = Path(state_snapshot) if state_snapshot is not None else None
        self.snapshot_interval = snapshot_interval
        self._queue: MessageQueue | None = queue if isinstance(queue, MessageQueue) else None
        self._comm: CommunicationSystem | None = None
        self._agents: dict[str, Agent] = {}
        self._inboxes: dict[str, str] = {}
        self._routes: dict[str, tuple[str, int]] = {}
        self._subscriptions: list[tuple[str, str]] = []
        self._replicas: list[Replica] = []
        self._dispatchers: list[Dispatcher] = []
        self._listeners: list[RuntimeListener] = list(listeners)
        if services is True:
            services = Services.create(
                thresholds=thresholds,
                on_alert=on_alert,
                retry=self.retry,
                strategy=balancer or "least_loaded",
                metrics_port=metrics_port,
                clock=self.clock,
            )
        elif services is False and (
            thresholds or on_alert or metrics_port is not None or balancer is not None
        ):
            raise ConfigError("thresholds, on_alert, metrics_port and balancer need services=True")
        elif isinstance(services, Services) and (thresholds or on_alert or metrics_port):
            raise ConfigError(
                "pass thresholds, on_alert and metrics_port to Services.create() "
                "when you give Runtime(services=...) a Services bundle"
            )
        if (
            isinstance(services, Services)
            and balancer is not None
            and services.balancer.strategy != balancer
        ):
            raise ConfigError(
                f"balancer={balancer!r} differs from the Services bundle's strategy "
                f"{services.balancer.strategy!r}; pass strategy= to Services.create()"
            )
        if isinstance(services, Services):
            services.attach(probe=self._probe, on_parameters=self._on_parameters)
        self.services: Services | None = services or None
        self._route_through_balancer = balancer is not None
        self._middleware = [as_middleware(layer) for layer in middleware]
        self._service_layers = self.services.middleware if self.services is not None else []
        self._chains: dict[str, Handler] = {}  # each agent's stack, folded once
        self._pending = Deadlines(self.clock)
        self._reply_topic = f"reply.{self.id}"
        # topics consumed in this process: replies to them skip the queue (see
        # register_local_topic); requests made here are answered the same way
        self._local_topics: dict[str, LocalReply] = {self._reply_topic: self._reply_local}
        self._tg: TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None  # runs _lifespan
        self._stop: anyio.Event | None = None
        self._graceful = True
        self._failure: BaseException | None = None  # what stopped the host task
        self._status = _State.UNSTARTED
        self._inflight = 0
        # leases of messages being handled: id -> [deadline, lease], kept alive by heartbeats
        self._leases: dict[str, list[float]] = {}
        self._heartbeat_wait: tuple[anyio.CancelScope, float] | None = None
        self._idle: anyio.Event | None = None  # made when shutdown waits for in-flight work

    # ------------------------------------------------------------------ properties

    @property
    def queue(self) -> MessageQueue:
        """The runtime's queue (available once the runtime has started)."""
        if self._queue is None:
            raise RuntimeStateError("the runtime has not started: use 'async with Runtime(...)'")
        return self._queue

    @property
    def comm(self) -> CommunicationSystem:
        if self._comm is None:
            raise RuntimeStateError("the runtime has not started: use 'async with Runtime(...)'")
        return self._comm

    @property
    def agents(self) -> Mapping[str, Agent]:
        """Registered agents by name (read-only view)."""
        return dict(self._agents)

    @property
    def running(self) -> bool:
        return self._status is _State.RUNNING

    @property
    def inflight(self) -> int:
        """Messages being handled right now, over all agents."""
        return self._inflight

    @property
    def listeners(self) -> list[RuntimeListener]:
        return self._listeners

    # ------------------------------------------------------------------ agents

    def agent(
        self,
        name: str | None = None,
        *,
        role: str = "agent",
        replicas: int = 1,
        concurrency: int = 1,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        history_size: int = 100,
        lease: float | None = None,
        retry: RetryPolicy | None = None,
        topics: Iterable[str] = (),
    ) -> Callable[[H], H]:
        """Decorator registering an ``async def fn(msg, ctx)`` as an agent."""

        def register(handler: H) -> H:
            self.add_agent(
                FunctionAgent(
                    name or handler.__name__,
                    handler,
                    role=role,
                    replicas=replicas,
                    concurrency=concurrency,
                    max_concurrency=max_concurrency,
                    timeout=timeout,
                    history_size=history_size,
                    lease=lease,
                    retry=retry,
                    topics=topics,
                )
            )
            return handler

        return register

    def add_agent(self, agent: Agent) -> Agent:
        """Register an agent; if the runtime is running its replicas start now."""
        if not isinstance(agent, Agent):
            raise ConfigError(f"add_agent() takes an Agent, got {type(agent).__name__}")
        if agent.name in self._agents:
            raise ConfigError(f"an agent named {agent.name!r} is already registered")
        if self._status in (_State.STOPPING, _State.CLOSED):
            raise RuntimeStateError("the runtime is shutting down; no new agents")
        self._agents[agent.name] = agent
        self._inboxes[agent.name] = CommunicationSystem.inbox(agent.name)
        self._add_route(agent)
        if self.services is not None:
            self.services.balancer.register_agent(
                agent.name, capacity=agent.concurrency, replicas=agent.replicas
            )
            if agent.max_concurrency is not None:
                self.services.optimizer.register_parameters(
                    agent.name,
                    {"concurrency": float(agent.concurrency)},
                    bounds={"concurrency": (1.0, float(agent.max_concurrency))},
                )
        for topic in agent.topics:
            self._subscriptions.append((topic, agent.name))
        if self._status is _State.RUNNING:
            assert self._tg is not None
            waiting = self._heartbeat_wait
            if waiting is not None and agent.lease is not None and agent.lease / 3 < waiting[1]:
                waiting[0].cancel()  # the heartbeat must now beat faster
            self.comm.register_agent(agent.name)
            for topic in agent.topics:
                self.comm.subscribe(topic, agent.name)
            self._tg.start_soon(self._start_agent, agent)
        return agent

    def subscribe(self, topic: str, agent: str) -> None:
        """Deliver every message published on ``topic`` to ``agent`` too."""
        validate_topic(topic)
        if agent not in self._agents:
            raise UnknownAgentError(agent, self._agents)
        self._subscriptions.append((topic, agent))
        if self._comm is not None:
            self._comm.subscribe(topic, agent)

    def add_listener(self, listener: RuntimeListener) -> None:
        """Receive a :class:`~swarm_runtime.events.TaskEvent` for every message handled."""
        self._listeners.append(listener)

    @property
    def middleware(self) -> list[Middleware]:
        """The whole stack around every handler, outermost first: the services' layers,
        yours, then the time limit (see :mod:`swarm_runtime.middleware`)."""
        return [*self._service_layers, *self._middleware, TimeLimit()]

    def add_middleware(self, layer: Middleware | LayerFunction) -> None:
        """Add a layer inside the ones added before (outside the time limit); agents
        already running take it from their next message."""
        self._middleware.append(as_middleware(layer))
        self._chains.clear()
        for replica in self._replicas:
            replica.chain = self._chain_for(replica.agent)

    def _chain_for(self, agent: Agent) -> Handler:
        """``agent``'s stack folded around its handler, built once and shared by its replicas."""
        chain = self._chains.get(agent.name)
        if chain is None:
            chain = self._chains[agent.name] = fold(self.middleware, agent, handler_core(agent))
        return chain

    def policy_for(self, agent: Agent) -> RetryPolicy:
        return agent.retry or self.retry

    def _add_route(self, agent: Agent) -> None:
        """Make ``agent`` a destination of :meth:`send` (and so of :meth:`request`): what a
        message to it needs, looked up once: its inbox topic and attempts limit."""
        self._routes[agent.name] = (
            CommunicationSystem.inbox(agent.name),
            self.policy_for(agent).max_attempts,
        )

    # ------------------------------------------------------------------ messaging

    async def send(
        self,
        agent: str,
        payload: Any = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        sender: str | None = None,
        workflow_id: str | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """Durably queue ``payload`` for ``agent`` (fire-and-forget); returns the message id.

        The options are those of :meth:`MessageQueue.publish`; ``max_attempts`` defaults
        to the agent's retry policy. The one path every message to an agent takes
        (:meth:`request` too; :meth:`send_all` for a batch): routing lives in the
        ``_routes`` table, so a runtime that hosts an agent elsewhere (``DispatchRuntime``)
        only adds a route.
        """
        if self._status is not _State.RUNNING:
            self._check_running()
        try:
            route = self._routes[agent]
        except (KeyError, TypeError):
            route = self._route(agent)  # raises the error that names what is wrong
        return await self._queue.publish(  # type: ignore[union-attr]
            route[0],
            payload,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            sender=sender,
            correlation_id=correlation_id,
            workflow_id=workflow_id,
            reply_to=reply_to,
            max_attempts=route[1] if max_attempts is None else max_attempts,
        )

    async def send_all(self, messages: Sequence[Outgoing]) -> list[str]:
        """The batch form of :meth:`send`: durably queue each message for its agent (``to``
        is an agent name), as a whole (:meth:`MessageQueue.publish_all`); returns the ids
        in order.

        Each message's ``max_attempts`` defaults to its agent's retry policy. Raises
        :class:`UnknownAgentError` for an unknown agent at any position, and the queue's
        errors (naming ``messages[k]``) for a bad message, before anything is queued.
        """
        if self._status is not _State.RUNNING:
            self._check_running()
        if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence):
            raise bad_argument("messages", messages, "a list of Outgoing", kind=False)
        route = self._route
        routes: list[tuple[str, int | None]] = []
        for i, m in enumerate(messages):
            if type(m) is not Outgoing:
                raise bad_argument(f"messages[{i}]", m, "an Outgoing", kind=False)
            routes.append(route(m.to, i))
        return await self._queue.publish_all(messages, routes=routes)  # type: ignore[union-attr]

    def _route(self, agent: str, at: int = -1) -> tuple[str, int]:
        """``agent``'s inbox topic and default attempts limit (:meth:`_add_route`); ``at``:
        the message's position in a :meth:`send_all`, named in errors."""
        try:
            route = self._routes.get(agent)
        except TypeError:  # unhashable
            name = "agent" if at < 0 else f"messages[{at}].to"
            raise bad_argument(name, agent, "an agent name (str)", kind=False) from None
        if route is None:
            raise UnknownAgentError(agent, self.agents)
        return route

    async def publish(
        self,
        topic: str,
        payload: Any = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        sender: str | None = None,
        workflow_id: str | None = None,
        max_attempts: int | None = None,
    ) -> list[str]:
        """Publish on ``topic``: each subscribed agent gets its own durable copy (see
        :meth:`CommunicationSystem.publish`); returns the copies' ids."""
        self._check_running()
        return await self.comm.publish(
            sender,
            topic,
            payload,
            delay=delay,
            priority=priority,
            dedup_key=dedup_key,
            headers=headers,
            workflow_id=workflow_id,
            max_attempts=max_attempts,
        )

    async def request(
        self,
        agent: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        sender: str | None = None,
        workflow_id: str | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """Durably send ``payload`` to ``agent`` (through :meth:`send`) and wait for its result.

        Raises :class:`RequestTimeoutError` if no reply arrives within ``timeout``
        seconds on the runtime's clock (default ``request_timeout``),
        :class:`AgentError` if the agent failed for good.
        """
        if timeout is None:
            wait = self.request_timeout
        elif type(timeout) is not float or not 0 < timeout < math.inf:
            check_seconds("timeout", timeout, positive=True)
            wait = float(timeout)
        else:
            wait = timeout
        correlation_id = new_id()
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self._pending.add(correlation_id, waiter, wait)
        try:
            await self.send(
                agent,
                payload,
                delay=delay,
                priority=priority,
                dedup_key=dedup_key,
                headers=headers,
                sender=sender,
                workflow_id=workflow_id,
                reply_to=self._reply_topic,
                correlation_id=correlation_id,
                max_attempts=max_attempts,
            )
            reply = await waiter
        finally:
            self._pending.discard(correlation_id)
        if reply is None:
            raise RequestTimeoutError(f"no reply from agent {agent!r} within {wait:g}s")
        if reply.get("ok"):
            return reply.get("result")
        raise AgentError(
            agent,
            str(reply.get("error_type", "Error")),
            str(reply.get("error", "")),
            attempts=int(reply.get("attempts", 0)),
        )

    def register_local_topic(self, topic: str, callback: LocalReply) -> None:
        """Hand replies addressed to ``topic`` to ``callback(correlation_id, body)`` in
        this process instead of publishing them on the queue.

        For a consumer of ``topic`` that lives in this runtime (a workflow run's results
        topic): a reply is then a function call, not a publish, a lease and an ack. Such a
        reply is not durable: the replica acknowledges the request message right after the
        call, so the callback's owner must record the reply durably itself, or redo the
        work after a crash (the orchestrator's run log does: a task whose result is not in
        the log is dispatched again on resume). Replies from other processes still come
        through the queue, so keep consuming ``topic``. The callback must not block; if it
        raises, the reply is published on the queue instead.
        """
        validate_topic(topic)
        if topic in self._local_topics:
            raise ConfigError(f"topic {topic!r} already has a local consumer")
        self._local_topics[topic] = callback

    def unregister_local_topic(self, topic: str) -> None:
        """Publish replies to ``topic`` on the queue again (idempotent)."""
        if topic != self._reply_topic:
            self._local_topics.pop(topic, None)

    def _reply_local(self, correlation_id: str, body: dict[str, Any]) -> None:
        waiter = self._pending.get(correlation_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(body)

    def _reply_here(self, reply_to: str, correlation_id: str, body: dict[str, Any]) -> bool:
        """Give a reply to the local consumer of ``reply_to``; False if there is none."""
        local = self._local_topics.get(reply_to)
        if local is None:
            return False
        try:
            local(correlation_id, body)
        except Exception as exc:  # a broken consumer must not lose the reply
            log.error("local reply consumer failed", topic=reply_to, error=repr(exc))
            return False
        return True

    async def _reply(self, reply_to: str, correlation_id: str | None, body: dict[str, Any]) -> None:
        """Answer a request: straight to a local consumer, else through the reply topic."""
        if correlation_id is None or self._reply_here(reply_to, correlation_id, body):
            return
        await self.queue.publish(reply_to, body, correlation_id=correlation_id)

    async def _reply_loop(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Resolve requests whose replies come through the queue (from other processes)."""
        queue = self.queue
        task_status.started()
        while True:
            try:
                batch = await queue.subscribe(self._reply_topic, 16, timeout=None)
            except QueueClosedError:
                return
            for message in batch:
                waiter = self._pending.get(message.correlation_id or "")
                if waiter is not None and not waiter.done() and isinstance(message.payload, dict):
                    waiter.set_result(message.payload)
            if batch:
                await queue.acknowledge_many([message.id for message in batch])

    async def join(self, timeout: float | None = None) -> None:
        """Wait until every agent inbox is empty and nothing is in flight (drain)."""
        check_seconds("timeout", timeout, none=True)
        self._check_running()
        with anyio.fail_after(math.inf if timeout is None else timeout):
            while True:
                if self._inflight == 0:
                    depths = [await self.queue.depth(self.comm.inbox(a)) for a in self._agents]
                    if not any(depths) and self._inflight == 0:
                        return
                await anyio.sleep(0.005)

    # ------------------------------------------------------------------ lifecycle

    def _check_running(self) -> None:
        if self._status is not _State.RUNNING:
            if self._status is _State.UNSTARTED:
                raise RuntimeStateError(
                    "the runtime is not running: use 'async with Runtime(...) as rt:'"
                )
            raise RuntimeStateError(f"the runtime is {self._status.value}; it takes no new work")

    async def __aenter__(self) -> Self:
        """Start the runtime: open the queue, start the services and every agent's replicas.

        The runtime's whole life runs in a host task of its own (:meth:`_lifespan`: one
        ``async with create_task_group()`` from start to stop) that ``__aexit__`` stops and
        waits for. So ``__aenter__`` and ``__aexit__`` may run in different tasks, as they
        do for a pytest-asyncio fixture or an ``AsyncExitStack`` owned by a framework, and
        no task outlives the ``async with``.
        """
        if self._status is not _State.UNSTARTED:
            raise RuntimeStateError(
                f"this Runtime is {self._status.value}; create a new Runtime to start again"
            )
        self._status = _State.STARTING
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = anyio.Event()
        self._host = asyncio.create_task(self._lifespan(started), name=f"swarm-runtime {self.id}")
        try:
            await started
        except BaseException:
            await self._stop_host(graceful=False)
            if self._failure is not None:
                raise _unwrap(self._failure) from None
            raise
        log.debug("runtime started", runtime=self.id, agents=sorted(self._agents))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop: drain in-flight messages for up to ``grace_period`` seconds (not when the
        body raised), cancel the rest, close. Re-raises a background task's failure."""
        if self._host is None:
            return
        await self._stop_host(graceful=exc_type is None)
        failure, self._failure = self._failure, None
        if failure is not None and exc_type is None:
            raise _unwrap(failure)

    async def _stop_host(self, *, graceful: bool) -> None:
        """Ask the host task to stop and wait for it, even when this task is cancelled."""
        host = self._host
        assert host is not None
        assert self._stop is not None
        self._graceful = graceful
        if not graceful and self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await asyncio.wait((host,))
        self._host = None

    async def _lifespan(self, started: asyncio.Future[None]) -> None:
        """The runtime's life in one task: resources opened and closed with an exit
        stack, every background task owned by one task group entered with ``async with``."""
        stop = self._stop
        assert stop is not None
        try:
            async with AsyncExitStack() as stack:
                stack.push_async_callback(self._close)
                await self._open()
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    self._status = _State.RUNNING
                    await tg.start(self._pending.run)
                    if self.services is not None:
                        await tg.start(self.services.run)
                    await tg.start(self._reply_loop)
                    await tg.start(self._heartbeat_loop)
                    if not self.queue.maintained:
                        await tg.start(self._maintain_queue)
                    if self.state_snapshot is not None:
                        await tg.start(self._snapshot_loop)
                    for agent in list(self._agents.values()):
                        await self._start_agent(agent)
                    if not started.done():  # done if the starter was cancelled meanwhile
                        started.set_result(None)
                    await stop.wait()
                    self._status = _State.STOPPING
                    await self._drain()
                    tg.cancel_scope.cancel()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self._failure = exc
                if started.done():
                    log.error("runtime stopped by a failure", runtime=self.id, error=repr(exc))
            if not started.done():
                started.set_exception(RuntimeStateError("the runtime failed to start"))
            if not isinstance(exc, Exception):
                raise

    async def _open(self) -> None:
        """Open the queue (unless given one already open) and restore the state snapshot."""
        self._queue = await self.backend.start()
        self._comm = CommunicationSystem(self._queue)
        for name in self._routes:  # local agents, and those hosted elsewhere (DispatchRuntime)
            self._comm.register_agent(name)
        for topic, name in self._subscriptions:
            self._comm.subscribe(topic, name)
        if self.state_snapshot is not None and self.state_snapshot.exists():
            await self.state.restore(self.state_snapshot)

    async def _drain(self) -> None:
        """Stop receiving; on a graceful stop let in-flight messages finish (grace period)."""
        for dispatcher in self._dispatchers:
            dispatcher.stop_receiving()
        for replica in self._replicas:
            replica.stop_receiving()
        if self._graceful and self._inflight:
            # real time, not the clock: a ManualClock must not hold up a test's shutdown
            with anyio.move_on_after(self.grace_period, shield=True):
                self._idle = anyio.Event()
                await self._idle.wait()
            if self._inflight:
                log.warning(
                    "grace period over; cancelling in-flight messages",
                    inflight=self._inflight,
                    grace_period=self.grace_period,
                )

    async def _close(self) -> None:
        """Last bookkeeping, shielded: agents' on_stop, state snapshot, queue close."""
        self._status = _State.STOPPING
        with anyio.CancelScope(shield=True):
            try:
                for agent in self._agents.values():
                    try:
                        await agent.on_stop()
                    except Exception as error:
                        log.error("agent on_stop failed", agent=agent.name, error=repr(error))
                if self.state_snapshot is not None:
                    await self.state.snapshot(self.state_snapshot)
            finally:
                self._pending.close()
                self._tg = None
                try:
                    await self.backend.aclose()
                finally:
                    self._status = _State.CLOSED

    async def _start_agent(self, agent: Agent) -> None:
        assert self._tg is not None
        await agent.on_start(self)
        replicas = [Replica(self, agent, index) for index in range(agent.replicas)]
        services = self.services
        dispatcher: Dispatcher | None = None
        if services is not None:
            balancer = services.balancer
            if agent.replicas > 1 and self._route_through_balancer:
                channels = []
                for replica in replicas:
                    send, receive = anyio.create_memory_object_stream[
                        tuple[Message, Assignment | None]
                    ](agent.max_concurrency or agent.concurrency)
                    replica.channel = receive
                    replica.balancer = balancer
                    channels.append(send)
                dispatcher = Dispatcher(self, agent, balancer, channels)
        for replica in replicas:
            self._replicas.append(replica)
            await self._tg.start(replica.run)
        if dispatcher is not None:
            self._dispatchers.append(dispatcher)
            await self._tg.start(dispatcher.run)

    def _on_parameters(self, agent_name: str, params: dict[str, float]) -> None:
        """The self-optimizer changed an agent's parameters: resize its replicas."""
        agent = self._agents.get(agent_name)
        concurrency = params.get("concurrency")
        if agent is None or concurrency is None:
            return
        limit = max(1, round(concurrency))
        if agent.max_concurrency is not None:
            limit = min(limit, agent.max_concurrency)
        agent.concurrency = limit
        for replica in self._replicas:
            if replica.agent is agent and replica.slots is not None:
                replica.slots.resize(limit)
        if self.services is not None:
            self.services.balancer.register_agent(
                agent_name, capacity=limit, replicas=agent.replicas
            )
        log.info("concurrency tuned", agent=agent_name, concurrency=limit)

    async def _probe(self) -> list[Reading]:
        """Readings for the monitoring sampler: each inbox's unsettled messages."""
        if self._status is not _State.RUNNING or self._queue is None:
            return []
        readings: list[Reading] = []
        for name, inbox in list(self._inboxes.items()):
            try:
                depth = await self._queue.depth(inbox)
            except QueueClosedError:
                return readings
            readings.append(Reading("queue_size", float(depth), name))
        return readings

    async def _maintain_queue(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the queue's upkeep (lazy ack writes, compaction, lease reaping) while we run."""
        queue = self.queue
        queue.maintained = True
        try:
            await queue.maintain(task_status=task_status)
        finally:
            queue.maintained = False

    def _heartbeat_interval(self) -> float:
        leases = [a.lease for a in self._agents.values() if a.lease is not None]
        shortest = min([*leases, self.queue.options.lease])
        return max(0.01, shortest / 3)

    async def _heartbeat_loop(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Extend the leases of messages whose handlers are still running, so a slow but
        live handler is never mistaken for a dead one and its message handed to another."""
        queue = self.queue
        task_status.started()
        while True:
            interval = self._heartbeat_interval()
            with anyio.CancelScope() as scope:  # cancelled when a shorter lease appears
                self._heartbeat_wait = (scope, interval)
                await self.clock.sleep(interval)
            self._heartbeat_wait = None
            now = self.clock.time()
            for message_id, entry in list(self._leases.items()):
                if entry[0] - now > 2 * interval:
                    continue
                try:
                    extended = await queue.extend(message_id, entry[1])
                except QueueClosedError:
                    return
                except QueueError as exc:
                    log.warning("lease heartbeat failed", message_id=message_id, error=str(exc))
                    continue
                if extended:
                    entry[0] = now + entry[1]

    async def _snapshot_loop(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        assert self.state_snapshot is not None
        task_status.started()
        while True:
            await self.clock.sleep(self.snapshot_interval)
            try:
                await self.state.snapshot(self.state_snapshot)
            except OSError as exc:
                log.error("state snapshot failed", path=str(self.state_snapshot), error=str(exc))

    # ------------------------------------------------------------------ bookkeeping for replicas

    def _task_started(self) -> None:
        self._inflight += 1

    def _task_finished(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._idle is not None:
            self._idle.set()

    async def start_background(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        """Run ``func(*args, task_status=...)`` in the runtime's task group (for services)."""
        self._check_running()
        assert self._tg is not None
        await self._tg.start(func, *args, name=name)

    def __repr__(self) -> str:
        return f"<Runtime {self.id} {self._status.value} agents={sorted(self._agents)}>"


def _unwrap(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-error exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
