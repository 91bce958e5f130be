"""A made-up report of many tasks (the big-run report tests build it in memory)."""

from __future__ import annotations

import datetime as dt
import random

from swarm_runtime.report import RunReport, TaskRecord

T0 = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.UTC)
EVIL_ERROR = 'ValueError: </script><script>alert("x")</script> & more'


def large_report(tasks: int, *, agents: int = 5, fail_every: int = 997) -> RunReport:
    """``tasks`` tasks on ``agents`` agents (4 replicas each), each depending on 1-3
    earlier ones; every ``fail_every``-th task failed (with a hostile error text)."""
    rng = random.Random(11)
    records, edges = [], []
    for i in range(tasks):
        for j in rng.sample(range(i), min(i, rng.randint(1, 3))) if i else []:
            edges.append((f"t{j}", f"t{i}"))
        start = i * 0.0004 + rng.random() * 0.01
        failed = i > 0 and i % fail_every == 0
        records.append(
            TaskRecord(
                name=f"t{i}",
                agent=f"agent{i % agents}",
                replica=i % 4,
                status="failed" if failed else "completed",
                attempts=2 if failed else 1,
                started_at=T0 + dt.timedelta(seconds=start),
                finished_at=T0 + dt.timedelta(seconds=start + rng.random() * 0.02),
                error=EVIL_ERROR if failed else None,
            )
        )
    finished = T0 + dt.timedelta(seconds=tasks * 0.0004 + 0.05)
    return RunReport(
        pipeline="big-run",
        run_id="run-big",
        status="failed",
        started_at=T0,
        finished_at=finished,
        tasks=records,
        edges=edges,
        results={r.name: None for r in records},
    )
