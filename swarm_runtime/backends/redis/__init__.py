"""``redis://HOST:PORT/DB``: one Redis shared by every process, on any machine.

The queue is :mod:`swarm_runtime.queue.redis` (Redis Streams); beside it, under the
queue's key prefix ``P`` and on its connection pool, live the workflow runs (``P:wf:``,
:mod:`._runs`), agent state (``P:state:``, :mod:`._state`) and handoff records
(``P:handoff:``, :mod:`._handoffs`), LLM step journals (``P:llm:``,
:mod:`._journal`), so ``worker`` processes and the process running a
pipeline share them. Needs the ``redis`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ...clock import Clock
from ...handoff import HandoffProtocol
from ...orchestrator._runstore import RunStore
from ...queue.redis import RedisQueue
from ...state import StateManager
from ..base import Backend
from ._handoffs import RedisHandoffProtocol
from ._runs import RedisRunStore
from ._state import RedisStateManager

if TYPE_CHECKING:
    from ...llm.journal import StepJournal

__all__ = ["RedisBackend", "RedisHandoffProtocol", "RedisRunStore", "RedisStateManager"]


class RedisBackend(Backend):
    """Queue, runs, agent state and handoffs in one Redis, shared by every process."""

    scheme: ClassVar[str] = "redis"
    shared: ClassVar[bool] = True
    durable: ClassVar[bool] = True
    queue: RedisQueue

    def _new_run_store(self) -> RunStore:
        return RedisRunStore.for_queue(self.queue)

    def state_manager(self, *, clock: Clock | None = None, history_size: int = 100) -> StateManager:
        queue = self.queue
        return RedisStateManager(
            queue.client, prefix=queue.prefix, clock=clock, history_size=history_size
        )

    def handoff_protocol(self, *, clock: Clock | None = None) -> HandoffProtocol:
        return RedisHandoffProtocol(self.queue.client, prefix=self.queue.prefix, clock=clock)

    def _new_step_journal(self) -> StepJournal:
        from ._journal import RedisStepJournal

        return RedisStepJournal(self.queue.client, prefix=self.queue.prefix)

    @classmethod
    def _journal_at(cls, url: str) -> StepJournal:
        from ._journal import RedisStepJournal

        return RedisStepJournal.from_url(url)
