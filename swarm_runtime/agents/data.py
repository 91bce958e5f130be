"""DataProcessingAgent (seed slide 3): a task-specific agent that prepares numbers for others."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from ..errors import PayloadError
from ..message import Message
from .base import Agent

if TYPE_CHECKING:
    from ..runtime.context import Context

__all__ = ["DataProcessingAgent"]


class DataProcessingAgent(Agent):
    """Normalises numeric data and keeps a summary of what it processed.

    Each number is scaled by the largest magnitude in the batch, so values keep their sign
    and order and land in [-1, 1]; an all-zero batch maps to 0.0 instead of dividing by
    zero. Non-numeric items (and booleans, NaN, infinities) are skipped and counted.
    Send it ``{"data": [...]}``; the reply is the processed list.
    """

    role = "data_processor"

    def __init__(self, name: str = "data_processor", **options: Any) -> None:
        super().__init__(name, **options)
        self.processed_data: list[dict[str, Any]] = []
        self.skipped = 0

    def process_data(self, raw_data: list[Any]) -> list[dict[str, Any]]:
        """Normalise the numbers in ``raw_data``; returns one record per number."""
        if not isinstance(raw_data, list):
            raise PayloadError(
                f"raw_data must be a list of numbers, got {type(raw_data).__name__}",
                path="payload.data",
                type_name=type(raw_data).__name__,
            )
        numbers = [
            float(x)
            for x in raw_data
            if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        ]
        scale = max((abs(x) for x in numbers), default=0.0)
        now = time.time()
        self.processed_data = [
            {"original": x, "normalized": x / scale if scale else 0.0, "timestamp": now}
            for x in numbers
        ]
        self.skipped = len(raw_data) - len(numbers)
        return self.processed_data

    def get_processing_summary(self) -> dict[str, Any]:
        """How many items the last batch had, how many were skipped, and the last record."""
        return {
            "items_processed": len(self.processed_data),
            "items_skipped": self.skipped,
            "last_processing": self.processed_data[-1] if self.processed_data else None,
        }

    async def handle(self, msg: Message, ctx: Context) -> Any:
        payload = msg.payload
        data: Any = payload.get("data") if isinstance(payload, dict) else payload
        processed = self.process_data(data)
        await ctx.state.update({"last_summary": self.get_processing_summary()})
        return processed
