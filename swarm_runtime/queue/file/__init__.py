"""The durable file-backed queue (``file://DIR``), the embedded default.

:class:`FileQueue` keeps an append-only, segmented, checksummed log in the queue directory
and a compact index in memory. See ``queue/README.md`` for the on-disk format, how
recovery works and what each fsync policy guarantees.
"""

from ._queue import FileQueue, FileQueueInfo

__all__ = ["FileQueue", "FileQueueInfo"]
