"""Options several commands share."""

from __future__ import annotations

import click

__all__ = ["base_dir_option"]

base_dir_option = click.option(
    "--base-dir",
    type=click.Path(exists=True, file_okay=False),
    envvar="SWARM_RUNTIME_BASE_DIR",
    metavar="DIR",
    help="Confine the files built-in sources and sinks read and write to DIR (relative "
    "paths are taken from it; others are refused). For pipelines you did not write; "
    "user agents are code and are not confined. Env: SWARM_RUNTIME_BASE_DIR.",
)
