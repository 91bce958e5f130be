"""Crash test: real processes owning a file queue are killed with SIGKILL at random moments."""

from __future__ import annotations

from pathlib import Path

import pytest

from .crash_harness import ACK_WINDOW, run_crash_rounds


@pytest.mark.slow
def test_kill_9_loses_no_published_message_and_redelivers_only_unwritten_acks(
    tmp_path: Path,
) -> None:
    """Over several kill -9 rounds every returned publish is delivered and acks hold."""
    report = run_crash_rounds(tmp_path, rounds=5, seed=1234)
    assert report.published > 0
    assert report.acked > 0
    assert report.lost == [], f"published but never delivered: {report.lost[:5]}"
    assert report.worst_window <= ACK_WINDOW, report.redelivered_after_ack
    assert "depth=0" in report.drain_output


@pytest.mark.slow
def test_kill_9_during_publish_many_and_acknowledge_many_loops(tmp_path: Path) -> None:
    """kill -9 while producers call publish_many or publish_all and consumers
    acknowledge_many: a returned batch is delivered whole, a settled batch is redelivered
    all or nothing and only within the documented window."""
    report = run_crash_rounds(tmp_path, rounds=5, seed=4321, batches=True)
    assert report.batches_published > report.batches_published_all > 0
    assert report.batches_acked > 0
    assert report.lost == [], f"published but never delivered: {report.lost[:5]}"
    assert report.partly_lost_batches == 0
    assert report.partly_redelivered_batches == 0, report.redelivered_after_ack
    assert report.worst_window <= ACK_WINDOW, report.redelivered_after_ack
    assert "depth=0" in report.drain_output


@pytest.mark.slow
def test_kill_9_keeps_a_nack_many_batch_whole_or_not_at_all(tmp_path: Path) -> None:
    """kill -9 while consumers give batches back with nack_many: after the restart each
    batch's messages all carry its error, or none does, and nothing is lost."""
    report = run_crash_rounds(tmp_path, rounds=5, seed=2468, nacks=True)
    assert report.batches_nacked > 0
    assert report.nack_batches_kept + report.nack_batches_dropped > 0
    assert report.partly_kept_nack_batches == 0, report
    assert report.lost == [], f"published but never delivered: {report.lost[:5]}"
    assert report.partly_lost_batches == 0
    assert report.worst_window <= ACK_WINDOW, report.redelivered_after_ack
    assert "depth=0" in report.drain_output
