"""Events the runtime emits about the work it does, for observers.

A :class:`RuntimeListener` (``Runtime(listeners=[...])``) sees every message an agent handles;
it observes only (policy that acts on messages is middleware: :mod:`swarm_runtime.middleware`).
The services also implement it, to be fed from events that come from elsewhere. The runtime
calls listeners synchronously, so a listener must be cheap and must not block (hand heavy
work to its own background task).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Outcome", "RuntimeListener", "TaskEvent"]

Outcome = Literal["started", "ok", "error", "timeout", "cancelled", "rejected"]
"""``rejected``: the message was not run: the agent's circuit is open or a middleware raised
``Defer`` (handed back), ``Veto`` (dead-lettered), or a handoff failed verification."""


@dataclass(slots=True)
class TaskEvent:
    """One message handled (or being handled) by one replica of an agent.

    One object per message: the event given to ``on_task_started`` is updated in place
    (outcome, duration, error) and given again to ``on_task_finished``. Listeners must treat
    it as read-only, and copy it (``dataclasses.replace(event)``) to keep it.
    """

    agent: str
    replica: int
    message_id: str
    topic: str
    attempts: int
    outcome: Outcome
    started_at: float  # wall-clock seconds
    duration: float | None = None  # seconds, None while started
    workflow_id: str | None = None
    error: BaseException | None = None
    dead_lettered: bool = False  # the failure used the message's last attempt


@runtime_checkable
class RuntimeListener(Protocol):
    """Receives task events; both methods must return quickly."""

    def on_task_started(self, event: TaskEvent) -> None: ...

    def on_task_finished(self, event: TaskEvent) -> None: ...
