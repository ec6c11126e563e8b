"""What a class of simulated users did, every interaction and every drawing it was shown, judged
against the classroom's targets: the reports the load tests check and the benchmarks print."""

from __future__ import annotations

import collections
import itertools
import statistics
from dataclasses import dataclass, field

import numpy as np

from vae.config import TrainConfig

CYCLE = ("open Draw", "draw", "open Latent map", "click a digit", "click your drawing", "open Generate",
         "watch the run")
QUEUE_CYCLE = CYCLE[:-1]  # a class that queues runs uses the other pages while they train
TARGET_MEDIAN_S = 2.0  # the classroom's bar for an interaction's latency, over the whole class
TARGET_P95_S = 5.0
TARGET_RSS_RATIO = 1.5  # the server's memory with a class's runs ended, to that with none queued
SETTLE_S = 5.0  # after the last run ended, before the server's memory is read


@dataclass
class Interaction:
    session: int
    kind: str  # one of CYCLE
    latency_s: float | None  # None: not answered within the timeout
    started: float  # time.monotonic(), to tell whether the job was still training
    by: str = "browser"  # the user's kind: "browser" or "client"
    error: str = ""


@dataclass
class Sighting:
    """A drawing a session was shown, and how well it matches every user's pattern."""

    session: int
    where: str  # "Draw" or "Latent map"
    correlations: list[float]  # likeness to PATTERNS' views, in order

    @property
    def pattern(self) -> int:
        """The session's own pattern: past the patterns' count (the queue bench), learners share them."""
        return self.session % len(self.correlations)

    @property
    def own(self) -> bool:
        return int(np.argmax(self.correlations)) == self.pattern


@dataclass
class ClassReport:
    """What a class of users did: every interaction and sighting, judged against the classroom's
    latency targets."""

    sessions: int
    interactions_each: int
    timeout_s: float
    think_s: float = 0.0  # a user's mean pause between an answer and its next action
    interactions: list[Interaction] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each part of the bench took
    training_ended: float | None = None  # time.monotonic() when the training under load was seen to end
    threads: int = 0

    @property
    def planned(self) -> int:
        return self.sessions * self.interactions_each

    @property
    def latencies(self) -> list[float]:
        return [i.latency_s for i in self.interactions if i.latency_s is not None]

    @property
    def unanswered(self) -> list[Interaction]:
        return [i for i in self.interactions if i.latency_s is None]

    @property
    def during_training(self) -> int:
        return sum(self.training_ended is None or i.started < self.training_ended for i in self.interactions)

    @property
    def leaks(self) -> list[Sighting]:
        return [s for s in self.sightings if not s.own]

    def latency_checks(self) -> dict[str, tuple[bool, str]]:
        """The classroom's latency targets: for each, whether the class met it, and what was measured."""
        times = self.latencies or [float("nan")]
        median, p95 = statistics.median(times), float(np.percentile(times, 95))
        return {f"every interaction answered within {self.timeout_s:g} s":
                    (len(self.latencies) == self.planned, f"{len(self.latencies)}/{self.planned}"),
                f"median latency at most {TARGET_MEDIAN_S:g} s": (median <= TARGET_MEDIAN_S, f"{median:.2f} s"),
                f"95th percentile at most {TARGET_P95_S:g} s": (p95 <= TARGET_P95_S, f"{p95:.2f} s")}

    def heading(self, what: str) -> list[str]:
        """A summary's first lines: ``what`` the class did, at what pace, and the bench's phases."""
        return [f"{what}; {self.interactions_each} interactions each, {self.think_s:g} s to look at each answer on "
                f"average; torch threads {self.threads}",
                "bench phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.phases.items())]

    def latency_table(self, kinds: tuple[str, ...]) -> list[str]:
        """The latencies of each kind of interaction, of each kind of user where both took part, and
        of all; then the unanswered ones and whether the users were shown their own drawings."""
        lines = [f"{'interaction':<20}{'answered':>10}{'median s':>10}{'p90 s':>8}{'p95 s':>8}{'max s':>8}"]
        rows = {kind: [i for i in self.interactions if i.kind == kind] for kind in kinds}
        if len({i.by for i in self.interactions}) > 1:
            rows |= {f"all, {by}s": [i for i in self.interactions if i.by == by] for by in ("browser", "client")}
        rows["all"] = self.interactions
        for kind, done in rows.items():
            times = [i.latency_s for i in done if i.latency_s is not None]
            if done:
                stats = (f"{statistics.median(times):>10.2f}{np.percentile(times, 90):>8.2f}"
                         f"{np.percentile(times, 95):>8.2f}{max(times):>8.2f}"
                         if times else f"{'-':>10}{'-':>8}{'-':>8}{'-':>8}")
                lines.append(f"{kind:<20}{f'{len(times)}/{len(done)}':>10}{stats}")
        lines.append(f"{'planned':<20}{self.planned:>10}")
        for i in self.unanswered:
            lines.append(f"  session {i.session} ({i.by}) {i.kind}: {i.error}")
        lines.append(f"interactions while the server trained: {self.during_training}/{len(self.interactions)}")
        own = [s.correlations[s.pattern] for s in self.sightings]
        other = [max(r for j, r in enumerate(s.correlations) if j != s.pattern) for s in self.sightings]
        by_place = ", ".join(f"{where} {sum(s.own for s in self.sightings if s.where == where)}/"
                             f"{sum(s.where == where for s in self.sightings)}" for where in ("Draw", "Latent map"))
        lines.append(f"drawings shown that are the session's own: {by_place}"
                     + (f" (r with own pattern >= {min(own):.2f}; with any other <= {max(other):.2f})" if own else ""))
        return lines


@dataclass
class LoadReport(ClassReport):
    """A class's load on the app while it trains one run, and how that run compares with the same
    run alone."""

    config: TrainConfig = field(kw_only=True)
    clients: int = 0  # of the sessions, how many are websocket clients (the last ones)
    cold_s: dict[str, float] = field(default_factory=dict)  # the first visitor's, caches cold
    job_message: str = ""
    epochs_done: int = 0
    differences: list[str] | None = None  # job vs alone run; None: not compared

    @property
    def browsers(self) -> int:
        return self.sessions - self.clients

    def summary(self) -> str:
        """The results table, and what the users saw and the run did, in words."""
        c = self.config
        lines = [
            *self.heading(f"Load: {self.sessions} sessions ({self.browsers} in one Chromium, {self.clients} websocket "
                          f"clients) while the server trains ({c.arch}, {c.train_size:,} images, batch "
                          f"{c.batch_size}, seed {c.seed})"),
            "cold start, first visitor alone: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.cold_s.items()),
            "",
            *self.latency_table(CYCLE),
            f"job: {self.job_message}",
        ]
        if self.differences is None:
            lines.append("job vs alone run: not compared")
        elif not self.differences:
            lines.append(f"job vs alone run ({self.epochs_done} epochs): identical (weights, optimizer and RNG "
                         "states, metrics, per-step losses; timings aside)")
        else:
            lines.append(f"job vs alone run ({self.epochs_done} epochs): {len(self.differences)} differences, e.g.")
            lines.extend(f"  {d}" for d in self.differences[:10])
        return "\n".join(lines)


@dataclass
class QueueReport(ClassReport):
    """A class that queues a run each, then uses the other pages while the runs train one at a time:
    the interactions, the queue's records once the runs ended, and the server's memory."""

    epochs: int = 1  # of each user's run
    train_size: int = 2000
    queued: dict[str, float] = field(default_factory=dict)  # run name -> seconds from the press to the run shown
    refused: dict[str, str] = field(default_factory=dict)  # run name -> why it was not queued
    records: list[dict] = field(default_factory=list)  # the queue's, by id, when the runs ended or the wait did
    saved: set[str] = field(default_factory=set)  # the runs whose checkpoint file exists
    rss_none_kb: int = 0  # the server's resident memory, the class connected and no run queued
    rss_ended_kb: dict[int, int] = field(default_factory=dict)  # ... when so many runs were first seen ended
    rss_finished_kb: int = 0  # ... every run ended, after SETTLE_S
    pinned: dict[str, int] = field(default_factory=dict)  # a hall's replica ("r1", ...) -> learners its cookie pins

    @property
    def rss_ratio(self) -> float:
        return self.rss_finished_kb / self.rss_none_kb if self.rss_none_kb else float("nan")

    @property
    def run_problems(self) -> list[str]:
        """The runs not queued, not finished, or finished without a checkpoint file, in words."""
        recorded = {r["name"]: r for r in self.records}
        problems = [f"{name} not queued: {why}" for name, why in self.refused.items()]
        problems += [f"{name} has no record in the queue" for name in self.queued if name not in recorded]
        for name, r in recorded.items():
            if r["status"] != "finished":
                problems.append(f"{name} (id {r['id']}) {r['status']}: {r['message']}")
            elif not (r["has_checkpoint"] and name in self.saved):
                problems.append(f"{name} (id {r['id']}) finished without its checkpoint {name}.pt")
        return problems

    @property
    def order_problems(self) -> list[str]:
        """Where the runs did not train one at a time in queue order: each should start after the
        one queued before it ended."""
        started = [r for r in self.records if r["started_at"]]
        return [f"{b['name']} (id {b['id']}) started {b['started_at'] - a['ended_at']:+.2f} s after "
                f"{a['name']} (id {a['id']}) ended" for a, b in itertools.pairwise(started)
                if not a["ended_at"] or b["started_at"] < a["ended_at"]]

    @property
    def in_hall(self) -> bool:
        """The class went through a hall's balancer (its cookie pinned the learners to replicas)."""
        return any(self.pinned)

    @property
    def start_problems(self) -> list[str]:
        """Where the runs did not start in queue order (a hall trains several at once: each should
        start no earlier than the one queued before it)."""
        started = [r for r in sorted(self.records, key=lambda r: r["id"]) if r["started_at"]]
        return [f"{b['name']} (id {b['id']}) started {a['started_at'] - b['started_at']:.2f} s before "
                f"{a['name']} (id {a['id']})" for a, b in itertools.pairwise(started)
                if b["started_at"] < a["started_at"]]

    @property
    def most_at_once(self) -> int:
        """The most runs that were training at the same moment, by their records."""
        spans = [(r["started_at"], r["ended_at"]) for r in self.records if r["started_at"] and r["ended_at"]]
        return max((sum(s <= start < e for s, e in spans) for start, _ in spans), default=0)

    def summary(self) -> str:
        """The latency table, the runs and the server's memory, in words."""
        seconds = sorted(self.queued.values())
        took = [r["ended_at"] - r["started_at"] for r in self.records if r["started_at"] and r["ended_at"]]
        rss = ", ".join(f"{ended}: {kb / 1024:.0f}" for ended, kb in sorted(self.rss_ended_kb.items()))
        lines = [
            *self.heading(f"Queue: {self.sessions} websocket clients each queue a run ({self.epochs} epoch"
                          f"{'s' * (self.epochs != 1)} on {self.train_size:,} images), then use Draw, the "
                          "Latent map and Generate"),
            f"queueing: {len(self.queued)}/{self.sessions} queued"
            + (f", from the press to the run shown median {statistics.median(seconds):.2f} s, "
               f"max {seconds[-1]:.2f} s" if seconds else ""),
            "",
            *self.latency_table(QUEUE_CYCLE),
            "",
            f"runs: {sum(r['status'] == 'finished' for r in self.records)}/{self.sessions} finished, "
            f"{len(self.saved)} checkpoints saved"
            + (f"; each trained median {statistics.median(took):.1f} s, max {max(took):.1f} s" if took else ""),
            *(f"  {problem}" for problem in self.run_problems),
        ]
        if self.in_hall:  # several runs train at once, and the replicas share the work: no one server's memory
            lines += ["pinned by the balancer's cookie: "
                      + ", ".join(f"{r} {n}" for r, n in sorted(self.pinned.items())),
                      "queue order: " + ("kept, each run started no earlier than the one queued before it"
                                         if not self.start_problems
                                         else f"{len(self.start_problems)} runs out of turn"),
                      *(f"  {problem}" for problem in self.start_problems),
                      f"at most {self.most_at_once} runs training at once"]
            return "\n".join(lines)
        lines += [
            "queue order: " + ("kept, each run started after the one before it ended" if not self.order_problems
                               else f"{len(self.order_problems)} runs out of turn"),
            *(f"  {problem}" for problem in self.order_problems),
            f"server RSS: {self.rss_none_kb / 1024:.0f} MiB with no run queued, {self.rss_finished_kb / 1024:.0f} MiB "
            f"with {len(self.records)} ended ({SETTLE_S:g} s after the last): {self.rss_ratio:.2f}x",
            f"  as runs ended (runs: MiB): {rss}",
        ]
        return "\n".join(lines)


@dataclass
class CapacityReport(ClassReport):
    """A class using the pages (no runs) on one app server, and the CPU time the server spent on it
    over a measured stretch: what a learner costs a replica."""

    cpu_s: float = 0.0  # the server process's user + system seconds over the stretch
    wall_s: float = 0.0  # the stretch

    @property
    def cpu_s_per_learner_minute(self) -> float:
        return self.cpu_s / (self.sessions * self.wall_s / 60) if self.wall_s else float("nan")

    @property
    def cores(self) -> float:
        """The server's CPU time over the stretch, in cores kept busy."""
        return self.cpu_s / self.wall_s if self.wall_s else float("nan")

    def percentiles(self) -> tuple[float, float]:
        times = self.latencies or [float("nan")]
        return statistics.median(times), float(np.percentile(times, 95))


@dataclass
class FaultReport:
    """A hall's class while a replica and then the classroom's actor are killed: who was where, how
    long each learner of the lost replica took to see their run again, and the queue's records."""

    learners: int
    epochs: int
    train_size: int
    pinned: dict[str, str] = field(default_factory=dict)  # run name -> the replica its learner was on
    queued: dict[str, float] = field(default_factory=dict)  # run name -> seconds from the press to the run shown
    refused: dict[str, str] = field(default_factory=dict)
    statuses_at_kill: dict[str, str] = field(default_factory=dict)  # run name -> status when the replica died
    back_s: dict[str, float] = field(default_factory=dict)  # run name -> from the kill to its run seen again
    back_on: dict[str, str] = field(default_factory=dict)  # run name -> the replica it was then seen on
    not_back: dict[str, str] = field(default_factory=dict)  # run name -> what the learner saw instead
    classroom_pids: tuple[int | None, int | None] = (None, None)  # the actor's before the kill, after
    classroom_back_s: float | None = None  # from the kill to a new actor process
    statuses_at_actor_kill: dict[str, str] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)  # the queue's, once every run ended or the wait did

    @property
    def lost_replica(self) -> list[str]:
        return [name for name, replica in self.pinned.items() if replica == "r1"]

    def summary(self) -> str:
        back = sorted(self.back_s.values())
        counts = collections.Counter(r["name"] for r in self.records)
        lines = [
            f"Faults: {self.learners} learners through the balancer, each queueing a run ({self.epochs} epochs on "
            f"{self.train_size:,} images); pinned: "
            + ", ".join(f"{r} {n}" for r, n in sorted(collections.Counter(self.pinned.values()).items())),
            f"queueing: {len(self.queued)}/{self.learners} queued" + "".join(f"; {n} refused: {why}"
                                                                            for n, why in self.refused.items()),
            "",
            "(i) kill -9 r1; runs then: " + _statuses(self.statuses_at_kill),
            f"  learners on r1: {len(self.lost_replica)}; their own run seen again on the Train page (through the "
            f"balancer, on r2) by {len(back)}"
            + (f": median {statistics.median(back):.1f} s, max {back[-1]:.1f} s after the kill" if back else ""),
            *(f"  {name}: {seconds:.1f} s, on {self.back_on.get(name) or '?'}"
              for name, seconds in sorted(self.back_s.items())),
            *(f"  {name} NOT back: {why}" for name, why in self.not_back.items()),
            "",
            f"(ii) kill -9 the classroom's actor (pid {self.classroom_pids[0]}); runs then: "
            + _statuses(self.statuses_at_actor_kill),
            f"  a new actor (pid {self.classroom_pids[1]}) "
            + (f"{self.classroom_back_s:.1f} s after the kill" if self.classroom_back_s is not None else "NOT seen"),
            "",
            f"the queue's records at the end ({len(self.records)}):",
            *(f"  {r['id']:>3} {r['name']:<12} {r['status']:<9} x{counts[r['name']]}  {r['message']}"
              for r in self.records),
        ]
        return "\n".join(lines)


def _statuses(statuses: dict[str, str]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(collections.Counter(statuses.values()).items())) or "none"
