"""The CLI's event-loop choice (swarm_runtime._loop): uvloop when installed, overridable."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

import swarm_runtime as sr
from swarm_runtime import _loop

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SWARM_RUNTIME_LOOP=asyncio runs the standard loop even with uvloop installed."""
    monkeypatch.setenv(_loop.ENV, "asyncio")
    assert _loop.loop_name() == "asyncio"
    assert not _loop.run(_loop_module).startswith("uvloop")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop not installed")
def test_uvloop_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With uvloop installed and no override, run() is on uvloop."""
    monkeypatch.delenv(_loop.ENV, raising=False)
    assert _loop.loop_name() == "uvloop"
    assert _loop.run(_loop_module).startswith("uvloop")


def test_bad_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown value names the variable and the choices."""
    monkeypatch.setenv(_loop.ENV, "trio")
    with pytest.raises(sr.ConfigError, match="SWARM_RUNTIME_LOOP must be"):
        _loop.loop_name()
