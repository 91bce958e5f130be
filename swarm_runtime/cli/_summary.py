"""The end-of-run summary of ``run``: a full table for small runs, a digest for big ones.

``full`` is one row per task (today's table); ``short`` is a digest whose length does
not grow with the run (totals per status and per agent, the failed tasks with their
errors, the slowest tasks, wall and CPU time); ``json`` is the whole per-task table
for machines. :func:`summary_data` computes everything once, in one pass over the tasks.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..orchestrator import PipelineResult, TaskState, TaskStatus

__all__ = [
    "FULL_TABLE_LIMIT",
    "SummaryMode",
    "choose_mode",
    "print_summary",
    "summary_data",
    "summary_json",
]

SummaryMode = Literal["short", "full", "none"]
#: runs with at most this many tasks get the full per-task table unless told otherwise
FULL_TABLE_LIMIT = 50
_FAILED_SHOWN = 20
_SLOWEST_SHOWN = 10
_AGENTS_SHOWN = 20
_ERROR_WIDTH = 160
_STATE_ORDER = (
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.SKIPPED,
    TaskState.CANCELLED,
    TaskState.RUNNING,
    TaskState.PENDING,
)
_STYLES = {
    TaskState.COMPLETED: "green",
    TaskState.FAILED: "bold red",
    TaskState.CANCELLED: "yellow",
    TaskState.SKIPPED: "dim",
    TaskState.RUNNING: "cyan",
    TaskState.PENDING: "dim",
}


def choose_mode(requested: SummaryMode | None, tasks: int) -> SummaryMode:
    """The summary to print: the one asked for, else ``full`` for small runs."""
    if requested is not None:
        return requested
    return "full" if tasks <= FULL_TABLE_LIMIT else "short"


@dataclass
class _Summary:
    """What the short summary and the JSON output show, gathered in one pass."""

    total: int = 0
    counts: Counter[TaskState] = field(default_factory=Counter)
    agents: dict[str, Counter[TaskState]] = field(default_factory=dict)
    agent_time: dict[str, float] = field(default_factory=dict)
    failed: list[TaskStatus] = field(default_factory=list)
    failed_total: int = 0
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    task_time: float = 0.0
    resumed: int = 0


def summary_data(result: PipelineResult) -> _Summary:
    """Totals per status and agent, the first failed tasks and the slowest ones."""
    out = _Summary()
    tasks = result.status.tasks
    out.total = len(tasks)
    heap: list[tuple[float, str, str]] = []
    for task in tasks.values():
        state = task.state
        out.counts[state] += 1
        per_agent = out.agents.get(task.agent)
        if per_agent is None:
            per_agent = out.agents[task.agent] = Counter()
        per_agent[state] += 1
        if task.resumed:
            out.resumed += 1
        if state is TaskState.FAILED:
            out.failed_total += 1
            if len(out.failed) < _FAILED_SHOWN:
                out.failed.append(task)
        duration = task.duration
        if duration is not None and math.isfinite(duration):
            out.task_time += duration
            out.agent_time[task.agent] = out.agent_time.get(task.agent, 0.0) + duration
            entry = (duration, task.name, task.agent)
            if len(heap) < _SLOWEST_SHOWN:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    out.slowest = sorted(heap, reverse=True)
    return out


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return time.strftime("%H:%M:%S", time.gmtime(value))


def _one_line(text: str | None) -> str:
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= _ERROR_WIDTH else first[: _ERROR_WIDTH - 1] + "…"


def _state_label(task: TaskStatus) -> str:
    state = task.state.value + (" (earlier run)" if task.resumed else "")
    return f"[{_STYLES[task.state]}]{state}[/]"


def _full_table(result: PipelineResult) -> Table:
    status = result.status
    table = Table(title=f"{status.name} · run {status.workflow_id}", title_justify="left")
    for column in ("task", "agent", "status", "attempts", "duration"):
        table.add_column(column, justify="right" if column in ("attempts", "duration") else "left")
    for task in status.tasks.values():
        table.add_row(
            task.name,
            task.agent,
            _state_label(task),
            str(task.attempts) if task.attempts else "-",
            _seconds(task.duration),
        )
    return table


def _totals_line(data: _Summary) -> str:
    parts = [f"{data.total:,} tasks:"]
    shown = [
        f"[{_STYLES[s]}]{data.counts[s]:,} {s.value}[/]" for s in _STATE_ORDER if data.counts[s]
    ]
    parts.append(", ".join(shown) if shown else "none run")
    if data.resumed:
        parts.append(f"({data.resumed:,} from an earlier run)")
    return " ".join(parts)


def _agents_table(data: _Summary) -> Table:
    states = [s for s in _STATE_ORDER if data.counts[s]]
    table = Table(title="per agent", title_justify="left", box=None, pad_edge=False)
    table.add_column("agent")
    table.add_column("tasks", justify="right")
    for state in states:
        table.add_column(state.value, justify="right", style=_STYLES[state])
    table.add_column("task time", justify="right")
    ranked = sorted(data.agents.items(), key=lambda item: (-item[1].total(), item[0]))
    for agent, counts in ranked[:_AGENTS_SHOWN]:
        table.add_row(
            agent,
            f"{counts.total():,}",
            *(f"{counts[s]:,}" if counts[s] else "-" for s in states),
            _seconds(data.agent_time.get(agent, 0.0)),
        )
    rest = ranked[_AGENTS_SHOWN:]
    if rest:
        merged: Counter[TaskState] = Counter()
        for _, counts in rest:
            merged.update(counts)
        table.add_row(
            f"... {len(rest):,} more agents",
            f"{merged.total():,}",
            *(f"{merged[s]:,}" if merged[s] else "-" for s in states),
            _seconds(sum(data.agent_time.get(a, 0.0) for a, _ in rest)),
        )
    return table


def _failed_lines(data: _Summary) -> Iterator[str]:
    if not data.failed_total:
        return
    yield f"[bold red]failed tasks[/] ({data.failed_total:,}):"
    for task in data.failed:
        attempts = f"{task.attempts} attempt{'s' if task.attempts != 1 else ''}"
        error = _one_line(task.error) or "(no error recorded)"
        yield f"  [bold]{task.name}[/] ({task.agent}, {attempts}): {error}"
    more = data.failed_total - len(data.failed)
    if more:
        yield f"  ... and {more:,} more failed tasks (--output json or --report lists them all)"


def _slowest_table(data: _Summary) -> Table:
    table = Table(title="slowest tasks", title_justify="left", box=None, pad_edge=False)
    table.add_column("task")
    table.add_column("agent")
    table.add_column("duration", justify="right")
    for duration, name, agent in data.slowest:
        table.add_row(name, agent, _seconds(duration))
    return table


def _verdict(result: PipelineResult, data: _Summary, cpu: float | None) -> str:
    status = result.status
    done = data.counts[TaskState.COMPLETED]
    parts = [f"{done}/{data.total} tasks completed"]
    for state in (TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED):
        if data.counts[state]:
            parts.append(f"{data.counts[state]} {state.value}")
    verdict = "[green]completed[/]" if result.ok else f"[bold red]{status.state.value}[/]"
    timing = f"in {_seconds(status.duration)}"
    if cpu is not None:
        timing += f" (CPU {_seconds(cpu)})"
    return f"{verdict}: {', '.join(parts)} {timing}"


def print_summary(
    console: Console, result: PipelineResult, mode: SummaryMode, *, cpu: float | None = None
) -> None:
    """Print the summary ``mode`` asks for; the last line is always the verdict."""
    if mode == "none":
        return
    if mode == "full":
        console.print(_full_table(result))
        data = summary_data(result)
        console.print(_verdict(result, data, cpu), soft_wrap=True)
        return
    data = summary_data(result)
    status = result.status
    console.print(
        Text.assemble((status.name, "bold"), f" · run {status.workflow_id}"), soft_wrap=True
    )
    console.print(_totals_line(data), soft_wrap=True)
    if data.agents:
        console.print(_agents_table(data))
    for line in _failed_lines(data):
        console.print(line, soft_wrap=True, highlight=False)
    if data.slowest:
        console.print(_slowest_table(data))
    console.print(
        f"task time {_seconds(data.task_time)} in all; wall {_seconds(status.duration)}"
        + (f", CPU {_seconds(cpu)}" if cpu is not None else ""),
        soft_wrap=True,
    )
    console.print(_verdict(result, data, cpu), soft_wrap=True)


def summary_json(result: PipelineResult, *, cpu: float | None = None) -> bytes:
    """The run for machines: totals, per-agent counts and every task's row (one JSON)."""
    status = result.status
    data = summary_data(result)
    tasks: list[dict[str, Any]] = [
        {
            "name": t.name,
            "agent": t.agent,
            "status": t.state.value,
            "attempts": t.attempts,
            "replica": t.replica,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "duration": t.duration,
            "error": t.error,
            "resumed": t.resumed,
        }
        for t in status.tasks.values()
    ]
    document = {
        "run_id": status.workflow_id,
        "pipeline": status.name,
        "status": status.state.value,
        "ok": result.ok,
        "error": result.error,
        "queue": result.queue,
        "resumed": result.resumed,
        "started_at": status.started_at,
        "finished_at": status.finished_at,
        "wall_seconds": status.duration,
        "cpu_seconds": cpu,
        "task_seconds": data.task_time,
        "counts": {s.value: data.counts[s] for s in TaskState},
        "agents": {
            agent: {s.value: n for s, n in counts.items() if n}
            for agent, counts in data.agents.items()
        },
        "tasks": tasks,
    }
    return orjson.dumps(document) + b"\n"
