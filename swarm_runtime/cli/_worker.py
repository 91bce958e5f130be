"""``worker``: a process hosting a pipeline's agents on a shared (``redis://``) queue.

Start as many as you like, on any machines pointed at the same Redis: each takes tasks
from the agents' inboxes until SIGTERM or SIGINT, then stops receiving, lets the tasks it
is running finish for up to ``--grace-period`` seconds and hands the rest back to the queue
(the runtime's shutdown), so another worker takes them at once. A worker that dies
without that (SIGKILL, a lost machine) leaves its tasks leased: they go to the others
when their lease runs out (``--lease``, default the pipeline's: an hour without a task
``timeout``; heartbeats keep the leases of running tasks alive, so a short lease is safe).
Runs are started with ``run PIPELINE.yaml --queue redis://... [--no-agents]``.
"""

from __future__ import annotations

import os
import signal

import anyio
import click

from .. import _loop
from .._logging import configure_logging
from .._redact import redact
from ..agents.builtin._confine import confined_to
from ..artifacts import ArtifactLocation
from ..backends import backend_class
from ..errors import ConfigError
from ..orchestrator import DataPipelineOrchestrator
from ..orchestrator._scaleout import shared_agents
from ..pipeline import PipelineConfig
from ..runtime.runtime import Runtime
from ._exit import ExitCode, exit_on_error, fail, usage_error
from ._options import base_dir_option

__all__ = ["register"]


def register(cli: click.Group) -> None:
    cli.add_command(worker_command)


@click.command("worker")
@click.argument("pipeline", metavar="PIPELINE.yaml")
@click.option("--queue", "queue_url", metavar="URL", help="Shared queue URL, redis://HOST:PORT/DB.")
@click.option(
    "--lease",
    type=click.FloatRange(min=0.01),
    metavar="SECONDS",
    help="Lease of a task: how soon the tasks of a worker that died go to the others.",
)
@click.option(
    "--grace-period",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM, how long running tasks may finish before they are handed back.",
)
@click.option(
    "--artifacts",
    metavar="DIR",
    help="Where table results are stored: a directory every worker and run can read "
    "(overrides the pipeline's artifacts.location).",
)
@base_dir_option
@click.option("-v", "--verbose", is_flag=True, help="Log what the runtime does (to stderr).")
def worker_command(
    pipeline: str,
    queue_url: str | None,
    lease: float | None,
    grace_period: float,
    artifacts: str | None,
    base_dir: str | None,
    verbose: bool,
) -> None:
    """Host the pipeline's agents and take tasks from the shared queue until SIGTERM.

    Exit code 0 after a graceful stop, 2 for a bad pipeline or queue URL, 3 if the
    queue cannot be reached.
    """
    try:
        orch = DataPipelineOrchestrator(base_dir=base_dir)
        config = orch.config(orch.create_pipeline(pipeline))
    except ConfigError as exc:
        fail(exc)
    queue = queue_url or config.queue
    with exit_on_error():
        shared = backend_class(queue).shared
    if not shared:
        usage_error(
            f"a worker needs a queue that several processes share (redis://HOST:PORT/DB), "
            f"got {queue!r}; pass --queue redis://...",
        )
    configure_logging("info" if verbose else "warning")
    try:
        location = ArtifactLocation(artifacts or config.artifacts.location)
        with confined_to(base_dir):  # the agents' tasks inherit it
            code = _loop.run(_serve, config, queue, lease, grace_period, location, verbose)
    except KeyboardInterrupt:  # a second Ctrl-C during the shutdown
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except BaseException as exc:  # one line and an exit code for ours, a traceback for bugs
        fail(exc)
    raise SystemExit(int(code))


async def _serve(
    config: PipelineConfig,
    queue: str,
    lease: float | None,
    grace: float,
    location: ArtifactLocation,
    verbose: bool,
) -> ExitCode:
    runtime = Runtime(
        queue=queue,
        retry=config.retry.to_policy(),
        grace_period=grace,
        services=False,
    )
    agents = shared_agents(config, lease=lease, artifacts=location)
    for agent in agents:
        runtime.add_agent(agent)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with runtime:
            names = ", ".join(agent.name for agent in agents)
            click.echo(
                f"worker {os.getpid()} ready: agents {names} of pipeline {config.name!r} "
                f"on {redact(queue)}; SIGTERM or Ctrl-C stops it",
                err=True,
            )
            async for received in signals:
                click.echo(
                    f"worker {os.getpid()}: {signal.Signals(received).name}, stopping "
                    f"(running tasks get {grace:g}s, the rest go back to the queue)",
                    err=True,
                )
                break
    return ExitCode.OK
