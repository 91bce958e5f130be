"""Functions a YAML LLM agent names as ``functions: [tests.llm.yaml_tools:lookup_order]``."""

from __future__ import annotations

LOOKUPS: list[int] = []


def lookup_order(order_id: int) -> str:
    """Look an order up by its number."""
    LOOKUPS.append(order_id)
    return f"order {order_id}: a blue kettle, delivered broken"
