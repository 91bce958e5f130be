"""Generated pipelines of many small tasks (the big-run tests make them in tmp dirs)."""

from __future__ import annotations

import random
from pathlib import Path


def write_pipeline(
    path: Path,
    tasks: int,
    *,
    agents: int = 1,
    fail: frozenset[int] = frozenset(),
    queue: str = "memory://",
    seed: int = 7,
) -> Path:
    """A pipeline of ``tasks`` no-op tasks, each depending on 1 to 3 earlier ones, spread
    over ``agents`` agents; task ``i`` fails when ``i`` is in ``fail`` (nothing depends on
    a failing task, so each of them runs and fails)."""
    rng = random.Random(seed)
    lines = [
        f"name: gen{tasks}",
        f"queue: {queue}",
        "failure_policy: continue",
        "retry: {max_attempts: 1, base_delay: 0, max_delay: 0}",
        "agents:",
    ]
    lines += [
        f"  - {{name: a{i}, uses: 'tests.cli._agents:noop', replicas: 2, concurrency: 8}}"
        for i in range(agents)
    ]
    lines.append("tasks:")
    for i in range(tasks):
        deps = sorted(rng.sample(range(i), min(i, rng.randint(1, 3)))) if i else []
        deps = [j for j in deps if j not in fail] or ([0] if i and 0 not in fail else [])
        extra = f", params: {{fail: true, task: t{i}}}" if i in fail else ""
        dep_text = f", depends_on: [{', '.join(f't{j}' for j in deps)}]" if deps else ""
        lines.append(f"  - {{name: t{i}, agent: a{i % agents}{dep_text}{extra}}}")
    path.write_text("\n".join(lines) + "\n")
    return path
