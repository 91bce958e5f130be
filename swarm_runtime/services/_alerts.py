"""Threshold alerts shared by monitoring and metrics: raise once, escalate, resolve.

An alert is keyed by (agent, metric, condition). While its value stays past the threshold it is
*active* and is not raised again (deduplicated); it escalates from ``medium`` to ``high`` once
the value goes beyond 1.5x the threshold, and it is *resolved* when the value comes back.
Every transition is a new frozen :class:`Alert` sent to the sinks (log, user callbacks) and kept
in a bounded history the run report reads.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from .._logging import get_logger
from ..clock import Clock
from ..errors import ConfigError

__all__ = ["HIGH_FACTOR", "Alert", "AlertBook", "AlertCallback", "Condition", "Rule", "Severity"]

Severity = Literal["medium", "high"]
Condition = Literal["exceeded_max", "below_min"]
Status = Literal["raised", "escalated", "resolved"]
AlertCallback = Callable[["Alert"], None]

HIGH_FACTOR = 1.5
"""A value beyond this multiple of the threshold makes an alert ``high``."""

_log = get_logger("swarm_runtime.alerts")


@dataclass(frozen=True, slots=True)
class Alert:
    """One transition of a threshold alert (``status``: raised, escalated or resolved)."""

    agent: str
    metric: str
    condition: Condition
    value: float
    threshold: float
    severity: Severity
    status: Status
    raised_at: float
    updated_at: float
    peak: float

    @property
    def active(self) -> bool:
        return self.status != "resolved"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, for the run report."""
        return {
            "agent": self.agent,
            "metric": self.metric,
            "condition": self.condition,
            "value": self.value,
            "threshold": self.threshold,
            "severity": self.severity,
            "status": self.status,
            "raised_at": self.raised_at,
            "updated_at": self.updated_at,
            "peak": self.peak,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """Alert when a value goes above ``threshold`` (``exceeded_max``) or below it."""

    threshold: float
    condition: Condition = "exceeded_max"

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ConfigError(f"an alert threshold must be a finite number, got {self.threshold}")
        if self.condition == "below_min" and self.threshold <= 0:
            raise ConfigError(
                f"a 'min' alert threshold must be > 0 (severity is judged against threshold/1.5), "
                f"got {self.threshold}"
            )

    def breached(self, value: float) -> bool:
        if self.condition == "exceeded_max":
            return value > self.threshold
        return value < self.threshold

    def severity(self, value: float) -> Severity:
        if self.condition == "exceeded_max":
            high = value > self.threshold * HIGH_FACTOR if self.threshold > 0 else False
        else:
            high = value < self.threshold / HIGH_FACTOR
        return "high" if high else "medium"


class AlertBook:
    """Active alerts plus a bounded history of transitions, fanned out to sinks."""

    def __init__(
        self, *, clock: Clock, callbacks: Iterable[AlertCallback] = (), history: int = 1000
    ) -> None:
        if history < 1:
            raise ConfigError(f"alert history must keep >= 1 entry, got {history}")
        self._clock = clock
        self._callbacks = list(callbacks)
        self._active: dict[tuple[str, str, Condition], Alert] = {}
        self._history: deque[Alert] = deque(maxlen=history)

    def add_callback(self, callback: AlertCallback) -> None:
        """Also send every alert transition to ``callback`` (called synchronously)."""
        self._callbacks.append(callback)

    @property
    def active(self) -> list[Alert]:
        """Alerts currently active, oldest first."""
        return list(self._active.values())

    @property
    def history(self) -> list[Alert]:
        """Every transition kept (raised, escalated, resolved), oldest first."""
        return list(self._history)

    def evaluate(self, agent: str, metric: str, value: float, rule: Rule) -> Alert | None:
        """Apply ``rule`` to a new value; return the transition it caused, if any."""
        key = (agent, metric, rule.condition)
        current = self._active.get(key)
        if rule.breached(value):
            severity = rule.severity(value)
            now = self._clock.time()
            if current is None:
                alert = Alert(
                    agent=agent,
                    metric=metric,
                    condition=rule.condition,
                    value=value,
                    threshold=rule.threshold,
                    severity=severity,
                    status="raised",
                    raised_at=now,
                    updated_at=now,
                    peak=value,
                )
            else:
                worse = (
                    value > current.peak
                    if rule.condition == "exceeded_max"
                    else value < current.peak
                )
                peak = value if worse else current.peak
                if severity == "high" and current.severity == "medium":
                    alert = replace(
                        current,
                        value=value,
                        severity="high",
                        status="escalated",
                        updated_at=now,
                        peak=peak,
                        threshold=rule.threshold,
                    )
                else:  # still active at the same severity: deduplicated, kept quiet
                    self._active[key] = replace(current, value=value, peak=peak)
                    return None
            self._active[key] = alert
            self._emit(alert)
            return alert
        if current is not None:
            del self._active[key]
            alert = replace(current, value=value, status="resolved", updated_at=self._clock.time())
            self._emit(alert)
            return alert
        return None

    def _emit(self, alert: Alert) -> None:
        self._history.append(alert)
        fields = {
            "agent": alert.agent,
            "metric": alert.metric,
            "value": alert.value,
            "threshold": alert.threshold,
            "severity": alert.severity,
            "condition": alert.condition,
        }
        if alert.status == "resolved":
            _log.info("alert resolved", **fields)
        else:
            _log.warning(f"alert {alert.status}", **fields)
        for callback in self._callbacks:
            try:
                callback(alert)
            except Exception as exc:  # a user's sink must not break the sampler
                _log.error("alert callback failed", callback=repr(callback), error=repr(exc))
