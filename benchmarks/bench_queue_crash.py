"""Crash stress: kill -9 a process that owns a file queue, many times, and check what survived.

Each round starts a worker (8 publishers and 2 consumers on one ``file://`` queue, fsync
always, plus the upkeep task), lets it run for a random 0.05-0.6 s and kills it with SIGKILL;
a final clean process drains the queue. Checked: every id whose publish returned was
delivered; ids acknowledged before a kill came back only within the at-least-once window
(acks not yet written: at most consumers x batch size per kill).

    python benchmarks/bench_queue_crash.py [--rounds 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _common import print_table, write_json  # noqa: E402

from tests.queue.crash_harness import ACK_WINDOW, run_crash_rounds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix=".bench-crash-", dir=HERE.parent))
    started = time.perf_counter()
    try:
        report = run_crash_rounds(root, args.rounds, seed=args.seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    redelivered = sum(report.redelivered_after_ack)
    print_table(
        f"kill -9 stress: {args.rounds} rounds in {elapsed:.0f} s (seed {args.seed})",
        ["", "value"],
        [
            ["publishes returned (recorded)", report.published],
            ["distinct ids delivered", report.delivered],
            ["acks returned (recorded)", report.acked],
            ["published but never delivered", len(report.lost)],
            ["acked, then delivered again (total)", redelivered],
            [f"... worst single kill (allowed <= {ACK_WINDOW})", report.worst_window],
            ["verdict", "OK" if report.ok else "FAILED"],
        ],
    )
    write_json(
        "queue_crash",
        {
            "rounds": args.rounds,
            "seed": args.seed,
            "seconds": elapsed,
            "published": report.published,
            "delivered": report.delivered,
            "acked": report.acked,
            "lost": report.lost,
            "redelivered_after_ack": report.redelivered_after_ack,
            "ack_window": ACK_WINDOW,
            "ok": report.ok,
        },
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
