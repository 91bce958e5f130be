"""The standard asyncio loop against uvloop, on the runtime, the file queue and the DAG.

Each figure runs in a fresh process, asyncio and uvloop taking turns (the same load on
both): runtime request round trips (memory queue, services off), the file queue's batch
figures (publish_many, lease 256 + acknowledge_many, the whole cycle) and the 10,000-task
DAG on ``file://``. The CLI runs on uvloop when it is installed (``swarm_runtime._loop``).
Besides the wall-clock figures, each run's CPU seconds (all threads): on a loaded machine
the wall clock mostly measures the neighbours, CPU time what the loop itself costs.

    python benchmarks/bench_loops.py [--repeat 3] [--n 20000] [--dag-n 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

HERE = Path(__file__).resolve().parent

CHILD = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
what, n = sys.argv[3], int(sys.argv[4])
import time
import swarm_runtime as sr
sr.configure_logging("error")
cpu = time.process_time()
if what == "runtime":
    import bench_runtime
    out = {"round_trips": asyncio.run(bench_runtime.runtime_round_trips(n, False))}
elif what == "queue":
    import bench_queue
    with tempfile.TemporaryDirectory(dir=Path(sys.argv[1]).parent) as tmp:
        out = asyncio.run(bench_queue.batch_run(bench_queue._FileSide, Path(tmp), n, 4 * n))
else:
    import bench_dag
    graph = bench_dag.make_dag(n)
    out = bench_dag.run_backend(graph, "file", bench_dag.FILE_REPLICAS, False)
cpu = time.process_time() - cpu  # every thread of the process: robust to a loaded machine
loop = type(asyncio.new_event_loop()).__module__
print(json.dumps({"loop": loop, "cpu_s": cpu, **out}))
"""


def _child(loop: str, what: str, n: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(HERE), loop, what, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, default=20_000, help="queue messages / round trips")
    parser.add_argument("--dag-n", type=int, default=10_000)
    args = parser.parse_args()
    figures = [
        ("runtime", args.n // 4, "round_trips", "Runtime.request round trips/s", True),
        ("queue", args.n, "publish_many", "file queue publish_many msg/s", True),
        ("queue", args.n, "consume_ack_many", "file queue lease 256 + ack_many msg/s", True),
        ("queue", args.n, "cycle", "file queue whole cycle msg/s", True),
        ("dag", args.dag_n, "execute", "10k-task DAG on file://, seconds", False),
    ]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for what, n in dict.fromkeys((f[0], f[1]) for f in figures):
        runs[what] = {"asyncio": [], "uvloop": []}
        for _ in range(args.repeat):
            for loop in ("asyncio", "uvloop"):
                runs[what][loop].append(_child(loop, what, n))
    rows = []
    results: dict[str, Any] = {"repeat": args.repeat, "runs": runs, "figures": {}}
    for what, _, key, label, higher in figures:
        a = [r[key] for r in runs[what]["asyncio"]]
        u = [r[key] for r in runs[what]["uvloop"]]
        pick = max if higher else min
        gain = statistics.median(a) / statistics.median(u)
        gain = 1 / gain if higher else gain
        results["figures"][f"{what}.{key}"] = {
            "asyncio": {"best": pick(a), "median": statistics.median(a)},
            "uvloop": {"best": pick(u), "median": statistics.median(u)},
            "uvloop_speedup_median": gain,
        }
        rows.append([label, pick(a), statistics.median(a), pick(u), statistics.median(u), gain])
    for what in runs:
        a = [r["cpu_s"] for r in runs[what]["asyncio"]]
        u = [r["cpu_s"] for r in runs[what]["uvloop"]]
        gain = statistics.median(a) / statistics.median(u)
        results["figures"][f"{what}.cpu_s"] = {
            "asyncio": {"best": min(a), "median": statistics.median(a)},
            "uvloop": {"best": min(u), "median": statistics.median(u)},
            "uvloop_speedup_median": gain,
        }
        label = f"{what}: CPU seconds of the whole run (lower is better)"
        rows.append([label, min(a), statistics.median(a), min(u), statistics.median(u), gain])
    print_table(
        f"asyncio vs uvloop, {args.repeat} runs each, alternating",
        ["", "asyncio best", "asyncio median", "uvloop best", "uvloop median", "uvloop x"],
        rows,
    )
    write_json("loops", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
