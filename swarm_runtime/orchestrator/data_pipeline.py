"""DataPipelineOrchestrator (seed slide 11): run a pipeline (YAML or dict) end to end.

``create_pipeline(config)`` validates a pipeline (a file path, YAML text's parsed dict,
or a :class:`PipelineConfig`; the seed's ``etl_stages`` form is accepted too) and checks
that every user agent can be imported. ``execute_pipeline(pipeline_id, input_data)``
builds a :class:`Runtime` on the pipeline's queue with its agents - built-in data agents
run their synchronous work in a worker thread; user agents come from
``uses: "module:callable"`` - and runs the DAG with a :class:`WorkflowOrchestrator`.

A pipeline run on a ``file://`` queue is durable: if it is interrupted (Ctrl-C, a crash,
``kill -9``), executing the same pipeline again resumes the newest unfinished run of it
(same name, same definition), skipping the tasks that completed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._logging import get_logger
from .._redact import redact
from ..agents.builtin._confine import confined_to
from ..artifacts import ArtifactLocation, ArtifactStore
from ..artifacts.retention import collect_garbage
from ..backends import backend_class
from ..errors import ConfigError, WorkflowError
from ..events import RuntimeListener
from ..pipeline import (
    SCHEDULING_POLICIES,
    PipelineConfig,
    Scheduling,
    TaskSpec,
    load_pipeline,
    parse_pipeline,
    validate_pipeline,
)
from ..runtime.runtime import Runtime
from ._pipeline_agents import build_agent, check_llm_spec, user_target
from ._scaleout import DispatchRuntime, shared_agents
from .pipeline_result import PipelineResult, RunStart
from .status import TaskState, WorkflowStatus
from .workflow import WorkflowOrchestrator, fingerprint, task_dict

__all__ = ["DataPipelineOrchestrator", "PipelineResult", "RunStart"]

log = get_logger("swarm_runtime.pipeline")


@dataclass
class _Pipeline:
    config: PipelineConfig
    source: str
    state: str = "initialized"  # initialized | running | completed | failed | ...
    orchestrator: WorkflowOrchestrator | None = None
    run_id: str | None = None


PipelineSource = PipelineConfig | Mapping[str, Any] | str | os.PathLike[str]


class DataPipelineOrchestrator:
    """Runs pipelines: ``create_pipeline(config)`` then ``await execute_pipeline(id, input)``.

    ``queue`` overrides the pipelines' own ``queue:``; ``runs_dir`` is where runs are
    kept (default ``<queue dir>/runs`` for ``file://``, memory otherwise). The runtime's
    background services (configured by the pipeline's ``services:``, ``retry:`` and
    ``monitoring:`` blocks: metrics, monitoring, error handling, circuit breakers, load
    balancing, self-optimizer) run unless ``services=False`` or ``services.enabled: false``;
    their alerts and report come back in the result. ``metrics_port`` serves Prometheus
    metrics (over ``services.metrics.port``).

    On a shared ``redis://`` queue this process hosts the pipeline's agents the way
    ``worker`` processes do (see :mod:`._scaleout`); ``host_agents=False`` hosts none here
    and leaves every task to workers (``run --no-agents``); ``lease`` overrides the
    agents' lease (how soon a dead process's tasks go to another). ``artifacts`` overrides
    the pipelines' ``artifacts.location`` (where table results are stored). ``scheduling``
    overrides the pipelines' ``scheduling:`` (``critical_path`` or ``fifo``).
    ``base_dir`` confines the files built-in sources and sinks read and write to that
    directory (relative paths are taken from it; a path outside it is a config error): for
    pipelines you did not write.
    """

    def __init__(
        self,
        *,
        queue: str | None = None,
        runs_dir: str | os.PathLike[str] | None = None,
        grace_period: float = 1.0,
        listeners: Iterable[RuntimeListener] = (),
        services: bool = True,
        metrics_port: int | None = None,
        host_agents: bool = True,
        lease: float | None = None,
        artifacts: str | None = None,
        scheduling: Scheduling | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if scheduling is not None and scheduling not in SCHEDULING_POLICIES:
            raise ConfigError(
                f"scheduling must be one of {', '.join(SCHEDULING_POLICIES)}, got {scheduling!r}"
            )
        self.scheduling = scheduling
        self.artifacts = artifacts
        if base_dir is not None and not os.path.isdir(base_dir):
            raise ConfigError(f"base_dir {os.fspath(base_dir)!r} is not a directory")
        self.base_dir = base_dir
        self.queue = queue
        self.host_agents = host_agents
        self.lease = lease
        self.runs_dir = runs_dir
        self.grace_period = grace_period
        self.listeners = list(listeners)
        if metrics_port is not None and not services:
            raise ConfigError("metrics_port needs services=True")
        self.services = services
        self.metrics_port = metrics_port
        self._pipelines: dict[str, _Pipeline] = {}

    # ------------------------------------------------------------------ creating

    def create_pipeline(self, config: PipelineSource) -> str:
        """Validate a pipeline and check its agents can be built; returns its id.

        ``config`` is a path to a YAML file, a dict in the general or the seed form, or a
        :class:`PipelineConfig`. Raises :class:`PipelineConfigError` (file, field path and
        what was expected) or :class:`ConfigError` (a user agent cannot be imported).
        """
        with confined_to(self.base_dir):
            if isinstance(config, PipelineConfig):
                parsed, source = validate_pipeline(config), config.name
            elif isinstance(config, Mapping):
                parsed, source = parse_pipeline(config, source="<config>"), "<config>"
            elif isinstance(config, (str, os.PathLike)):
                parsed, source = load_pipeline(config), os.fspath(config)
            else:
                raise ConfigError(
                    f"create_pipeline() takes a file path, a dict or a PipelineConfig, "
                    f"got {type(config).__name__}"
                )
        for spec in parsed.agents:  # fail now, not once the run has started
            if spec.is_llm:
                check_llm_spec(spec, parsed)
            elif spec.builtin is None:
                user_target(spec)
        parsed.services.check(parsed.monitoring)  # its imports too: fail now, not mid-run
        pipeline_id = uuid.uuid4().hex
        self._pipelines[pipeline_id] = _Pipeline(parsed, source)
        return pipeline_id

    def config(self, pipeline_id: str) -> PipelineConfig:
        """The validated configuration of a created pipeline."""
        return self._get(pipeline_id).config

    def _get(self, pipeline_id: str) -> _Pipeline:
        pipeline = self._pipelines.get(pipeline_id)
        if pipeline is None:
            raise WorkflowError(
                f"unknown pipeline {pipeline_id!r}; create it with create_pipeline()"
            )
        return pipeline

    # ------------------------------------------------------------------ running

    async def execute_pipeline(
        self,
        pipeline_id: str,
        input_data: Any = None,
        *,
        resume: str | bool | None = None,
        on_start: Callable[[RunStart], Any] | None = None,
    ) -> PipelineResult:
        """Run the pipeline and return its :class:`PipelineResult` (it does not raise when a
        task fails: check ``.ok`` and ``.error``).

        ``input_data`` reaches the root tasks as their input named ``"input"``.
        ``resume``: ``None`` resumes the newest unfinished run of this pipeline if there is
        one (else starts a new run), ``False`` always starts a new run, a run id resumes
        that run. ``on_start`` is called with a :class:`RunStart` once the run is known.
        """
        with confined_to(self.base_dir):  # the run's tasks inherit the confinement
            return await self._execute(pipeline_id, input_data, resume, on_start)

    async def _execute(
        self,
        pipeline_id: str,
        input_data: Any,
        resume: str | bool | None,
        on_start: Callable[[RunStart], Any] | None,
    ) -> PipelineResult:
        pipeline = self._get(pipeline_id)
        if pipeline.state == "running":
            raise WorkflowError(f"pipeline {pipeline.config.name!r} is already running")
        config = pipeline.config
        queue = self.queue or config.queue
        retry = config.retry.to_policy()
        wanted = config.services
        if self.metrics_port is not None and not wanted.enabled:
            raise ConfigError(
                f"metrics_port needs the services, but pipeline {config.name!r} sets "
                f"services.enabled: false"
            )
        bundle = (
            wanted.build(
                retry=config.retry, monitoring=config.monitoring, metrics_port=self.metrics_port
            )
            if self.services and wanted.enabled
            else False
        )
        shared = backend_class(queue).shared
        if not self.host_agents and not shared:
            raise ConfigError(
                f"hosting no agents needs a shared queue (redis://...) that worker "
                f"processes consume; got {queue!r}"
            )
        options: dict[str, Any] = {
            "retry": retry,
            "grace_period": self.grace_period,
            "listeners": self.listeners,
            "services": bundle,
            "balancer": wanted.balancer if bundle else None,
            "middleware": wanted.user_middleware(),
        }
        location = ArtifactLocation(self.artifacts or config.artifacts.location)
        if self.host_agents:
            runtime = Runtime(queue=queue, **options)
        else:
            remote = shared_agents(config, artifacts=location)
            runtime = DispatchRuntime(queue, remote=remote, **options)
        orch = WorkflowOrchestrator(
            runtime,
            store=self.runs_dir,
            failure_policy=config.failure_policy,
            concurrency=config.concurrency,
            retry=retry,
            scheduling=self.scheduling or config.scheduling,
        )
        if self.host_agents and shared:
            for agent in shared_agents(config, lease=self.lease, artifacts=location):
                runtime.add_agent(agent)
        elif self.host_agents:
            for spec in config.agents:
                orch.register_agent(build_agent(spec, location))
        specs = _task_specs(config)
        fp = fingerprint([task_dict(s, retry) for s in specs], input_data)
        pipeline.orchestrator = orch
        pipeline.state = "running"
        try:
            async with runtime:
                services = runtime.services
                metrics_url = None
                if services is not None and services.exporter is not None:
                    exporter = services.exporter
                    metrics_url = f"http://{exporter.host}:{exporter.port}/metrics"
                run_id, resumed = await self._choose_run(
                    orch, config, specs, input_data, resume, fp
                )
                pipeline.run_id = run_id

                def started(status: WorkflowStatus) -> None:
                    if on_start is not None:
                        on_start(
                            RunStart(
                                run_id=run_id,
                                pipeline=config.name,
                                resumed=resumed,
                                completed=status.counts[TaskState.COMPLETED],
                                total=len(status.tasks),
                                queue=redact(queue),
                                metrics_url=metrics_url,
                            )
                        )

                result = await orch.execute_workflow(run_id, on_start=started)
                store = _store_or_none(location, runtime)
                if store is not None:
                    await _apply_retention(orch, store, config)
                pipeline.state = result.state.value
                alerts: tuple[dict[str, Any], ...] = ()
                report = None
                if services is not None:
                    alerts = tuple(a.to_dict() for a in services.monitoring.alert_history)
                    report = services.report()
        except BaseException:
            if pipeline.state == "running":
                pipeline.state = "interrupted"
            raise
        return PipelineResult(
            pipeline_id=pipeline_id,
            config=config,
            result=result,
            resumed=resumed,
            queue=queue,
            alerts=alerts,
            services=report,
            artifacts=store,
            scheduling=self.scheduling or config.scheduling,
        )

    async def _choose_run(
        self,
        orch: WorkflowOrchestrator,
        config: PipelineConfig,
        specs: list[TaskSpec],
        input_data: Any,
        resume: str | bool | None,
        fp: str,
    ) -> tuple[str, bool]:
        """Resume the run asked for (or the unfinished one), or create a new one."""
        run_id: str | None = None
        if isinstance(resume, str):
            status = await orch.load_workflow(resume)
            stored = await _stored_fingerprint(orch, resume)
            if status.name != config.name:
                raise WorkflowError(
                    f"run {resume!r} is a run of pipeline {status.name!r}, not {config.name!r}"
                )
            if stored != fp:
                raise WorkflowError(
                    f"pipeline {config.name!r} changed since run {resume!r} started (its tasks, "
                    "agents, params or input differ); start a new run instead of resuming"
                )
            run_id = resume
        elif resume is None:
            found = await orch.find_unfinished(config.name, fp)
            if found is not None:
                await orch.load_workflow(found.run_id)
                run_id = found.run_id
        if run_id is not None:
            return run_id, True
        created = await orch.create_workflow(
            specs,
            name=config.name,
            failure_policy=config.failure_policy,
            concurrency=config.concurrency,
            retry=config.retry.to_policy(),
            inputs=input_data,
            metadata={"description": config.description},
        )
        return created, False

    async def cancel_pipeline(self, pipeline_id: str) -> bool:
        """Cancel the pipeline's running execution; False if it is not running."""
        pipeline = self._get(pipeline_id)
        if pipeline.state != "running" or pipeline.orchestrator is None or not pipeline.run_id:
            return False
        return await pipeline.orchestrator.cancel_workflow(pipeline.run_id)

    def get_pipeline_status(self, pipeline_id: str) -> WorkflowStatus | None:
        """A snapshot of the pipeline's current (or last) run; None before the first run."""
        pipeline = self._get(pipeline_id)
        if pipeline.orchestrator is None or pipeline.run_id is None:
            return None
        return pipeline.orchestrator.get_workflow_status(pipeline.run_id)

    def get_pipeline_progress(self, pipeline_id: str) -> dict[str, dict[TaskState, int]] | None:
        """Tasks per agent and state of the current (or last) run, cheaper than
        :meth:`get_pipeline_status` for big runs; None before the first run."""
        pipeline = self._get(pipeline_id)
        if pipeline.orchestrator is None or pipeline.run_id is None:
            return None
        return pipeline.orchestrator.task_counts(pipeline.run_id)


def _task_specs(config: PipelineConfig) -> list[TaskSpec]:
    """The pipeline's tasks with agent defaults applied (params, timeout)."""
    return [
        TaskSpec(
            name=task.name,
            agent=task.agent,
            depends_on=list(task.depends_on),
            params=config.params_for(task),
            priority=task.priority,
            timeout=config.timeout_for(task),
            retry=task.retry,
            estimate=task.estimate,
        )
        for task in config.tasks
    ]


async def _stored_fingerprint(orch: WorkflowOrchestrator, run_id: str) -> str | None:
    for summary in await orch.list_runs():
        if summary.run_id == run_id:
            return summary.fingerprint
    return None


def _store_or_none(location: ArtifactLocation, runtime: Runtime) -> ArtifactStore | None:
    """The run's artifact store, None where tables have no store (redis:// unconfigured)."""
    try:
        return location.store_for(runtime.backend)
    except ConfigError:
        return None


async def _apply_retention(
    orch: WorkflowOrchestrator, store: ArtifactStore, config: PipelineConfig
) -> None:
    """Remove the artifacts of this pipeline's finished runs beyond ``artifacts.keep_runs``."""
    removed = await collect_garbage(
        store, await orch.list_runs(), keep=config.artifacts.keep_runs, pipeline=config.name
    )
    for item in removed:
        log.info("artifacts of an old run removed", run=item.run_id, bytes=item.bytes)
