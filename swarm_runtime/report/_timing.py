"""The report's scheduling panel: the run's critical path, and per agent the durations
the scheduler estimated against those measured."""

from __future__ import annotations

from html import escape

from ._format import fmt_seconds
from .model import RunReport

__all__ = ["PATH_SHOWN", "timing_body"]

#: tasks of a long critical path shown at each end (the middle is counted, not listed)
PATH_SHOWN = 8


def _path(tasks: list[str]) -> str:
    names = [f'<span class="mono">{escape(name)}</span>' for name in tasks]
    if len(names) > 2 * PATH_SHOWN:
        hidden = len(names) - 2 * PATH_SHOWN
        names = [
            *names[:PATH_SHOWN],
            f'<span class="muted">… {hidden:,} more …</span>',
            *names[-PATH_SHOWN:],
        ]
    return " → ".join(names)


def _seconds(value: float | None) -> str:
    return "—" if value is None else escape(fmt_seconds(value))


def timing_body(report: RunReport) -> str:
    """The panel's HTML ("" when the report has no critical path)."""
    path = report.critical_path
    if path is None or not path.tasks:
        return ""
    facts = [f"<b>{len(path.tasks):,}</b> tasks, <b>{_seconds(path.seconds)}</b>"]
    if path.estimated_seconds is not None:
        facts.append(f"estimated {_seconds(path.estimated_seconds)}")
    duration = report.duration
    if duration is not None and path.seconds > 0:
        facts.append(f"the run took {_seconds(duration)} = {duration / path.seconds:.2f}x it")
    policy = f"scheduling: <b>{escape(report.scheduling)}</b> · " if report.scheduling else ""
    parts = [
        f"<p>{policy}critical path: {', '.join(facts)}</p>",
        f'<p class="critical-path">{_path(path.tasks)}</p>',
    ]
    if report.durations:
        rows = []
        for entry in report.durations:
            error = entry.error
            ratio = None if error is None else error + 1.0
            off = "—" if ratio is None else f"{ratio:.2f}x" if ratio < 100 else "&gt;100x"
            rows.append(
                f"<tr><td><b>{escape(entry.agent)}</b></td>"
                f'<td class="num">{entry.tasks:,}</td>'
                f'<td class="num">{_seconds(entry.estimated_mean)}</td>'
                f'<td class="num">{_seconds(entry.actual_mean)}</td>'
                f'<td class="num">{off}</td>'
                f'<td class="num">{_seconds(entry.actual_total)}</td></tr>'
            )
        head = (
            '<tr><th>agent</th><th class="num">tasks</th><th class="num">estimated mean</th>'
            '<th class="num">actual mean</th><th class="num">estimated / actual</th>'
            '<th class="num">actual total</th></tr>'
        )
        parts.append(
            f'<div class="scroll"><table class="grid durations"><thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    return "".join(parts)
