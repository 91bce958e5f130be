"""Pipelines: YAML files describing a DAG of tasks run by agents.

``load_pipeline(path)`` / ``parse_pipeline(text)`` give a validated
:class:`PipelineConfig` (general form; the seed's ``etl_stages`` form is converted
to a chain); :class:`Dag` and :class:`ReadySet` help a scheduler run it;
``to_mermaid`` / ``to_dot`` draw it.
"""

from __future__ import annotations

from ._uses import import_callable
from .config import (
    DEFAULT_QUEUE,
    SCHEDULING_POLICIES,
    AgentSpec,
    FailurePolicy,
    MonitoringSpec,
    PipelineConfig,
    RetryOverride,
    RetrySpec,
    Scheduling,
    TaskSpec,
)
from .critical_path import critical_path, upward_ranks
from .dag import Dag, ReadySet, check_dag, find_cycles
from .graph import GRAPH_FORMATS, render_graph, to_dot, to_mermaid
from .loader import load_pipeline, parse_pipeline, validate_pipeline

__all__ = [
    "DEFAULT_QUEUE",
    "GRAPH_FORMATS",
    "SCHEDULING_POLICIES",
    "AgentSpec",
    "Dag",
    "FailurePolicy",
    "MonitoringSpec",
    "PipelineConfig",
    "ReadySet",
    "RetryOverride",
    "RetrySpec",
    "Scheduling",
    "TaskSpec",
    "check_dag",
    "critical_path",
    "find_cycles",
    "import_callable",
    "load_pipeline",
    "parse_pipeline",
    "render_graph",
    "to_dot",
    "to_mermaid",
    "upward_ranks",
    "validate_pipeline",
]
