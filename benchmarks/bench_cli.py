"""``run`` on big pipelines: the command line beside the Python API, in the same run.

For each size (1k, 10k, 50k, 100k no-op tasks, each depending on 1 to 3 earlier ones,
fixed seed) and each queue (memory://, file://):

* API: ``DataPipelineOrchestrator.create_pipeline(config)`` + ``execute_pipeline`` in this
  process, the config built in Python (no YAML), services on (as ``run`` has them);
* run: ``python -m swarm_runtime run FILE.yaml`` as a user types it (a new process: its
  start and imports, loading the YAML, the run, the summary), stdout a pipe;
* run (tty): the same under a pseudo-terminal, so the live progress view is drawn too;
* load: ``load_pipeline`` of the file alone, in this process;

plus, at 50k tasks, ``run --report`` to HTML: the file's size and how long headless
Chromium takes to render it (a screenshot; Chromium's own start-up, measured on an empty
page, is subtracted). Goals: ``run`` per task <= 1.3x the API path; <= 200 printed lines at
any size; the 50k report <= 5 MB and rendered in <= 5 s.

    python benchmarks/bench_cli.py [--sizes 1000,10000,50000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pty
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

from swarm_runtime.orchestrator import DataPipelineOrchestrator
from swarm_runtime.pipeline import PipelineConfig, load_pipeline

SEED = 20240601
HERE = Path(__file__).resolve().parent
AGENT_MODULE = "_bench_cli_agents"
GOAL_RATIO = 1.3
GOAL_LINES = 200
GOAL_REPORT_MB = 5.0
GOAL_RENDER_S = 5.0


def make_pipeline(n: int, queue: str) -> dict[str, Any]:
    """The pipeline as data: one no-op agent (4 replicas x 8), ``n`` tasks."""
    rng = random.Random(SEED)
    tasks: list[dict[str, Any]] = [{"name": "t0", "agent": "work"}]
    for i in range(1, n):
        k = min(i, rng.randint(1, 3))
        deps = [f"t{j}" for j in rng.sample(range(i), k)]
        tasks.append({"name": f"t{i}", "agent": "work", "depends_on": deps})
    return {
        "name": f"bench{n}",
        "queue": queue,
        "agents": [
            {"name": "work", "uses": f"{AGENT_MODULE}:noop", "replicas": 4, "concurrency": 8}
        ],
        "tasks": tasks,
    }


def write_yaml(data: dict[str, Any], path: Path) -> Path:
    """The pipeline as a user would write it: flow-style tasks, one per line."""
    agent = data["agents"][0]
    lines = [
        f"name: {data['name']}",
        f"queue: {data['queue']}",
        "agents:",
        f"  - {{name: {agent['name']}, uses: '{agent['uses']}', replicas: {agent['replicas']}, "
        f"concurrency: {agent['concurrency']}}}",
        "tasks:",
    ]
    for task in data["tasks"]:
        deps = task.get("depends_on")
        dep_text = f", depends_on: [{', '.join(deps)}]" if deps else ""
        lines.append(f"  - {{name: {task['name']}, agent: {task['agent']}{dep_text}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def agents_module(directory: Path) -> None:
    (directory / f"{AGENT_MODULE}.py").write_text("async def noop(msg, ctx):\n    return None\n")


async def api_run(config: PipelineConfig) -> float:
    """Seconds for create_pipeline + execute_pipeline in this process."""
    gc.collect()
    start = time.perf_counter()
    orch = DataPipelineOrchestrator()
    result = await orch.execute_pipeline(orch.create_pipeline(config), resume=False)
    took = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"API run failed: {result.error}")
    return took


def cli_run(args: list[str], cwd: Path, *, tty: bool = False) -> tuple[float, str]:
    """Seconds and stdout of ``python -m swarm_runtime ARGS`` (under a pty if ``tty``)."""
    env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "swarm_runtime", *args]
    start = time.perf_counter()
    if not tty:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
        return took, done.stdout
    master, slave = pty.openpty()
    env["COLUMNS"], env["LINES"] = "120", "40"
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    process.wait()
    took = time.perf_counter() - start
    os.close(master)
    if process.returncode:
        raise SystemExit(f"run (tty) failed: {b''.join(chunks)[-2000:]!r}")
    return took, b"".join(chunks).decode(errors="replace")


def chromium_render(page: Path, workdir: Path) -> float | None:
    """Seconds for headless Chromium to screenshot ``page`` (None without Chromium)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}", f"--screenshot={workdir / 'shot.png'}",
        "--window-size=1400,2000", "--hide-scrollbars", page.resolve().as_uri(),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, timeout=300)
    return time.perf_counter() - start


def stats(values: list[float]) -> dict[str, float]:
    return {"best": min(values), "median": statistics.median(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,50000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queues", default="memory,file")
    parser.add_argument("--report-size", type=int, default=50_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, Any] = {"sizes": sizes, "repeat": args.repeat, "runs": []}
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        agents_module(work)
        sys.path.insert(0, str(work))
        startup = [cli_run(["--version"], work)[0] for _ in range(args.repeat)]
        results["startup_s"] = stats(startup)
        for n in sizes:
            for backend in args.queues.split(","):
                entry: dict[str, Any] = {"tasks": n, "queue": backend}
                api: list[float] = []
                cli: list[float] = []
                tty: list[float] = []
                load: list[float] = []
                lines = 0
                for attempt in range(args.repeat):
                    queue = "memory://" if backend == "memory" else f"file://{work}/q{attempt}"
                    data = make_pipeline(n, queue)
                    path = write_yaml(data, work / f"p{n}.yaml")
                    gc.collect()
                    t0 = time.perf_counter()
                    config = load_pipeline(path)
                    load.append(time.perf_counter() - t0)
                    api.append(asyncio.run(api_run(config)))
                    shutil.rmtree(work / f"q{attempt}", ignore_errors=True)
                    took, out = cli_run(["run", str(path), "--new"], work)
                    cli.append(took)
                    lines = max(lines, len(out.splitlines()))
                    shutil.rmtree(work / f"q{attempt}", ignore_errors=True)
                    tty.append(cli_run(["run", str(path), "--new"], work, tty=True)[0])
                    shutil.rmtree(work / f"q{attempt}", ignore_errors=True)
                entry.update(
                    api_s=stats(api), run_s=stats(cli), run_tty_s=stats(tty), load_s=stats(load),
                    printed_lines=lines,
                )  # fmt: skip
                results["runs"].append(entry)
                start = results["startup_s"]["best"]
                rows.append(
                    [
                        f"{n:,} {backend}://",
                        min(api) / n * 1e6,
                        min(cli) / n * 1e6,
                        min(cli) / min(api),
                        statistics.median(cli) / statistics.median(api),
                        (min(cli) - start) / min(api),
                        min(tty) / min(api),
                        min(load) / n * 1e6,
                        lines,
                    ]
                )
                print(rows[-1], flush=True)
        if args.report_size:
            n = args.report_size
            data = make_pipeline(n, "memory://")
            path = write_yaml(data, work / f"r{n}.yaml")
            report = work / "report.html"
            took, _ = cli_run(["run", str(path), "--report", str(report)], work)
            size_mb = report.stat().st_size / 1e6
            blank = work / "blank.html"
            blank.write_text("<!DOCTYPE html><html><body>x</body></html>")
            base = [chromium_render(blank, work) for _ in range(2)]
            renders = [chromium_render(report, work) for _ in range(2)]
            render = None
            if all(r is not None for r in renders + base):
                render = min(r for r in renders if r is not None) - min(
                    b for b in base if b is not None
                )
            results["report"] = {
                "tasks": n,
                "mb": size_mb,
                "render_s": render,
                "run_with_report_s": took,
            }
    print_table(
        f"`run` vs the Python API (no-op tasks, seed {SEED}; best of {args.repeat}; "
        f"interpreter start + imports {results['startup_s']['best']:.2f} s)",
        ["pipeline", "API µs/task", "run µs/task", "x API best", "x API median",
         "x API w/o start", "x API tty", "load µs/task", "lines"],
        rows,
    )  # fmt: skip
    if "report" in results:
        r = results["report"]
        render = f"{r['render_s']:.2f} s" if r["render_s"] is not None else "no Chromium"
        print(
            f"report of {r['tasks']:,} tasks: {r['mb']:.2f} MB (goal <= {GOAL_REPORT_MB:g}), "
            f"Chromium render {render} (goal <= {GOAL_RENDER_S:g} s)"
        )
    print(f"goals: run <= {GOAL_RATIO}x the API per task; <= {GOAL_LINES} printed lines")
    write_json("cli", results)


if __name__ == "__main__":
    main()
