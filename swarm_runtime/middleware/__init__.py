"""Middleware: the async stack around every message an agent handles.

The runtime folds, per agent and once, the layers below around the agent's handler
(outermost first)::

    Metrics -> Tuning -> Retries -> Breaker -> your middleware... -> TimeLimit -> handler

The first four come with the background services (``services=True``); ``TimeLimit``
enforces ``timeout=`` of agents that set one. Yours go in with ``Runtime(middleware=[...])``
or ``rt.add_middleware(...)``, in the order given (the first is the outermost of them).
"""

from ..errors import Defer, Retry, Veto
from .base import CallNext, Handler, LayerFunction, Middleware, as_middleware, fold
from .metrics import Metrics, Tuning
from .retries import Breaker, Retries, message_delay
from .time_limit import TimeLimit

__all__ = [
    "Breaker",
    "CallNext",
    "Defer",
    "Handler",
    "LayerFunction",
    "Metrics",
    "Middleware",
    "Retries",
    "Retry",
    "TimeLimit",
    "Tuning",
    "Veto",
    "as_middleware",
    "fold",
    "message_delay",
]
