"""The report's stylesheet (inlined: the HTML file needs nothing else)."""

from __future__ import annotations

__all__ = ["CSS", "STATUS_COLOURS"]

#: fill, stroke per task status (also used inside the SVGs)
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "completed": ("#dcfce7", "#16a34a"),
    "failed": ("#fee2e2", "#dc2626"),
    "running": ("#dbeafe", "#2563eb"),
    "pending": ("#f1f5f9", "#94a3b8"),
    "cancelled": ("#fef3c7", "#d97706"),
    "skipped": ("#f8fafc", "#94a3b8"),
}

CSS = """
:root {
  color-scheme: light;
  --bg: #f6f7fb; --card: #ffffff; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0;
  --accent: #4f46e5; --radius: 12px;
  --ok: #16a34a; --bad: #dc2626; --run: #2563eb; --wait: #94a3b8; --warn: #d97706;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0 auto; max-width: 1320px; padding: 28px 32px 48px;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink);
}
header.top { display: flex; align-items: flex-start; justify-content: space-between; gap: 24px;
  margin-bottom: 20px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; letter-spacing: -0.02em; }
header.top .sub { color: var(--muted); }
header.top .meta { display: grid; grid-template-columns: auto auto; gap: 2px 14px; font-size: 13px;
  color: var(--muted); text-align: left; }
header.top .meta b { color: var(--ink); font-weight: 600; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px;
  font-weight: 600;
  border: 1px solid currentColor; text-transform: lowercase; white-space: nowrap; }
.badge.big { font-size: 14px; padding: 3px 12px; margin-left: 8px; vertical-align: 4px; }
.s-completed { color: var(--ok); background: #f0fdf4; }
.s-failed { color: var(--bad); background: #fef2f2; }
.s-running { color: var(--run); background: #eff6ff; }
.s-pending { color: #64748b; background: #f8fafc; }
.s-cancelled { color: var(--warn); background: #fffbeb; }
.s-skipped { color: #64748b; background: #f8fafc; border-style: dashed; }
.sev-critical { color: var(--bad); background: #fef2f2; }
.sev-warning { color: var(--warn); background: #fffbeb; }
.sev-info { color: var(--run); background: #eff6ff; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px;
  margin-bottom: 20px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 12px 16px; }
.stat .n { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.stat .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em;
  }
.stat.ok .n { color: var(--ok); } .stat.bad .n { color: var(--bad); }
.stat.warn .n { color: var(--warn); } .stat.muted .n { color: var(--muted); }
section.panel { background: var(--card); border: 1px solid var(--line);
  border-radius: var(--radius);
  padding: 18px 20px 20px; margin-bottom: 20px; box-shadow: 0 1px 2px rgba(15, 23, 42, .04); }
section.panel > h2 { margin: 0 0 4px; font-size: 17px; }
section.panel > p.hint { margin: 0 0 14px; color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; color: var(--muted);
  font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px;
  margin-right: 5px;
  vertical-align: -1px; border: 1.5px solid; }
table.grid { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.grid th { text-align: left; font-size: 12px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .04em; padding: 6px 10px;
  border-bottom: 1px solid var(--line); }
table.grid td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.grid tr:last-child td { border-bottom: 0; }
table.grid td.num, table.grid th.num { text-align: right; }
.durbar { display: inline-block; height: 6px; border-radius: 3px; background: #c7d2fe;
  vertical-align: middle; margin-right: 8px; }
.error { color: var(--bad); max-width: 420px; }
.error details summary { cursor: pointer; }
.error pre { white-space: pre-wrap; margin: 6px 0 0; }
.results { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
.result { border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.result h3 { margin: 0 0 10px; font-size: 15px; display: flex; gap: 10px; align-items: baseline; }
.result h3 small { color: var(--muted); font-weight: 400; font-size: 12px; }
.result h4 { margin: 14px 0 8px; font-size: 13px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .05em; }
.dists { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.dist { border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px; }
.dist .name { font-weight: 600; margin-bottom: 4px; }
.dist table { width: 100%; font-size: 12px; border-collapse: collapse;
  font-variant-numeric: tabular-nums; }
.dist td { padding: 1px 4px; } .dist td:nth-child(even) { text-align: right; }
.dist td:nth-child(odd) { color: var(--muted); }
table.heat { border-collapse: separate; border-spacing: 2px; font-variant-numeric: tabular-nums;
  font-size: 12px; }
table.heat th { font-weight: 600; color: var(--muted); padding: 4px 8px; text-align: right;
  white-space: nowrap; }
table.heat thead th { text-align: center; }
table.heat td { width: 74px; height: 34px; text-align: center; border-radius: 6px; }
table.heat td.na { background: #f1f5f9; color: var(--muted); }
table.preview { font-size: 12.5px; }
table.preview td { white-space: nowrap; max-width: 220px; overflow: hidden;
  text-overflow: ellipsis; }
.null { color: #cbd5e1; font-style: italic; }
pre.json { background: #f8fafc; border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px;
  overflow: auto; max-height: 360px; margin: 0; font-size: 12px; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 28px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .node rect { stroke-width: 1.6; }
svg .node .t { font-size: 12.5px; font-weight: 600; fill: #0f172a; }
svg .node .d { font-size: 11px; fill: #64748b; }
svg .edge { fill: none; stroke: #94a3b8; stroke-width: 1.4; }
svg .axis { stroke: #e2e8f0; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #64748b; }
svg .lane { font-size: 12px; fill: #334155; }
svg .lane-bg { fill: #f8fafc; }
svg .bar-label { font-size: 11px; fill: #0f172a; pointer-events: none; }
svg .hbar { fill: #818cf8; } svg .hbar:hover { fill: #4f46e5; }
.controls { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 10px; }
.controls input, .controls select, .controls button { font: inherit; font-size: 13px;
  padding: 4px 8px; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
.controls input { min-width: 260px; }
.controls button:disabled { color: var(--muted); }
p.critical { margin: 10px 0 0; font-size: 13px; }
"""
