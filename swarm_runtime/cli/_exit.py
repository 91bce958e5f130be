"""Named exit codes of the command line, and the one way a command fails.

Every command turns an error into one line on stderr and an exit code here
(:func:`fail`, :func:`exit_on_error`), so no path prints a traceback for a reason a
person can act on. Errors raised inside task groups arrive wrapped in (possibly nested)
exception groups; :func:`root_cause` digs out the one that matters.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from .._redact import redact
from ..errors import ConfigError, PipelineConfigError, QueueError, SwarmError, WorkflowError

__all__ = ["ExitCode", "exit_on_error", "fail", "root_cause", "usage_error"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # the run finished but some task failed
    USAGE = 2  # bad arguments or an invalid pipeline / config file
    QUEUE = 3  # the queue could not be opened (locked, corrupt, unreachable)
    INTERRUPTED = 130


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def root_cause(exc: BaseException) -> BaseException:
    """The error to report: ``exc`` itself, or the most telling leaf of an exception group.

    Cancellations are what other tasks got because one failed, so they are passed over;
    among the rest a :class:`SwarmError` (ours, with a message for people) comes first.
    """
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [leaf for leaf in _leaves(exc) if not isinstance(leaf, asyncio.CancelledError)]
    for kind in (KeyboardInterrupt, SwarmError, Exception):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return exc


def usage_error(message: str) -> NoReturn:
    """A bad argument: one line, exit code 2."""
    _die(ExitCode.USAGE, message)


def _die(code: ExitCode, message: str) -> NoReturn:
    click.echo(f"error: {redact(' '.join(message.split()))}", err=True)
    raise SystemExit(int(code))


def fail(exc: BaseException) -> NoReturn:
    """Report ``exc`` as one line (every problem of a config file on its own line) and exit.

    Anything that is not an error of ours (a bug) is re-raised with its traceback.
    """
    cause = root_cause(exc)
    if isinstance(cause, KeyboardInterrupt):
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    if isinstance(cause, PipelineConfigError):
        for problem in cause.problems:
            click.echo(problem.format(cause.source), err=True)
        count = len(cause.problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} found", err=True)
        raise SystemExit(int(ExitCode.USAGE))
    if isinstance(cause, (ConfigError, WorkflowError)):
        _die(ExitCode.USAGE, str(cause))
    if isinstance(cause, QueueError):
        _die(ExitCode.QUEUE, str(cause))
    if isinstance(cause, SwarmError):
        _die(ExitCode.FAILED, str(cause))
    if cause is not exc:
        raise cause from exc
    raise exc


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Run a command's body; our errors become one line and an exit code (see :func:`fail`)."""
    try:
        yield
    except (SystemExit, click.exceptions.Exit, click.ClickException):
        raise
    except BaseException as exc:
        fail(exc)
