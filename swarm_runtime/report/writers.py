"""Write a run report as JSON (for machines) or as one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson

from ..agents.builtin import atomic_write
from ._html import render_html
from .model import RunReport

__all__ = ["render_html", "report_json", "write_html_report", "write_json_report"]


def report_json(report: RunReport) -> bytes:
    """The report as indented JSON bytes (times in ISO 8601)."""
    return orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


def write_json_report(report: RunReport, path: str | os.PathLike[str]) -> Path:
    """Write the JSON report atomically; returns the absolute path written."""
    return atomic_write(path, report_json(report))


def write_html_report(
    report: RunReport, path: str | os.PathLike[str], *, generated_at: dt.datetime | None = None
) -> Path:
    """Write the HTML report (inline CSS and SVG, no scripts or URLs) atomically."""
    return atomic_write(path, render_html(report, generated_at=generated_at).encode("utf-8"))
