"""The backend seam: one :class:`Backend` per URL scheme hands out everything stored.

A backend owns (or wraps) the message queue and hands out the stores the layers above
use: the workflow run store, agent state (:class:`StateManager`), handoff records
(:class:`HandoffProtocol`), table artifacts and the LLM step journal. What the layers
above may know about it are its capability attributes (:attr:`Backend.shared`,
:attr:`Backend.durable`, :attr:`Backend.artifact_location`), never its scheme or class.

A subclass implements the small abstract part (:meth:`Backend._new_run_store`) and
overrides the store hooks its storage can do better than the in-process defaults;
everything shared (lifecycle, caching, ``async with``) is concrete here.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..clock import Clock
from ..errors import NotSupportedError, QueueClosedError
from ..handoff import HandoffProtocol
from ..queue import _registry
from ..queue.base import MessageQueue
from ..state import StateManager

if TYPE_CHECKING:
    from ..artifacts import ArtifactStore
    from ..llm.journal import StepJournal
    from ..orchestrator._runstore import RunStore

__all__ = ["Backend"]


class Backend(abc.ABC):
    """Everything a runtime stores, for one URL scheme (``memory``, ``file``, ``redis``).

    ``Backend.open(url, **queue_options)`` picks the backend from the URL (importing its
    driver only then; a missing one is a :class:`BackendUnavailableError` naming the
    extra); ``Backend.wrap(queue)`` wraps a queue the caller opened (and will close).
    Use as ``async with Backend.open(url) as backend:`` or ``await backend.start()`` /
    ``await backend.aclose()``.
    """

    #: URL scheme this backend serves (only the backends' own package compares it)
    scheme: ClassVar[str] = ""
    #: several processes (on several machines) share the queue and every store
    shared: ClassVar[bool] = False
    #: what a returned publish / store write holds survives the process
    durable: ClassVar[bool] = False
    #: queue options to open it for inspection only (the CLI's ``queue stats``, ``peek``...)
    inspection_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, queue: MessageQueue, *, owns_queue: bool = True) -> None:
        self.queue = queue
        self._owns_queue = owns_queue
        self._run_store: RunStore | None = None
        self._step_journal: StepJournal | None = None

    # ------------------------------------------------------------------ opening

    @staticmethod
    def open(url: str, **queue_options: Any) -> Backend:
        """The (unopened) backend for ``url``; ``queue_options`` go to its queue."""
        from ._registry import backend_class

        return backend_class(url).from_url(url, **queue_options)

    @staticmethod
    def wrap(queue: MessageQueue) -> Backend:
        """The backend of ``queue`` (opened by the caller, who also closes it)."""
        from ._registry import backend_of

        return backend_of(queue)(queue, owns_queue=False)

    @classmethod
    def from_url(cls, url: str, **queue_options: Any) -> Self:
        """This backend on a new (unopened) queue for ``url``."""
        return cls(_registry.create(url, **queue_options))

    # ------------------------------------------------------------------ capabilities

    @property
    def artifact_location(self) -> str | None:
        """Where table artifacts live (a directory or URL), None when none is configured."""
        return None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> MessageQueue:
        """Open the queue (if not open yet); returns it."""
        queue = self.queue
        if queue.is_closed:
            raise QueueClosedError(
                "the queue given to Runtime(...) is closed; open a new one with MessageQueue.open()"
            )
        if not queue.is_open:
            await queue.start()
        return queue

    async def aclose(self) -> None:
        """Close what this backend opened (its queue, if it owns it); a backend whose
        stores hold resources of their own closes them first, then calls this."""
        if self._owns_queue:
            await self.queue.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.queue!r}>"

    # ------------------------------------------------------------------ stores

    def run_store(self) -> RunStore:
        """The workflow run store (one per backend, made when first asked for)."""
        if self._run_store is None:
            self._run_store = self._new_run_store()
        return self._run_store

    @abc.abstractmethod
    def _new_run_store(self) -> RunStore:
        """Make this backend's run store (called once, by :meth:`run_store`)."""

    def state_manager(self, *, clock: Clock | None = None, history_size: int = 100) -> StateManager:
        """Agent state; in-process unless the backend shares it."""
        return StateManager(clock=clock, history_size=history_size)

    def handoff_protocol(self, *, clock: Clock | None = None) -> HandoffProtocol:
        """Handoff records; in-process unless the backend shares them."""
        return HandoffProtocol(clock=clock)

    def artifact_store(self, location: str | None = None) -> ArtifactStore:
        """Table artifacts of workflow runs (written once, passed downstream by reference).

        ``location`` (a directory or ``file://`` URL: the pipeline's ``artifacts.location``
        or ``--artifacts``) wins; otherwise the backend's :attr:`artifact_location`. A
        backend with neither (a shared one: its workers need a place they all read) raises
        :class:`NotSupportedError` (a ConfigError): tables are never copied into the queue.
        """
        from ..artifacts import DirectoryArtifactStore, directory_store

        if location is not None:
            return directory_store(location)
        if self.artifact_location is not None:
            return DirectoryArtifactStore(self.artifact_location)
        raise NotSupportedError(
            f"a table artifact store on the {self.scheme}:// backend needs a location that "
            "every worker can read: set `artifacts: DIR` in the pipeline (a shared directory) "
            "or pass --artifacts DIR to run and worker; tables are never copied into the queue"
        )

    def step_journal(self) -> StepJournal:
        """The LLM step journal (model answers and tool results of resumable runs; one per
        backend, made when first asked for, on the backend's storage)."""
        if self._step_journal is None:
            self._step_journal = self._new_step_journal()
        return self._step_journal

    def _new_step_journal(self) -> StepJournal:
        """Make this backend's step journal (called once; backends that have one override it)."""
        raise self._unsupported("an LLM step journal")

    @staticmethod
    def step_journal_at(url: str) -> StepJournal:
        """The step journal for ``url`` on its own, without opening the queue (for
        ``Swarm(store=url)``)."""
        from ._registry import backend_class

        return backend_class(url)._journal_at(url)

    @classmethod
    def _journal_at(cls, url: str) -> StepJournal:
        """Hook of :meth:`step_journal_at` (backends that have a journal override it)."""
        raise NotSupportedError(
            f"an LLM step journal is not supported by the {cls.scheme}:// backend ({cls.__name__})"
        )

    def _unsupported(self, what: str) -> NotSupportedError:
        return NotSupportedError(
            f"{what} is not supported by the {self.scheme}:// backend ({type(self).__name__})"
        )
