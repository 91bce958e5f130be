"""The seed's pipeline form (``etl_stages`` / ``processing_stages`` / ``analysis_stages``).

It becomes a chain in the general form: ETL stages run one after the other (a
stage with a ``source`` reads it, its ``transforms`` then apply; a stage without
a source transforms the previous stage's table), then the processing stages in
order, then every analysis stage in parallel on the last table — as the seed's
``DataPipelineOrchestrator`` does. Stage ``s`` becomes task ``s`` run by agent
``etl_s`` / ``proc_s`` / ``analysis_s`` (the seed's names); an ETL stage with both a
source and transforms reads in an extra task ``s_source`` (agent ``etl_s_source``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from ..agents.builtin._validation import join_path
from .config import AgentSpec, Name, PipelineConfig, Seconds, TaskSpec

__all__ = ["SEED_KEYS", "AnalysisStage", "EtlStage", "Locations", "ProcessingStage", "to_general"]

SEED_KEYS = ("etl_stages", "processing_stages", "analysis_stages")
_SOURCE_TYPES = {"csv": "builtin.csv_source", "jsonl": "builtin.jsonl_source"}
_SOURCE_TYPES["sqlite"] = "builtin.sqlite_source"
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SOURCE_HINT = (
    "expected a file path ending in .csv, .jsonl or .ndjson, or a mapping "
    "{type: csv|jsonl|sqlite, path: ..., ...params}"
)


class _Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    replicas: Annotated[StrictInt, Field(ge=1, le=1024)] = 1
    timeout: Seconds | None = None

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        if len(value) > 80:
            raise ValueError(
                "expected a stage name of at most 80 characters (its agent name adds a prefix)"
            )
        return value


class EtlStage(_Stage):
    """Extract (``source``) and clean up (``transforms``) one table."""

    source: Any = None
    transforms: list[Any] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            suffix = PurePath(value).suffix.lower()
            if suffix in _SQLITE_SUFFIXES:
                raise ValueError(
                    f"a SQLite source needs a table or a query: write {{type: sqlite, path: "
                    f"{value!r}, table: NAME}}"
                )
            if suffix not in _SUFFIXES:
                raise ValueError(f"{_SOURCE_HINT}, got {value!r}")
        elif isinstance(value, dict):
            kind = value.get("type")
            if not isinstance(kind, str) or kind not in _SOURCE_TYPES:
                raise ValueError(
                    f"source.type must be one of {', '.join(_SOURCE_TYPES)}, got {kind!r}"
                )
        else:
            raise ValueError(f"{_SOURCE_HINT}, got {type(value).__name__}")
        return value


class ProcessingStage(_Stage):
    """Table ops (``scaling``, ``encoding``, ...) applied to the ETL result."""

    operations: Annotated[list[Any], Field(min_length=1)]


class AnalysisStage(_Stage):
    """Analyses (``correlation``, ``distribution``) of the processed table."""

    metrics: Annotated[list[Any], Field(min_length=1)]


@dataclass
class Locations:
    """Where each task and agent of a config was written in the file, for error messages.

    ``params[i]`` is the path of task ``i``'s params as a whole, and ``param_keys[i]``
    maps a param key to its own path when it is not ``<params path>.<key>`` (seed stages).
    """

    tasks: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    param_keys: list[dict[str, str]] = field(default_factory=list)
    seed: bool = False

    @classmethod
    def general(cls, config: PipelineConfig) -> Locations:
        """Locations of a config written in the general form."""
        count = len(config.tasks)
        return cls(
            tasks=[f"tasks[{i}]" for i in range(count)],
            agents=[f"agents[{i}]" for i in range(len(config.agents))],
            params=[f"tasks[{i}].params" for i in range(count)],
            param_keys=[{} for _ in range(count)],
        )

    def param_path(self, index: int, key: str, *rest: str | int) -> str:
        """The file path of param ``key`` (and ``rest`` inside it) of task ``index``."""
        mapped = self.param_keys[index].get(key)
        if mapped is not None:
            return join_path(mapped, *rest)
        return join_path(self.params[index], key, *rest)


class _Chain:
    def __init__(self) -> None:
        self.agents: list[AgentSpec] = []
        self.tasks: list[TaskSpec] = []
        self.where = Locations(seed=True)
        self.last: str | None = None

    def add(
        self,
        stage: _Stage,
        path: str,
        *,
        agent: str,
        task: str,
        uses: str,
        params: dict[str, Any],
        params_path: str,
        param_paths: dict[str, str],
        after: str | None,
    ) -> None:
        self.agents.append(
            AgentSpec(name=agent, uses=uses, replicas=stage.replicas, timeout=stage.timeout)
        )
        self.where.agents.append(path)
        self.tasks.append(
            TaskSpec(name=task, agent=agent, depends_on=[after] if after else [], params=params)
        )
        self.where.tasks.append(path)
        self.where.params.append(params_path)
        self.where.param_keys.append(param_paths)


def _source(value: str | dict[str, Any], path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    if isinstance(value, str):
        params: dict[str, Any] = {"path": value}
        if PurePath(value).suffix.lower() == ".tsv":
            params["delimiter"] = "\t"
        uses = _SOURCE_TYPES[_SUFFIXES[PurePath(value).suffix.lower()]]
        return uses, params, {"path": f"{path}.source"}
    params = {k: v for k, v in value.items() if k != "type"}
    paths = {k: join_path(f"{path}.source", k) for k in params}
    return _SOURCE_TYPES[value["type"]], params, paths


def to_general(
    fields: dict[str, Any],
    etl: list[EtlStage],
    processing: list[ProcessingStage],
    analysis: list[AnalysisStage],
    extra_agents: list[AgentSpec],
    extra_tasks: list[TaskSpec],
) -> tuple[PipelineConfig, Locations]:
    """Build the general-form config for seed stages (plus any general agents/tasks)."""
    chain = _Chain()
    last: str | None = None
    for i, stage in enumerate(etl):
        path = f"etl_stages[{i}]"
        if stage.source is not None:
            uses, params, paths = _source(stage.source, path)
            task = f"{stage.name}_source" if stage.transforms else stage.name
            agent = f"etl_{task}"
            chain.add(
                stage,
                path,
                agent=agent,
                task=task,
                uses=uses,
                params=params,
                params_path=f"{path}.source",
                param_paths=paths,
                after=last,
            )
            last = task
        if stage.transforms or stage.source is None:
            chain.add(
                stage,
                path,
                agent=f"etl_{stage.name}",
                task=stage.name,
                uses="builtin.transform",
                params={"ops": stage.transforms},
                params_path=f"{path}.transforms",
                param_paths={"ops": f"{path}.transforms"},
                after=last,
            )
            last = stage.name
    for i, proc in enumerate(processing):
        path = f"processing_stages[{i}]"
        chain.add(
            proc,
            path,
            agent=f"proc_{proc.name}",
            task=proc.name,
            uses="builtin.transform",
            params={"ops": proc.operations},
            params_path=f"{path}.operations",
            param_paths={"ops": f"{path}.operations"},
            after=last,
        )
        last = proc.name
    for i, ana in enumerate(analysis):
        path = f"analysis_stages[{i}]"
        chain.add(
            ana,
            path,
            agent=f"analysis_{ana.name}",
            task=ana.name,
            uses="builtin.analyze",
            params={"metrics": ana.metrics},
            params_path=f"{path}.metrics",
            param_paths={"metrics": f"{path}.metrics"},
            after=last,
        )
    where = chain.where
    where.agents.extend(f"agents[{i}]" for i in range(len(extra_agents)))
    where.tasks.extend(f"tasks[{i}]" for i in range(len(extra_tasks)))
    where.params.extend(f"tasks[{i}].params" for i in range(len(extra_tasks)))
    where.param_keys.extend({} for _ in extra_tasks)
    config = PipelineConfig.model_construct(
        **fields, agents=chain.agents + extra_agents, tasks=chain.tasks + extra_tasks
    )
    return config, where
