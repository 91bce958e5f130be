"""Logging like a library: the package configures nothing global.

Every logger of the package is a :func:`get_logger` proxy. While the application has not
configured structlog, it is a ``structlog.stdlib`` logger on the stdlib logger of the same
name (``swarm_runtime.replica``, ...): the records reach the application's own ``logging``
handlers (``logging.basicConfig``) with the event and its fields in the message
(``handler failed; will retry agent='bad' attempt=1``) and the fields, the agent, message
and workflow ids among them, as attributes of the ``LogRecord``. The package adds only a
``NullHandler`` (the standard library's advice), so it prints nothing by itself. Once the
application configures structlog, the package logs through that configuration instead.
The CLI (and an application that wants it) calls :func:`configure_logging` for console
or JSON lines on stderr.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any

import structlog

from .errors import InvalidArgumentError

__all__ = ["configure_logging", "get_logger", "merge_runtime_context", "task_context"]

logging.getLogger("swarm_runtime").addHandler(logging.NullHandler())

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


# attributes every LogRecord has: fields of these names stay in the message text only
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _render_for_stdlib(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """Last processor of the stdlib path: ``event key=value ...`` as the message, the
    fields also as ``LogRecord`` attributes (``record.agent``, ``record.message_id``...)."""
    event = str(event_dict.pop("event", ""))
    exc_info = event_dict.pop("exc_info", None)
    parts = [event]
    extra: dict[str, Any] = {}
    for key, value in event_dict.items():
        parts.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
        if key not in _RESERVED:
            extra[key] = value
    kwargs: dict[str, Any] = {"extra": extra}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (" ".join(parts),), kwargs


_STDLIB_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    merge_runtime_context,
    _render_for_stdlib,
]


class _LibraryLogger:
    """What :func:`get_logger` returns: logs through the application's structlog
    configuration if it has one, else through stdlib ``logging`` (see the module)."""

    __slots__ = ("_context", "_name", "_stdlib")

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context
        self._stdlib: Any = None

    def bind(self, **values: Any) -> _LibraryLogger:
        return _LibraryLogger(self._name, {**self._context, **values})

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name, **self._context)
        if self._stdlib is None:
            self._stdlib = structlog.wrap_logger(
                logging.getLogger(self._name),
                processors=_STDLIB_PROCESSORS,
                wrapper_class=structlog.stdlib.BoundLogger,
                context_class=dict,
                **self._context,
            )
        return self._stdlib

    def __getattr__(self, name: str) -> Any:  # info, warning, ...: the target's methods
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return f"<swarm_runtime logger {self._name!r} {self._context!r}>"


def get_logger(name: str = "swarm_runtime", **bindings: Any) -> Any:
    """The package's logger named ``name`` with ``bindings`` (see the module docstring).

    A proxy decided at each call: it follows a structlog configuration made after it
    was created (by the application, :func:`configure_logging`, or
    ``structlog.testing.capture_logs``).
    """
    return _LibraryLogger(name, bindings)


def configure_logging(
    level: str | int = "info",
    *,
    json: bool | None = None,
    force: bool = False,
    processors: Sequence[Any] = (),
) -> None:
    """Opt in to swarm-runtime's own log output: structlog lines on stderr.

    The package never calls this itself; the CLI does. Leaves an application's own
    structlog configuration alone unless ``force`` is set. ``json=None`` picks the
    console renderer when stderr is a terminal, JSON lines otherwise. Every line carries
    the ids of the message being handled (agent, message, workflow) and those bound with
    ``structlog.contextvars``. ``processors`` run first (e.g. a filter dropping lines).
    """
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise InvalidArgumentError(f"unknown log level {level!r}")
        level = numeric
    if structlog.is_configured() and not force:
        return
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *processors,
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
