"""bench_data: the demo pipeline at 100k / 1M / 5M rows through ``run`` on file://, beside
the same steps as a Polars script and as a pandas script, in the same run.

For each size a sales table like ``examples/data/sales.csv`` (same columns, nulls and
duplicates) is generated in a temporary directory, then each contender runs as a child
process: ``python -m swarm_runtime run pipeline.yaml`` (the steps of
``examples/pipeline.yaml``: load, clean, distribution, normalize, correlation,
features, two sinks), a Polars script and a pandas script doing the same steps. For each:
wall time, peak RSS of the child (``wait4``), and for ``run`` the bytes of the queue log
and of the table artifacts. Goals (issue 15): wall <= 1.5x the Polars script, peak RSS
<= 1.5x the Polars script's, queue-log bytes independent of the table size.

    python benchmarks/bench_data.py [--sizes 100000,1000000,5000000] [--repeats 3] [--no-pandas]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

ROOT = Path(__file__).resolve().parent.parent
NUMERIC = ["units", "unit_price", "discount", "revenue", "customer_age", "satisfaction"]

GENERATE = """
import sys
import numpy as np
import polars as pl

rows, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(20240601)
products = np.array(["Widget", "Gadget", "Gizmo", "Sprocket", "Doohickey"])
base = np.array([12.5, 24.0, 39.9, 7.25, 64.0])
regions = np.array(["North", "South", "East", "West"])
channels = np.array(["Online", "Retail", "Partner"])
p = rng.integers(0, 5, rows)
units = np.maximum(1, (rng.gamma(2.0, 4.0, rows)).astype(np.int64))
price = np.round(base[p] * rng.uniform(0.9, 1.1, rows), 2)
discount = np.round(np.minimum(0.35, rng.exponential(1 / 12, rows)), 3)
revenue = np.round(units * price * (1 - discount), 2)
age = np.clip(rng.normal(41, 12, rows), 18, 80).astype(np.int64)
satisfaction = np.round(np.clip(3.4 + 4 * discount + rng.normal(0, 0.6, rows), 1, 5), 1)
days = rng.integers(0, 365, rows)
frame = pl.DataFrame({
    "order_id": np.arange(10001, 10001 + rows),
    "order_date": (np.datetime64("2024-01-01") + days).astype(str),
    "region": regions[rng.integers(0, 4, rows)],
    "channel": channels[rng.integers(0, 3, rows)],
    "product": products[p],
    "units": units, "unit_price": price,
    "discount": pl.Series(discount).scatter(rng.integers(0, rows, rows // 33), None),
    "revenue": revenue,
    "customer_age": pl.Series(age).scatter(rng.integers(0, rows, rows // 50), None),
    "satisfaction": pl.Series(satisfaction).scatter(rng.integers(0, rows, rows // 50), None),
})
frame = pl.concat([frame, frame.sample(rows // 40, seed=1)])
frame.write_csv(path)
"""

POLARS = """
import json, sys
import polars as pl
csv, out = sys.argv[1], sys.argv[2]
NUMERIC = %(numeric)r
df = pl.read_csv(csv, null_values=["", "NA", "NaN", "null"])
clean = df.drop_nulls().unique(maintain_order=True)
dist = {}
for c in NUMERIC:
    s = clean[c].drop_nulls().sort()
    dist[c] = {"count": s.len(), "mean": s.mean(), "std": s.std(), "min": s.min(),
               "max": s.max(), "median": s.median(),
               "quantiles": [s.quantile(q, "linear") for q in (0.25, 0.5, 0.75, 0.95)],
               "hist": s.hist(bin_count=12)["count"].to_list()}
norm = clean.with_columns(((pl.col(c) - pl.col(c).min()) / (pl.col(c).max() - pl.col(c).min()))
                          for c in NUMERIC)
corr = norm.select(NUMERIC).corr().rows()
features = clean.with_columns(((pl.col(c) - pl.col(c).mean()) / pl.col(c).std(ddof=0))
                              for c in NUMERIC)
features = features.to_dummies(["region", "channel", "product"])
json.dump({"distribution": dist, "correlation": corr}, open(out + "/stats.json", "w"))
features.write_csv(out + "/features.csv")
"""

PANDAS = """
import json, sys
import pandas as pd
csv, out = sys.argv[1], sys.argv[2]
NUMERIC = %(numeric)r
df = pd.read_csv(csv)
clean = df.dropna().drop_duplicates()
dist = {}
for c in NUMERIC:
    s = clean[c]
    dist[c] = {"count": int(s.count()), "mean": s.mean(), "std": s.std(), "min": float(s.min()),
               "max": float(s.max()), "median": s.median(),
               "quantiles": s.quantile([0.25, 0.5, 0.75, 0.95]).tolist()}
norm = clean.copy()
for c in NUMERIC:
    norm[c] = (clean[c] - clean[c].min()) / (clean[c].max() - clean[c].min())
corr = norm[NUMERIC].corr().values.tolist()
features = clean.copy()
for c in NUMERIC:
    features[c] = (clean[c] - clean[c].mean()) / clean[c].std(ddof=0)
features = pd.get_dummies(features, columns=["region", "channel", "product"], dtype=int)
json.dump({"distribution": dist, "correlation": corr}, open(out + "/stats.json", "w"))
features.to_csv(out + "/features.csv", index=False)
"""


def pipeline_yaml(csv: Path, out: Path) -> str:
    """examples/pipeline.yaml with its input and outputs moved into the scratch directory."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "pipeline.yaml").read_text())
    for task in config["tasks"]:
        params = task.get("params", {})
        if task["name"] == "load":
            params["path"] = str(csv)
        elif "path" in params:
            params["path"] = str(out / Path(params["path"]).name)
    config.pop("monitoring", None)
    return yaml.safe_dump(config, sort_keys=False)


def measure(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (bytes) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {err[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_size(rows: int, repeats: int, pandas: bool, scratch: Path) -> list[dict[str, Any]]:
    csv = scratch / f"sales_{rows}.csv"
    subprocess.run([sys.executable, "-c", GENERATE, str(rows), str(csv)], check=True)
    polars_py = scratch / "polars_steps.py"
    polars_py.write_text(textwrap.dedent(POLARS % {"numeric": NUMERIC}))
    pandas_py = scratch / "pandas_steps.py"
    pandas_py.write_text(textwrap.dedent(PANDAS % {"numeric": NUMERIC}))
    results: dict[str, dict[str, Any]] = {}
    contenders = ["run file://", "polars script"] + (["pandas script"] if pandas else [])
    for name in contenders:
        walls: list[float] = []
        cpus: list[float] = []
        rss: list[int] = []
        log_bytes = artifact_bytes = 0
        for attempt in range(repeats):
            out = scratch / f"out_{rows}_{name.split()[0]}_{attempt}"
            out.mkdir()
            if name == "run file://":
                spec = scratch / f"pipeline_{rows}_{attempt}.yaml"
                spec.write_text(pipeline_yaml(csv, out))
                queue = scratch / f"queue_{rows}_{attempt}"
                argv = [sys.executable, "-m", "swarm_runtime", "run", str(spec)]
                argv += ["--queue", f"file://{queue}", "--new"]
                wall, cpu, peak = measure(argv, ROOT)
                log_bytes = tree_bytes(queue / "log") + tree_bytes(queue / "runs")
                artifact_bytes = tree_bytes(queue / "artifacts")
            else:
                script = polars_py if name == "polars script" else pandas_py
                wall, cpu, peak = measure([sys.executable, str(script), str(csv), str(out)], ROOT)
            walls.append(wall)
            cpus.append(cpu)
            rss.append(peak)
        results[name] = {
            "contender": name,
            "rows": rows,
            "wall_best": min(walls),
            "wall_median": statistics.median(walls),
            "cpu_best": min(cpus),
            "cpu_median": statistics.median(cpus),
            "rss_best": min(rss),
            "rss_median": statistics.median(rss),
            "queue_log_bytes": log_bytes if name == "run file://" else None,
            "artifact_bytes": artifact_bytes if name == "run file://" else None,
        }
    peer = results["polars script"]
    for entry in results.values():
        entry["wall_ratio_best"] = entry["wall_best"] / peer["wall_best"]
        entry["wall_ratio_median"] = entry["wall_median"] / peer["wall_median"]
        entry["cpu_ratio_median"] = entry["cpu_median"] / peer["cpu_median"]
        entry["rss_ratio_median"] = entry["rss_median"] / peer["rss_median"]
    csv.unlink()
    return list(results.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pandas", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows_out: list[list[Any]] = []
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        for size in sizes:
            for entry in run_size(size, args.repeats, not args.no_pandas, Path(tmp)):
                entries.append(entry)
                rows_out.append(
                    [
                        f"{size:,}",
                        entry["contender"],
                        entry["wall_best"],
                        entry["wall_median"],
                        entry["wall_ratio_median"],
                        entry["cpu_median"],
                        entry["cpu_ratio_median"],
                        entry["rss_median"] / 2**20,
                        entry["rss_ratio_median"],
                        "" if entry["queue_log_bytes"] is None else entry["queue_log_bytes"],
                        "" if entry["artifact_bytes"] is None else entry["artifact_bytes"] / 2**20,
                    ]
                )
    print_table(
        f"demo pipeline steps, best/median of {args.repeats} (ratios: median vs the Polars script)",
        [
            "rows",
            "contender",
            "wall best s",
            "wall median s",
            "x polars",
            "cpu median s",
            "x polars",
            "peak RSS MiB",
            "x polars",
            "queue log+runs B",
            "artifacts MiB",
        ],
        rows_out,
    )
    write_json("bench_data", {"repeats": args.repeats, "results": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
