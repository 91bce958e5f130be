"""HandoffProtocol: tracked transfers of work from one agent to another."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from . import _json
from ._args import bad_argument, check_seconds
from .clock import Clock, SystemClock
from .errors import HandoffError, RequestTimeoutError

__all__ = ["Handoff", "HandoffProtocol", "HandoffStatus"]

HandoffStatus = Literal["pending", "completed", "failed"]


class Handoff(BaseModel):
    """One transfer of a task from ``source`` to ``target``.

    ``parent_id`` links a handoff made while handling another handoff, so chains
    (A → B → C) can be traced. ``forwarded_to`` is set when the target handed the
    work on instead of finishing it: this handoff then settles with its child.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    target: str
    status: HandoffStatus = "pending"
    task_data: Any = None
    reason: str | None = None
    parent_id: str | None = None
    workflow_id: str | None = None
    message_id: str | None = None
    forwarded_to: str | None = None
    verified_by: str | None = None
    result: Any = None
    error: str | None = None
    created_at: float = 0.0
    verified_at: float | None = None
    completed_at: float | None = None
    children: list[str] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status != "pending"

    def settle(self, ok: bool, result: Any, error: str | None, now: float) -> bool:
        """Move pending -> completed / failed; False if already settled (exactly once)."""
        if self.done:
            return False
        self.status = "completed" if ok else "failed"
        self.result = result if ok else None
        self.error = None if ok else (error or "failed")
        self.completed_at = now
        return True

    def refusal(self, agent: str) -> str | None:
        """Why ``agent`` may not take this handoff, or None if it may."""
        if self.target != agent:
            return f"handoff {self.id!r} is addressed to {self.target!r}, not {agent!r}"
        if self.done:
            return f"handoff {self.id!r} is already {self.status}"
        return None

    def mark_verified(self, agent: str, now: float) -> bool:
        """Record the target's first confirmation; False if it was already confirmed."""
        if self.verified_by is not None:
            return False
        self.verified_by = agent
        self.verified_at = now
        return True


class HandoffProtocol:
    """Records handoffs and their outcomes; pending → completed / failed, exactly once.

    Settled records are kept up to ``max_records`` (oldest settled first out), so the
    registry does not grow without bound.
    """

    def __init__(self, *, max_records: int = 10_000, clock: Clock | None = None) -> None:
        if max_records < 1:
            raise bad_argument("max_records", max_records, "an int >= 1")
        self.max_records = max_records
        self._clock = clock or SystemClock()
        self._records: OrderedDict[str, Handoff] = OrderedDict()
        self._events: dict[str, anyio.Event] = {}
        self._counter = itertools.count(1)
        self._prefix = f"handoff_{int(self._clock.time() * 1000):x}_"

    # ------------------------------------------------------------------ seed API

    async def initiate_handoff(
        self,
        source_agent: str,
        target_agent: str,
        task_data: Any = None,
        *,
        reason: str | None = None,
        parent_id: str | None = None,
        workflow_id: str | None = None,
    ) -> str:
        """Record a pending handoff and return its id."""
        if parent_id is not None and parent_id not in self._records:
            raise HandoffError(f"parent handoff {parent_id!r} is unknown")
        record = self._new_record(
            source_agent, target_agent, task_data, reason, parent_id, workflow_id
        )
        handoff_id = record.id
        self._records[handoff_id] = record
        self._events[handoff_id] = anyio.Event()
        if parent_id is not None:
            self._records[parent_id].children.append(handoff_id)
        self._evict()
        return handoff_id

    def _new_record(
        self,
        source: str,
        target: str,
        task_data: Any,
        reason: str | None,
        parent_id: str | None,
        workflow_id: str | None,
    ) -> Handoff:
        """A validated pending record with a fresh id (stores share it)."""
        for name, agent in (("source", source), ("target", target)):
            if not isinstance(agent, str):
                raise bad_argument(f"the {name} agent", agent, "an agent name", kind=False)
        if not source or not target:
            raise HandoffError("a handoff needs a source and a target agent")
        _json.check_json(task_data, what="task_data")
        return Handoff(
            id=f"{self._prefix}{next(self._counter)}",
            source=source,
            target=target,
            task_data=task_data,
            reason=reason,
            parent_id=parent_id,
            workflow_id=workflow_id,
            created_at=self._clock.time(),
        )

    async def complete_handoff(
        self,
        handoff_id: str,
        completion_status: bool,
        *,
        result: Any = None,
        error: str | None = None,
    ) -> bool:
        """Settle a pending handoff as completed (True) or failed (False).

        Returns False if the handoff is unknown or already settled (settling is exactly-once).
        Parents that forwarded their work to this handoff settle with it.
        """
        record = self._records.get(handoff_id)
        if record is None or not record.settle(
            completion_status, result, error, self._clock.time()
        ):
            return False
        self._records.move_to_end(handoff_id)
        event = self._events.pop(handoff_id, None)
        if event is not None:
            event.set()
        parent_id = record.parent_id
        if parent_id is not None:
            parent = self._records.get(parent_id)
            if parent is not None and parent.forwarded_to == handoff_id:
                await self.complete_handoff(
                    parent_id, completion_status, result=result, error=error
                )
        return True

    # ------------------------------------------------------------------ tracking

    async def verify(self, handoff_id: str, agent: str) -> Handoff:
        """The target confirms it received the handoff; refuses one meant for someone else."""
        record = self._records.get(handoff_id)
        if record is None:
            raise HandoffError(f"handoff {handoff_id!r} is unknown (expired or never initiated)")
        problem = record.refusal(agent)
        if problem is not None:
            raise HandoffError(problem)
        record.mark_verified(agent, self._clock.time())
        return record.model_copy(deep=True)

    async def forward(self, handoff_id: str, child_id: str) -> None:
        """Mark that ``handoff_id``'s target passed the work on to ``child_id``."""
        record = self._records.get(handoff_id)
        if record is not None and not record.done:
            record.forwarded_to = child_id

    async def attach_message(self, handoff_id: str, message_id: str) -> None:
        record = self._records.get(handoff_id)
        if record is not None:
            record.message_id = message_id

    async def get(self, handoff_id: str) -> Handoff | None:
        """A copy of the record, or None."""
        record = self._records.get(handoff_id)
        return None if record is None else record.model_copy(deep=True)

    async def records(
        self, *, status: HandoffStatus | None = None, workflow_id: str | None = None
    ) -> list[Handoff]:
        """Records (copies), oldest first, optionally filtered."""
        return [
            r.model_copy(deep=True)
            for r in self._records.values()
            if (status is None or r.status == status)
            and (workflow_id is None or r.workflow_id == workflow_id)
        ]

    async def trace(self, handoff_id: str) -> list[Handoff]:
        """The chain that led to ``handoff_id``: root first, ``handoff_id`` last."""
        chain: list[Handoff] = []
        current: str | None = handoff_id
        while current is not None:
            record = self._records.get(current)
            if record is None:
                if not chain:
                    raise HandoffError(f"handoff {handoff_id!r} is unknown")
                break
            chain.append(record.model_copy(deep=True))
            current = record.parent_id
        chain.reverse()
        return chain

    async def descendants(self, handoff_id: str) -> list[Handoff]:
        """Every handoff made downstream of ``handoff_id`` (breadth-first)."""
        out: list[Handoff] = []
        queue = list(self._records[handoff_id].children) if handoff_id in self._records else []
        while queue:
            record = self._records.get(queue.pop(0))
            if record is not None:
                out.append(record.model_copy(deep=True))
                queue.extend(record.children)
        return out

    async def wait(self, handoff_id: str, timeout: float | None = None) -> Handoff:
        """Wait until the handoff settles; returns its record."""
        check_seconds("timeout", timeout, none=True)
        record = self._records.get(handoff_id)
        if record is None:
            raise HandoffError(f"handoff {handoff_id!r} is unknown")
        event = self._events.get(handoff_id)
        if event is not None and not record.done:
            with anyio.move_on_after(math.inf if timeout is None else timeout):
                await event.wait()
        final = self._records.get(handoff_id, record)
        if not final.done:
            raise RequestTimeoutError(
                f"handoff {handoff_id!r} to {final.target!r} did not settle within {timeout}s"
            )
        return final.model_copy(deep=True)

    def __len__(self) -> int:
        return len(self._records)

    def _evict(self) -> None:
        excess = len(self._records) - self.max_records
        if excess <= 0:
            return
        for handoff_id in [k for k, r in self._records.items() if r.done][:excess]:
            del self._records[handoff_id]
