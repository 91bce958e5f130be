"""Logging: keep runtimes from reconfiguring structlog for the rest of the test session."""

from __future__ import annotations

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_left_alone() -> None:
    """Mark structlog as configured (with its defaults, same processor list) so the
    runtimes these tests start do not install the package's configuration: that would
    swap the processor list that loggers bound at import time hold, and later tests'
    ``structlog.testing.capture_logs`` would no longer see their events."""
    if not structlog.is_configured():
        structlog.configure()
