"""Logging: keep runtimes from reconfiguring structlog (the fixture tests/orchestrator uses)."""

from __future__ import annotations

from ..orchestrator.conftest import _structlog_left_alone

__all__ = ["_structlog_left_alone"]
