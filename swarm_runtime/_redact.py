"""Credentials out of everything shown or stored: ``redis://:PASSWORD@host`` -> ``redis://:***@host``.

URLs reach run lines, reports, ``queue stats`` headers, log records and error messages;
each of those passes what it shows through :func:`redact` first.
"""

from __future__ import annotations

import re

__all__ = ["redact"]

#: ``scheme://[user]:password@`` anywhere in a text; the user name stays, the password goes.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*):(?P<secret>[^/\s]+)@")


def redact(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with every password replaced by ``***``."""
    if "@" not in text:
        return text
    return _CREDENTIALS.sub(r"\g<head>:***@", text)
