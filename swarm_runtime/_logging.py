"""structlog set-up: console on a terminal, JSON lines otherwise, context from contextvars."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger", "merge_runtime_context", "task_context"]

#: (agent, message_id, workflow_id) of the message being handled by the current task.
#: One contextvar, set once per message: much cheaper than binding three structlog vars.
task_context: contextvars.ContextVar[tuple[str, str, str | None] | None] = contextvars.ContextVar(
    "swarm_runtime_task", default=None
)


def merge_runtime_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor adding ``agent``, ``message_id`` and ``workflow_id`` of the message
    being handled; add it to your own structlog configuration if you have one."""
    current = task_context.get()
    if current is not None:
        event_dict.setdefault("agent", current[0])
        event_dict.setdefault("message_id", current[1])
        event_dict.setdefault("workflow_id", current[2])
    return event_dict


_configured = False


def configure_logging(
    level: str | int = "info", *, json: bool | None = None, force: bool = False
) -> None:
    """Configure structlog for swarm-runtime.

    Leaves an application's own structlog configuration alone unless ``force`` is set.
    ``json=None`` picks the console renderer when stderr is a terminal, JSON otherwise.
    Every line carries the ids bound with ``structlog.contextvars`` (agent, message, workflow).
    """
    global _configured
    if (_configured or structlog.is_configured()) and not force:
        return
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"unknown log level {level!r}")
        level = numeric
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            merge_runtime_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str = "swarm_runtime", **bindings: Any) -> Any:
    """A structlog logger named ``name`` with ``bindings``.

    A lazy proxy: it is bound to the configuration in force when it first logs, not when
    it was made, so module-level loggers follow a later :func:`configure_logging`.
    """
    return structlog.get_logger(name, **bindings)
