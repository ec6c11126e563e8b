"""Load: concurrent sessions drawing, clicking the latent map and generating while the server trains.

    .venv/bin/python bench/load_sessions.py                  # 10 browser sessions x 10 interactions
    .venv/bin/python bench/load_sessions.py --sessions 30 --clients 26 --interactions 7 --think 5
                                                             # a class of 30, 4 of them in Chromium
    .venv/bin/python bench/load_sessions.py --sessions 4 --interactions 5

Against a real ``streamlit run app.py`` (its own checkpoint folder in a temp dir, holding a copy of
checkpoints/default.pt). Each user is one Streamlit session: a browser context of its own in one
headless Chromium (Debian's), or, for the last --clients of them, a websocket client
(``harness.protocol``) that sends what the browser would (the canvas's PNG, the chart's click)
without rendering anything, as a class's browsers run on the students' own laptops.

1. A first visitor opens Draw, the Latent map and Generate, filling the server's caches (cold-start
   times are reported apart), as a teacher would before the class; then it starts a training run
   on the Train page (fixed seed) and watches it.
2. N sessions open the app and visit Draw and the Latent map once, unmeasured (so the browsers
   hold those pages' code). Then, all at once while the run trains, each repeats, up to
   --interactions times in all, each after a pause of about --think seconds: open Draw, draw its
   own stroke pattern, open the Latent map, click a digit, click its drawing's star, open
   Generate, open Train and watch the run (its progress bar shown; it stays there, its live view
   refreshing, until the load ends). A browser's latency runs from the pointer's release to the
   answer in the DOM (the page's title and canvas or chart; the new image loaded); a client's
   from its request to the end of the script run that answers it, what it shows checked as the
   browser's is.
3. When every session is done, the first visitor presses Stop (after the first epoch at least).
4. This process trains the same TrainConfig alone, stopped after as many epochs, and compares
   the two checkpoints and their resume states entry by entry.

Checks: every interaction answered within --timeout; median latency at most 2 s and 95th
percentile at most 5 s; no session shown another's drawing (the 28x28 input its Draw page, and
its map's star, show correlates best with its own pattern among all sessions'); the job's
checkpoint identical to the alone run's (every tensor torch.equal, every metric and loss equal;
only timings may differ). Exit status 1 if one fails. Run it with nothing else on the machine:
the latencies are the point.

The users and the class's run are ``harness.scenarios``' (tests/test_load.py runs a class of four);
this script sizes the class, judges it against the targets above and prints the results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from harness.reports import CYCLE, LoadReport
from harness.scenarios import differences, run_load
from harness.strokes import MAX_SESSIONS, pattern_check


def failures(report: LoadReport) -> list[str]:
    """What falls short of the issue's bar, in words; empty when every check passes."""
    failed = [f"{target}: {measured}" for target, (met, measured) in report.latency_checks().items() if not met]
    if report.leaks:
        failed.append(f"{len(report.leaks)} of {len(report.sightings)} drawings shown were not the session's own")
    if not report.sightings:
        failed.append("no session got as far as seeing its drawing")
    if report.differences is None or report.differences:
        failed.append("the job's checkpoint differs from the run alone" if report.differences
                      else "the job's checkpoint was not compared")
    return failed


def summary(report: LoadReport) -> str:
    """The report's results table, then the verdict."""
    failed = failures(report)
    return report.summary() + "\n" + ("PASS: every check" if not failed else "FAIL: " + "; ".join(failed))


def json_report(report: LoadReport) -> dict:
    """The report's counts, checks and summary, as JSON, for a script to read."""
    return {"planned": report.planned, "answered": len(report.latencies),
            "unanswered": [f"session {i.session} {i.kind}: {i.error}" for i in report.unanswered],
            "during_training": report.during_training, "interactions": len(report.interactions),
            "sightings": sorted({(s.session, s.where) for s in report.sightings}),
            "leaks": len(report.leaks), "epochs_done": report.epochs_done, "differences": report.differences,
            "failures": failures(report), "summary": summary(report)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10, help=f"concurrent sessions, 1 to {MAX_SESSIONS}")
    parser.add_argument("--clients", type=int, default=0,
                        help="of the sessions, how many are websocket clients rather than Chromium pages")
    parser.add_argument("--think", type=float, default=0.0,
                        help="a user's mean pause, in seconds, between an answer and its next action "
                             "(each drawn from 0.5x to 1.5x)")
    parser.add_argument("--interactions", type=int, default=10,
                        help="interactions per session, in the cycle: " + ", ".join(CYCLE))
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds an interaction may take before it counts as unanswered")
    parser.add_argument("--port", type=int, default=None, help="the app's port; none: a free one")
    parser.add_argument("--train-size", type=int, default=4000, help="training images of the background run")
    parser.add_argument("--seed", type=int, default=7, help="the background run's seed")
    parser.add_argument("--json", type=Path, help="also write the report here, as JSON")
    parser.add_argument("--check-patterns", action="store_true",
                        help="print how each user's stroke pattern matches its own and the others', as JSON; no load")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                        help="print where two checkpoint files differ (timings aside), as JSON; no load")
    args = parser.parse_args(argv)
    if args.check_patterns:
        print(json.dumps(pattern_check()))
        return 0
    if args.compare:
        a, b = (torch.load(path, weights_only=True) for path in args.compare)
        print(json.dumps(differences(a, b, "checkpoint")))
        return 0
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be in [1, {MAX_SESSIONS}]")
    if not 0 <= args.clients <= args.sessions:
        parser.error("--clients must be in [0, --sessions]")
    report = run_load(args.sessions, args.interactions, args.timeout, args.port, args.train_size, args.seed,
                      args.clients, args.think)
    print(summary(report))
    if args.json:
        args.json.write_text(json.dumps(json_report(report)))
    return 0 if not failures(report) else 1


if __name__ == "__main__":
    sys.exit(main())
