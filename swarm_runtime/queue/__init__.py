"""Message queues: one interface (:class:`MessageQueue`), backends chosen by URL scheme.

``memory://`` (:mod:`.memory`), ``file://DIR`` (:mod:`.file`, the durable default) and
``redis://HOST:PORT/DB`` (:mod:`.redis`, needs the ``redis`` extra).
"""

from .base import MessageQueue, NackOutcome, Outgoing, QueueOptions, QueueStats
from .memory import MemoryQueue

__all__ = [
    "MemoryQueue",
    "MessageQueue",
    "NackOutcome",
    "Outgoing",
    "QueueOptions",
    "QueueStats",
]
