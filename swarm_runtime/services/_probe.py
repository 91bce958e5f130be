"""What a monitoring probe returns: named readings, per agent or for the whole system."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

__all__ = ["SYSTEM", "Probe", "Reading"]

SYSTEM = "system"
"""The agent name used for readings that belong to no agent (event-loop lag, queue totals)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value: ``metric`` (e.g. ``queue_size``) of ``agent`` right now."""

    metric: str
    value: float
    agent: str = SYSTEM


Probe = Callable[[], Iterable[Reading] | Awaitable[Iterable[Reading]]]
"""A callable, sync or async, returning the readings it measures when the sampler calls it."""
