"""Retention: the artifacts of finished runs are removed, never silently kept forever.

A run's artifacts are kept while the run is unfinished (it may be resumed) and while it is
one of the ``keep`` newest finished runs of its pipeline; the rest are removed, by the
pipeline itself when a run ends (``artifacts.keep_runs``) and by ``runs gc`` on demand.
Artifacts of a run the run store does not know (its record deleted, or another store's)
are removed only when asked (``orphans=True``): a shared directory may serve several.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import anyio

from .store import ArtifactStore

__all__ = ["Removal", "collect_garbage"]


class _Run(Protocol):
    @property
    def run_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def unfinished(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Removal:
    """A run whose artifacts were (or, in a dry run, would be) removed, and why."""

    run_id: str
    pipeline: str | None
    bytes: int
    reason: str


def _plan(
    stored: list[str], runs: Iterable[_Run], keep: int, pipeline: str | None, orphans: bool
) -> list[tuple[str, str | None, str]]:
    known = {run.run_id: run for run in runs}
    finished: dict[str, list[_Run]] = {}
    for run in known.values():
        if not run.unfinished:
            finished.setdefault(run.name, []).append(run)
    kept: set[str] = set()
    for group in finished.values():
        group.sort(key=lambda run: run.updated_at, reverse=True)
        kept.update(run.run_id for run in group[:keep])
    plan: list[tuple[str, str | None, str]] = []
    for run_id in stored:
        found = known.get(run_id)
        if found is None:
            if orphans and pipeline is None:
                plan.append((run_id, None, "no run record"))
            continue
        if pipeline is not None and found.name != pipeline:
            continue
        if not found.unfinished and run_id not in kept:
            plan.append((run_id, found.name, f"finished, older than the newest {keep}"))
    return plan


async def collect_garbage(
    store: ArtifactStore,
    runs: Iterable[_Run],
    *,
    keep: int,
    pipeline: str | None = None,
    orphans: bool = False,
    dry_run: bool = False,
) -> list[Removal]:
    """Remove the artifacts of finished runs beyond the ``keep`` newest of each pipeline
    (only ``pipeline``'s runs if given); returns what was removed (disk work in a thread)."""
    stored = await anyio.to_thread.run_sync(store.runs)
    removals: list[Removal] = []
    for run_id, name, reason in _plan(stored, runs, keep, pipeline, orphans):
        if dry_run:
            size = await anyio.to_thread.run_sync(store.run_size, run_id)
        else:
            size = await anyio.to_thread.run_sync(store.delete_run, run_id)
        removals.append(Removal(run_id, name, size, reason))
    return removals
