"""``runs gc``: remove the table artifacts of finished runs (retention on demand)."""

from __future__ import annotations

import os

import click

from .. import _loop
from ..artifacts.retention import Removal, collect_garbage
from ..backends import Backend, backend_class
from ._exit import exit_on_error

__all__ = ["register"]


def register(cli: click.Group) -> None:
    cli.add_command(runs_group)


@click.group("runs")
def runs_group() -> None:
    """Manage stored runs and their table artifacts."""


@runs_group.command("gc")
@click.option(
    "--queue",
    "url",
    default=lambda: os.environ.get("SWARM_QUEUE", "file://queue"),
    show_default="file://queue",
    help="Queue URL of the runs (or set SWARM_QUEUE).",
)
@click.option("--artifacts", metavar="DIR", help="Artifact directory (default: the queue's).")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Finished runs per pipeline whose artifacts are kept (the newest).",
)
@click.option("--pipeline", metavar="NAME", help="Only runs of this pipeline.")
@click.option("--orphans", is_flag=True, help="Also remove artifacts of runs with no record.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
def gc_command(
    url: str,
    artifacts: str | None,
    keep: int,
    pipeline: str | None,
    orphans: bool,
    dry_run: bool,
) -> None:
    """Remove the artifacts of finished runs beyond the newest --keep of each pipeline.

    Unfinished runs keep theirs (they can be resumed). Pipelines do this themselves when a
    run ends (artifacts.keep_runs in the pipeline file); this is the same on demand.
    """

    async def main() -> list[Removal]:
        options = dict(backend_class(url).inspection_options)
        async with Backend.open(url, **options) as backend:
            runs = await backend.run_store().list_runs()
            store = backend.artifact_store(artifacts)
            return await collect_garbage(
                store, runs, keep=keep, pipeline=pipeline, orphans=orphans, dry_run=dry_run
            )

    with exit_on_error():
        removed = _loop.run(main)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        click.echo(
            f"{verb} {item.run_id} ({item.pipeline or '?'}): {item.bytes:,} bytes, {item.reason}"
        )
    total = sum(item.bytes for item in removed)
    click.echo(f"{verb} the artifacts of {len(removed)} run(s), {total:,} bytes")
