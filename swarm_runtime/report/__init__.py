"""Run reports: the :class:`RunReport` the orchestrator fills, and its JSON and HTML forms."""

from __future__ import annotations

from .model import (
    TASK_STATUSES,
    AgentDurations,
    AlertRecord,
    CriticalPath,
    RunReport,
    RunStatus,
    Severity,
    TaskRecord,
    TaskStatus,
    load_json_report,
)
from .writers import render_html, report_json, write_html_report, write_json_report

__all__ = [
    "TASK_STATUSES",
    "AgentDurations",
    "AlertRecord",
    "CriticalPath",
    "RunReport",
    "RunStatus",
    "Severity",
    "TaskRecord",
    "TaskStatus",
    "load_json_report",
    "render_html",
    "report_json",
    "write_html_report",
    "write_json_report",
]
