"""Keep a run's log from flooding the terminal: a few lines of each kind, then a count.

A run of 50,000 tasks where 5,000 fail would log 5,000 "handler failed" lines; the
summary already lists the failed tasks. :class:`RepeatLimit` (a structlog processor the
CLI installs unless ``-v``) lets the first lines of each event through and counts the
rest, which ``run`` reports in one line at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["RepeatLimit"]


class RepeatLimit:
    """Drop log lines of an event after its first ``limit``; count what was dropped."""

    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self.seen: Counter[str] = Counter()

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event = str(event_dict.get("event", ""))
        self.seen[event] += 1
        if self.seen[event] > self.limit:
            raise structlog.DropEvent
        return event_dict

    def dropped(self) -> dict[str, int]:
        """Event -> how many of its lines were not shown."""
        return {event: n - self.limit for event, n in self.seen.items() if n > self.limit}
