"""User agents for ``examples/user_agent_pipeline.yaml``.

A pipeline task run by a user agent receives ``msg.payload == {"params": {...},
"inputs": {upstream_task: result}}``; whatever the coroutine returns (JSON) is the
task's result, passed on to the tasks that depend on it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import swarm_runtime as sr


async def score(msg: sr.Message, ctx: sr.Context) -> dict[str, Any]:
    """Score each group (``params.group_by``, default ``region``) of an orders table.

    The score weighs a group's share of the revenue by its mean satisfaction
    (out of 5), so a group that sells a lot to happy customers ranks first. The
    result is a table, best group first.
    """
    params: dict[str, Any] = msg.payload.get("params", {})
    inputs: dict[str, Any] = msg.payload.get("inputs", {})
    if len(inputs) != 1:
        raise ValueError(f"score works on one upstream table, got {len(inputs)}")
    table = next(iter(inputs.values()))
    group_by = params.get("group_by", "region")
    columns: list[str] = table["columns"]
    for needed in (group_by, "revenue", "satisfaction"):
        if needed not in columns:
            raise ValueError(f"score needs a {needed!r} column; the table has {columns}")
    key, revenue, happy = (columns.index(c) for c in (group_by, "revenue", "satisfaction"))

    totals: dict[str, float] = defaultdict(float)
    ratings: dict[str, list[float]] = defaultdict(list)
    for row in table["rows"]:
        if row[revenue] is not None:
            totals[row[key]] += row[revenue]
        if row[happy] is not None:
            ratings[row[key]].append(row[happy])
    grand = math.fsum(totals.values()) or 1.0
    rows = []
    for group, total in totals.items():
        mean_rating = math.fsum(ratings[group]) / len(ratings[group]) if ratings[group] else 0.0
        share = total / grand
        rows.append(
            [
                group,
                round(total, 2),
                round(share, 4),
                round(mean_rating, 3),
                round(100 * share * mean_rating / 5, 2),
            ]
        )
    rows.sort(key=lambda r: r[-1], reverse=True)
    ctx.log.info("scored groups", group_by=group_by, groups=len(rows))
    return {
        "columns": [group_by, "revenue", "revenue_share", "mean_satisfaction", "score"],
        "rows": rows,
    }
