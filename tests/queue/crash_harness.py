"""Kill a real queue-owning process with SIGKILL, over and over, and check what survived.

Used by the crash test (a few rounds) and by ``benchmarks/queue_crash.py`` (many rounds).
Each round starts ``crash_worker.py`` (producers and consumers on one file queue), lets it
run for a random moment and kills it with SIGKILL. A final clean process drains the queue.
Then:

* every id whose ``publish`` returned (in any round) was delivered, in that round or later;
* an id whose ``acknowledge`` returned in round ``r`` is delivered again after the kill
  only within the documented at-least-once window: acks are written with the consumer's
  next trip to the disk (a subscribe that is not served from prefetched messages, any
  publish) or by the upkeep task within 50 ms, so at most
  ``CONSUMERS * max(BATCH, PREFETCH)`` acknowledged messages per kill may come back.

With ``batches=True`` the worker uses ``publish_many``, ``publish_all`` and
``acknowledge_many``, and two more checks hold per batch: a returned ``publish_many`` or
``publish_all`` is delivered whole (never partly lost), and an ``acknowledge_many`` is
redelivered all or nothing (one ACK record).
With ``nacks=True`` as well, every third batch goes back by ``nack_many`` with an error
unique to it; for the messages of such a batch first delivered again after the kill, the
last error says whether the batch's records reached the log: for all of them or for none
(one chunk, one write).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .crash_worker import BATCH, CONSUMERS, PREFETCH

WORKER = Path(__file__).with_name("crash_worker.py")
ACK_WINDOW = CONSUMERS * max(BATCH, PREFETCH)


@dataclass
class CrashReport:
    rounds: int = 0
    published: int = 0
    delivered: int = 0
    acked: int = 0
    lost: list[str] = field(default_factory=list)
    redelivered_after_ack: list[int] = field(default_factory=list)  # per round
    partly_lost_batches: int = 0  # publish_many/_all batches some but not all of which arrived
    partly_redelivered_batches: int = 0  # acknowledge_many batches partly delivered again
    batches_published: int = 0
    batches_published_all: int = 0  # of which publish_all
    batches_acked: int = 0
    batches_nacked: int = 0
    nack_batches_kept: int = 0  # seen again after a kill, every record on disk
    nack_batches_dropped: int = 0  # seen again after a kill, no record on disk
    partly_kept_nack_batches: int = 0  # some records on disk, some not
    kill_times: list[float] = field(default_factory=list)
    drain_output: str = ""

    @property
    def worst_window(self) -> int:
        return max(self.redelivered_after_ack, default=0)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and self.worst_window <= ACK_WINDOW
            and not self.partly_lost_batches
            and not self.partly_redelivered_batches
            and not self.partly_kept_nack_batches
        )


def _read_lines(path: Path) -> list[list[str]]:
    """The records of ``path``: one list of ids per line (a batch, or a single id)."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line]


def _read(path: Path) -> list[str]:
    return [i for line in _read_lines(path) for i in line]


def _start(queue: Path, records: Path, round_: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(queue), str(records), str(round_), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )


def run_crash_rounds(
    root: Path,
    rounds: int,
    *,
    seed: int = 0,
    min_run: float = 0.05,
    max_run: float = 0.6,
    batches: bool = False,
    nacks: bool = False,
) -> CrashReport:
    """Run ``rounds`` kill -9 rounds in ``root`` and check the records."""
    flags = (["--batches"] if batches or nacks else []) + (["--nacks"] if nacks else [])
    rng = random.Random(seed)
    queue = root / "queue"
    records = root / "records"
    records.mkdir(parents=True, exist_ok=True)
    report = CrashReport(rounds=rounds)
    for round_ in range(rounds):
        with _start(queue, records, round_, *flags) as proc:
            assert proc.stdout is not None
            seen = []
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                seen.append(line)  # log lines (recovery reports) come first
            if not line:
                proc.kill()
                raise RuntimeError(f"crash worker round {round_} did not start: {seen[-3:]!r}")
            run = rng.uniform(min_run, max_run)
            time.sleep(run)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            report.kill_times.append(run)
    with _start(queue, records, rounds, "--drain", *(["--nacks"] if nacks else [])) as proc:
        out, _ = proc.communicate(timeout=300)
        report.drain_output = out.strip()
        if proc.returncode != 0:
            raise RuntimeError(f"drain process failed ({proc.returncode}): {out}")
    _verify(records, rounds, report)
    if nacks:
        _verify_nacks(records, rounds, report)
    return report


def _verify_nacks(records: Path, rounds: int, report: CrashReport) -> None:
    """Each ``nack_many`` batch whose messages were next delivered in a later round (after
    a kill): all of them carry its error (its records were on disk), or none does."""
    pending: dict[str, tuple[int, str]] = {}  # id -> (round, tag) of its last nack
    outcomes: dict[str, list[bool]] = {}  # tag -> per message: was the record kept?
    for r in range(rounds + 1):
        for line in _read_lines(records / f"events.{r}"):
            if line[0] == "N":
                report.batches_nacked += 1
                for message_id in line[2:]:
                    pending[message_id] = (r, line[1])
                continue
            for item in line[1:]:
                message_id, _, error = item.partition("=")
                nack = pending.pop(message_id, None)
                if nack is not None and nack[0] < r:  # first delivery after a kill
                    outcomes.setdefault(nack[1], []).append(error == nack[1])
    for kept in outcomes.values():
        if all(kept):
            report.nack_batches_kept += 1
        elif not any(kept):
            report.nack_batches_dropped += 1
        else:
            report.partly_kept_nack_batches += 1


def _verify(records: Path, rounds: int, report: CrashReport) -> None:
    delivered_in = [set(_read(records / f"delivered.{r}")) for r in range(rounds + 1)]
    ever_delivered = set().union(*delivered_in)
    published: set[str] = set()
    for r in range(rounds):
        published.update(_read(records / f"published.{r}"))
        published.update(_read(records / f"published_all.{r}"))
    report.published = len(published)
    report.delivered = len(ever_delivered)
    report.lost = sorted(published - ever_delivered)
    acked_total = 0
    for r in range(rounds):
        acked = set(_read(records / f"acked.{r}"))
        acked_total += len(acked)
        later = Counter(i for later in delivered_in[r + 1 :] for i in later if i in acked)
        report.redelivered_after_ack.append(len(later))
    report.acked = acked_total
    for r in range(rounds):
        for name in ("published", "published_all"):
            for batch in _read_lines(records / f"{name}.{r}"):
                if len(batch) > 1:
                    report.batches_published += 1
                    report.batches_published_all += name == "published_all"
                    if 0 < len(set(batch) - ever_delivered) < len(batch):
                        report.partly_lost_batches += 1
        later_ids = set().union(*delivered_in[r + 1 :])
        for batch in _read_lines(records / f"acked.{r}"):
            if len(batch) > 1:
                report.batches_acked += 1
                again = sum(1 for i in batch if i in later_ids)
                if 0 < again < len(batch):
                    report.partly_redelivered_batches += 1
