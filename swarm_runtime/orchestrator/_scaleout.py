"""Pipelines on a shared ``redis://`` queue: the agents ``worker`` processes host, and a
runtime that dispatches to agents hosted elsewhere (``run --no-agents``).

On a shared queue a task message may be handled by any process, so the agents of a
pipeline are *shared agents*: added to the runtime directly, not behind the workflow
guard (the guard knows only the runs its own process executes, and would settle other
processes' tasks unhandled). Consequences, all documented in the README:

* a task's result is still recorded exactly once (the backend's run store, see
  :mod:`swarm_runtime.backends.redis._runs`, and the scheduler's check for replies to
  finished tasks);
* a duplicate delivery (a worker killed after its reply, before its ack) may run the
  handler twice: at-least-once execution, as on every backend after a crash;
* the agent's ``timeout`` applies to every task it runs; a task's own ``timeout`` in the
  pipeline is not enforced on a shared queue.

Agent state and handoff records are shared too: a shared backend (``redis://``) hands
every runtime on it the same state and handoff records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..agents.base import Agent
from ..artifacts import ArtifactLocation
from ..errors import ConfigError
from ..pipeline import PipelineConfig
from ..runtime.runtime import Runtime
from ._guard import WorkflowAgent
from ._pipeline_agents import build_agent

__all__ = ["DispatchRuntime", "shared_agents"]


def shared_agents(
    config: PipelineConfig,
    *,
    lease: float | None = None,
    artifacts: ArtifactLocation | None = None,
) -> list[Agent]:
    """The pipeline's agents as a worker hosts them: the same agents ``run`` builds, with
    the agent's ``timeout`` enforced by the runtime and, if given, a shorter ``lease``
    (how soon another worker takes over the tasks of a worker that died). Table results
    go to ``artifacts`` (default: the pipeline's ``artifacts.location``)."""
    location = artifacts or ArtifactLocation(config.artifacts.location)
    if lease is not None and not lease > 0:
        raise ConfigError(f"lease must be > 0 seconds, got {lease!r}")
    agents: list[Agent] = []
    for spec in config.agents:
        agent = build_agent(spec, location)
        if spec.timeout is not None and agent.timeout is None:
            agent.timeout = spec.timeout
        if lease is not None:
            agent.lease = lease
        agents.append(agent)
    return agents


class DispatchRuntime(Runtime):
    """A runtime that sends to agents hosted by other processes (``worker``) on the same
    shared queue, without running them here: ``run --no-agents``.

    ``remote`` are the agents the workers host; they count as registered for workflows
    (their names, retry policies) and are routes of :meth:`send` and :meth:`request`, but
    no replica of them starts in this process. An agent added here with the same name
    (``add_agent``) is served locally instead.
    """

    def __init__(self, queue: Any, *, remote: Iterable[Agent], **options: Any) -> None:
        super().__init__(queue, **options)
        self._remote: dict[str, Agent] = {agent.name: agent for agent in remote}
        # behind an (inactive) guard so the orchestrator treats them as workflow agents
        self._remote_view = {name: WorkflowAgent(a, {}) for name, a in self._remote.items()}
        for agent in self._remote.values():
            self._add_route(agent)  # send and request reach them through the shared queue

    @property
    def agents(self) -> Mapping[str, Agent]:
        return {**self._remote_view, **super().agents}
