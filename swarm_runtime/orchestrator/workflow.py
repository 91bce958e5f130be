"""WorkflowOrchestrator (seed slide 5): dependency-ordered workflows run by agents.

A workflow is a DAG of tasks. Each task is run by an agent *through the queue*: the
orchestrator publishes a task message to the agent's inbox with the run's results topic
as ``reply_to``, a replica handles it, and the result comes back as a message. A task's
payload is ``{"params": {...}, "inputs": {upstream_task: result, ...}}`` (root tasks get
``{"input": inputs}`` when the workflow was given ``inputs``).

Runs are durable when the runtime's queue is (``file://``): the definition, each task's
end and its result are logged under ``<queue dir>/runs/<run_id>/``, and
:meth:`WorkflowOrchestrator.resume_workflow` finishes a run after a crash, skipping the
tasks that completed. See :mod:`._scheduler` for how tasks are scheduled and retried.

Register agents through the orchestrator (:meth:`~WorkflowOrchestrator.register_agent`,
:meth:`~WorkflowOrchestrator.agent`) to put them behind its guard: it enforces per-task
timeouts and makes sure a duplicate or stale task message never runs user code. Agents
added to the runtime directly work too, without those two guarantees.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import orjson
from pydantic import ValidationError

from .. import _json
from .._logging import get_logger
from ..agents.base import Agent, AgentHandler, FunctionAgent
from ..agents.builtin._validation import join_path, translate_errors
from ..artifacts import broken_artifacts
from ..backends.file import DirectoryRunStore
from ..errors import (
    ConfigError,
    ConfigProblem,
    PayloadError,
    PipelineConfigError,
    WorkflowError,
)
from ..events import TaskEvent
from ..pipeline.config import (
    SCHEDULING_POLICIES,
    FailurePolicy,
    RetryOverride,
    Scheduling,
    TaskSpec,
    check_name,
)
from ..pipeline.dag import Dag, check_dag
from ..retry import RetryPolicy
from ..runtime.runtime import Runtime
from ._guard import WorkflowAgent
from ._run import Run, Task
from ._runstore import RunStore, RunSummary
from ._scheduler import Scheduler
from .status import TaskState, TaskStatus, WorkflowResult, WorkflowState, WorkflowStatus

__all__ = ["TaskInput", "WorkflowOrchestrator", "fingerprint", "new_run_id", "task_dict"]

log = get_logger("swarm_runtime.orchestrator")
H = TypeVar("H", bound=AgentHandler)

TaskInput = TaskSpec | Mapping[str, Any] | str
"""A task given to :meth:`WorkflowOrchestrator.create_workflow`: a :class:`TaskSpec`, a
mapping with its fields (``name``, ``agent``, ``depends_on``, ``params``, ``priority``,
``timeout``, ``retry``, ``estimate``), or just a name (run by the default agent)."""

_POLICIES = ("fail_fast", "continue")


def new_run_id() -> str:
    """A run id users can read and type: UTC date and time, then 6 random hex digits."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def fingerprint(tasks: Sequence[Mapping[str, Any]], inputs: Any) -> str:
    """A short hash of what a run computes (tasks, agents, params, inputs): a run is
    resumed by a plain ``run`` only if the pipeline still has the same fingerprint."""
    essence = [[t["name"], t["agent"], list(t["depends_on"]), t["params"]] for t in tasks], inputs
    return hashlib.sha256(orjson.dumps(essence, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class WorkflowOrchestrator:
    """Creates, runs, resumes, cancels and reports on workflows over one :class:`Runtime`.

    ``store`` is where runs are kept: a :class:`RunStore`, a directory, or ``None`` for
    the run store of the runtime's backend (``<queue dir>/runs`` on a ``file://`` queue,
    Redis ``PREFIX:wf:`` on a ``redis://`` queue, memory otherwise). ``failure_policy``,
    ``concurrency``, ``retry`` and ``scheduling`` are defaults for the workflows created
    here (``retry`` defaults to the runtime's policy; ``scheduling`` is
    ``"critical_path"``: ready tasks with the longest remaining path first, or
    ``"fifo"``: in declaration order).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        store: RunStore | str | os.PathLike[str] | None = None,
        failure_policy: FailurePolicy = "fail_fast",
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        scheduling: Scheduling = "critical_path",
    ) -> None:
        if not isinstance(runtime, Runtime):
            raise ConfigError(f"WorkflowOrchestrator needs a Runtime, got {type(runtime).__name__}")
        self.runtime = runtime
        self.failure_policy = _check_policy(failure_policy)
        self.concurrency = _check_limit("concurrency", concurrency)
        self.retry = retry
        self.scheduling = _check_scheduling(scheduling)
        self._store_spec = store
        self._store: RunStore | None = store if isinstance(store, RunStore) else None
        self._runs: dict[str, Run] = {}
        self._live: dict[str, Run] = {}  # runs executing now, read by the guard
        self._by_message: dict[str, Task] = {}  # dispatched tasks of unguarded agents
        self._listening = False
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ storage

    @property
    def store(self) -> RunStore:
        """Where runs are kept (resolved when first needed: the queue must be open)."""
        if self._store is None:
            spec = self._store_spec
            if spec is not None and not isinstance(spec, RunStore):
                self._store = DirectoryRunStore(spec)
            else:
                self._store = self.runtime.backend.run_store()
        return self._store

    # ------------------------------------------------------------------ agents

    def register_agent(
        self, agent: Agent | str, handler: AgentHandler | Agent | None = None, **options: Any
    ) -> Agent:
        """Add an agent to the runtime behind the workflow guard; returns what was added.

        ``register_agent(agent)``, ``register_agent("name", async_fn, replicas=2, ...)``
        or, as in the seed, ``register_agent("name", agent_instance)``.
        """
        if isinstance(agent, Agent):
            if handler is not None or options:
                raise ConfigError("register_agent(agent) takes no handler or options")
            inner = agent
        elif isinstance(handler, Agent):
            if handler.name != agent:
                raise ConfigError(
                    f"register_agent({agent!r}, ...): the agent is named {handler.name!r}; "
                    "use the same name"
                )
            inner = handler
        elif handler is not None:
            inner = FunctionAgent(agent, handler, **options)
        else:
            raise ConfigError(f"register_agent({agent!r}) needs a handler or an Agent")
        wrapped = WorkflowAgent(inner, self._live)
        self.runtime.add_agent(wrapped)
        return wrapped

    def agent(self, name: str | None = None, **options: Any) -> Callable[[H], H]:
        """Decorator: ``@orch.agent("name", replicas=2)`` on an ``async def fn(msg, ctx)``."""

        def register(handler: H) -> H:
            self.register_agent(name or handler.__name__, handler, **options)
            return handler

        return register

    # ------------------------------------------------------------------ creating

    async def create_workflow(
        self,
        tasks: Iterable[TaskInput],
        dependencies: Mapping[str, Iterable[str]] | None = None,
        *,
        name: str = "workflow",
        agent: str | None = None,
        failure_policy: FailurePolicy | None = None,
        concurrency: int | None = None,
        agent_limits: Mapping[str, int] | None = None,
        retry: RetryPolicy | None = None,
        scheduling: Scheduling | None = None,
        inputs: Any = None,
        workflow_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Validate a workflow and store it; returns its id (run it with :meth:`execute_workflow`).

        ``dependencies`` maps a task to the tasks it depends on (the seed's form; merged
        with each task's ``depends_on``); ``agent`` runs tasks that name none.
        ``concurrency`` bounds the tasks in flight at once, ``agent_limits`` the tasks in
        flight per agent; ``retry`` gives each task's attempts and backoff unless the task
        overrides them. ``scheduling`` orders ready tasks (``"critical_path"`` or
        ``"fifo"``, default the orchestrator's); a task's ``estimate`` (seconds) feeds the
        critical path, else durations are learned. Raises :class:`PipelineConfigError`
        listing every problem: duplicate names, unknown dependencies or agents, cycles
        (``a -> b -> a``).
        """
        try:
            check_name(name)
        except ValueError as exc:
            raise ConfigError(f"workflow name: {exc}") from None
        policy = _check_policy(failure_policy or self.failure_policy)
        order = _check_scheduling(self.scheduling if scheduling is None else scheduling)
        limit = _check_limit("concurrency", concurrency) or self.concurrency
        limits = {
            a: _check_limit(f"agent_limits[{a!r}]", n) for a, n in (agent_limits or {}).items()
        }
        base = retry or self.retry or self.runtime.retry
        known = self.runtime.agents
        specs = _task_specs(tasks, dependencies, agent, known, name)
        problems = check_dag(
            [(s.name, s.depends_on) for s in specs],
            agents=[s.agent for s in specs],
            known_agents=known,
        )
        problems += [
            ConfigProblem("agent_limits", f"unknown agent {a!r}", "unknown_agent")
            for a in limits
            if a not in known
        ]
        if problems:
            raise PipelineConfigError(name, problems)
        try:
            _json.check_json(inputs, what="inputs")
            _json.check_json(metadata, what="metadata")
            for spec in specs:
                _json.check_json(spec.params, what=f"task {spec.name!r} params")
        except PayloadError as exc:
            raise ConfigError(f"workflow {name!r}: {exc}") from exc
        task_dicts = [task_dict(spec, base) for spec in specs]
        run_id = workflow_id or new_run_id()
        if not all(c.isalnum() or c in "_-" for c in run_id):
            raise ConfigError(f"workflow_id may hold letters, digits, '_' and '-'; got {run_id!r}")
        if run_id in self._runs:
            raise WorkflowError(f"a workflow with id {run_id!r} already exists")
        header = {
            "k": "run",
            "run_id": run_id,
            "name": name,
            "created_at": time.time(),
            "fingerprint": fingerprint(task_dicts, inputs),
            "failure_policy": policy,
            "concurrency": limit,
            "agent_limits": limits,
            "scheduling": order,
            "inputs": inputs,
            "tasks": task_dicts,
            "meta": dict(metadata or {}),
        }
        run = self._build_run(header)
        run.log = await self.store.create(header)
        self._runs[run_id] = run
        return run_id

    def _build_run(self, header: Mapping[str, Any]) -> Run:
        tasks: dict[str, Task] = {}
        for t in header["tasks"]:
            tasks[t["name"]] = Task(
                t["name"],
                t["agent"],
                tuple(t["depends_on"]),
                t["params"],
                priority=int(t.get("priority", 0)),
                timeout=t.get("timeout"),
                max_attempts=int(t.get("max_attempts", 1)),
                retry=t.get("retry"),
                estimate=t.get("estimate"),
            )
        dag = Dag.from_dependencies(
            {name: task.deps for name, task in tasks.items()},
            priority={name: task.priority for name, task in tasks.items()},
            source=str(header["name"]),
        )
        return Run(
            str(header["run_id"]),
            str(header["name"]),
            tasks,
            dag,
            header=dict(header),
            created_at=float(header["created_at"]),
            failure_policy=str(header.get("failure_policy", "fail_fast")),
            concurrency=header.get("concurrency"),
            agent_limits=header.get("agent_limits") or {},
            inputs=header.get("inputs"),
            scheduling=str(header.get("scheduling", "critical_path")),
        )

    # ------------------------------------------------------------------ loading

    async def load_workflow(self, workflow_id: str) -> WorkflowStatus:
        """Read a stored run (e.g. one a crashed process left) so it can be executed again."""
        if workflow_id in self._runs:
            return self._runs[workflow_id].snapshot()
        loaded, run_log = await self.store.load(workflow_id)
        run = self._build_run(loaded.header)
        results = {name: record.get("result") for name, record in loaded.completed.items()}
        broken = await anyio.to_thread.run_sync(broken_artifacts, results)
        for name, reason in broken.items():
            log.warning(
                "a completed task's table is unreadable; it runs again", task=name, reason=reason
            )
        for name, record in loaded.completed.items():
            task = run.tasks.get(name)
            if task is not None and name not in broken:
                task.restore(record)
                run.results[name] = task.result
        run.state = loaded.state
        run.sessions = loaded.sessions
        run.error = loaded.error
        run.log = run_log
        self._runs[workflow_id] = run
        return run.snapshot()

    async def list_runs(self) -> list[RunSummary]:
        """Every run in the store, oldest first."""
        return await self.store.list_runs()

    async def find_unfinished(self, name: str, fingerprint: str | None = None) -> RunSummary | None:
        """The newest stored run of workflow ``name`` that never finished (crashed or
        interrupted), of the same definition if ``fingerprint`` is given."""
        return await self.store.find_unfinished(name, fingerprint)

    # ------------------------------------------------------------------ running

    async def execute_workflow(
        self,
        workflow_id: str,
        *,
        on_start: Callable[[WorkflowStatus], Any] | None = None,
    ) -> WorkflowResult:
        """Run the workflow until every task has finished (or it fails fast, or is cancelled).

        Executing a run again (after a failure, a cancellation or an interruption) runs
        only the tasks that have not completed. Returns a :class:`WorkflowResult`; a
        failed task does not raise (check ``result.ok``). If the caller is cancelled the
        run is marked ``interrupted`` (resumable) and the cancellation propagates.
        ``on_start`` gets a status snapshot just before the first task is dispatched
        (results an interrupted session left in the queue are counted by then).
        """
        run = self._runs.get(workflow_id)
        if run is None:
            raise WorkflowError(
                f"unknown workflow {workflow_id!r}; create it with create_workflow(), or "
                "resume a stored run with resume_workflow()"
            )
        if run.state is WorkflowState.RUNNING:
            raise WorkflowError(f"workflow {workflow_id!r} is already running")
        if run.state is WorkflowState.COMPLETED:
            if on_start is not None:
                on_start(run.snapshot())
            return WorkflowResult(run.snapshot(), dict(run.results))
        rt = self.runtime
        agents = rt.agents
        missing = sorted({t.agent for t in run.tasks.values()} - set(agents))
        if missing:
            raise WorkflowError(
                f"workflow {workflow_id!r} needs agent(s) {', '.join(map(repr, missing))}, "
                "which are not registered on the runtime"
            )
        run_log = run.log
        if run_log is None:
            _, run_log = await self.store.load(workflow_id)
        run.log = None
        resumed = 0
        for task in run.tasks.values():
            if task.state is TaskState.COMPLETED:
                resumed += 1
            else:
                task.reset()
            task.wrapped = isinstance(agents[task.agent], WorkflowAgent)
            if task.timeout is not None and not task.wrapped and task.agent not in self._warned:
                self._warned.add(task.agent)
                log.warning(
                    "task timeouts are enforced only for agents registered through the "
                    "orchestrator",
                    agent=task.agent,
                )
        if run.scheduling == "critical_path" and any(
            task.estimate is None for task in run.tasks.values()
        ):
            # what earlier runs of this workflow took: where learned estimates start
            try:
                run.recorded = await self.store.recorded_durations(run.name, exclude=run.id)
            except WorkflowError as exc:
                log.warning("earlier runs' durations unreadable", error=str(exc))
        now = rt.clock.time()
        run.state = WorkflowState.RUNNING
        run.sessions += 1
        run.started_at = now
        run.finished_at = None
        run.error = None
        run.cancel_requested = False
        run_log.append({"k": "session", "at": now, "completed": resumed})
        scheduler = Scheduler(rt, run, run_log, on_dispatch=self._track)
        self._live[workflow_id] = run
        log.info(
            "workflow started", workflow_id=workflow_id, tasks=len(run.tasks), completed=resumed
        )
        state = WorkflowState.INTERRUPTED
        try:
            with anyio.CancelScope() as scope:
                run.scope = scope
                try:
                    async with anyio.create_task_group() as tg:
                        await tg.start(run_log.writer, scheduler.ack)
                        for _ in range(scheduler.senders):
                            tg.start_soon(scheduler.sender)
                        await scheduler.drive(
                            tg, None if on_start is None else lambda: on_start(run.snapshot())
                        )
                        tg.cancel_scope.cancel()
                except BaseExceptionGroup as group:
                    raise _single(group) from None
            if run.cancel_requested:
                state = WorkflowState.CANCELLED
            elif any(t.state is TaskState.FAILED for t in run.tasks.values()):
                state = WorkflowState.FAILED
            else:
                state = WorkflowState.COMPLETED
        finally:
            with anyio.CancelScope(shield=True):
                run.scope = None
                self._live.pop(workflow_id, None)
                scheduler.finish(state)
                try:
                    await run_log.close(scheduler.ack)
                    await scheduler.settle()
                    await scheduler.release_unread()
                finally:
                    log.info(
                        "workflow finished",
                        workflow_id=workflow_id,
                        state=state.value,
                        error=run.error,
                    )
        return WorkflowResult(run.snapshot(), dict(run.results))

    async def resume_workflow(
        self,
        workflow_id: str,
        *,
        on_start: Callable[[WorkflowStatus], Any] | None = None,
    ) -> WorkflowResult:
        """Load a stored run if needed and execute what it has not completed."""
        if workflow_id not in self._runs:
            await self.load_workflow(workflow_id)
        return await self.execute_workflow(workflow_id, on_start=on_start)

    async def cancel_workflow(self, workflow_id: str) -> bool:
        """Cancel a workflow: tasks not finished become ``cancelled``; returns False if it
        had already finished. ``execute_workflow`` returns once the run has stopped;
        handlers already running are not interrupted, their results are discarded."""
        run = self._get(workflow_id)
        if run.state is WorkflowState.RUNNING:
            run.cancel_requested = True
            if run.scope is not None:
                run.scope.cancel()
            return True
        if run.state in (WorkflowState.PENDING, WorkflowState.INTERRUPTED):
            run_log = run.log
            if run_log is None:
                _, run_log = await self.store.load(workflow_id)
            run.log = None
            now = time.time()
            for task in run.tasks.values():
                if task.state is not TaskState.COMPLETED:
                    task.state = TaskState.CANCELLED
            run.state = WorkflowState.CANCELLED
            run.error = "the workflow was cancelled"
            run.finished_at = now
            run_log.append({"k": "end", "state": "cancelled", "error": run.error, "at": now})
            await run_log.close()
            return True
        return False

    # ------------------------------------------------------------------ queries

    def _get(self, workflow_id: str) -> Run:
        run = self._runs.get(workflow_id)
        if run is None:
            known = ", ".join(sorted(self._runs)[-5:]) or "none"
            raise WorkflowError(f"unknown workflow {workflow_id!r}; known: {known}")
        return run

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus:
        """A snapshot of the workflow and every task (state, attempts, timings)."""
        return self._get(workflow_id).snapshot()

    def task_counts(self, workflow_id: str) -> dict[str, dict[TaskState, int]]:
        """How many tasks of each agent are in each state, without a snapshot of every
        task (a few times cheaper): what progress views of big runs redraw from."""
        counts: dict[str, dict[TaskState, int]] = {}
        for task in self._get(workflow_id).tasks.values():
            per_agent = counts.get(task.agent)
            if per_agent is None:
                per_agent = counts[task.agent] = {}
            per_agent[task.state] = per_agent.get(task.state, 0) + 1
        return counts

    def get_task_status(self, workflow_id: str, task: str) -> TaskStatus:
        """A snapshot of one task."""
        record = self._get(workflow_id).tasks.get(task)
        if record is None:
            raise WorkflowError(f"workflow {workflow_id!r} has no task {task!r}")
        return record.snapshot()

    def get_results(self, workflow_id: str) -> dict[str, Any]:
        """Results of the tasks completed so far, by task name."""
        return dict(self._get(workflow_id).results)

    def list_workflows(self) -> list[WorkflowStatus]:
        """Snapshots of the workflows this orchestrator knows, oldest first."""
        return sorted((r.snapshot() for r in self._runs.values()), key=lambda s: s.created_at)

    # ------------------------------------------------------------------ unguarded agents

    def _track(self, task: Task, message_id: str) -> None:
        """Follow attempts of tasks whose agent is not behind the guard (runtime events)."""
        if not self._listening:
            self._listening = True
            self.runtime.add_listener(_AttemptListener(self._by_message))
        self._by_message[message_id] = task


class _AttemptListener:
    """Records attempts of tasks run by agents added to the runtime directly."""

    def __init__(self, tasks: dict[str, Task]) -> None:
        self.tasks = tasks

    def on_task_started(self, event: TaskEvent) -> None:
        task = self.tasks.get(event.message_id)
        if task is not None:
            task.attempt_started(event.agent, event.replica, event.attempts, event.started_at)

    def on_task_finished(self, event: TaskEvent) -> None:
        task = self.tasks.get(event.message_id)
        if task is None:
            return
        error = None if event.error is None else f"{type(event.error).__name__}: {event.error}"
        end = event.started_at + (event.duration or 0.0)
        task.attempt_finished(event.outcome, error, end)
        if event.outcome == "ok" or event.dead_lettered:
            del self.tasks[event.message_id]


# ---------------------------------------------------------------------- helpers


def _check_policy(policy: str) -> FailurePolicy:
    if policy not in _POLICIES:
        raise ConfigError(f"failure_policy must be one of {', '.join(_POLICIES)}, got {policy!r}")
    return policy  # type: ignore[return-value]


def _check_scheduling(value: str) -> Scheduling:
    if value not in SCHEDULING_POLICIES:
        raise ConfigError(
            f"scheduling must be one of {', '.join(SCHEDULING_POLICIES)}, got {value!r}"
        )
    return value


def _check_limit(what: str, value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{what} must be an int >= 1 (or None for no limit), got {value!r}")
    return value


def _task_specs(
    tasks: Iterable[TaskInput],
    dependencies: Mapping[str, Iterable[str]] | None,
    default_agent: str | None,
    agents: Mapping[str, Agent],
    source: str,
) -> list[TaskSpec]:
    """Normalise the tasks given to create_workflow into TaskSpecs (problems all at once)."""
    if default_agent is None and len(agents) == 1:
        default_agent = next(iter(agents))
    extra = {str(k): list(v) for k, v in (dependencies or {}).items()}
    specs: list[TaskSpec] = []
    problems: list[ConfigProblem] = []
    for i, task in enumerate(tasks):
        where = f"tasks[{i}]"
        if isinstance(task, TaskSpec):
            data: dict[str, Any] = task.model_dump()
        elif isinstance(task, str):
            data = {"name": task}
        elif isinstance(task, Mapping):
            data = dict(task)
        else:
            problems.append(
                ConfigProblem(where, f"expected a task name, mapping or TaskSpec, got {task!r}")
            )
            continue
        if "agent" not in data or data["agent"] is None:
            if default_agent is None:
                problems.append(
                    ConfigProblem(
                        f"{where}.agent",
                        "no agent given: name one per task, or pass agent=... to create_workflow",
                    )
                )
                continue
            data["agent"] = default_agent
        name = data.get("name")
        if isinstance(name, str) and name in extra:
            data["depends_on"] = list(data.get("depends_on") or []) + extra.pop(name)
        try:
            specs.append(TaskSpec.model_validate(data))
        except ValidationError as exc:
            for loc, message in translate_errors(exc, model=TaskSpec):
                problems.append(ConfigProblem(join_path(where, *loc), message))
    for name in extra:
        problems.append(
            ConfigProblem(f"dependencies.{name}", f"not a task of this workflow: {name!r}")
        )
    if problems:
        raise PipelineConfigError(source, problems)
    if not specs and not problems:
        raise PipelineConfigError(source, [ConfigProblem("tasks", "a workflow needs a task")])
    return specs


def task_dict(spec: TaskSpec, base: RetryPolicy) -> dict[str, Any]:
    """A task as stored in the run header (plain JSON), its retry settings resolved."""
    override = spec.retry or RetryOverride()
    max_attempts = override.max_attempts or base.max_attempts
    delays = {
        key: value
        for key, value in override.model_dump(exclude_none=True).items()
        if key != "max_attempts"
    }
    return {
        "name": spec.name,
        "agent": spec.agent,
        "depends_on": list(dict.fromkeys(spec.depends_on)),
        "params": spec.params,
        "priority": spec.priority,
        "timeout": spec.timeout,
        "max_attempts": max_attempts,
        "retry": {**_policy_dict(base), **delays} if delays else None,
        "estimate": spec.estimate,
    }


def _policy_dict(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "base_delay": policy.base_delay,
        "max_delay": policy.max_delay,
        "jitter": policy.jitter,
    }


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error of a task group (anyio wraps even a single one)."""
    errors = [e for e in group.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
    if len(errors) == 1:
        error = errors[0]
        return _single(error) if isinstance(error, BaseExceptionGroup) else error
    if not errors:
        return group.exceptions[0]  # only cancellation: let it reach its scope
    return group
