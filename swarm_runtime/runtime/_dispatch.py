"""Dispatcher: places each message of a multi-replica agent on the replica the balancer picks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from .._logging import get_logger
from ..errors import CircuitOpenError, QueueClosedError
from ..message import Message

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..services.load_balancer import Assignment, LoadBalancer
    from .runtime import Runtime

__all__ = ["Dispatcher"]

log = get_logger("swarm_runtime.dispatch")


class Dispatcher:
    """Takes a replica's room from the :class:`LoadBalancer` first, then leases a message
    for it: so no message is leased while every replica is full (back-pressure), and the
    load is released by the replica when the message settles."""

    def __init__(
        self,
        runtime: Runtime,
        agent: Agent,
        balancer: LoadBalancer,
        channels: list[MemoryObjectSendStream[tuple[Message, Assignment | None]]],
    ) -> None:
        self.runtime = runtime
        self.agent = agent
        self.balancer = balancer
        self.channels = channels
        self.topic = runtime.comm.inbox(agent.name)
        self._stopping = False
        self._scope: anyio.CancelScope | None = None

    def stop_receiving(self) -> None:
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        queue = self.runtime.queue
        name = self.agent.name
        lease = self.agent.lease
        task_status.started()
        try:
            while not self._stopping:
                assignment: Assignment | None = None
                batch: list[Message] = []
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        assignment = await self.balancer.assign_task(agent=name)
                        batch = await queue.subscribe(self.topic, 1, lease, timeout=None)
                    except CircuitOpenError:
                        await self.runtime.clock.sleep(max(0.01, self._retry_after()))
                    except QueueClosedError:
                        self._stopping = True
                self._scope = None
                if not batch:
                    if assignment is not None:
                        self.balancer.release(assignment)
                    continue
                assert assignment is not None
                await self.channels[assignment.replica].send((batch[0], assignment))
        finally:
            for channel in self.channels:
                channel.close()

    def _retry_after(self) -> float:
        services = self.runtime.services
        return 0.0 if services is None else services.errors.retry_after(self.agent.name)
