"""``python -m swarm_runtime queue ...``: stats, peek, dlq, replay and purge from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

import swarm_runtime as sr
from swarm_runtime.cli import cli


def _fill(path: Path) -> dict[str, str]:
    async def main() -> dict[str, str]:
        q = await sr.MessageQueue.open(f"file://{path}", max_attempts=1)
        ids = {"first": await q.publish("jobs", {"n": 0, "text": "hello"})}
        for i in range(1, 4):
            await q.publish("jobs", {"n": i})
        await q.publish("emails", {"to": "a@example.com"}, delay=3600)
        [msg] = await q.subscribe("jobs")
        await q.nack(msg.id, error="ValueError: bad row 7")
        await q.close()
        return ids

    return anyio.run(main)


@pytest.fixture
def queue_dir(tmp_path: Path) -> Path:
    return tmp_path / "q"


@pytest.fixture
def filled(queue_dir: Path) -> tuple[str, dict[str, str]]:
    return f"file://{queue_dir}", _fill(queue_dir)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_stats_shows_counts_per_topic_and_the_directory(filled: tuple[str, dict[str, str]]) -> None:
    """stats prints one row per topic with ready/delayed/leased/dead and the file details."""
    url, _ = filled
    code, out, _ = run("queue", "stats", "--queue", url)
    assert code == 0
    jobs = next(line for line in out.splitlines() if "jobs" in line)
    assert [cell.strip() for cell in jobs.split("│")[1:-1]] == ["jobs", "3", "0", "0", "1", "3"]
    assert "emails" in out
    assert "segments 1" in out
    assert "owner: nobody" in out


def test_stats_json(filled: tuple[str, dict[str, str]]) -> None:
    """stats --json is machine-readable."""
    url, _ = filled
    code, out, _ = run("queue", "stats", "--queue", url, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["topics"]["jobs"] == {"ready": 3, "delayed": 0, "leased": 0, "dead": 1, "depth": 3}
    assert data["topics"]["emails"]["delayed"] == 1
    assert data["file"]["problems"] == []


def test_peek_lists_ready_messages_without_leasing(filled: tuple[str, dict[str, str]]) -> None:
    """peek shows the next messages in order and leaves them ready."""
    url, _ = filled
    code, out, _ = run("queue", "peek", "--queue", url, "jobs", "--json")
    assert code == 0
    assert [m["payload"]["n"] for m in json.loads(out)] == [1, 2, 3]
    code, out, _ = run("queue", "peek", "--queue", url, "jobs", "-n", "1")
    assert code == 0
    assert '{"n":1}' in out
    code, out, _ = run("queue", "stats", "--queue", url, "jobs", "--json")
    assert json.loads(out)["topics"]["jobs"]["ready"] == 3


def test_dlq_shows_the_error(filled: tuple[str, dict[str, str]]) -> None:
    """dlq lists dead letters with the error that killed them."""
    url, ids = filled
    code, out, _ = run("queue", "dlq", "--queue", url)
    assert code == 0
    assert ids["first"] in out
    assert "ValueError: bad row 7" in out


def test_replay_then_purge(filled: tuple[str, dict[str, str]]) -> None:
    """replay moves dead letters back; purge -y empties a topic; purge --dead the DLQ."""
    url, ids = filled
    code, out, _ = run("queue", "replay", "--queue", url, "jobs", "--id", ids["first"])
    assert code == 0
    assert "replayed 1 message(s)" in out
    code, out, _ = run("queue", "stats", "--queue", url, "jobs", "--json")
    assert json.loads(out)["topics"]["jobs"] == {
        "ready": 4,
        "delayed": 0,
        "leased": 0,
        "dead": 0,
        "depth": 4,
    }
    code, out, _ = run("queue", "purge", "--queue", url, "jobs", "--yes")
    assert code == 0
    assert "purged 4" in out
    code, out, _ = run("queue", "purge", "--queue", url, "jobs", "--dead", "--yes")
    assert "purged 0 dead letters" in out


def test_purge_without_yes_is_refused_when_not_interactive(
    filled: tuple[str, dict[str, str]],
) -> None:
    """A purge never happens by accident in a script: it needs --yes."""
    url, _ = filled
    code, _, err = run("queue", "purge", "--queue", url, "jobs")
    assert code == 2
    assert "--yes" in err
    code, _, err = run("queue", "purge", "--queue", url)
    assert code == 2
    assert "EVERY topic" in err


def test_purge_every_topic(filled: tuple[str, dict[str, str]]) -> None:
    """purge without a topic empties every topic (with --yes)."""
    url, _ = filled
    code, out, _ = run("queue", "purge", "--queue", url, "--yes")
    assert code == 0
    assert "purged 3 ready and delayed messages of jobs" in out
    assert "purged 1 ready and delayed messages of emails" in out
    code, out, _ = run("queue", "stats", "--queue", url, "--json")
    topics = json.loads(out)["topics"]
    assert topics == {"jobs": {"ready": 0, "delayed": 0, "leased": 0, "dead": 1, "depth": 0}}


def test_bad_topic_and_missing_queue_have_clear_errors(tmp_path: Path) -> None:
    """A bad topic is a usage error (2); a directory without a queue a queue error (3)."""
    code, _, err = run("queue", "peek", "--queue", f"file://{tmp_path}/nothing", "a/b")
    assert code == 2
    assert "invalid topic" in err
    code, _, err = run("queue", "stats", "--queue", f"file://{tmp_path}/nothing")
    assert code == 3
    assert "no queue at" in err


def test_inspection_works_while_another_process_owns_the_queue(queue_dir: Path) -> None:
    """stats reads a running queue; replay refuses and names the owner (exit 3)."""
    _fill(queue_dir)
    script = (
        "import asyncio, sys, swarm_runtime as sr\n"
        "async def main():\n"
        f"    q = await sr.MessageQueue.open({f'file://{queue_dir}'!r})\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    await q.close()\n"
        "asyncio.run(main())\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        assert owner.stdin is not None
        while owner.stdout.readline().strip() != "ready":
            pass
        code, out, _ = run("queue", "stats", "--queue", f"file://{queue_dir}")
        assert code == 0
        assert f"owner: process {owner.pid}" in out
        code, _, err = run("queue", "replay", "--queue", f"file://{queue_dir}", "jobs")
        assert code == 3
        assert f"locked by process {owner.pid}" in err
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(timeout=30) == 0


def test_help_lists_the_subcommands() -> None:
    """queue --help names every subcommand."""
    code, out, _ = run("queue", "--help")
    assert code == 0
    for name in ("stats", "peek", "dlq", "replay", "purge"):
        assert name in out
