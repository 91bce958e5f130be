"""Critical-path-first order of a session's ready tasks, kept up to date at a bounded cost.

Ready tasks go by ``priority``, then by upward rank (the longest path from the task to
the end of the workflow under the current estimates, :mod:`..pipeline.critical_path`).
Ranks are computed once when the session starts, over the tasks not completed yet.

As tasks finish, :class:`~._durations.DurationModel` learns durations, which can change
which path is longest. Ranks are then computed again, but only when both:

* the estimates have moved *relative to each other* by more than :data:`DRIFT` since
  the ranks were computed (scaling every estimate by one factor changes no order, so a
  one-agent workflow never recomputes); checked every ``agents // CHECK_EVERY``
  completions (at least every one), O(agents) each;
* the work budget allows: each completion earns :data:`EARNED` task visits, a
  recompute spends one visit per task not yet finished, and the session starts with
  :data:`UPFRONT` times the tasks (so the first surprises are taken at once).

The ranks' whole cost over a session is therefore at most ``(UPFRONT + EARNED)`` visits
per task - O(tasks + edges), whatever the DAG's size - never a recompute per task.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..pipeline.critical_path import reverse_topological, upward_ranks
from ..pipeline.dag import Dag
from ._durations import DurationModel

__all__ = ["CHECK_EVERY", "DRIFT", "EARNED", "UPFRONT", "CriticalPathOrder"]

#: relative change of the estimates (against each other) that calls for new ranks
DRIFT = 0.2
#: agents per completion between two checks of the estimates (a check is O(agents))
CHECK_EVERY = 8
_NEVER = 1 << 62
#: task visits a completion earns towards a recompute
EARNED = 8
#: task visits (times the tasks) allowed before any completion
UPFRONT = 2


class CriticalPathOrder:
    """The ranks the ready set orders by, and when to refresh them (module doc)."""

    def __init__(self, dag: Dag, model: DurationModel, completed: Collection[str] = ()) -> None:
        self.dag = dag
        self.model = model
        order = reverse_topological(dag.deps, dag.dependents)
        #: tasks whose rank can still matter, children before parents
        self.order = [name for name in order if name not in completed] if completed else order
        self.rank: dict[str, float] = {}
        self.dirty = False  # the estimates drifted since the ranks were computed
        self.used: dict[str, float] = {}  # agent estimates the ranks were computed with
        self.budget = UPFRONT * len(self.order)
        fixed = model.fixed
        agent_of = model.agent_of
        #: agents whose mean some task's estimate depends on (the others cannot drift)
        self.learned = sorted({agent_of[name] for name in self.order if name not in fixed})
        agents = len(self.learned)
        self.check_every = max(1, agents // CHECK_EVERY)
        # no learned estimate, or one agent's and no fixed one: every estimate that can
        # change scales alike, and no order changes
        drifts = agents > 1 or (agents == 1 and bool(fixed))
        self.until_check = self.check_every if drifts else _NEVER
        self.recomputes = 0
        self._compute()
        self.recomputes = 0  # the first computation is not a *re*compute

    def _compute(self) -> None:
        self.dirty = False
        agents = self.used = self.model.agent_estimates()
        fixed = self.model.fixed
        agent_of = self.model.agent_of
        fixed_get = fixed.get

        def cost(name: str) -> float:
            value = fixed_get(name)
            return agents[agent_of[name]] if value is None else value

        upward_ranks(self.order, self.dag.dependents, cost, into=self.rank)
        self.recomputes += 1

    def finished(self, measured: Sequence[tuple[str, float]], done: Collection[str]) -> bool:
        """Tasks finished, ``(agent, seconds)`` each (one call per batch of results);
        True if the ranks were recomputed (the caller re-keys its ready tasks). ``done``
        holds the completed tasks (left out of a recompute)."""
        self.model.observe_many(measured)
        self.budget += EARNED * len(measured)
        if not self.dirty:
            self.until_check -= len(measured)
            if self.until_check > 0:
                return False
            self.until_check = self.check_every
            if not self._drifted():
                return False
            self.dirty = True
        cost = len(self.order)
        if self.budget < cost:
            return False  # drifted: recompute once the budget allows
        self.budget -= cost
        if done:
            self.order = [name for name in self.order if name not in done]
        self._compute()
        return True

    def _drifted(self) -> bool:
        """True if the estimates moved against each other by more than DRIFT."""
        now = self.model.agent_estimates()
        used = self.used
        low = high = 1.0 if self.model.fixed else None
        for agent in self.learned:
            value = now[agent]
            before = used.get(agent)
            if not before or not value:
                if before != value:
                    return True
                continue
            ratio = value / before
            if low is None or high is None:
                low = high = ratio
            elif ratio < low:
                low = ratio
            elif ratio > high:
                high = ratio
        return low is not None and high is not None and high > low * (1.0 + DRIFT)

    def estimate(self, name: str) -> float:
        """The current estimate of task ``name``: given or recorded, else its agent's
        mean so far, else the default the ranks were last computed with."""
        model = self.model
        value = model.fixed.get(name)
        if value is not None:
            return value
        agent = model.agent_of[name]
        stats = model.agents[agent]
        return stats.mean if stats.count else self.used[agent]
