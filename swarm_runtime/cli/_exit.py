"""Named exit codes of the command line."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # the run finished but some task failed
    USAGE = 2  # bad arguments or an invalid pipeline / config file
    QUEUE = 3  # the queue could not be opened (locked, corrupt, unreachable)
    INTERRUPTED = 130
