"""Build the runtime agent of a pipeline's agent spec: a built-in data agent (its
synchronous work run in a worker thread) or the user's ``uses: "module:callable"``;
either stores its table results as artifacts (see :mod:`._tables`)."""

from __future__ import annotations

import inspect
from typing import Any

from ..agents.base import Agent, FunctionAgent
from ..artifacts import ArtifactLocation
from ..errors import ConfigError
from ..pipeline import AgentSpec, PipelineConfig, import_callable
from ._tables import builtin_handler, table_handler, wrap_agent

__all__ = ["DEFAULT_TASK_LEASE", "build_agent", "check_llm_spec", "llm_agent", "user_target"]

#: lease of a pipeline task's message (seconds). While its handler runs, the runtime's
#: heartbeats extend it (every third of it), so a slow task is never taken from a live
#: worker; the lease only bounds how soon the task of a worker that died (kill -9, a lost
#: machine) goes to another. A handler that blocks the event loop for longer than this
#: stops the heartbeats and may run twice (delivery is at least once).
DEFAULT_TASK_LEASE = 30.0


def build_agent(spec: AgentSpec, location: ArtifactLocation) -> Agent:
    """The runtime agent of an agent spec (built-in, LLM or user-defined); table results go
    to ``location``'s store."""
    if spec.is_llm:
        return llm_agent(spec)
    builtin = spec.builtin
    options: dict[str, Any] = {
        "replicas": spec.replicas,
        "concurrency": spec.concurrency,
        "lease": DEFAULT_TASK_LEASE,
    }
    if spec.max_concurrency is not None:  # tuned by the self-optimizer up to this bound
        options["max_concurrency"] = spec.max_concurrency
    if builtin is not None:
        return FunctionAgent(
            spec.name, builtin_handler(builtin, location), role=spec.role or builtin.kind, **options
        )
    target = user_target(spec)
    options["role"] = spec.role or "agent"
    if isinstance(target, type):
        try:
            agent: Agent = target(spec.name, **options)
        except TypeError as exc:
            raise ConfigError(
                f"agent {spec.name!r}: cannot create {spec.uses!r} as {target.__name__}(name, "
                f"role=..., replicas=..., concurrency=..., lease=...): {exc}"
            ) from exc
        return wrap_agent(agent, location)
    return FunctionAgent(spec.name, table_handler(target, location), **options)


def llm_agent(spec: AgentSpec) -> Agent:
    """A ``uses: builtin.llm`` agent: its functions imported (``module:callable``), its
    handoffs made ``transfer_to_<agent>`` tools handing off to those pipeline agents."""
    from ..llm import Agent as LLMSpec
    from ..llm import LLMAgent

    functions = [import_callable(name) for name in spec.functions]
    fields: dict[str, Any] = {"name": spec.name, "functions": functions}
    if spec.model is not None:
        fields["model"] = spec.model
    if spec.instructions is not None:
        fields["instructions"] = spec.instructions
    return LLMAgent(
        spec.name,
        LLMSpec(**fields),
        handoffs=spec.handoffs,
        role=spec.role or "llm",
        replicas=spec.replicas,
        concurrency=spec.concurrency,
        lease=DEFAULT_TASK_LEASE,
    )


def check_llm_spec(spec: AgentSpec, config: PipelineConfig) -> None:
    """ConfigError unless the LLM agent's functions import and its handoffs are agents."""
    known = {agent.name for agent in config.agents}
    for index, target in enumerate(spec.handoffs):
        if target not in known:
            raise ConfigError(
                f"agent {spec.name!r}: handoffs[{index}]: unknown agent {target!r}; known "
                f"agents: {', '.join(sorted(known))}"
            )
    for name in spec.functions:
        import_callable(name)


def user_target(spec: AgentSpec) -> Any:
    """The class or coroutine function a user agent's ``uses`` names (ConfigError if unfit)."""
    target = import_callable(spec.uses)
    if isinstance(target, type):
        if issubclass(target, Agent):
            return target
    elif inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async callable objects
    ):
        return target
    raise ConfigError(
        f"agent {spec.name!r}: {spec.uses!r} is {_describe(target)}; expected an "
        "'async def handler(msg, ctx)' or a subclass of swarm_runtime.Agent"
    )


def _describe(target: Any) -> str:
    if isinstance(target, type):
        return f"the class {target.__name__}, which is not an Agent subclass"
    if callable(target):
        return f"the plain (not async) function {getattr(target, '__name__', target)!r}"
    return f"a {type(target).__name__}"
