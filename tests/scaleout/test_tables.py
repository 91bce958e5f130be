"""Tables on redis://: two workers share an artifact directory; every table written by one
is read, verified, by the other (real Redis, private prefix)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pandas as pd
import pytest

from swarm_runtime.artifacts import is_artifact_ref
from swarm_runtime.orchestrator import DataPipelineOrchestrator

from ..conftest import REDIS_URL
from .test_workers import workers

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SALES = Path("examples/data/sales.csv").absolute()
PARTS = 6


def pipeline(tmp: Path, url: str) -> Path:
    lines = [
        "name: tables-scaleout",
        f"queue: {url}",
        "agents:",
        "  - {name: extract, uses: builtin.csv_source, replicas: 2}",
        "  - {name: transform, uses: builtin.transform, replicas: 2}",
        '  - {name: tagger, uses: "tests.scaleout.table_agents:tag"}',
        "  - {name: query, uses: builtin.sql}",
        "tasks:",
    ]
    tagged = []
    for i in range(PARTS):
        lines += [
            f"  - {{name: load{i}, agent: extract, params: {{path: {SALES}}}}}",
            f"  - {{name: clean{i}, agent: transform, depends_on: [load{i}],",
            "     params: {ops: [clean]}}",
            f"  - {{name: tag{i}, agent: tagger, depends_on: [clean{i}],",
            f"     params: {{part: {i}, meeting: {tmp / 'meeting'}}}}}",
        ]
        tagged.append(f"tag{i}")
    union = " UNION ALL ".join(f"SELECT part, pid, revenue FROM {t}" for t in tagged)
    lines.append(f"  - name: total\n    agent: query\n    depends_on: [{', '.join(tagged)}]")
    lines.append(
        f'    params: {{query: "SELECT part, pid, SUM(revenue) AS revenue, COUNT(*) AS n '
        f'FROM ({union}) GROUP BY part, pid ORDER BY part"}}'
    )
    path = tmp / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_two_workers_share_an_artifact_directory(tmp_path: Path, prefix: str) -> None:
    """Workers started with --artifacts DIR write every table there; tables cross workers
    (a task reads what the other wrote); the run's results are references into DIR and the
    numbers equal pandas'."""
    url = f"{REDIS_URL}?prefix={prefix}"
    shared = tmp_path / "shared-artifacts"
    path = pipeline(tmp_path, url)
    with workers(tmp_path, path) as group:
        group.start("--lease", "10", "--artifacts", str(shared))
        group.start("--lease", "10", "--artifacts", str(shared))
        await group.ready()
        orch = DataPipelineOrchestrator(
            queue=url, services=False, host_agents=False, artifacts=str(shared)
        )
        with anyio.fail_after(120):
            outcome = await orch.execute_pipeline(orch.create_pipeline(path))
        assert outcome.ok, outcome.error
    refs = [v for v in outcome.results.values() if is_artifact_ref(v)]
    assert len(refs) == 3 * PARTS + 1
    assert all(ref["uri"].startswith(shared.as_uri()) for ref in refs)
    total = outcome.table("total").to_pandas()
    clean = pd.read_csv(SALES).dropna().drop_duplicates()
    assert total["part"].tolist() == list(range(PARTS))
    assert total["n"].tolist() == [len(clean)] * PARTS
    assert total["revenue"].tolist() == pytest.approx([clean["revenue"].sum()] * PARTS)
    assert len(set(total["pid"])) == 2  # both workers tagged tables


async def test_table_result_without_a_location_is_a_config_error(
    tmp_path: Path, prefix: str
) -> None:
    """On redis:// a table result with no artifact location fails with a ConfigError that
    says what to set; nothing is copied into Redis."""
    url = f"{REDIS_URL}?prefix={prefix}"
    config = {
        "name": "no-location",
        "queue": url,
        "retry": {"max_attempts": 1},
        "agents": [{"name": "extract", "uses": "builtin.csv_source"}],
        "tasks": [{"name": "load", "agent": "extract", "params": {"path": str(SALES)}}],
    }
    orch = DataPipelineOrchestrator(services=False)
    with anyio.fail_after(60):
        outcome = await orch.execute_pipeline(orch.create_pipeline(config))
    assert not outcome.ok
    assert "needs a location that every worker can read" in (outcome.error or "")
