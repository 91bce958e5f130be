"""Swarm-style triage: one agent routes each request to a specialist by handing it off.

The triage agent returns ``await ctx.handoff(...)``, so the specialist answers the
original requester directly; every hop is tracked by the HandoffProtocol and can be
traced afterwards (refund requests go triage -> billing -> refunds).

    python examples/handoff.py
"""

from __future__ import annotations

import anyio

import swarm_runtime as sr

TICKETS = [
    "I was charged twice on my invoice",
    "The app crashes when I upload a photo",
    "Please refund my last order",
    "What are your opening hours?",
]


async def main() -> None:
    sr.configure_logging("warning")
    async with sr.Runtime(queue="memory://") as rt:

        @rt.agent("triage", role="router")
        async def triage(msg: sr.Message, ctx: sr.Context) -> object:
            text = msg.payload["text"].lower()
            if "invoice" in text or "charged" in text or "refund" in text:
                return await ctx.handoff("billing", msg.payload, reason="billing keyword")
            if "crash" in text or "error" in text:
                return await ctx.handoff("tech", msg.payload, reason="technical keyword")
            return {"answered_by": "triage", "answer": "See our FAQ."}

        @rt.agent("billing", role="specialist")
        async def billing(msg: sr.Message, ctx: sr.Context) -> object:
            if "refund" in msg.payload["text"].lower():
                return await ctx.handoff("refunds", msg.payload, reason="refund request")
            return {"answered_by": "billing", "answer": "We have corrected your invoice."}

        @rt.agent("refunds", role="specialist")
        async def refunds(msg: sr.Message, ctx: sr.Context) -> object:
            await ctx.state.update(lambda s: {"issued": s.get("issued", 0) + 1})
            return {"answered_by": "refunds", "answer": "Your refund is on its way."}

        @rt.agent("tech", role="specialist")
        async def tech(msg: sr.Message, ctx: sr.Context) -> object:
            return {"answered_by": "tech", "answer": "Fixed in version 2.1; please update."}

        for ticket in TICKETS:
            reply = await rt.request("triage", {"text": ticket}, timeout=10)
            print(f"{ticket!r:45} -> {reply['answered_by']:8} {reply['answer']}")

        print("\nhandoff chains:")
        for record in await rt.handoffs.records():
            if record.parent_id is None:
                chain = [record, *await rt.handoffs.descendants(record.id)]
                hops = " -> ".join([chain[0].source, *(h.target for h in chain)])
                print(f"  {hops:30} status={record.status}")


if __name__ == "__main__":
    anyio.run(main)
