"""``run``, ``validate`` and ``graph``: pipelines from the command line.

Thin by design: loading, validating and running live in :mod:`swarm_runtime.pipeline`
and :mod:`swarm_runtime.orchestrator`; this module parses options, draws progress with
rich, prints the summary and maps outcomes to exit codes (:mod:`._exit`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import click
from rich.console import Console

from .. import _loop
from .._logging import configure_logging
from ..errors import ConfigError
from ..orchestrator import DataPipelineOrchestrator, PipelineResult, RunStart
from ..pipeline import GRAPH_FORMATS, Dag, load_pipeline, render_graph
from ..report import write_html_report, write_json_report
from ._exit import ExitCode, fail, usage_error
from ._logcap import RepeatLimit
from ._options import base_dir_option
from ._progress import show_progress
from ._summary import SummaryMode, choose_mode, print_summary, summary_json

__all__ = ["register"]

#: roots and leaves listed by ``validate`` before "... and N more"
_NAMES_SHOWN = 10


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
    click.echo(f"  roots: {_names(dag.roots())}; leaves: {_names(dag.leaves())}")
    click.echo(
        f"  queue {config.queue}, failure policy {config.failure_policy}, "
        f"concurrency {config.concurrency or 'unlimited'}, "
        f"retry up to {config.retry.max_attempts} attempts"
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown}, ... and {more:,} more" if more > 0 else shown


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
@click.option(
    "--summary",
    "summary_mode",
    type=click.Choice(["short", "full", "none"]),
    help="The summary at the end: a digest of any size (short), one row per task (full), "
    "or nothing. Default: full up to 50 tasks, else short.",
)
@click.option(
    "--output",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print the run (totals, per agent, every task) as one JSON document on "
    "stdout; everything else goes to stderr.",
)
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
    summary_mode: SummaryMode | None,
    output_format: str,
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
    repeats = RepeatLimit()
    configure_logging("info" if verbose else "error", processors=() if verbose else (repeats,))
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
    as_json = output_format == "json"
    console = Console(stderr=as_json, highlight=False)
    started: list[RunStart] = []
    cpu_start = time.process_time()
    resume: str | bool | None = resume_id if resume_id else (False if new_run else None)
    try:
        result = _loop.run(_run, orch, pipeline_id, resume, console, started)
    except KeyboardInterrupt:
        where = f" --resume {started[0].run_id}" if started else ""
        click.echo(f"\ninterrupted; run the same command again to resume (or add{where})", err=True)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except BaseException as exc:  # one line and an exit code for ours, a traceback for bugs
        fail(exc)
    cpu = time.process_time() - cpu_start
    if as_json:
        sys.stdout.buffer.write(summary_json(result, cpu=cpu))
        sys.stdout.flush()
    else:
        mode = choose_mode(summary_mode, len(result.status.tasks))
        print_summary(console, result, mode, cpu=cpu)
    if report is not None:
        _write_report(console, result, report)
    for event, count in repeats.dropped().items():
        click.echo(f"({count:,} more log lines {event!r} not shown; -v shows them all)", err=True)
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
            tg.start_soon(show_progress, orch, pipeline_id, console, ready)
        result = await orch.execute_pipeline(pipeline_id, resume=resume, on_start=on_start)
        tg.cancel_scope.cancel()
    return result


# ---------------------------------------------------------------------- report


def _write_report(console: Console, result: PipelineResult, path: Path) -> None:
    """Write the run report: a self-contained HTML page, or JSON for machines."""
    report = result.to_report()
    if path.suffix.lower() == ".json":
        write_json_report(report, path)
    else:
        write_html_report(report, path)
    console.print(f"report written to {path}", soft_wrap=True)
