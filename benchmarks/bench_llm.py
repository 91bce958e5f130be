"""Framework overhead per LLM agent step, against one local scripted OpenAI-compatible server.

The server (``swarm_runtime.testing.ScriptedServer``) runs in its own process; every contender
talks to it over HTTP with the real ``openai`` client and runs the same conversation: the
model asks for a tool call, the tool runs, the model answers (two model steps a run).

* raw openai client: the loop written by hand (the floor);
* swarm_runtime.llm, not durable (``store=None``);
* swarm_runtime.llm, durable on ``file://`` (every step fsync'd before the run moves on), on
  this disk and, when ``/dev/shm`` exists, on tmpfs (where an fsync costs nothing: what the
  journal itself costs, apart from the disk's fsync latency, which is measured too);
* the OpenAI Agents SDK (``openai-agents``, in the ``bench`` extra), when installed.

Overhead per step = (time per run - the raw client's) / 2. Contenders take turns in each
repeat (the same machine load on all); best and median of the repeats are reported.

    python benchmarks/bench_llm.py [--runs 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STEPS = 2  # model steps per run

SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from swarm_runtime.testing import ScriptedServer, reply, tool_call

def answer(body):
    if body["messages"][-1]["role"] == "tool":
        return reply("It is sunny in Paris.", usage=(40, 8))
    return tool_call("get_weather", {"city": "Paris"})

server = ScriptedServer(default=answer).start()
print(server.port, flush=True)
sys.stdin.read()  # until the parent closes it
server.stop()
"""

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


def get_weather(city: str) -> str:
    """Current weather of a city."""
    return f"sunny in {city}"


Runner = Callable[[], Awaitable[Any]]


async def raw_runner(base_url: str) -> tuple[Runner, Callable[[], Awaitable[None]]]:
    """The hand-written loop on the openai client: the floor every framework adds to."""
    import json

    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]

    async def run() -> Any:
        messages: list[Any] = [{"role": "system", "content": "Be brief."}, *QUESTION]
        while True:
            completion = await client.chat.completions.create(
                model="gpt-4o", messages=messages, tools=tools
            )
            message = completion.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return message.content
            for call in message.tool_calls:
                args = json.loads(call.function.arguments)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": get_weather(**args)}
                )

    return run, client.close


async def swarm_runner(
    base_url: str, store: str | None
) -> tuple[Runner, Callable[[], Awaitable[None]]]:
    import openai

    from swarm_runtime.llm import Agent, Swarm

    http = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    client = Swarm(http, store=store)
    agent = Agent(name="Weather", instructions="Be brief.", functions=[get_weather])

    async def run() -> Any:
        return await client.arun(agent, QUESTION)

    async def close() -> None:
        await client.aclose()
        await http.close()

    return run, close


async def agents_sdk_runner(base_url: str) -> tuple[Runner, Callable[[], Awaitable[None]]] | None:
    try:
        import agents
    except ImportError:
        return None
    import openai

    agents.set_tracing_disabled(True)
    http = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0)
    model = agents.OpenAIChatCompletionsModel(model="gpt-4o", openai_client=http)
    agent = agents.Agent(
        name="Weather",
        instructions="Be brief.",
        tools=[agents.function_tool(get_weather)],
        model=model,
    )

    async def run() -> Any:
        return await agents.Runner.run(agent, QUESTION[0]["content"])

    return run, http.close


async def measure(run: Runner, runs: int) -> float:
    """Seconds per run (after two warm-up runs)."""
    for _ in range(2):
        await run()
    started = time.perf_counter()
    for _ in range(runs):
        await run()
    return (time.perf_counter() - started) / runs


def fsync_latency(directory: Path, n: int = 50) -> dict[str, float]:
    """Milliseconds one small append + fdatasync takes on this disk (best, median)."""
    import os

    sync = getattr(os, "fdatasync", os.fsync)
    path = directory / "fsync-probe"
    times = []
    with open(path, "wb") as file:
        for _ in range(n):
            file.write(b"x" * 200)
            file.flush()
            started = time.perf_counter()
            sync(file.fileno())
            times.append((time.perf_counter() - started) * 1000)
    path.unlink()
    return {"best": min(times), "median": statistics.median(times)}


async def bench(
    base_url: str, runs: int, repeat: int, journal_dir: Path, shm_dir: Path | None
) -> dict[str, list[float]]:
    import swarm_runtime as sr

    sr.configure_logging("error")
    contenders: dict[str, tuple[Runner, Callable[[], Awaitable[None]]]] = {
        "raw openai client": await raw_runner(base_url),
        "swarm_runtime.llm": await swarm_runner(base_url, None),
        "swarm_runtime.llm file://": await swarm_runner(base_url, f"file://{journal_dir}"),
    }
    if shm_dir is not None:
        contenders["swarm_runtime.llm file:// tmpfs"] = await swarm_runner(
            base_url, f"file://{shm_dir}"
        )
    sdk = await agents_sdk_runner(base_url)
    if sdk is not None:
        contenders["openai-agents SDK"] = sdk
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (run, _close) in contenders.items():
            times[name].append(await measure(run, runs))
    for _run, close in contenders.values():
        await close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        base_url = f"http://127.0.0.1:{port}/v1"
        shm = Path("/dev/shm")
        with (
            tempfile.TemporaryDirectory(dir=HERE) as tmp,
            tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else HERE) as tmp_shm,
        ):
            fsync = fsync_latency(Path(tmp))
            times = asyncio.run(
                bench(
                    base_url,
                    args.runs,
                    args.repeat,
                    Path(tmp),
                    Path(tmp_shm) if shm.is_dir() else None,
                )
            )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)

    raw_best, raw_median = (
        min(times["raw openai client"]),
        statistics.median(times["raw openai client"]),
    )
    rows = []
    results: dict[str, Any] = {}
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        over_best = (best - raw_best) / STEPS * 1000
        over_median = (median - raw_median) / STEPS * 1000
        rows.append([name, best * 1000, median * 1000, over_best, over_median])
        results[name] = {
            "ms_per_run_best": best * 1000,
            "ms_per_run_median": median * 1000,
            "overhead_ms_per_step_best": over_best,
            "overhead_ms_per_step_median": over_median,
            "runs": values,
        }
    print_table(
        f"LLM agent loop, {args.runs} runs x {args.repeat} repeats, {STEPS} model steps a run",
        ["contender", "ms/run best", "ms/run median", "overhead ms/step best", "median"],
        rows,
    )
    plain = results["swarm_runtime.llm"]

    def added(name: str) -> dict[str, float]:
        durable = results[name]
        return {
            "best": (durable["ms_per_run_best"] - plain["ms_per_run_best"]) / STEPS,
            "median": (durable["ms_per_run_median"] - plain["ms_per_run_median"]) / STEPS,
        }

    journal = {"disk": added("swarm_runtime.llm file://")}
    print(
        f"journaling on file:// adds {journal['disk']['best']:.3f} ms/step best, "
        f"{journal['disk']['median']:.3f} median (goal <= 1 ms); this disk's fdatasync: "
        f"{fsync['best']:.3f} ms best, {fsync['median']:.3f} median; 1.5 fsyncs a step here"
    )
    if "swarm_runtime.llm file:// tmpfs" in results:
        journal["tmpfs"] = added("swarm_runtime.llm file:// tmpfs")
        print(
            "journaling on tmpfs (the journal's own cost, no disk wait) adds "
            f"{journal['tmpfs']['best']:.3f} ms/step best, {journal['tmpfs']['median']:.3f} median"
        )
    sdk = results.get("openai-agents SDK")
    if sdk is not None:
        print(
            "overhead per step, median: swarm_runtime.llm "
            f"{plain['overhead_ms_per_step_median']:.3f} ms, Agents SDK "
            f"{sdk['overhead_ms_per_step_median']:.3f} ms (goal: ours <= the SDK's)"
        )
    else:
        print("openai-agents is not installed (pip install -e '.[bench]'): no SDK figure")
    write_json(
        "bench_llm",
        {
            "runs": args.runs,
            "repeat": args.repeat,
            "steps_per_run": STEPS,
            "results": results,
            "journal_ms_per_step": journal,
            "fdatasync_ms": fsync,
        },
    )


if __name__ == "__main__":
    main()
