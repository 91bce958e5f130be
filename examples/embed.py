"""Embedding swarm-runtime in an async application.

An "app" (here: a tiny job intake loop) owns a Runtime, registers two coroutine
agents, asks one for answers (request/reply) and fires work at the other
(fire-and-forget), then shuts down cleanly, draining in-flight work.

    python examples/embed.py [--queue memory://|file://DIR]
"""

from __future__ import annotations

import argparse
import re

import anyio

import swarm_runtime as sr

DOCUMENTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Agents talk through a durable queue; nothing is lost when the process dies.",
    "Asyncio lets one event loop host thousands of coroutine agents.",
]


class KeywordIndexer(sr.Agent):
    """A class-based agent: keeps a running word count in its state."""

    role = "indexer"
    replicas = 2

    async def handle(self, msg: sr.Message, ctx: sr.Context) -> dict[str, int]:
        words = re.findall(r"[a-z]+", msg.payload["text"].lower())
        await ctx.state.update(
            lambda s: {**s, "words_indexed": s.get("words_indexed", 0) + len(words)}
        )
        ctx.log.info("indexed document", words=len(words))
        return {"words": len(words)}


async def main(queue: str) -> None:
    sr.configure_logging("warning")
    async with sr.Runtime(queue=queue, retry=sr.RetryPolicy(max_attempts=3, base_delay=0.05)) as rt:

        @rt.agent("summarize", role="analyzer", replicas=2)
        async def summarize(msg: sr.Message, ctx: sr.Context) -> dict[str, object]:
            text: str = msg.payload["text"]
            words = text.split()
            return {"words": len(words), "first_words": " ".join(words[:4])}

        rt.add_agent(KeywordIndexer("indexer"))

        # request/reply: durable send, wait for the result
        for doc in DOCUMENTS:
            reply = await rt.request("summarize", {"text": doc}, timeout=10)
            print(f"summary: {reply['words']:>2} words, starts with {reply['first_words']!r}")

        # fire-and-forget, then wait until the agents have drained their inboxes
        for doc in DOCUMENTS:
            await rt.send("indexer", {"text": doc})
        await rt.join(timeout=10)
        state = await rt.state.get_state("indexer")
        print(f"indexer state: {state}")
    print("runtime stopped cleanly")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", default="memory://", help="queue URL (default memory://)")
    anyio.run(main, parser.parse_args().queue)
