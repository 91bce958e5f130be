"""The report's sections for big runs, whose size does not grow with the number of tasks.

Past :data:`LARGE_RUN` tasks the HTML report draws the DAG collapsed (one box per agent
and band of dependency levels, with counts per status, edges counted, the critical path
highlighted and listed), the timeline as one load curve per agent replica (time in
bins), and the task table as a page of rows drawn by a small inline script from the
tasks' data embedded as JSON (search, status filter, paging). Still one file, no network.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape
from typing import Any

import orjson

from ..pipeline.critical_path import critical_path as longest_chain
from ._style import STATUS_COLOURS
from ._svg import dag_levels, time_axis, time_range
from .model import RunReport, TaskRecord

__all__ = [
    "LARGE_RUN",
    "collapsed_dag_svg",
    "critical_path",
    "load_timeline_svg",
    "task_table_html",
]

#: runs with more tasks than this get the sections of this module
LARGE_RUN = 400
_MAX_COLUMNS = 12  # bands of dependency levels
_MAX_AGENT_ROWS = 12  # agents drawn; the others share one row
_MAX_EDGES = 300  # the most-used edges between boxes
_MAX_LANES = 40  # timeline lanes: replicas, else agents, else the busiest agents
_BINS = 240
_PAGE = 100
_ERROR_CHARS = 300
_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 168, 62, 56, 16, 16
_ORDER = ("completed", "failed", "running", "cancelled", "skipped", "pending")


def critical_path(report: RunReport) -> tuple[list[str], float]:
    """The run's critical path: the report's own when the orchestrator recorded it, else
    the longest chain by task duration (by task count when nothing ran) and its length."""
    recorded = report.critical_path
    if recorded is not None and recorded.tasks:
        return list(recorded.tasks), recorded.seconds
    names = [t.name for t in report.tasks]
    deps: dict[str, list[str]] = {name: [] for name in names}
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for a, b in report.edges:
        if a in deps and b in deps and a != b:
            deps[b].append(a)
            dependents[a].append(b)
    durations = {t.name: t.duration or 0.0 for t in report.tasks}
    if any(durations.values()):
        return longest_chain(names, deps, dependents, durations.__getitem__)
    return longest_chain(names, deps, dependents, lambda _name: 1.0)


def _agent_rows(tasks: Sequence[TaskRecord]) -> dict[str, str]:
    """Agent -> the row it is drawn in (the busiest agents, then one shared row)."""
    counts = Counter(t.agent for t in tasks)
    ranked = [agent for agent, _ in counts.most_common()]
    if len(ranked) <= _MAX_AGENT_ROWS:
        return {agent: agent for agent in ranked}
    kept = ranked[: _MAX_AGENT_ROWS - 1]
    other = f"{len(ranked) - len(kept)} other agents"
    return {agent: (agent if agent in kept else other) for agent in ranked}


def _status_bar(counts: Counter[str], x: float, y: float, width: float) -> str:
    total = sum(counts.values()) or 1
    parts = []
    at = x
    for status in _ORDER:
        n = counts.get(status, 0)
        if not n:
            continue
        w = width * n / total
        fill = STATUS_COLOURS[status][1]
        parts.append(
            f'<rect x="{at:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="6" fill="{fill}"/>'
        )
        at += w
    return "".join(parts)


def collapsed_dag_svg(report: RunReport) -> tuple[str, list[str], float]:
    """The collapsed DAG as SVG, with the critical path (its tasks and their total)."""
    names = [t.name for t in report.tasks]
    level = dag_levels(names, report.edges)
    chain, total = critical_path(report)
    on_path = set(chain)
    levels = max(level.values(), default=0) + 1
    band_size = max(1, math.ceil(levels / _MAX_COLUMNS))
    rows = _agent_rows(report.tasks)
    row_order: list[str] = list(dict.fromkeys(rows.values()))
    groups: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    critical: set[tuple[str, int]] = set()
    group_of: dict[str, tuple[str, int]] = {}
    for t in report.tasks:
        key = (rows[t.agent], level[t.name] // band_size)
        groups[key][t.status] += 1
        group_of[t.name] = key
        if t.name in on_path:
            critical.add(key)
    edges: Counter[tuple[tuple[str, int], tuple[str, int]]] = Counter()
    for a, b in report.edges:
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is not None and gb is not None and ga != gb:
            edges[(ga, gb)] += 1
    critical_edges = {
        (group_of[a], group_of[b])
        for a, b in itertools.pairwise(chain)
        if group_of[a] != group_of[b]
    }
    columns = (levels + band_size - 1) // band_size
    label_w = 150
    width = _PAD * 2 + label_w + columns * _BOX_W + (columns - 1) * _GAP_X
    height = _PAD * 2 + 22 + len(row_order) * (_BOX_H + _GAP_Y)
    row_y = {row: _PAD + 22 + i * (_BOX_H + _GAP_Y) for i, row in enumerate(row_order)}

    def box_x(band: int) -> float:
        return _PAD + label_w + band * (_BOX_W + _GAP_X)

    parts = [
        f'<svg class="dag collapsed" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="collapsed task graph">',
        '<defs><marker id="carrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#94a3b8"/></marker></defs>',
    ]
    for band in range(columns):
        first, last = band * band_size, min(levels, (band + 1) * band_size) - 1
        text = f"level {first}" if first == last else f"levels {first}-{last}"
        parts.append(
            f'<text class="tick" x="{box_x(band) + _BOX_W / 2:.1f}" y="{_PAD + 8}" '
            f'text-anchor="middle">{text}</text>'
        )
    for row in row_order:
        parts.append(
            f'<text class="lane" x="{_PAD}" y="{row_y[row] + _BOX_H / 2 + 4:.1f}">'
            f"{escape(row[:22])}</text>"
        )
    drawn = sorted(edges.items(), key=lambda item: -item[1])[:_MAX_EDGES]
    drawn_keys = {key for key, _ in drawn}
    drawn += [(key, edges[key]) for key in critical_edges if key not in drawn_keys]
    biggest = max((n for _, n in drawn), default=1)
    for (ga, gb), n in drawn:
        x1, y1 = box_x(ga[1]) + _BOX_W, row_y[ga[0]] + _BOX_H / 2
        x2, y2 = box_x(gb[1]) - 2, row_y[gb[0]] + _BOX_H / 2
        if x2 <= x1:  # same band, another row: from the bottom to the top
            x1, y1 = box_x(ga[1]) + _BOX_W / 2, row_y[ga[0]] + _BOX_H
            x2, y2 = box_x(gb[1]) + _BOX_W / 2, row_y[gb[0]] - 2
            if y2 < y1:
                y1, y2 = row_y[ga[0]], row_y[gb[0]] + _BOX_H + 2
        bend = max(20.0, abs(x2 - x1) / 2)
        hot = (ga, gb) in critical_edges
        thickness = 1.0 + 4.0 * math.log1p(n) / math.log1p(biggest)
        style = ' style="stroke:#7c3aed;opacity:.9"' if hot else ""
        parts.append(
            f'<path class="edge" d="M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, '
            f'{x2 - bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}" stroke-width="{thickness:.1f}"'
            f'{style} marker-end="url(#carrow)"><title>{n:,} dependencies</title></path>'
        )
    for (row, band), counts in groups.items():
        x, y = box_x(band), row_y[row]
        total_n = sum(counts.values())
        worst = next((s for s in ("failed", "cancelled", "running", "pending", "skipped")
                      if counts.get(s)), "completed")  # fmt: skip
        fill, stroke = STATUS_COLOURS[worst]
        hot = (row, band) in critical
        border = ' stroke="#7c3aed" stroke-width="3"' if hot else f' stroke="{stroke}"'
        detail = ", ".join(f"{counts[s]:,} {s}" for s in _ORDER if counts.get(s))
        tip = f"{row}, levels of band {band}: {total_n:,} tasks ({detail})"
        if hot:
            tip += "; on the critical path"
        parts.append(
            f'<g class="node"><title>{escape(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" rx="9" '
            f'fill="{fill}"{border}/>'
            f'<text class="t" x="{x + 10:.1f}" y="{y + 20:.1f}">{total_n:,} '
            f"task{'s' if total_n != 1 else ''}</text>"
            f'<text class="d" x="{x + 10:.1f}" y="{y + 36:.1f}">'
            f"{escape(_short_counts(counts))}</text>"
            f"{_status_bar(counts, x + 10, y + 46, _BOX_W - 20)}</g>"
        )
    parts.append("</svg>")
    return "".join(parts), chain, total


def _short_counts(counts: Counter[str]) -> str:
    shown = [f"{counts[s]:,} {s}" for s in ("failed", "skipped", "cancelled") if counts.get(s)]
    return ", ".join(shown) if shown else "all completed" if counts.get("completed") else ""


def load_timeline_svg(report: RunReport, *, width: int = 1180) -> str:
    """One lane per agent replica (per agent when there are too many replicas): how many
    of its tasks were running, averaged over each of :data:`_BINS` time bins."""
    ran = [t for t in report.tasks if t.started_at is not None]
    if not ran:
        return ""
    t0, t1, span = time_range(report, ran)
    lanes = {t.lane for t in ran}
    by_agent = len(lanes) > _MAX_LANES

    def key_of(task: TaskRecord) -> str:
        return task.agent if by_agent else task.lane

    counts = Counter(key_of(t) for t in ran)
    kept = [lane for lane, _ in counts.most_common(_MAX_LANES)]
    kept_set = set(kept)
    other = f"{len(counts) - len(kept)} other agents" if len(counts) > len(kept) else None
    order = sorted(kept) + ([other] if other else [])
    diff: dict[str, list[float]] = {lane: [0.0] * (_BINS + 1) for lane in order}
    part: dict[str, list[float]] = {lane: [0.0] * _BINS for lane in order}
    fails: dict[str, Counter[int]] = {lane: Counter() for lane in order}
    tasks_in: Counter[str] = Counter()
    scale = _BINS / span
    for t in ran:
        assert t.started_at is not None
        lane = key_of(t)
        lane = lane if lane in kept_set else other or lane
        tasks_in[lane] += 1
        a = (t.started_at - t0).total_seconds() * scale
        b = ((t.finished_at or t1) - t0).total_seconds() * scale
        a, b = min(max(a, 0.0), _BINS), min(max(b, a), _BINS)
        ia, ib = min(int(a), _BINS - 1), min(int(b), _BINS - 1)
        if ia == ib:
            part[lane][ia] += b - a
        else:
            part[lane][ia] += ia + 1 - a
            part[lane][ib] += b - ib
            diff[lane][ia + 1] += 1.0
            diff[lane][ib] -= 1.0
        if t.status == "failed":
            fails[lane][ib] += 1
    label_w, top, lane_h = 230.0, 28.0, 34.0
    plot_w = width - label_w - 16
    height = top + len(order) * lane_h + 8
    bin_w = plot_w / _BINS
    parts = [
        f'<svg class="gantt load" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="timeline">'
    ]
    parts.append(time_axis(span, left=label_w, width=plot_w, top=top, bottom=height - 4))
    for i, lane in enumerate(order):
        y = top + i * lane_h
        running = 0.0
        level = []
        for b in range(_BINS):
            running += diff[lane][b]
            level.append(running + part[lane][b])
        peak = max(level) or 1.0
        busy = sum(level) / _BINS
        if i % 2 == 0:
            parts.append(
                f'<rect class="lane-bg" x="0" y="{y}" width="{width}" height="{lane_h}" rx="4"/>'
            )
        parts.append(
            f'<text class="lane" x="10" y="{y + lane_h / 2 + 4:.1f}">{escape(str(lane)[:26])}'
            f"<title>{escape(str(lane))}: {tasks_in[lane]:,} tasks, on average {busy:.2f} "
            f"running, at most {peak:.1f}</title></text>"
        )
        base = y + lane_h - 4
        points = [f"M {label_w:.1f} {base:.1f}"]
        for b, value in enumerate(level):
            h = (lane_h - 10) * value / peak
            points.append(f"L {label_w + b * bin_w:.1f} {base - h:.1f}")
            points.append(f"L {label_w + (b + 1) * bin_w:.1f} {base - h:.1f}")
        points.append(f"L {label_w + plot_w:.1f} {base:.1f} Z")
        parts.append(
            f'<path d="{" ".join(points)}" fill="#bfdbfe" stroke="#2563eb" stroke-width="1">'
            f"<title>{escape(str(lane))}: {tasks_in[lane]:,} tasks, peak {peak:.1f} at once"
            "</title></path>"
        )
        for b, n in fails[lane].items():
            x = label_w + (b + 0.5) * bin_w
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + 3}" x2="{x:.1f}" y2="{base:.1f}" '
                f'stroke="#dc2626" stroke-width="1.5"><title>{n} failed</title></line>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _task_data(report: RunReport) -> bytes:
    """The tasks as columns of JSON, safe inside a <script> element."""
    origin = report.started_at or min(
        (t.started_at for t in report.tasks if t.started_at is not None), default=None
    )
    agents: dict[str, int] = {}
    statuses: dict[str, int] = {}
    columns: dict[str, list[Any]] = {k: [] for k in ("n", "a", "s", "r", "t", "b", "d")}
    errors: dict[str, str] = {}
    for i, t in enumerate(report.tasks):
        columns["n"].append(t.name)
        columns["a"].append(agents.setdefault(t.agent, len(agents)))
        columns["s"].append(statuses.setdefault(t.status, len(statuses)))
        columns["r"].append(t.replica)
        columns["t"].append(t.attempts)
        start = None
        if t.started_at is not None and origin is not None:
            start = round((t.started_at - origin).total_seconds() * 1000, 1)
        columns["b"].append(start)
        columns["d"].append(None if t.duration is None else round(t.duration * 1000, 1))
        if t.error:
            errors[str(i)] = (
                t.error.strip().splitlines()[0][:_ERROR_CHARS] if t.error.strip() else ""
            )
    data = {**columns, "agents": list(agents), "statuses": list(statuses), "errors": errors}
    return orjson.dumps(data).replace(b"<", b"\\u003c")


_TABLE_SCRIPT = """
(function () {
  var d = JSON.parse(document.getElementById("task-data").textContent);
  var n = d.n.length, per = PAGE, page = 0, rows = [], order = "declared";
  var q = document.getElementById("task-q"), st = document.getElementById("task-s");
  var so = document.getElementById("task-o"), body = document.getElementById("task-b");
  var info = document.getElementById("task-i");
  var prev = document.getElementById("task-p"), next = document.getElementById("task-n");
  var counts = {};
  for (var i = 0; i < n; i++) { var s = d.statuses[d.s[i]]; counts[s] = (counts[s] || 0) + 1; }
  Object.keys(counts).sort().forEach(function (s) {
    var o = document.createElement("option"); o.value = s;
    o.textContent = s + " (" + counts[s].toLocaleString() + ")"; st.appendChild(o);
  });
  function ms(v) {
    if (v === null) return "\\u2014";
    if (v < 1000) return v.toFixed(v < 10 ? 1 : 0) + " ms";
    if (v < 60000) return (v / 1000).toFixed(2) + " s";
    var m = Math.floor(v / 60000), sec = Math.round((v % 60000) / 1000);
    return m + "m " + String(sec).padStart(2, "0") + "s";
  }
  function apply() {
    var term = q.value.trim().toLowerCase(), want = st.value;
    rows = [];
    for (var i = 0; i < n; i++) {
      if (want !== "all" && d.statuses[d.s[i]] !== want) continue;
      if (term) {
        var err = d.errors[i] || "";
        if (d.n[i].toLowerCase().indexOf(term) < 0
            && d.agents[d.a[i]].toLowerCase().indexOf(term) < 0
            && err.toLowerCase().indexOf(term) < 0) continue;
      }
      rows.push(i);
    }
    if (so.value === "slowest") {
      rows.sort(function (x, y) { return (d.d[y] || -1) - (d.d[x] || -1); });
    }
    page = 0; draw();
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td"); td.textContent = text;
    if (cls) td.className = cls; tr.appendChild(td); return td;
  }
  function draw() {
    var pages = Math.max(1, Math.ceil(rows.length / per));
    page = Math.min(page, pages - 1);
    var frag = document.createDocumentFragment();
    for (var k = page * per; k < Math.min(rows.length, (page + 1) * per); k++) {
      var i = rows[k], tr = document.createElement("tr"), status = d.statuses[d.s[i]];
      var b = document.createElement("b"); b.textContent = d.n[i];
      var td = document.createElement("td"); td.appendChild(b); tr.appendChild(td);
      cell(tr, d.agents[d.a[i]]);
      cell(tr, d.r[i] === null ? "" : String(d.r[i]), "num");
      var badge = document.createElement("span");
      badge.className = "badge s-" + status; badge.textContent = status;
      td = document.createElement("td"); td.appendChild(badge); tr.appendChild(td);
      cell(tr, String(d.t[i]), "num");
      cell(tr, d.b[i] === null ? "\\u2014" : "+" + ms(d.b[i]), "num");
      cell(tr, ms(d.d[i]), "num");
      cell(tr, d.errors[i] || "", "error");
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    info.textContent = rows.length.toLocaleString() + " of " + n.toLocaleString() + " tasks; page "
      + (page + 1) + " of " + pages.toLocaleString();
    prev.disabled = page === 0; next.disabled = page >= pages - 1;
  }
  var timer = null;
  q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 150); });
  st.addEventListener("change", apply); so.addEventListener("change", apply);
  prev.addEventListener("click", function () { page--; draw(); });
  next.addEventListener("click", function () { page++; draw(); });
  apply();
})();
"""


def task_table_html(report: RunReport) -> str:
    """A paged task table with search and a status filter, drawn by an inline script."""
    script = _TABLE_SCRIPT.replace("PAGE", str(_PAGE))
    head = (
        '<tr><th>task</th><th>agent</th><th class="num">replica</th><th>status</th>'
        '<th class="num">attempts</th><th class="num">start</th><th class="num">duration</th>'
        "<th>error</th></tr>"
    )
    controls = (
        '<div class="controls"><input id="task-q" type="search" placeholder="search task, '
        'agent or error" aria-label="search tasks">'
        '<select id="task-s" aria-label="status"><option value="all">every status</option>'
        "</select>"
        '<select id="task-o" aria-label="order"><option value="declared">declared order'
        '</option><option value="slowest">slowest first</option></select>'
        '<button id="task-p" type="button">&larr; previous</button>'
        '<button id="task-n" type="button">next &rarr;</button>'
        '<span id="task-i" class="muted"></span></div>'
    )
    return (
        f"{controls}"
        f'<div class="scroll"><table class="grid"><thead>{head}</thead>'
        '<tbody id="task-b"></tbody></table></div>'
        f'<script type="application/json" id="task-data">{_task_data(report).decode()}</script>'
        f"<script>{script}</script>"
    )
