"""Prometheus metrics of model calls (prometheus_client).

``swarm_llm_requests_total{endpoint,model,status}``, ``swarm_llm_tokens_total{model,
direction="in"|"out"}``, ``swarm_llm_request_seconds{model}`` (latency of answered calls)
and ``swarm_llm_replayed_steps_total{kind="model"|"tool"}``. By default they live in
prometheus_client's global registry (what ``prometheus_client.start_http_server`` serves);
pass ``metrics_for(registry)`` to a :class:`Swarm` to put them elsewhere. A hosted
:class:`LLMAgent` puts them in its runtime's exporter (``Runtime(metrics_port=...)``, the
CLI's ``--metrics-port``) when it has one.
"""

from __future__ import annotations

import weakref
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

__all__ = ["LLMMetrics", "default_metrics", "metrics_for"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class LLMMetrics:
    """The model-call metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else REGISTRY
        self.requests = Counter(
            "swarm_llm_requests",
            "Model calls by endpoint, model and HTTP status ('error': no answer).",
            ["endpoint", "model", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "swarm_llm_tokens",
            "Tokens sent (in) and generated (out) by model.",
            ["model", "direction"],
            registry=registry,
        )
        self.latency = Histogram(
            "swarm_llm_request_seconds",
            "Latency of answered model calls.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.replayed = Counter(
            "swarm_llm_replayed_steps",
            "Journaled steps replayed instead of calling the model or running a tool.",
            ["kind"],
            registry=registry,
        )

    def call(
        self,
        endpoint: str,
        model: str,
        status: str,
        seconds: float,
        usage: dict[str, Any] | None,
    ) -> None:
        """Count one model call (and its tokens and latency when it was answered)."""
        self.requests.labels(endpoint, model, status).inc()
        if usage:
            self.tokens.labels(model, "in").inc(int(usage.get("prompt_tokens") or 0))
            self.tokens.labels(model, "out").inc(int(usage.get("completion_tokens") or 0))
            self.latency.labels(model).observe(seconds)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, LLMMetrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: CollectorRegistry | None = None) -> LLMMetrics:
    """The LLM metrics of ``registry`` (default: prometheus_client's global one), made once
    per registry so every Swarm using it shares the families."""
    registry = registry if registry is not None else REGISTRY
    metrics = _by_registry.get(registry)
    if metrics is None:
        metrics = _by_registry[registry] = LLMMetrics(registry)
    return metrics


def default_metrics() -> LLMMetrics:
    """The process-wide metrics in prometheus_client's global registry (made once)."""
    return metrics_for(None)
