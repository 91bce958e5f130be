"""The ``python -m swarm_runtime`` command line: a thin layer over the library.

Each command group lives in its own ``_module`` and is registered here. Exit codes
are named in :mod:`._exit`.
"""

from __future__ import annotations

import click

from .._version import __version__

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm-runtime")
def cli() -> None:
    """swarm-runtime: run multi-agent pipelines on a durable queue."""


def _register() -> None:
    from importlib import import_module

    for name in ("_queue", "_pipeline", "_worker", "_runs"):
        try:
            module = import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m swarm_runtime`` and the ``swarm-runtime`` script."""
    cli.main(args=argv, prog_name="python -m swarm_runtime")
