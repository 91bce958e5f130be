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
