"""Makespan of real workflow shapes: critical-path-first ``run`` against list schedulers.

Workflows come from WfCommons (``pip install wfcommons``, in the ``bench`` extra): its
WfChef recipes, bundled with the package and built from real execution traces, generate
Montage, Epigenomics, Genome (1000Genome), Blast and Seismology instances offline (fixed
seeds; nothing is downloaded). Each task sleeps its trace runtime, scaled so that the
lower bound ``max(critical path, total work / C)`` is ``--target`` seconds, with the
workflow's concurrency ``C = round(total work / critical path)``.

Compared, all in one run, as multiples of the lower bound:

* FIFO list scheduler: ``graphlib.TopologicalSorter`` + asyncio, ready tasks started in
  the order they became ready, at most C at once;
* critical-path-first list scheduler: the same, ready tasks by upward rank computed
  from the true runtimes (the reference: it knows every duration);
* ``run`` (``DataPipelineOrchestrator`` on a generated YAML pipeline, ``memory://``
  queue, runs kept in a runs directory, services off, one sleeping agent per task type,
  ``concurrency: C``) with ``scheduling: fifo`` (what ``run`` did before), and with
  ``critical_path`` (the default) given every task's ``estimate``; given none, on a
  first run (durations learned per agent as the run goes) and on a second run of the
  same pipeline (starting from the durations the first recorded in the run store).

Goals: ``run`` with estimates within 5% of the critical-path-first reference, without
within 20%.

    python benchmarks/bench_schedule.py [--tasks 2000] [--target 3] [--repeat 3]
        [--workflows montage,epigenomics,genome,blast,seismology]
"""

from __future__ import annotations

import argparse
import asyncio
import graphlib
import heapq
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, print_table, write_json

from swarm_runtime.orchestrator import DataPipelineOrchestrator
from swarm_runtime.pipeline.critical_path import critical_path, reverse_topological, upward_ranks

RECIPES = {
    "montage": "MontageRecipe",
    "epigenomics": "EpigenomicsRecipe",
    "genome": "GenomeRecipe",
    "blast": "BlastRecipe",
    "seismology": "SeismologyRecipe",
}
SEED = 20240601
GOAL_ESTIMATES = 1.05
GOAL_LEARNED = 1.20

# name -> (task type, runtime in trace seconds, dependencies)
Workflow = dict[str, tuple[str, float, list[str]]]


# ---------------------------------------------------------------------- workflows


def generate(recipe: str, tasks: int, seed: int) -> Workflow:
    """A WfCommons workflow from the bundled recipe (cached under results/wfcommons/)."""
    cache = RESULTS / "wfcommons" / f"{recipe}-{tasks}-{seed}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        return {name: (t, float(r), list(d)) for name, (t, r, d) in data.items()}
    try:
        import numpy
        from wfcommons import WorkflowGenerator
        from wfcommons.wfchef import recipes
    except ImportError:
        sys.exit("bench_schedule needs wfcommons: pip install -e '.[bench]'")
    random.seed(seed)
    numpy.random.seed(seed)
    recipe_class = getattr(recipes, RECIPES[recipe])
    built = WorkflowGenerator(recipe_class.from_num_tasks(tasks)).build_workflow()
    workflow: Workflow = {}
    for name, task in built.tasks.items():
        kind = name.rsplit("_", 1)[0] if "_" in name else name
        deps = sorted(built.predecessors(name))
        workflow[name] = (kind, float(task.runtime or 0.0), deps)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(workflow))
    return workflow


def scale(workflow: Workflow, target: float) -> tuple[dict[str, float], int, float, float]:
    """Scaled seconds per task, the concurrency C, the lower bound and the critical path."""
    deps = {name: deps for name, (_, _, deps) in workflow.items()}
    dependents: dict[str, list[str]] = {name: [] for name in workflow}
    for name, ds in deps.items():
        for dep in ds:
            dependents[dep].append(name)
    runtime = {name: r for name, (_, r, _) in workflow.items()}
    _, length = critical_path(list(workflow), deps, dependents, runtime.__getitem__)
    total = sum(runtime.values())
    concurrency = max(1, round(total / length))
    bound = max(length, total / concurrency)
    factor = target / bound
    seconds = {name: r * factor for name, r in runtime.items()}
    return seconds, concurrency, target, length * factor


# ---------------------------------------------------------------------- references


async def list_schedule(
    deps: dict[str, list[str]], seconds: dict[str, float], limit: int, key: Callable[[str], Any]
) -> float:
    """Makespan of a list scheduler: ready tasks by ``key`` (smallest first), <= limit."""
    sorter = graphlib.TopologicalSorter(deps)
    sorter.prepare()
    ready: list[tuple[Any, str]] = []
    done: asyncio.Queue[str] = asyncio.Queue()
    tasks: set[asyncio.Task[None]] = set()  # kept referenced until done
    running = 0

    async def work(name: str) -> None:
        await asyncio.sleep(seconds[name])
        done.put_nowait(name)

    loop = asyncio.get_running_loop()
    start = loop.time()
    for name in sorter.get_ready():
        heapq.heappush(ready, (key(name), name))
    while sorter.is_active():
        while ready and running < limit:
            _, name = heapq.heappop(ready)
            task = asyncio.create_task(work(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            running += 1
        finished = [await done.get()]
        while not done.empty():
            finished.append(done.get_nowait())
        running -= len(finished)
        for name in finished:
            sorter.done(name)
        for name in sorter.get_ready():
            heapq.heappush(ready, (key(name), name))
    return loop.time() - start


def fifo_key() -> Callable[[str], Any]:
    counter = iter(range(1 << 62))
    return lambda name: next(counter)  # the order tasks became ready


def rank_key(workflow: Workflow, seconds: dict[str, float]) -> Callable[[str], Any]:
    deps = {name: d for name, (_, _, d) in workflow.items()}
    dependents: dict[str, list[str]] = {name: [] for name in workflow}
    for name, ds in deps.items():
        for dep in ds:
            dependents[dep].append(name)
    rank = upward_ranks(reverse_topological(deps, dependents), dependents, seconds.__getitem__)
    index = {name: i for i, name in enumerate(workflow)}
    return lambda name: (-rank[name], index[name])


# ---------------------------------------------------------------------- run


def pipeline_yaml(
    name: str,
    workflow: Workflow,
    seconds: dict[str, float],
    concurrency: int,
    *,
    scheduling: str,
    estimates: bool,
) -> dict[str, Any]:
    kinds = sorted({kind for kind, _, _ in workflow.values()})
    tasks = []
    for task, (kind, _, deps) in workflow.items():
        spec: dict[str, Any] = {"name": task, "agent": kind, "params": {"seconds": seconds[task]}}
        if deps:
            spec["depends_on"] = deps
        if estimates:
            spec["estimate"] = seconds[task]
        tasks.append(spec)
    return {
        "name": name,
        "queue": "memory://",
        "concurrency": concurrency,
        "scheduling": scheduling,
        "agents": [
            {"name": kind, "uses": "_sleep_agent:sleep", "concurrency": concurrency}
            for kind in kinds
        ],
        "tasks": tasks,
    }


async def run_pipeline(path: Path, runs: Path) -> float:
    """Makespan of ``run`` on the pipeline file: the session's start to its end."""
    orch = DataPipelineOrchestrator(services=False, runs_dir=runs)
    pipeline_id = orch.create_pipeline(path)
    result = await orch.execute_pipeline(pipeline_id, resume=False)
    if not result.ok:
        raise SystemExit(f"{path.name}: {result.error}")
    status = result.status
    assert status.started_at is not None
    assert status.finished_at is not None
    return status.finished_at - status.started_at


# ---------------------------------------------------------------------- main

COLUMNS = (
    ("fifo_ref", "FIFO list (graphlib+asyncio)"),
    ("cp_ref", "CP-first list (graphlib+asyncio)"),
    ("run_fifo", "run, fifo"),
    ("run_estimates", "run, critical_path, estimates"),
    ("run_learned", "run, critical_path, learned"),
    ("run_history", "run, critical_path, from earlier run"),
)


async def measure(
    name: str, workflow: Workflow, target: float, repeat: int, directory: Path
) -> dict[str, Any]:
    seconds, concurrency, bound, path_length = scale(workflow, target)
    deps = {task: d for task, (_, _, d) in workflow.items()}
    files = {}
    for key, scheduling, estimates in (
        ("run_fifo", "fifo", False),
        ("run_estimates", "critical_path", True),
        ("run_learned", "critical_path", False),
    ):
        data = pipeline_yaml(
            f"{name}-{key.replace('_', '-')}",
            workflow,
            seconds,
            concurrency,
            scheduling=scheduling,
            estimates=estimates,
        )
        path = directory / f"{name}-{key}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        files[key] = path
    times: dict[str, list[float]] = {key: [] for key, _ in COLUMNS}
    ranked = rank_key(workflow, seconds)
    for attempt in range(repeat):
        times["fifo_ref"].append(await list_schedule(deps, seconds, concurrency, fifo_key()))
        times["cp_ref"].append(await list_schedule(deps, seconds, concurrency, ranked))
        for key, path in files.items():
            runs = directory / f"runs-{name}-{key}-{attempt}"
            times[key].append(await run_pipeline(path, runs))
            if key == "run_learned":  # the same pipeline again: estimates from the store
                times["run_history"].append(await run_pipeline(path, runs))
    multiples = {key: [t / bound for t in values] for key, values in times.items()}
    return {
        "workflow": name,
        "tasks": len(workflow),
        "task_types": len({kind for kind, _, _ in workflow.values()}),
        "concurrency": concurrency,
        "lower_bound_s": bound,
        "critical_path_s": path_length,
        "total_work_s": sum(seconds.values()),
        "best": {key: min(values) for key, values in multiples.items()},
        "median": {key: statistics.median(values) for key, values in multiples.items()},
        "runs": multiples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--target", type=float, default=3.0, help="lower bound, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workflows", default=",".join(RECIPES))
    args = parser.parse_args()
    chosen = [w.strip() for w in args.workflows.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in RECIPES]
    if unknown:
        sys.exit(f"unknown workflow(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    rows = []
    measured = []
    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as tmp:
        for name in chosen:
            started = time.perf_counter()
            workflow = generate(name, args.tasks, SEED)
            generated = time.perf_counter() - started
            found = asyncio.run(measure(name, workflow, args.target, args.repeat, Path(tmp)))
            found["generate_s"] = generated
            measured.append(found)
            best, median = found["best"], found["median"]
            rows.append(
                [name, found["tasks"], found["concurrency"]]
                + [f"{best[key]:.2f} / {median[key]:.2f}" for key, _ in COLUMNS]
                + [
                    f"{best['run_estimates'] / best['cp_ref']:.3f}",
                    f"{best['run_learned'] / best['cp_ref']:.3f}",
                    f"{best['run_history'] / best['cp_ref']:.3f}",
                ]
            )
            print(f"{name}: done ({found['tasks']} tasks)", flush=True)
    print_table(
        f"makespan / lower bound (best / median of {args.repeat}); lower bound "
        f"{args.target:g} s; WfCommons recipes, seed {SEED}",
        ["workflow", "tasks", "C"]
        + [label for _, label in COLUMNS]
        + ["estimates / CP ref", "learned / CP ref", "earlier run / CP ref"],
        rows,
    )
    verdicts = []
    for found in measured:
        best = found["best"]
        with_est = best["run_estimates"] / best["cp_ref"]
        learned = best["run_learned"] / best["cp_ref"]
        history = best["run_history"] / best["cp_ref"]
        verdicts.append(
            f"{found['workflow']}: estimates {with_est:.3f}x the CP reference (goal <= "
            f"{GOAL_ESTIMATES}), learned {learned:.3f}x on a first run and {history:.3f}x "
            f"from an earlier run (goal <= {GOAL_LEARNED}); run fifo "
            f"{best['run_fifo'] / best['fifo_ref']:.3f}x the FIFO reference"
        )
    print("\n".join(verdicts))
    write_json(
        "schedule",
        {
            "tasks": args.tasks,
            "target_s": args.target,
            "repeat": args.repeat,
            "seed": SEED,
            "goals": {"estimates": GOAL_ESTIMATES, "learned": GOAL_LEARNED},
            "workflows": measured,
        },
    )


if __name__ == "__main__":
    main()
