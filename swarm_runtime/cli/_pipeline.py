"""``run``, ``validate`` and ``graph``: pipelines from the command line.

Thin by design: loading, validating and running live in :mod:`swarm_runtime.pipeline`
and :mod:`swarm_runtime.orchestrator`; this module parses options, draws progress with
rich, prints the summary and maps outcomes to exit codes (:mod:`._exit`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import anyio
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .. import _loop
from .._logging import configure_logging
from ..errors import ConfigError
from ..orchestrator import (
    DataPipelineOrchestrator,
    PipelineResult,
    RunStart,
    TaskState,
    WorkflowStatus,
)
from ..pipeline import GRAPH_FORMATS, Dag, load_pipeline, render_graph
from ..report import write_html_report, write_json_report
from ._exit import ExitCode, fail, usage_error
from ._options import base_dir_option

__all__ = ["register"]

_REFRESH = 0.1  # seconds between progress redraws
_STYLES = {
    TaskState.COMPLETED: "green",
    TaskState.FAILED: "bold red",
    TaskState.CANCELLED: "yellow",
    TaskState.SKIPPED: "dim",
    TaskState.RUNNING: "cyan",
    TaskState.PENDING: "dim",
}


def register(cli: click.Group) -> None:
    cli.add_command(run_command)
    cli.add_command(validate_command)
    cli.add_command(graph_command)


# ---------------------------------------------------------------------- validate / graph


@click.command("validate")
@click.argument("pipeline", metavar="PIPELINE.yaml")
@base_dir_option
def validate_command(pipeline: str, base_dir: str | None) -> None:
    """Check a pipeline file: prints OK and a summary, or every problem (exit code 2)."""
    try:
        orch = DataPipelineOrchestrator(base_dir=base_dir)
        config = orch.config(orch.create_pipeline(pipeline))
    except ConfigError as exc:
        fail(exc)
    dag = Dag.from_config(config)
    levels = max(dag.levels().values(), default=-1) + 1
    builtin = sum(1 for a in config.agents if a.builtin is not None)
    click.echo(f"OK: {pipeline}")
    click.echo(
        f"  pipeline {config.name!r}: {len(config.tasks)} tasks in {levels} levels, "
        f"{len(config.agents)} agents ({builtin} built-in, {len(config.agents) - builtin} user)"
    )
    click.echo(f"  roots: {', '.join(dag.roots())}; leaves: {', '.join(dag.leaves())}")
    click.echo(
        f"  queue {config.queue}, failure policy {config.failure_policy}, "
        f"concurrency {config.concurrency or 'unlimited'}, "
        f"retry up to {config.retry.max_attempts} attempts"
    )


@click.command("graph")
@click.argument("pipeline", metavar="PIPELINE.yaml")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(GRAPH_FORMATS),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart or Graphviz DOT.",
)
@click.option(
    "--critical-path",
    "critical",
    is_flag=True,
    help="Draw the longest chain under the tasks' estimates in red.",
)
def graph_command(pipeline: str, fmt: str, critical: bool) -> None:
    """Print the pipeline's DAG as a Mermaid flowchart or a Graphviz DOT graph."""
    try:
        config = load_pipeline(pipeline)
    except ConfigError as exc:
        fail(exc)
    click.echo(render_graph(config, fmt, critical_path=critical), nl=False)


# ---------------------------------------------------------------------- run


@click.command("run")
@click.argument("pipeline", metavar="PIPELINE.yaml")
@click.option("--queue", "queue_url", metavar="URL", help="Queue URL (overrides the file's).")
@click.option(
    "--resume",
    "resume_id",
    metavar="RUN_ID",
    help="Resume this run. Without it, an unfinished run of the same pipeline is resumed.",
)
@click.option("--new", "new_run", is_flag=True, help="Start a new run even if one is unfinished.")
@click.option(
    "--report",
    "report_path",
    metavar="FILE",
    help="Write a report: FILE.html (self-contained page) or FILE.json.",
)
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics.")
@click.option(
    "--no-agents",
    is_flag=True,
    help="Host no agents: leave every task to `worker` processes (redis:// queues).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="Lease of a task on a redis:// queue (how soon a dead process's tasks move on).",
)
@click.option(
    "--artifacts",
    metavar="DIR",
    help="Where table results are stored (overrides the pipeline's artifacts.location; "
    "on redis:// a directory every worker can read).",
)
@base_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log what the runtime does (to stderr).")
def run_command(
    pipeline: str,
    queue_url: str | None,
    resume_id: str | None,
    new_run: bool,
    report_path: str | None,
    metrics_port: int | None,
    no_agents: bool,
    lease: float | None,
    artifacts: str | None,
    base_dir: str | None,
    verbose: bool,
) -> None:
    """Run a pipeline with live progress and a summary; exit code 1 if a task failed.

    The run id is printed first: after a crash or Ctrl-C, run the same command again
    (or pass --resume RUN_ID) and the run resumes, skipping the tasks that completed.
    On a redis:// queue, `worker` processes share the tasks (with --no-agents, only they
    run them) and the run can be resumed from any machine.
    """
    if resume_id and new_run:
        usage_error("--resume and --new cannot be used together")
    report = Path(report_path) if report_path else None
    if report is not None and report.suffix.lower() not in (".html", ".htm", ".json"):
        usage_error(f"--report {report_path}: the file name must end in .html or .json")
    configure_logging("info" if verbose else "error")
    orch = DataPipelineOrchestrator(
        queue=queue_url,
        metrics_port=metrics_port,
        host_agents=not no_agents,
        lease=lease,
        artifacts=artifacts,
        base_dir=base_dir,
    )
    try:
        pipeline_id = orch.create_pipeline(pipeline)
    except ConfigError as exc:
        fail(exc)
    console = Console(stderr=False, highlight=False)
    started: list[RunStart] = []
    resume: str | bool | None = resume_id if resume_id else (False if new_run else None)
    try:
        result = _loop.run(_run, orch, pipeline_id, resume, console, started)
    except KeyboardInterrupt:
        where = f" --resume {started[0].run_id}" if started else ""
        click.echo(f"\ninterrupted; run the same command again to resume (or add{where})", err=True)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except BaseException as exc:  # one line and an exit code for ours, a traceback for bugs
        fail(exc)
    _print_summary(console, result)
    if report is not None:
        _write_report(console, result, report)
    if not result.ok:
        click.echo(f"error: {result.error}", err=True)
        raise SystemExit(int(ExitCode.FAILED))


async def _run(
    orch: DataPipelineOrchestrator,
    pipeline_id: str,
    resume: str | bool | None,
    console: Console,
    started: list[RunStart],
) -> PipelineResult:
    """Execute the pipeline while a second task draws its progress."""
    ready = anyio.Event()

    def on_start(info: RunStart) -> None:
        started.append(info)
        if info.resumed:
            console.print(
                f"resuming run [bold]{info.run_id}[/] of {info.pipeline}: "
                f"{info.completed} of {info.total} tasks already completed",
                soft_wrap=True,
            )
        else:
            console.print(
                f"run [bold]{info.run_id}[/] of {info.pipeline} ({info.total} tasks) "
                f"on {info.queue}",
                soft_wrap=True,
            )
        if info.metrics_url:
            console.print(f"Prometheus metrics at {info.metrics_url}", soft_wrap=True)
        ready.set()

    async with anyio.create_task_group() as tg:
        if console.is_terminal:
            tg.start_soon(_show_progress, orch, pipeline_id, console, ready)
        result = await orch.execute_pipeline(pipeline_id, resume=resume, on_start=on_start)
        tg.cancel_scope.cancel()
    return result


async def _show_progress(
    orch: DataPipelineOrchestrator, pipeline_id: str, console: Console, ready: anyio.Event
) -> None:
    """An overall bar and a spinner per running task, redrawn from status snapshots."""
    await ready.wait()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    rows: dict[str, TaskID] = {}
    with progress:
        overall = progress.add_task("[bold]all tasks", total=None, note="")
        while True:
            status = orch.get_pipeline_status(pipeline_id)
            if status is not None:
                _update_progress(progress, overall, rows, status)
            await anyio.sleep(_REFRESH)


def _update_progress(
    progress: Progress, overall: TaskID, rows: dict[str, TaskID], status: WorkflowStatus
) -> None:
    total = len(status.tasks)
    progress.update(overall, total=total, completed=status.done, note=f"{status.done}/{total}")
    for name, task in status.tasks.items():
        row = rows.get(name)
        if task.state is TaskState.RUNNING and task.started_at is not None:
            label = f"{name} [dim]({task.agent})[/]"
            note = f"attempt {task.attempts}/{task.max_attempts}" if task.attempts > 1 else ""
            if row is None:
                rows[name] = progress.add_task(label, total=None, note=note)
            else:
                progress.update(row, description=label, note=note)
        elif row is not None:
            progress.remove_task(row)
            del rows[name]


def _print_summary(console: Console, result: PipelineResult) -> None:
    status = result.status
    table = Table(title=f"{status.name} · run {status.workflow_id}", title_justify="left")
    for column in ("task", "agent", "status", "attempts", "duration"):
        table.add_column(column, justify="right" if column in ("attempts", "duration") else "left")
    for task in status.tasks.values():
        state = task.state.value + (" (earlier run)" if task.resumed else "")
        table.add_row(
            task.name,
            task.agent,
            f"[{_STYLES[task.state]}]{state}[/]",
            str(task.attempts) if task.attempts else "-",
            _seconds(task.duration),
        )
    console.print(table)
    counts = status.counts
    done = counts[TaskState.COMPLETED]
    parts = [f"{done}/{len(status.tasks)} tasks completed"]
    for state in (TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED):
        if counts[state]:
            parts.append(f"{counts[state]} {state.value}")
    verdict = "[green]completed[/]" if result.ok else f"[bold red]{status.state.value}[/]"
    console.print(f"{verdict}: {', '.join(parts)} in {_seconds(status.duration)}", soft_wrap=True)


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return time.strftime("%H:%M:%S", time.gmtime(value))


# ---------------------------------------------------------------------- report


def _write_report(console: Console, result: PipelineResult, path: Path) -> None:
    """Write the run report: a self-contained HTML page, or JSON for machines."""
    report = result.to_report()
    if path.suffix.lower() == ".json":
        write_json_report(report, path)
    else:
        write_html_report(report, path)
    console.print(f"report written to {path}", soft_wrap=True)
