"""A durable run SIGKILLed while waiting on a model call resumes in a new process and
pays for nothing twice (the server's count) nor repeats its tool (a side-effect count)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarm_runtime.testing import ScriptedServer, hang, reply, tool_call

WORKER = Path(__file__).with_name("sigkill_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigkill_while_waiting_on_the_model_then_resume(tmp_path: Path) -> None:
    """Kill -9 during the second model call; a new process resumes by run_id."""
    counter = tmp_path / "charges.txt"
    args = [sys.executable, str(WORKER), "", str(tmp_path / "store"), "r-42", str(counter)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with ScriptedServer(tool_call("charge", {"amount": 5}), hang(), reply("all done")) as server:
        args[2] = server.base_url
        child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(server.requests) < 2:  # the second request is the hanging one
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never reached the hanging call"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=10)  # reaps it and closes its pipes
        assert child.returncode == -signal.SIGKILL
        assert counter.read_text().splitlines() == ["5 r-42-2"]

        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert result["content"] == "all done"
        # 3 requests reached the server, but only the two answered ones were paid for:
        # the first turn (answered, journaled, replayed on resume) and the resumed turn.
        assert len(server.requests) == 3
        assert server.answered == 2
        assert result["usage"]["requests"] == 1
        assert result["usage"]["replayed_steps"] == 2
        assert server.requests[2].messages == server.requests[1].messages
    assert counter.read_text().splitlines() == ["5 r-42-2"]  # the tool ran once
