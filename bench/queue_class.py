"""A class queueing its runs: each learner queues one small run, then uses the other pages while the
server trains them one at a time.

    .venv/bin/python bench/queue_class.py                    # 30 learners, 1 epoch on 2,000 images each
    .venv/bin/python bench/queue_class.py --learners 5 --think 1 --train-size 500

Against a real ``streamlit run app.py`` (its own checkpoint folder in a temp dir, holding a copy of
checkpoints/default.pt). Each learner is a websocket client (``harness.protocol``) that sends what
the browser would, as a class's browsers run on the students' own laptops.

1. The learners connect, one first (it fills a fresh server's caches) and then the rest at once;
   each visits Draw, the Latent map, Generate and Train, unmeasured. The server's resident memory
   is read then: with no run queued.
2. All at once, each opens Train, fills the form (name ``learner-NN``, --epochs, --train-size) and
   presses "Queue my run"; the page must show its run. Then each makes --interactions of: open
   Draw, draw its own stroke pattern, open the Latent map, click a digit, click its drawing's star,
   open Generate, each after a pause of about --think seconds, timed from its request to the end of
   the script run that answers it.
3. When every learner is done, the queue's records (``classroom.store.read_runs``) are read until
   every run has ended; the server's memory is read again a few seconds after the last one.

Checks: every interaction answered within --timeout, median latency at most 2 s and 95th percentile
at most 5 s (the classroom's targets); every run queued, finished, with its checkpoint ``NAME.pt``;
the runs trained in queue order, one at a time (each started after the one queued before it ended);
the server's memory with every run ended at most 1.5x that with none (an ended run keeps only its
table row and metrics). Exit status 1 if one fails. Run it with nothing else on the machine: the
latencies are the point.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.reports import QUEUE_CYCLE, TARGET_RSS_RATIO, QueueReport
from harness.scenarios import run_queue_class
from harness.strokes import QUEUE_CLASS


def checks(report: QueueReport) -> dict[str, tuple[bool, str]]:
    """Each target: whether the class met it, and what was measured."""
    return {**report.latency_checks(),
            "every run queued, finished, with its checkpoint": (
                not report.run_problems and len(report.queued) == report.sessions,
                f"{len(report.saved)}/{report.sessions} saved"),
            "runs in queue order, one at a time": (not report.order_problems,
                                                   f"{len(report.order_problems)} out of turn"),
            f"server RSS with every run ended at most {TARGET_RSS_RATIO:g}x that with none": (
                report.rss_ratio <= TARGET_RSS_RATIO, f"{report.rss_ratio:.2f}x")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--learners", type=int, default=30, help=f"1 to {QUEUE_CLASS}")
    parser.add_argument("--think", type=float, default=5.0,
                        help="a learner's mean pause, in seconds, between an answer and its next action "
                             "(each drawn from 0.5x to 1.5x)")
    parser.add_argument("--interactions", type=int, default=2 * len(QUEUE_CYCLE),
                        help="interactions per learner after queueing, in the cycle: " + ", ".join(QUEUE_CYCLE))
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each learner's run")
    parser.add_argument("--train-size", type=int, default=2000, help="training images of each learner's run")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds an interaction may take before it counts as unanswered")
    parser.add_argument("--port", type=int, default=None, help="the app's port; none: a free one")
    parser.add_argument("--json", type=Path,
                        help="also write the checks, the queue's records, the memory readings and the summary here")
    args = parser.parse_args(argv)
    if not 1 <= args.learners <= QUEUE_CLASS:
        parser.error(f"--learners must be in [1, {QUEUE_CLASS}]")
    report = run_queue_class(args.learners, args.interactions, args.timeout, args.port, args.train_size,
                             args.epochs, args.think)
    results = checks(report)
    print(report.summary() + "\n")
    print("\n".join(f"{'PASS' if met else 'FAIL'}  {target}: {measured}"
                    for target, (met, measured) in results.items()))
    if args.json:
        args.json.write_text(json.dumps({"checks": results, "records": report.records,
                                         "rss_none_kb": report.rss_none_kb, "rss_ended_kb": report.rss_ended_kb,
                                         "rss_finished_kb": report.rss_finished_kb, "summary": report.summary()}))
    return 0 if all(met for met, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
