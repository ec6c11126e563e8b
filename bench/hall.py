"""A lecture hall (``studio.hall``: a local Ray head, app servers as replicas sharing the classroom's
queue on it, HAProxy in front): whether a class through it is served correctly, what one replica
can carry, and what a killed replica or classroom actor costs the class.

    .venv/bin/python bench/hall.py correctness        # 2 replicas, 40 learners each queueing a run
    .venv/bin/python bench/hall.py capacity           # one plain app server, 20, 40 and 60 learners
    .venv/bin/python bench/hall.py faults             # 2 replicas, 10 learners; kill -9 r1, then the actor
    .venv/bin/python bench/hall.py correctness --learners 6 --interactions 3 --think 1

Each learner is a websocket client (``harness.protocol``) that, as a browser does, loads the page
first and sends back the balancer's cookie, so that it stays on one replica.

correctness: the hall with --replicas, the class of ``bench/queue_class.py`` through its balancer:
each learner opens Train, queues a run (name ``learner-NN``, --epochs on --train-size images), then
makes --interactions of Draw, the Latent map and Generate, about --think s apart. Checks: every
interaction answered within --timeout; every run queued, finished, with its checkpoint; each
learner's run in the queue's records (``classroom.store.read_runs``) exactly once; the runs started
in queue order (the hall trains as many at once as Ray has CPUs, so not one at a time); and on every
replica, a session opened on it directly shows every learner's run in the Train page's table of the
class's runs (its Arrow data decoded). The single server's latency targets (median 2 s, 95th
percentile 5 s) are printed, not checked: on a small machine the Ray head, the replicas, HAProxy,
the training and this load generator share the cores.

capacity: ONE app server (``streamlit run app.py``, no hall), a class of each --classes size in turn
using Draw, the Latent map and Generate with no run queued, about --think s apart. After the class
has connected (the server warmed up) and every learner's first pause, the server process's CPU time
(utime + stime, /proc/<pid>/stat) is read over --stretch s: CPU seconds per learner-minute, with the
latencies of that stretch. From the costliest, the hall a class of --hall-class needs, on the
stated assumption that a replica, one Python process whose script runs share one interpreter
lock, serves about --replica-share of a core. No check: figures.

faults: the hall with --replicas, --learners learners each queueing a run big enough that runs are
training at each kill (--epochs on --train-size images) and watching Train. (i) Once one trains,
replica r1 gets SIGKILL; each learner it held notices its websocket closed and opens the app again
through the balancer with the cookies it holds (the balancer's, the learner's own), as Streamlit's
page does, until the Train page's table shows its run marked as its own (★): within 10 s of the
kill for each. (ii) Once a run trains again, the classroom's actor gets SIGKILL: Ray must start a new
one (a new pid) and every run must end "finished", each learner's exactly once in the records.

Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import sys
import time

from harness.reports import QUEUE_CYCLE, FaultReport, QueueReport
from harness.scenarios import run_capacity, run_hall_class, run_hall_faults
from harness.strokes import QUEUE_CLASS

BACK_S = 10  # a learner of a lost replica sees its run again within this


def exactly_once(records: list[dict], names: list[str]) -> tuple[bool, str]:
    """Each of ``names`` in the queue's records exactly once, and no other run there."""
    counts = collections.Counter(r["name"] for r in records)
    wrong = {n: counts[n] for n in names if counts[n] != 1} | {n: c for n, c in counts.items() if n not in names}
    return not wrong, (f"{len(names)} learners, {len(records)} records"
                       + (f"; wrong counts: {dict(sorted(wrong.items()))}" if wrong else ""))


def correctness_checks(report: QueueReport, shown: dict[str, list[str]]) -> dict[str, tuple[bool, str]]:
    names = [f"learner-{i:02d}" for i in range(report.sessions)]
    answered = report.latency_checks()
    first = next(iter(answered))
    missing = {replica: sorted(set(names) - set(seen)) for replica, seen in shown.items()}
    return {first: answered[first],
            "every run queued, finished, with its checkpoint": (
                not report.run_problems and len(report.queued) == report.sessions,
                f"{len(report.saved)}/{report.sessions} saved"),
            "each learner's run in the records exactly once": exactly_once(report.records, names),
            "runs started in queue order": (not report.start_problems,
                                            f"{len(report.start_problems)} out of turn; at most "
                                            f"{report.most_at_once} training at once"),
            "every learner's run in the class's table on every replica": (
                len(shown) > 1 and not any(missing.values()),
                ", ".join(f"{replica} {len(set(names) & set(seen))}/{len(names)}"
                          + (f" (missing {missing[replica][:5]})" if missing[replica] else "")
                          for replica, seen in shown.items()))}


def correctness(args: argparse.Namespace) -> dict[str, tuple[bool, str]]:
    started = time.monotonic()
    print(f"correctness: a hall of {args.replicas} replicas, {args.learners} learners ...", flush=True)
    report, shown = run_hall_class(args.learners, args.interactions, args.timeout, args.train_size, args.epochs,
                                   args.think, args.replicas)
    print(report.summary())
    print("not checked here (a small machine's cores shared by the whole hall): "
          + "; ".join(f"{target}: {measured}" for target, (_, measured) in list(report.latency_checks().items())[1:]))
    print(f"the whole bench: {time.monotonic() - started:.0f} s\n")
    return correctness_checks(report, shown)


def capacity(args: argparse.Namespace) -> dict[str, tuple[bool, str]]:
    print(f"capacity: one app server; {', '.join(map(str, args.classes))} learners, {args.think:g} s think, "
          f"{args.stretch:g} s measured each ...", flush=True)
    reports = run_capacity(tuple(args.classes), args.stretch, args.think, args.timeout)
    print(f"\n{'learners':>8}{'CPU s':>8}{'wall s':>8}{'cores':>7}{'CPU s/learner-min':>19}"
          f"{'answered':>10}{'p50 s':>7}{'p95 s':>7}")
    for r in reports:
        p50, p95 = r.percentiles()
        done = len(r.latencies)
        print(f"{r.sessions:>8}{r.cpu_s:>8.1f}{r.wall_s:>8.1f}{r.cores:>7.2f}{r.cpu_s_per_learner_minute:>19.3f}"
              f"{f'{done}/{len(r.interactions)}':>10}{p50:>7.2f}{p95:>7.2f}")
    worst = max(r.cpu_s_per_learner_minute for r in reports)
    need = args.hall_class * worst / 60  # cores of page serving
    replicas = math.ceil(need / args.replica_share)
    print(f"\nA class of {args.hall_class}: {args.hall_class} x {worst:.3f} CPU s per learner-minute (the costliest "
          f"above) / 60 = {need:.2f} cores of page serving.\nAssumption: a replica (one Python process, its "
          f"script runs sharing one interpreter lock) serves about {args.replica_share:g} of a core.\n"
          f"{'replicas':<10}{'cores for pages':<17}{'plus training':<14}\n"
          f"{replicas:<10}{replicas:<17}{'+ 1 core per run training at once (Ray: one run per CPU)'}")
    for r in reports:
        for i in r.unanswered:
            print(f"  {r.sessions} learners, learner {i.session} {i.kind}: unanswered, {i.error}")
    return {}


def faults(args: argparse.Namespace) -> dict[str, tuple[bool, str]]:
    print(f"faults: a hall of {args.replicas} replicas, {args.learners} learners, runs of {args.epochs} epochs on "
          f"{args.train_size:,} images ...", flush=True)
    report: FaultReport = run_hall_faults(args.learners, args.epochs, args.train_size, args.replicas)
    print(report.summary() + "\n")
    names = [f"learner-{i:02d}" for i in range(args.learners)]
    lost = report.lost_replica
    back = sorted(report.back_s.values())
    by_status = collections.Counter(r["status"] for r in report.records)
    return {"every learner's run queued": (len(report.queued) == args.learners,
                                           f"{len(report.queued)}/{args.learners}"),
            "runs were training at the replica's kill": ("running" in report.statuses_at_kill.values(),
                                                         f"{list(report.statuses_at_kill.values()).count('running')}"),
            f"every learner of r1 sees their own run again within {BACK_S} s": (
                bool(lost) and len(back) == len(lost) and back[-1] <= BACK_S,
                f"{len(back)}/{len(lost)}" + (f", median {statistics.median(back):.1f} s, max {back[-1]:.1f} s"
                                              if back else "")),
            "a new classroom actor after its kill": (report.classroom_back_s is not None,
                                                     f"pid {report.classroom_pids[0]} -> {report.classroom_pids[1]}"),
            "each learner's run in the records exactly once": exactly_once(report.records, names),
            "every run finished": (by_status["finished"] == len(report.records) == args.learners,
                                   ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parts = parser.add_subparsers(dest="part", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--think", type=float, default=5.0,
                        help="a learner's mean pause, in seconds, between an answer and its next action "
                             "(each drawn from 0.5x to 1.5x)")
    common.add_argument("--timeout", type=float, default=30.0,
                        help="seconds an interaction may take before it counts as unanswered")
    hall = argparse.ArgumentParser(add_help=False)
    hall.add_argument("--replicas", type=int, default=2, help="app servers behind the balancer")
    defaults = dict(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    part = parts.add_parser("correctness", parents=[common, hall], help="a class through the hall", **defaults)
    part.add_argument("--learners", type=int, default=40, help=f"1 to {QUEUE_CLASS}")
    part.add_argument("--interactions", type=int, default=2 * len(QUEUE_CYCLE),
                      help="interactions per learner after queueing, in the cycle: " + ", ".join(QUEUE_CYCLE))
    part.add_argument("--epochs", type=int, default=1, help="epochs of each learner's run")
    part.add_argument("--train-size", type=int, default=500, help="training images of each learner's run")
    part = parts.add_parser("capacity", parents=[common], help="what one app server's learners cost", **defaults)
    part.add_argument("--classes", type=int, nargs="+", default=[20, 40, 60],
                      help=f"class sizes, each <= {QUEUE_CLASS}")
    part.add_argument("--stretch", type=float, default=60.0, help="seconds measured for each class")
    part.add_argument("--hall-class", type=int, default=300, help="the class to size a hall for")
    part.add_argument("--replica-share", type=float, default=0.6, help="of a core, what one replica serves (assumed)")
    part = parts.add_parser("faults", parents=[hall], help="a replica and the classroom's actor killed", **defaults)
    part.add_argument("--learners", type=int, default=10)
    part.add_argument("--epochs", type=int, default=2, help="epochs of each learner's run")
    part.add_argument("--train-size", type=int, default=2000, help="training images of each learner's run")
    args = parser.parse_args(argv)
    if not 1 <= getattr(args, "learners", 1) <= QUEUE_CLASS or not all(
            1 <= n <= QUEUE_CLASS for n in getattr(args, "classes", [1])):
        parser.error(f"learners must be in [1, {QUEUE_CLASS}]")
    results = {"correctness": correctness, "capacity": capacity, "faults": faults}[args.part](args)
    print("\n".join(f"{'PASS' if met else 'FAIL'}  {target}: {measured}"
                    for target, (met, measured) in results.items()))
    return 0 if all(met for met, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
