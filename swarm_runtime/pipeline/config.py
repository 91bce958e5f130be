"""Pydantic models of a pipeline file (the general DAG form of DESIGN.md).

A pipeline names its agents (``uses:`` a built-in such as ``builtin.csv_source`` or
a user callable ``package.module:callable``) and its tasks (each run by one agent,
after the tasks it ``depends_on``). Build one with :func:`~.loader.load_pipeline` or
:func:`~.loader.parse_pipeline`, which also run the DAG and params checks.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from ..agents.builtin import BUILTIN_PREFIX, BUILTINS, Builtin
from ..agents.builtin._validation import did_you_mean
from ..errors import ConfigError
from ..queue._registry import check_url
from ..retry import RetryPolicy
from ._service_specs import ServicesSpec

__all__ = [
    "DEFAULT_QUEUE",
    "LLM_USES",
    "SCHEDULING_POLICIES",
    "AgentSpec",
    "ArtifactsSpec",
    "FailurePolicy",
    "MonitoringSpec",
    "PipelineConfig",
    "RetryOverride",
    "RetrySpec",
    "Scheduling",
    "ServicesSpec",
    "TaskSpec",
    "check_name",
]

#: the queue a pipeline runs on when it does not say (DESIGN.md: ``file://queue``)
DEFAULT_QUEUE = "file://queue"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_CALLABLE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

FailurePolicy = Literal["fail_fast", "continue"]
#: how ready tasks are ordered after ``priority``: longest remaining path first, or the
#: order they were declared in
Scheduling = Literal["critical_path", "fifo"]
SCHEDULING_POLICIES: tuple[Scheduling, ...] = ("critical_path", "fifo")


def check_name(value: str) -> str:
    """Task, agent and pipeline names: letters, digits, ``_ . -`` (they become topics)."""
    if not _NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"expected a name of letters, digits, '_', '.' and '-' (not starting with '.' or "
            f"'-', no '..', at most 100 characters), got {value!r}"
        )
    return value


#: ``uses:`` of an LLM agent (``model``, ``instructions``, ``functions``, ``handoffs``)
LLM_USES = "builtin.llm"


def _check_uses(value: str) -> str:
    if value == LLM_USES:
        return value
    if value.startswith(BUILTIN_PREFIX):
        if value not in BUILTINS:
            raise ValueError(
                f"unknown built-in agent {value!r}{did_you_mean(value, [*BUILTINS, LLM_USES])}; "
                f"known: {', '.join([*BUILTINS, LLM_USES])}"
            )
        return value
    if not _CALLABLE.fullmatch(value):
        raise ValueError(
            "expected a built-in ('builtin.csv_source', ...) or a user callable "
            f"'package.module:function', got {value!r}"
        )
    return value


def _check_callable(value: str) -> str:
    if not _CALLABLE.fullmatch(value):
        raise ValueError(f"expected a callable 'package.module:function', got {value!r}")
    return value


def _check_queue(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a queue URL such as file://queue or memory://")
    try:
        return check_url(value)  # a bare directory means file://DIR
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _check_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


Name = Annotated[StrictStr, AfterValidator(check_name)]
Uses = Annotated[StrictStr, AfterValidator(_check_uses)]
CallableName = Annotated[StrictStr, Field(pattern=_CALLABLE.pattern)]
QueueUrl = Annotated[StrictStr, AfterValidator(_check_queue)]
Seconds = Annotated[float, Field(strict=True, gt=0), AfterValidator(_check_finite)]
Delay = Annotated[float, Field(strict=True, ge=0), AfterValidator(_check_finite)]
Count = Annotated[StrictInt, Field(ge=1)]
Params = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Model):
    """Workflow retry policy: ``max_attempts`` counts tries (3 = one try, two retries)."""

    max_attempts: Count = 3
    base_delay: Delay = 0.5
    max_delay: Delay = 30.0
    jitter: StrictBool = True

    @field_validator("max_delay")
    @classmethod
    def _max_not_below_base(cls, value: float, info: Any) -> float:
        base = info.data.get("base_delay")
        if base is not None and value < base:
            raise ValueError(f"expected a delay >= base_delay ({base}), got {value}")
        return value

    def to_policy(self) -> RetryPolicy:
        """The runtime's :class:`RetryPolicy` with these settings."""
        return RetryPolicy(self.max_attempts, self.base_delay, self.max_delay, self.jitter)


class RetryOverride(_Model):
    """Per-task retry settings; unset fields come from the workflow's ``retry``."""

    max_attempts: Count | None = None
    base_delay: Delay | None = None
    max_delay: Delay | None = None
    jitter: StrictBool | None = None


class MonitoringSpec(_Model):
    """Alert thresholds by metric name (``response_time: 1.0``, ``error_rate: 0.05``), the
    sampling ``interval`` (seconds) and ``on_alert``, a ``"module:callable"`` given every
    alert transition."""

    thresholds: dict[Name, Annotated[Delay, Field(description="alert above this value")]] = Field(
        default_factory=dict
    )
    interval: Seconds = 1.0
    on_alert: Annotated[StrictStr, AfterValidator(_check_callable)] | None = None


class ArtifactsSpec(_Model):
    """Where table results are stored, and how many finished runs keep theirs.

    ``location``: a directory (``file://`` URL or path); default ``<queue dir>/artifacts``
    on ``file://``, memory on ``memory://``; required on ``redis://`` for table results
    (a directory every worker mounts). ``keep_runs``: how many finished runs of the
    pipeline keep their artifacts (the newest; default 3); older finished runs' artifacts
    are removed when a run finishes (``runs gc`` does the same on demand).
    """

    location: Annotated[StrictStr, Field(min_length=1)] | None = None
    keep_runs: Annotated[StrictInt, Field(ge=0)] = 3

    @model_validator(mode="before")
    @classmethod
    def _from_location(cls, value: Any) -> Any:
        return {"location": value} if isinstance(value, str) else value


class AgentSpec(_Model):
    """An agent: what it runs (``uses``), how many replicas, and its defaults for tasks."""

    name: Name
    uses: Uses
    role: StrictStr | None = None
    replicas: Annotated[StrictInt, Field(ge=1, le=1024)] = 1
    concurrency: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1
    max_concurrency: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    timeout: Seconds | None = None
    params: Params = Field(default_factory=dict)
    # uses: builtin.llm only
    model: StrictStr | None = None
    instructions: StrictStr | None = None
    functions: list[CallableName] = Field(default_factory=list)
    handoffs: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _llm_fields_only_for_llm(self) -> AgentSpec:
        if self.uses != LLM_USES:
            given = [
                f
                for f in ("model", "instructions", "functions", "handoffs")
                if f in self.model_fields_set
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to 'uses: {LLM_USES}' agents, not {self.uses!r}"
                )
        return self

    @field_validator("max_concurrency")
    @classmethod
    def _max_not_below_concurrency(cls, value: int | None, info: Any) -> int | None:
        low = info.data.get("concurrency")
        if value is not None and low is not None and value < low:
            raise ValueError(f"expected max_concurrency >= concurrency ({low}), got {value}")
        return value

    @property
    def builtin(self) -> Builtin[Any] | None:
        """The built-in data agent this agent runs, or None (a user callable or an LLM)."""
        return BUILTINS.get(self.uses)

    @property
    def is_llm(self) -> bool:
        """An LLM agent (``uses: builtin.llm``)."""
        return self.uses == LLM_USES


class TaskSpec(_Model):
    """A task: run by ``agent`` once every task in ``depends_on`` has completed."""

    name: Name
    agent: Name
    depends_on: list[Name] = Field(default_factory=list)
    params: Params = Field(default_factory=dict)
    priority: StrictInt = 0
    timeout: Seconds | None = None
    retry: RetryOverride | None = None
    estimate: Delay | None = Field(
        default=None, description="expected seconds (else learned from measured durations)"
    )


class PipelineConfig(_Model):
    """A whole pipeline in the general form; seed-form files are converted to this."""

    name: Name
    description: StrictStr = ""
    queue: QueueUrl = DEFAULT_QUEUE
    agents: list[AgentSpec]
    tasks: list[TaskSpec]
    retry: RetrySpec = Field(default_factory=RetrySpec)
    failure_policy: FailurePolicy = "fail_fast"
    concurrency: Count | None = None
    scheduling: Scheduling = "critical_path"
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    services: ServicesSpec = Field(default_factory=ServicesSpec)
    artifacts: ArtifactsSpec = Field(default_factory=ArtifactsSpec)

    def _index(self) -> tuple[dict[str, TaskSpec], dict[str, AgentSpec]]:
        """Name → spec maps, built once (rebuilt if the lists were replaced or grown)."""
        key = (id(self.tasks), len(self.tasks), id(self.agents), len(self.agents))
        cached = self.__dict__.get("_by_name")  # not a field: ignored by ==, dumps and copies' keys
        if cached is None or cached[0] != key:
            tasks: dict[str, TaskSpec] = {}
            agents: dict[str, AgentSpec] = {}
            for task in self.tasks:
                tasks.setdefault(task.name, task)
            for agent in self.agents:
                agents.setdefault(agent.name, agent)
            cached = (key, tasks, agents)
            self.__dict__["_by_name"] = cached
        return cached[1], cached[2]

    def task(self, name: str) -> TaskSpec:
        """The task called ``name`` (KeyError if none); O(1)."""
        return self._index()[0][name]

    def agent(self, name: str) -> AgentSpec:
        """The agent called ``name`` (KeyError if none); O(1)."""
        return self._index()[1][name]

    def agent_for(self, task: TaskSpec | str) -> AgentSpec:
        """The agent that runs ``task``."""
        spec = self.task(task) if isinstance(task, str) else task
        return self.agent(spec.agent)

    def params_for(self, task: TaskSpec | str) -> dict[str, Any]:
        """The task's params over its agent's default params (task keys win)."""
        spec = self.task(task) if isinstance(task, str) else task
        return {**self.agent(spec.agent).params, **spec.params}

    def timeout_for(self, task: TaskSpec | str) -> float | None:
        """Seconds one attempt of ``task`` may take: the task's, else its agent's, else None."""
        spec = self.task(task) if isinstance(task, str) else task
        return spec.timeout if spec.timeout is not None else self.agent(spec.agent).timeout

    def retry_for(self, task: TaskSpec | str) -> RetrySpec:
        """The workflow retry policy with the task's overrides applied."""
        spec = self.task(task) if isinstance(task, str) else task
        if spec.retry is None:
            return self.retry
        changes = spec.retry.model_dump(exclude_none=True)
        return RetrySpec.model_validate({**self.retry.model_dump(), **changes})

    def edges(self) -> list[tuple[str, str]]:
        """``(dependency, task)`` pairs in declaration order: data flows left to right."""
        return [(dep, task.name) for task in self.tasks for dep in task.depends_on]

    def to_dict(self) -> dict[str, Any]:
        """The general form as plain data (defaults left out); parses back to an equal config."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML text (non-ASCII kept readable when PyYAML can do so safely)."""
        data = self.to_dict()
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if yaml.safe_load(text) != data:  # e.g. U+0085, which YAML reads as a line break
            text = yaml.safe_dump(data, sort_keys=False)
        return text
