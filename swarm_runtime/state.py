"""StateManager: per-agent JSON state with atomic updates, bounded history and snapshots."""

from __future__ import annotations

import inspect
import os
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from . import _json
from ._args import check_count
from .clock import Clock, SystemClock
from .errors import ArgumentTypeError, ConfigError, SwarmError, UnknownAgentStateError

__all__ = ["AgentStateView", "StateChange", "StateManager"]

Updater = Mapping[str, Any] | Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class StateChange:
    """One entry of an agent's state history: the state as it was after a change."""

    timestamp: float
    state: dict[str, Any]


class _Slot:
    __slots__ = ("history", "lock", "state")

    def __init__(self, state: dict[str, Any], history_size: int) -> None:
        self.state = state
        self.lock = anyio.Lock()
        self.history: deque[StateChange] = deque(maxlen=history_size)


def _copy(state: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A deep copy through JSON: also proves the state can be snapshotted."""
    copied = _json.loads(_json.dumps(dict(state), what=what))
    assert isinstance(copied, dict)
    return copied


async def apply_updates(current: dict[str, Any], updates: Updater) -> Mapping[str, Any]:
    """The state ``updates`` makes of ``current`` (a copy the caller owns): a mapping merged
    into it, or what an updater function (sync or async) returns given it. Every state
    store applies updates through this."""
    if callable(updates):
        produced = updates(current)
        if inspect.isawaitable(produced):
            produced = await produced
        if not isinstance(produced, Mapping):
            raise ArgumentTypeError(
                f"a state updater must return a mapping, got {type(produced).__name__}"
            )
        return produced
    if isinstance(updates, Mapping):
        current.update(updates)
        return current
    raise ArgumentTypeError(
        f"updates must be a mapping or a function, got {type(updates).__name__}"
    )


class StateManager:
    """Keeps each agent's state (a JSON object) and its recent history.

    Readers always get copies, so nobody mutates state behind the manager's back.
    Updates to one agent are serialised by a lock, so read-modify-write updaters that
    await in the middle still never lose an update.
    """

    def __init__(self, *, history_size: int = 100, clock: Clock | None = None) -> None:
        if history_size < 0:
            raise ConfigError(f"history_size must be >= 0, got {history_size}")
        self.history_size = history_size
        self._clock = clock or SystemClock()
        self._slots: dict[str, _Slot] = {}

    # ------------------------------------------------------------------ seed API

    async def register_agent_state(
        self, agent_id: str, initial_state: Mapping[str, Any] | None = None
    ) -> None:
        """Create ``agent_id``'s state. An existing state is kept, and ``initial_state``
        only fills keys it does not have yet."""
        state = _copy(initial_state or {}, f"initial state of {agent_id!r}")
        slot = self._slots.get(agent_id)
        if slot is None:
            slot = self._slots[agent_id] = _Slot(state, self.history_size)
            slot.history.append(StateChange(self._clock.time(), _copy(state, "state")))
            return
        async with slot.lock:
            for key, value in state.items():
                slot.state.setdefault(key, value)

    async def update_state(
        self, agent_id: str, updates: Updater, *, create: bool = False
    ) -> dict[str, Any]:
        """Apply ``updates`` atomically and return a copy of the new state.

        ``updates`` is a mapping merged into the state, or a function (sync or async)
        that receives a copy of the state and returns the new one. As in the seed, the
        agent's state must have been registered (:class:`UnknownAgentStateError`, also a
        ``KeyError``, names the agents that have one) unless ``create`` is true; an agent's
        own ``ctx.state`` creates it on first use.
        """
        slot = self._slot(agent_id, create=create)
        async with slot.lock:
            current = _copy(slot.state, "state")
            new_state = _copy(await apply_updates(current, updates), f"state of {agent_id!r}")
            slot.state = new_state
            slot.history.append(StateChange(self._clock.time(), _copy(new_state, "state")))
            return _copy(new_state, "state")

    async def get_state(self, agent_id: str) -> dict[str, Any]:
        """A copy of the agent's state (empty if it has none)."""
        slot = self._slots.get(agent_id)
        return {} if slot is None else _copy(slot.state, "state")

    async def get_state_history(self, agent_id: str, limit: int | None = None) -> list[StateChange]:
        """The agent's most recent states, oldest first (bounded by ``history_size``)."""
        check_count("limit", limit, minimum=0, none=True)
        slot = self._slots.get(agent_id)
        if slot is None:
            return []
        items = list(slot.history)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return [StateChange(c.timestamp, _copy(c.state, "state")) for c in items]

    # ------------------------------------------------------------------ extras

    @asynccontextmanager
    async def transaction(
        self, agent_id: str, *, create: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Hold the agent's lock and yield a mutable copy; it is committed if the block
        succeeds. The state must exist unless ``create`` (as :meth:`update_state`)."""
        slot = self._slot(agent_id, create=create)
        async with slot.lock:
            working = _copy(slot.state, "state")
            yield working
            slot.state = _copy(working, f"state of {agent_id!r}")
            slot.history.append(StateChange(self._clock.time(), _copy(slot.state, "state")))

    def agents(self) -> list[str]:
        """The agents that have state, sorted."""
        return sorted(self._slots)

    def view(self, agent_id: str) -> AgentStateView:
        """A handle bound to one agent (what ``ctx.state`` is)."""
        return AgentStateView(self, agent_id)

    async def snapshot(self, path: str | os.PathLike[str]) -> Path:
        """Write every agent's state to ``path`` atomically (temp file, fsync, rename)."""
        target = Path(path)
        data = {
            "version": SNAPSHOT_VERSION,
            "taken_at": self._clock.time(),
            "agents": {name: slot.state for name, slot in self._slots.items()},
        }
        body = _json.dumps(data, what="state snapshot")
        await anyio.to_thread.run_sync(_atomic_write, target, body)
        return target

    async def restore(self, path: str | os.PathLike[str]) -> int:
        """Load a snapshot written by :meth:`snapshot`; returns how many agents it held."""
        source = Path(path)
        try:
            raw = await anyio.to_thread.run_sync(source.read_bytes)
        except FileNotFoundError as exc:
            raise SwarmError(f"state snapshot {str(source)!r} does not exist") from exc
        try:
            data = _json.loads(raw)
        except ValueError as exc:
            raise SwarmError(f"state snapshot {str(source)!r} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
            raise SwarmError(f"state snapshot {str(source)!r} has no 'agents' object")
        if data.get("version") != SNAPSHOT_VERSION:
            raise SwarmError(
                f"state snapshot {str(source)!r} has version {data.get('version')!r}; "
                f"this swarm-runtime reads version {SNAPSHOT_VERSION}"
            )
        for name, state in data["agents"].items():
            if not isinstance(state, dict):
                raise SwarmError(
                    f"state snapshot {str(source)!r}: state of {name!r} is not an object"
                )
            slot = self._slot(name, create=True)
            async with slot.lock:
                slot.state = state
                slot.history.append(StateChange(self._clock.time(), _copy(state, "state")))
        return len(data["agents"])

    def _slot(self, agent_id: str, *, create: bool) -> _Slot:
        slot = self._slots.get(agent_id)
        if slot is None:
            if not create:
                raise UnknownAgentStateError(agent_id, self._slots)
            slot = self._slots[agent_id] = _Slot({}, self.history_size)
        return slot


class AgentStateView:
    """One agent's state, as agents see it through ``ctx.state``."""

    __slots__ = ("_agent", "_manager")

    def __init__(self, manager: StateManager, agent_id: str) -> None:
        self._manager = manager
        self._agent = agent_id

    async def get(self, key: str | None = None, default: Any = None) -> Any:
        """The whole state (a copy), or one key of it."""
        state = await self._manager.get_state(self._agent)
        return state if key is None else state.get(key, default)

    async def update(self, updates: Updater) -> dict[str, Any]:
        """Atomically merge a mapping, or apply a function; returns the new state."""
        return await self._manager.update_state(self._agent, updates, create=True)

    def transaction(self) -> Any:
        """``async with ctx.state.transaction() as s:`` mutate ``s``; committed on success."""
        return self._manager.transaction(self._agent, create=True)

    async def history(self, limit: int | None = None) -> list[StateChange]:
        return await self._manager.get_state_history(self._agent, limit)


def _atomic_write(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
