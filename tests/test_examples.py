"""The shipped examples run and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_embed_example() -> None:
    """examples/embed.py answers requests, drains fire-and-forget work and stops cleanly."""
    out = run_example("embed.py")
    assert out.count("summary:") == 3
    assert "indexer state: {'words_indexed': 32}" in out
    assert out.strip().endswith("runtime stopped cleanly")


def test_handoff_example() -> None:
    """examples/handoff.py routes each ticket to the right specialist and traces the chains."""
    out = run_example("handoff.py")
    assert "-> billing " in out
    assert "-> tech " in out
    assert "-> refunds " in out
    assert "triage -> billing -> refunds" in out
    assert "status=pending" not in out


def test_llm_triage_example_offline() -> None:
    """examples/llm_triage.py --fake routes to refunds and sales, then replays both runs
    from their journals without a model call; the refund is processed once."""
    out = run_example("llm_triage.py", "--fake")
    assert "-> Refunds Agent;" in out
    assert "-> Sales Agent;" in out
    assert out.count(": 0 model calls,") == 2
    assert "scripted server: 6 requests, 6 answered" in out
    assert "refunds processed: 1" in out
