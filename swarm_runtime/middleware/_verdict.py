"""What an exception out of the stack means for a message: outcome, error to report, dead?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Defer, Retry, TaskTimeoutError, Veto

if TYPE_CHECKING:
    from ..events import Outcome
    from ..message import Message

__all__ = ["Verdict", "verdict"]

Verdict = tuple["Outcome", BaseException, bool]
"""(outcome, the error to report, whether the message is dead-lettered)."""


def verdict(exc: BaseException, msg: Message, max_attempts: int) -> Verdict:
    """Judge the exception that left a message's stack (``max_attempts``: the queue's default
    limit, for messages that carry none). ``Retry`` reports the error it was raised from."""
    limit = msg.max_attempts or max_attempts
    if isinstance(exc, Retry):
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        dead = exc.dead_letter or msg.attempts >= limit
        return ("timeout" if isinstance(cause, TaskTimeoutError) else "error"), cause, dead
    if isinstance(exc, Veto):
        return "rejected", exc, True
    if isinstance(exc, Defer):
        return "rejected", exc, False
    if isinstance(exc, Exception):
        timed_out = isinstance(exc, TaskTimeoutError)
        return ("timeout" if timed_out else "error"), exc, msg.attempts >= limit
    return "cancelled", exc, False
