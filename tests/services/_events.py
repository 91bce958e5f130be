"""Build TaskEvents the way the runtime emits them."""

from __future__ import annotations

import itertools

from swarm_runtime.events import Outcome, TaskEvent

_ids = itertools.count()


def new_id() -> str:
    return f"m{next(_ids)}"


def event(
    agent: str = "a",
    outcome: Outcome = "ok",
    *,
    replica: int = 0,
    message_id: str | None = None,
    duration: float | None = 0.01,
    attempts: int = 1,
    error: BaseException | None = None,
    dead: bool = False,
) -> TaskEvent:
    """A finished (or, with outcome 'started', a starting) task event."""
    return TaskEvent(
        agent=agent,
        replica=replica,
        message_id=message_id or new_id(),
        topic=f"agent.{agent}",
        attempts=attempts,
        outcome=outcome,
        started_at=1_700_000_000.0,
        duration=None if outcome == "started" else duration,
        error=error,
        dead_lettered=dead,
    )


def run_task(
    listeners: list[object],
    agent: str = "a",
    outcome: Outcome = "ok",
    *,
    replica: int = 0,
    duration: float = 0.01,
    error: BaseException | None = None,
    attempts: int = 1,
    dead: bool = False,
    message_id: str | None = None,
) -> str:
    """Emit started then finished for one task to every listener; returns the message id."""
    mid = message_id or new_id()
    start = event(agent, "started", replica=replica, message_id=mid, attempts=attempts)
    done = event(
        agent,
        outcome,
        replica=replica,
        message_id=mid,
        duration=duration,
        error=error,
        attempts=attempts,
        dead=dead,
    )
    for listener in listeners:
        listener.on_task_started(start)  # type: ignore[attr-defined]
    for listener in listeners:
        listener.on_task_finished(done)  # type: ignore[attr-defined]
    return mid
