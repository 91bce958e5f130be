"""The self-contained HTML report: one file, inline CSS and SVG, no URLs.

Up to :data:`~._large.LARGE_RUN` tasks the page has no script at all: the DAG task by task,
a bar per task on the timeline, a row per task. Bigger runs get the sections of
:mod:`._large` (collapsed DAG, load per replica, a paged table drawn by an inline script),
so that a 50,000-task report stays a few MB and opens in a few seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import orjson

from .._version import __version__
from ..artifacts import ArtifactRef, frame_to_json, is_artifact_ref, preview_table
from ..errors import ArtifactError
from ._format import fmt_number, fmt_seconds, fmt_time
from ._large import LARGE_RUN, collapsed_dag_svg, load_timeline_svg, task_table_html
from ._style import CSS, STATUS_COLOURS
from ._svg import MAX_DAG_NODES, dag_svg, gantt_svg, histogram_svg
from ._timing import timing_body
from .model import RunReport, TaskRecord

__all__ = ["render_html"]

_PREVIEW_ROWS = 8
_RESULTS_SHOWN = 50  # results drawn; the JSON report has them all
_PATH_SHOWN = 12  # tasks of the critical path named before "..."
_JSON_LIMIT = 6000
_STAT_ROWS = (("count", "count"), ("nulls", "nulls"), ("mean", "mean"), ("std", "std"),
              ("min", "min"), ("median", "median"), ("max", "max"))  # fmt: skip


def _badge(status: str, *, big: bool = False) -> str:
    size = " big" if big else ""
    return f'<span class="badge s-{escape(status)}{size}">{escape(status)}</span>'


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="null">null</span>'
    if isinstance(value, (dict, list)):
        return f'<span class="mono">{escape(_short_json(value, 60))}</span>'
    return escape(fmt_number(value, grouping=False))


def _short_json(value: Any, limit: int) -> str:
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header(report: RunReport) -> str:
    duration = report.duration
    meta = [
        ("run", f'<span class="mono">{escape(report.run_id)}</span>'),
        ("started", escape(fmt_time(report.started_at))),
        ("finished", escape(fmt_time(report.finished_at))),
        ("duration", escape(fmt_seconds(duration)) if duration is not None else "—"),
    ]
    if report.queue:
        meta.append(("queue", f'<span class="mono">{escape(report.queue)}</span>'))
    rows = "".join(f"<span>{k}</span><b>{v}</b>" for k, v in meta)
    sub = f'<div class="sub">{escape(report.description)}</div>' if report.description else ""
    return (
        '<header class="top"><div>'
        f"<h1>{escape(report.pipeline)}{_badge(report.status, big=True)}</h1>{sub}</div>"
        f'<div class="meta">{rows}</div></header>'
    )


def _cards(report: RunReport) -> str:
    counts = report.counts()
    retries = sum(max(0, t.attempts - 1) for t in report.tasks)
    open_alerts = sum(1 for a in report.alerts if a.resolved_at is None)
    cards = [
        ("tasks", len(report.tasks), ""),
        ("completed", counts["completed"], "ok"),
        ("failed", counts["failed"], "bad" if counts["failed"] else "muted"),
        ("skipped", counts["skipped"], "muted"),
        ("cancelled", counts["cancelled"], "warn" if counts["cancelled"] else "muted"),
        ("retries", retries, "warn" if retries else "muted"),
        ("alerts", len(report.alerts), "bad" if open_alerts else "muted"),
    ]
    if counts["running"] or counts["pending"]:
        cards.insert(4, ("not finished", counts["running"] + counts["pending"], "warn"))
    body = "".join(
        f'<div class="stat {cls}"><div class="n">{n:,}</div>'
        f'<div class="l">{escape(label)}</div></div>'
        for label, n, cls in cards
    )
    return f'<div class="cards">{body}</div>'


def _legend(statuses: Sequence[str]) -> str:
    items = []
    for status in statuses:
        fill, stroke = STATUS_COLOURS[status]
        items.append(
            f'<span><i style="background:{fill};border-color:{stroke}"></i>{escape(status)}</span>'
        )
    return f'<div class="legend">{"".join(items)}</div>'


def _panel(title: str, hint: str, body: str) -> str:
    return (
        f'<section class="panel"><h2>{escape(title)}</h2><p class="hint">{escape(hint)}</p>'
        f"{body}</section>"
    )


def _used_statuses(report: RunReport) -> list[str]:
    present = {t.status for t in report.tasks}
    return [s for s in STATUS_COLOURS if s in present]


def _dag_section(report: RunReport) -> str:
    svg = dag_svg(report)
    if not svg:
        if not report.tasks:
            return ""
        body = (
            f'<p class="muted">{len(report.tasks):,} tasks: too many to draw '
            f"(the limit is {MAX_DAG_NODES}).</p>"
        )
    else:
        body = f'<div class="scroll">{svg}</div>{_legend(_used_statuses(report))}'
    hint = "Tasks by dependency level; arrows follow the data. Hover for details."
    return _panel("Task graph", hint, body)


def _collapsed_dag_section(report: RunReport) -> str:
    svg, chain, total = collapsed_dag_svg(report)
    ran = any(t.duration for t in report.tasks)
    length = f"{fmt_seconds(total)} of task time" if ran else f"{len(chain)} tasks long"
    names = [escape(name) for name in chain]
    if len(names) > _PATH_SHOWN + 3:
        names = [*names[:_PATH_SHOWN], f"… {len(chain) - _PATH_SHOWN - 3:,} more …", *names[-3:]]
    path = (  # listed in the "Critical path and estimates" panel when the run recorded it
        ""
        if report.critical_path is not None and report.critical_path.tasks
        else f'<p class="critical"><b>Critical path</b> ({len(chain):,} tasks, {length}): '
        f'<span class="mono">{" → ".join(names)}</span></p>'
    )
    hint = (
        f"{len(report.tasks):,} tasks: too many to draw one by one, so each box holds the "
        "tasks of one agent (row) in a band of dependency levels (column), with their "
        "counts; arrows are dependencies between boxes (thicker: more of them); the "
        "purple boxes and arrows carry the critical path."
    )
    return _panel(
        "Task graph",
        hint,
        f'<div class="scroll">{svg}</div>{path}{_legend(_used_statuses(report))}',
    )


def _load_section(report: RunReport) -> str:
    svg = load_timeline_svg(report)
    if not svg:
        return ""
    hint = (
        "How many tasks each agent replica was running over time (averaged in short time "
        "bins); red lines mark failures. Hover a lane for its totals."
    )
    return _panel("Timeline", hint, f'<div class="scroll">{svg}</div>')


def _paged_tasks_section(report: RunReport) -> str:
    hint = (
        "Every task, a page at a time: search by task, agent or error, filter by status, "
        "or order by duration."
    )
    return _panel("Tasks", hint, task_table_html(report))


def _gantt_section(report: RunReport) -> str:
    svg = gantt_svg(report)
    if not svg:
        return ""
    hint = "When each task ran, one lane per agent replica (time from the start of the run)."
    return _panel(
        "Timeline", hint, f'<div class="scroll">{svg}</div>{_legend(_used_statuses(report))}'
    )


def _origin(report: RunReport) -> dt.datetime | None:
    """Time zero of the run: its start, else the first task's start."""
    starts = [t.started_at for t in report.tasks if t.started_at is not None]
    return report.started_at or min(starts, default=None)


def _offset(origin: dt.datetime | None, record: TaskRecord) -> str:
    if record.started_at is None or origin is None:
        return "—"
    return "+" + fmt_seconds((record.started_at - origin).total_seconds())


def _error(text: str | None) -> str:
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else text
    if len(first) <= 90 and first == text.strip():
        return f'<div class="error">{escape(first)}</div>'
    return (
        f'<div class="error"><details><summary>{escape(first[:90])}</summary>'
        f"<pre>{escape(text)}</pre></details></div>"
    )


def _timing_section(report: RunReport) -> str:
    body = timing_body(report)
    hint = (
        "The longest chain of dependent tasks (no schedule finishes sooner), and per agent "
        "the durations the scheduler expected against those measured."
    )
    return _panel("Critical path and estimates", hint, body) if body else ""


def _tasks_section(report: RunReport) -> str:
    if not report.tasks:
        return ""
    longest = max((t.duration or 0.0 for t in report.tasks), default=0.0) or 1.0
    origin = _origin(report)
    rows = []
    for t in report.tasks:
        if t.duration is not None:
            px = max(2.0, 90 * t.duration / longest)
            bar = f'<span class="durbar" style="width:{px:.0f}px"></span>'
            duration = bar + escape(fmt_seconds(t.duration))
        else:
            duration = "—"
        replica = "" if t.replica is None else escape(str(t.replica))
        rows.append(
            f"<tr><td><b>{escape(t.name)}</b></td><td>{escape(t.agent)}</td>"
            f'<td class="num">{replica}</td><td>{_badge(t.status)}</td>'
            f'<td class="num">{t.attempts}</td><td class="num">{_offset(origin, t)}</td>'
            f"<td>{duration}</td><td>{_error(t.error)}</td></tr>"
        )
    head = (
        '<tr><th>task</th><th>agent</th><th class="num">replica</th><th>status</th>'
        '<th class="num">attempts</th><th class="num">start</th><th>duration</th>'
        "<th>error</th></tr>"
    )
    table = (
        f'<div class="scroll"><table class="grid"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return _panel("Tasks", "Outcome, attempts and duration of every task.", table)


def _alerts_section(report: RunReport) -> str:
    if not report.alerts:
        return ""
    rows = []
    for a in report.alerts:
        state = "open" if a.resolved_at is None else f"resolved {fmt_time(a.resolved_at)}"
        where = f" ({escape(a.agent)})" if a.agent else ""
        note = f'<div class="muted">{escape(a.message)}</div>' if a.message else ""
        rows.append(
            f'<tr><td><span class="badge sev-{escape(a.severity)}">{escape(a.severity)}</span></td>'
            f"<td><b>{escape(a.metric)}</b>{where}{note}</td>"
            f'<td class="num">{escape(fmt_number(a.value))}</td>'
            f'<td class="num">{escape(fmt_number(a.threshold))}</td>'
            f"<td>{escape(fmt_time(a.raised_at))}</td><td>{escape(state)}</td></tr>"
        )
    head = (
        '<tr><th>severity</th><th>metric</th><th class="num">value</th>'
        '<th class="num">threshold</th><th>raised</th><th>state</th></tr>'
    )
    table = f'<table class="grid"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return _panel("Alerts", "Monitoring thresholds crossed during the run.", table)


def _is_table(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("rows"), list)
        and all(isinstance(r, list) for r in value["rows"][:_PREVIEW_ROWS])
    )


def _is_correlation(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("matrix"), list)
        and len(value["matrix"]) == len(value["columns"])
        and all(isinstance(r, list) and len(r) == len(value["columns"]) for r in value["matrix"])
    )


def _is_distribution(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Mapping) and "count" in v for v in value.values())
    )


def _heat_colour(r: float) -> tuple[str, str]:
    strength = min(1.0, abs(r))
    rgb = "220,38,38" if r >= 0 else "37,99,235"
    ink = "#ffffff" if strength > 0.55 else "#0f172a"
    return f"rgba({rgb},{0.08 + 0.82 * strength:.3f})", ink


def _correlation_html(corr: Mapping[str, Any]) -> str:
    names = [str(c) for c in corr["columns"]]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for name, line in zip(names, corr["matrix"], strict=True):
        cells = []
        for other, r in zip(names, line, strict=True):
            tip = f"{name} vs {other}"
            if isinstance(r, (int, float)) and not isinstance(r, bool):
                bg, ink = _heat_colour(float(r))
                cells.append(
                    f'<td style="background:{bg};color:{ink}" title="{escape(tip)}">'
                    f"{float(r):.2f}</td>"
                )
            else:
                cells.append(f'<td class="na" title="{escape(tip)}: undefined">—</td>')
        rows.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    method = escape(str(corr.get("method", "pearson")))
    return (
        f"<h4>correlation ({method})</h4>"
        f'<div class="scroll"><table class="heat"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _distribution_html(dist: Mapping[str, Any]) -> str:
    cards = []
    for name, stats in dist.items():
        pairs = [(label, stats.get(key)) for label, key in _STAT_ROWS]
        quantiles = stats.get("quantiles")
        if isinstance(quantiles, Mapping):
            pairs.extend((str(k), v) for k, v in quantiles.items())
        cells = [f"<td>{escape(label)}</td><td>{_cell(value)}</td>" for label, value in pairs]
        body = "".join(
            "<tr>" + "".join(cells[i : i + 2]) + "</tr>" for i in range(0, len(cells), 2)
        )
        histogram = stats.get("histogram")
        svg = ""
        if isinstance(histogram, Mapping):
            edges, counts = histogram.get("edges"), histogram.get("counts")
            if isinstance(edges, list) and isinstance(counts, list):
                svg = histogram_svg(edges, counts)
        cards.append(
            f'<div class="dist"><div class="name">{escape(str(name))}</div>{svg}'
            f"<table>{body}</table></div>"
        )
    return f'<h4>distribution</h4><div class="dists">{"".join(cards)}</div>'


def _table_html(table: Mapping[str, Any]) -> str:
    columns = [str(c) for c in table["columns"]]
    rows = table["rows"]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in rows[:_PREVIEW_ROWS]
    )
    more = (
        f'<p class="muted">first {_PREVIEW_ROWS} of {len(rows):,} rows</p>'
        if len(rows) > _PREVIEW_ROWS
        else ""
    )
    return (
        f'<div class="scroll"><table class="grid preview"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{more}"
    )


def _json_html(value: Any) -> str:
    text = orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
    ).decode()
    if len(text) > _JSON_LIMIT:
        text = text[:_JSON_LIMIT] + f"\n… ({len(text) - _JSON_LIMIT:,} more characters)"
    return f'<pre class="json">{escape(text)}</pre>'


def _artifact_html(name: str, value: Mapping[str, Any], agent: str) -> str:
    """A table artifact: its schema, row count, first rows (read alone) and where it is."""
    ref = ArtifactRef.from_json(value)
    schema = ", ".join(f"{column}: {dtype}" for column, dtype in ref.schema)
    shape = f"{ref.rows:,} rows, {len(ref.schema)} columns, {ref.size:,} bytes"
    try:
        head = frame_to_json(preview_table(ref, _PREVIEW_ROWS))
        preview = _table_html({"columns": head["columns"], "rows": head["rows"]})
        if ref.rows > _PREVIEW_ROWS:
            preview = preview + f'<p class="muted">first {_PREVIEW_ROWS} of {ref.rows:,} rows</p>'
    except ArtifactError as exc:
        preview = f'<p class="muted">preview unavailable: {escape(str(exc))}</p>'
    return (
        f'<div class="result"><h3>{escape(name)} {agent}<small>{shape}</small></h3>'
        f'<p class="muted">schema: {escape(schema)}</p>{preview}'
        f'<p class="muted">artifact <span class="mono">{escape(ref.uri)}</span> '
        f"({escape(ref.checksum)})</p></div>"
    )


def _result_html(name: str, value: Any, record: TaskRecord | None) -> str:
    agent = f"<small>{escape(record.agent)}</small>" if record else ""
    title = f"<h3>{escape(name)} {agent}</h3>"
    if is_artifact_ref(value):
        return _artifact_html(name, value, agent)
    if isinstance(value, Mapping) and (
        _is_correlation(value.get("correlation")) or _is_distribution(value.get("distribution"))
    ):
        parts = [title]
        if isinstance(value.get("rows"), int):
            parts[0] = (
                f"<h3>{escape(name)} {agent}<small>{value['rows']:,} rows analysed</small></h3>"
            )
        if _is_correlation(value.get("correlation")):
            parts.append(_correlation_html(value["correlation"]))
        if _is_distribution(value.get("distribution")):
            parts.append(_distribution_html(value["distribution"]))
        return f'<div class="result">{"".join(parts)}</div>'
    if _is_table(value):
        shape = f"{len(value['rows']):,} rows, {len(value['columns'])} columns"
        return (
            f'<div class="result"><h3>{escape(name)} {agent}<small>{shape}</small></h3>'
            f"{_table_html(value)}</div>"
        )
    if isinstance(value, Mapping) and isinstance(value.get("path"), str) and "bytes" in value:
        rows = value.get("rows")
        detail = f"{rows:,} rows, " if isinstance(rows, int) else ""
        size = value.get("bytes")
        detail += f"{size:,} bytes" if isinstance(size, int) else ""
        return (
            f'<div class="result">{title}<p>wrote <span class="mono">{escape(value["path"])}</span>'
            f' <span class="muted">({escape(detail)})</span></p></div>'
        )
    return f'<div class="result">{title}{_json_html(value)}</div>'


def _results_section(report: RunReport) -> str:
    if not report.results:
        return ""
    records = {t.name: t for t in report.tasks}
    ordered = [t.name for t in report.tasks if t.name in report.results]
    ordered += [name for name in report.results if name not in records]
    hint = "What each task returned: analyses as charts, tables as a preview, files written."
    if len(ordered) > _RESULTS_SHOWN:
        returned = [name for name in ordered if report.results[name] is not None]
        if not returned:
            return ""
        if len(returned) > _RESULTS_SHOWN:
            hint += (
                f" The first {_RESULTS_SHOWN} of {len(returned):,} results; the JSON report "
                "(--report FILE.json) has them all."
            )
        ordered = returned[:_RESULTS_SHOWN]
    body = "".join(_result_html(name, report.results[name], records.get(name)) for name in ordered)
    return _panel("Results", hint, f'<div class="results">{body}</div>')


def render_html(report: RunReport, *, generated_at: dt.datetime | None = None) -> str:
    """The whole report as one HTML document."""
    when = fmt_time(generated_at or dt.datetime.now(dt.UTC))
    title = f"{report.pipeline} · {report.status} · swarm-runtime report"
    large = len(report.tasks) > LARGE_RUN
    body = "".join(
        [
            _header(report),
            _cards(report),
            _collapsed_dag_section(report) if large else _dag_section(report),
            _load_section(report) if large else _gantt_section(report),
            _timing_section(report),
            _paged_tasks_section(report) if large else _tasks_section(report),
            _alerts_section(report),
            _results_section(report),
            f"<footer>swarm-runtime {escape(__version__)} · report generated "
            f"{escape(when)}</footer>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
