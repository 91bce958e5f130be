"""Dispatcher: places each message of a multi-replica agent on the replica the balancer picks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from .._logging import get_logger
from ..errors import CircuitOpenError, QueueClosedError, QueueError
from ..message import Message
from ._replica import MAX_BATCH

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..services.load_balancer import Assignment, LoadBalancer
    from .runtime import Runtime

__all__ = ["Dispatcher"]

log = get_logger("swarm_runtime.dispatch")


class Dispatcher:
    """Takes a replica's room from the :class:`LoadBalancer` first, then leases messages
    for it: so no message is leased while every replica is full (back-pressure), and the
    load is released by the replica when the message settles.

    With room on several replicas it leases a batch with one ``subscribe``: as many
    messages as the replicas have room for now (at most :data:`MAX_BATCH`), each placed by
    the balancer as it would place them one by one. Every message of a batch can start at
    once, so no running mean is needed here (the replicas' own batching is for messages
    they handle back to back). A message the balancer has no room for after all (room
    taken meanwhile by another caller of the balancer) is released, its attempt not
    counted.
    """

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
        rt = self.runtime
        queue = rt.queue
        leases = rt._leases
        name = self.agent.name
        lease = self.agent.lease
        held_for = lease or queue.options.lease
        task_status.started()
        try:
            while not self._stopping:
                assignment: Assignment | None = None
                batch: list[Message] = []
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        assignment = await self.balancer.assign_task(agent=name)
                        size = min(MAX_BATCH, 1 + self._room())
                        batch = await queue.subscribe(self.topic, size, lease, timeout=None)
                    except CircuitOpenError:
                        await rt.clock.sleep(max(0.01, self._retry_after()))
                    except QueueClosedError:
                        self._stopping = True
                self._scope = None
                if not batch:
                    if assignment is not None:
                        self.balancer.release(assignment)
                    continue
                assert assignment is not None
                deadline = rt.clock.time() + held_for
                for message in batch:  # heartbeats keep them leased until they settle
                    leases[message.id] = [deadline, held_for]
                await self._place(batch, assignment)
        finally:
            for channel in self.channels:
                channel.close()

    async def _place(self, batch: list[Message], first: Assignment) -> None:
        """Send each message to the replica the balancer picks (the first to ``first``);
        what is not placed (no room after all, or cancelled) goes back to the queue."""
        placed = 0
        assignment: Assignment | None = first
        try:
            for message in batch:
                if assignment is None:
                    assignment = self._try_assign()
                    if assignment is None:
                        break
                await self.channels[assignment.replica].send((message, assignment))
                assignment = None
                placed += 1
        finally:
            if assignment is not None:
                self.balancer.release(assignment)
            if placed < len(batch):
                await self._release(batch[placed:])

    async def _release(self, messages: list[Message]) -> None:
        rt = self.runtime
        queue = rt.queue
        with anyio.CancelScope(shield=True):
            for message in messages:
                rt._leases.pop(message.id, None)
                try:
                    await queue.release(message.id)
                except QueueError as error:
                    log.error("could not hand a message back", error=str(error))

    def _room(self) -> int:
        """How many more messages the agent's replicas could start now (a bound: the
        balancer decides, replica by replica, when the messages are placed)."""
        services = self.runtime.services
        gate = None if services is None else services.errors
        name = self.agent.name
        room = 0
        for load in self.balancer.snapshot(name):
            if gate is None or gate.allows(name, load.replica):
                room += max(0, int(load.capacity - load.load + 1e-9))
        return room

    def _try_assign(self) -> Assignment | None:
        try:
            return self.balancer.try_assign(agent=self.agent.name)
        except CircuitOpenError:
            return None

    def _retry_after(self) -> float:
        services = self.runtime.services
        return 0.0 if services is None else services.errors.retry_after(self.agent.name)
