"""Simulated users of VAE Studio, a class of them at once: each a Streamlit session of its own, in
headless Chromium (Playwright's async API, a browser context each) or as a websocket client
(``harness.protocol``) that sends what the browser would without rendering anything, as a class's
browsers run on the students' own laptops. Each draws, clicks the latent map, opens Generate and
watches a training run; each draws its own stroke pattern, so that a drawing shown to the wrong
session is caught.

``run_load`` serves the app, puts a class on it while it trains, and compares that run with the
same run alone; ``run_queue_class`` serves it to a class of websocket clients that each queue a run
of their own, then use the other pages while the runs train one at a time, and checks the runs and
the server's memory. ``tests/test_load.py`` runs both with a few users; ``bench/load_sessions.py``
and ``bench/queue_class.py`` time them with up to thirty.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright, expect

from classroom.queue import ACTIVE, RECORDS
from harness import BUNDLED
from harness.apptest import canvas_value, plotly_rows
from harness.apptest import click as chart_click
from harness.browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    IDLE_APP,
    ISOLATED_POINT_JS,
    PAGE_TITLES,
    RUN_ENDED,
    correlation,
    grey_levels,
    nav_link,
    require_chromium,
    streamlit_server,
)
from harness.protocol import AppSession, PageRun
from studio.figures import MAP_DRAWING, MAP_DRAWING_TARGET, MAP_TEST
from vae.checkpoint import read_checkpoint, read_resume_state, resume_path
from vae.config import TrainConfig
from vae.events import EpochEvent, Event
from vae.preprocess import to_mnist
from vae.train import train

STROKE_PX = 20  # the Draw page's default stroke width
CLASS = 30  # the largest class the bench puts on the app, besides the first visitor
CYCLE = ("open Draw", "draw", "open Latent map", "click a digit", "click your drawing", "open Generate",
         "watch the run")
QUEUE_CYCLE = CYCLE[:-1]  # a class that queues runs uses the other pages while they train
TARGET_MEDIAN_S = 2.0  # the classroom's bar for an interaction's latency, over the whole class
TARGET_P95_S = 5.0
TARGET_RSS_RATIO = 1.5  # the server's memory with a class's runs ended, to that with none queued
VIEWPORT = {"width": 1200, "height": 1000}  # the whole map chart fits, so every point is clickable
SETUP_S = 120  # a page's first load, the cold caches, the first epoch: not interactions
JOB_EPOCHS = 100  # more than the load lasts: the first visitor stops the run once every user is done
RUN_WAIT_S = 60  # per queued run, at most, for the queue to run them all after the interactions
SETTLE_S = 5.0  # after the last run ended, before the server's memory is read


# ---------------------------------------------------------------- each user's stroke


def canvas_drawing(points: list[tuple[int, int]]) -> np.ndarray:
    """One stroke on the Draw page's canvas, white with round ends on black, as RGBA pixels."""
    canvas = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(canvas)
    pen.line(points, fill=255, width=STROKE_PX, joint="curve")
    for x, y in (points[0], points[-1]):
        pen.ellipse((x - STROKE_PX / 2, y - STROKE_PX / 2, x + STROKE_PX / 2, y + STROKE_PX / 2), fill=255)
    grey = np.asarray(canvas)
    return np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)


def reference_view(points: list[tuple[int, int]]) -> np.ndarray:
    """The model's 28x28 view of one stroke."""
    return to_mnist(canvas_drawing(points), ink="light")


def likeness(shown: np.ndarray, reference: np.ndarray) -> float:
    """Pearson r of two 28x28 views, the best over shifts of up to a pixel: the browser's stroke
    may land a pixel off ours, which alone takes a thin line's r from 1 to about 0.5."""
    return max(correlation(shown, np.roll(reference, (dy, dx), axis=(0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


# Strokes drawn by hand, in canvas pixels (the Draw canvas is 280 x 280): twelve shapes whose 28x28
# MNIST views correlate at most 0.46 with one another, even shifted by a pixel (see ``likeness``).
HAND_DRAWN = {
    "seven": [(70, 60), (210, 60), (125, 235)],
    "ell": [(80, 40), (80, 230), (200, 230)],
    "box": [(80, 50), (200, 50), (200, 230), (80, 230), (80, 60)],
    "vee": [(70, 50), (140, 230), (210, 50)],
    "hat": [(70, 230), (140, 50), (210, 230)],
    "slash": [(80, 230), (200, 50)],
    "backslash": [(80, 50), (200, 230)],
    "cup": [(70, 50), (70, 230), (210, 230), (210, 50)],
    "jay": [(200, 50), (200, 230), (80, 230)],
    "double-u": [(50, 60), (100, 230), (140, 100), (180, 230), (230, 60)],
    "em": [(50, 230), (100, 60), (140, 190), (180, 60), (230, 230)],
    "diamond": [(140, 40), (220, 140), (140, 240), (60, 140), (140, 40)],
}


def with_random_strokes(patterns: dict[str, list[tuple[int, int]]], wanted: int,
                        seed: int = 0) -> dict[str, list[tuple[int, int]]]:
    """``patterns`` and random strokes (3-5 corners on a 5x5 lattice of the canvas), ``wanted`` in
    all, each one kept only if its view correlates below 0.55 with every other's, even two pixels
    off (``likeness`` of a view shifted by one), so that a session's drawing stays recognisably its
    own."""
    patterns = dict(patterns)
    rng = np.random.default_rng(seed)
    lattice = [(60 + 40 * i, 50 + 45 * j) for i in range(5) for j in range(5)]
    views = [reference_view(points) for points in patterns.values()]
    while len(patterns) < wanted:
        corners = [lattice[k] for k in rng.choice(len(lattice), size=rng.integers(3, 6), replace=False)]
        view = reference_view(corners)
        shifted = np.roll(view, (1, -1), axis=(0, 1))
        if all(max(likeness(view, other), likeness(other, view), likeness(shifted, other),
                   likeness(np.roll(other, (1, -1), axis=(0, 1)), view)) < 0.55 for other in views):
            patterns[f"stroke-{len(patterns)}"] = corners
            views.append(view)
    return patterns


PATTERNS = with_random_strokes(HAND_DRAWN, CLASS + 1)  # one stroke per user, by index
MAX_SESSIONS = len(PATTERNS) - 1  # the last pattern is the first visitor's
REFERENCES = [reference_view(points) for points in PATTERNS.values()]  # the model's view of each


def pattern_check() -> list[dict]:
    """For each user's pattern, its view a pixel off: likeness to its own and to the closest other."""
    rows = []
    for own, reference in enumerate(REFERENCES):
        shown = np.roll(reference, (1, -1), axis=(0, 1))
        scores = [likeness(shown, other) for other in REFERENCES]
        rows.append({"best": int(np.argmax(scores)), "own": scores[own],
                     "closest_other": max(r for j, r in enumerate(scores) if j != own)})
    return rows


# ---------------------------------------------------------------- what the users did


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
    def own(self) -> bool:
        return int(np.argmax(self.correlations)) == self.session


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
        own = [s.correlations[s.session] for s in self.sightings]
        other = [max(r for j, r in enumerate(s.correlations) if j != s.session) for s in self.sightings]
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
            "queue order: " + ("kept, each run started after the one before it ended" if not self.order_problems
                               else f"{len(self.order_problems)} runs out of turn"),
            *(f"  {problem}" for problem in self.order_problems),
            f"server RSS: {self.rss_none_kb / 1024:.0f} MiB with no run queued, {self.rss_finished_kb / 1024:.0f} MiB "
            f"with {len(self.records)} ended ({SETTLE_S:g} s after the last): {self.rss_ratio:.2f}x",
            f"  as runs ended (runs: MiB): {rss}",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------- what a browser user waits for

SEEN, DECODED, YOUR_DRAWING = "What the model sees", "Decoded from its mean", "Your last drawing"
DRAW_CANVAS = '[class*="st-key-draw_canvas_"]'  # (its key counts the Clear presses)
MAP = '[class*="st-key-latent_map_"]'  # the map chart (its key names the model and projection)
# What a page shows once it can be used: at least so many of these (in open shadow roots too: the
# canvas component isolates its styles in one) inside that element.
READY = {"Draw": (DRAW_CANVAS, "canvas.upper-canvas", 1), "Latent map": (MAP, ".scatterlayer .trace", 11),
         "Train": ('[data-testid="stForm"]', "button", 1),
         "Generate": ('[data-testid="stMain"]', '[data-testid="stImageContainer"] img', 3),
         "watch the run": ('[data-testid="stMain"]', '[data-testid="stProgress"]', 1)}

# Every pointer release's time, so latencies run from the user's action in the browser's own clock.
RELEASE_CLOCK_JS = ("window.__released = 0; "
                    "addEventListener('pointerup', () => { window.__released = performance.now(); }, true);")
# PAGE_SHOWN_JS and IMAGE_SHOWN_JS: milliseconds since the last pointer release once the answer is
# in the DOM, else 0 (wait_for_function polls them); the text of an exception or error box if the
# page shows one instead.
PAGE_ERROR_JS = """
    const failure = document.querySelector(
        '[data-testid=stMain] :is([data-testid=stException], [data-testid=stAlertContentError])');
    if (failure) return 'the page shows an error: ' + failure.textContent;
"""
PAGE_SHOWN_JS = """([title, element, selector, count]) => {""" + PAGE_ERROR_JS + """
    const find = root => [...root.querySelectorAll(selector),
        ...[...root.querySelectorAll('*')].filter(e => e.shadowRoot).flatMap(e => find(e.shadowRoot))];
    const heading = document.querySelector('[data-testid=stMain] h1');
    const box = document.querySelector(element);
    return heading && heading.textContent.trim() === title && box && find(box).length >= count
        ? performance.now() - window.__released : 0;
}"""
FIND_IMAGE_JS = """(caption => [...document.querySelectorAll('[data-testid=stImageContainer]')]
    .find(b => (b.querySelector('[data-testid=stImageCaption]')?.textContent || '').includes(caption))
    ?.querySelector('img'))"""  # the <img> of the st.image whose caption contains ``caption``
CANVAS_INK_JS = """canvas => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) ink += data[i] > 128;
    return ink / (data.length / 4);
}"""  # the share of a canvas's pixels that are light: white strokes on black
ELEMENT_AT_JS = """([x, y]) => {
    let element = null;
    for (let e = document.elementFromPoint(x, y); e && e !== element; e = e.shadowRoot?.elementFromPoint(x, y) ?? e)
        element = e;
    return `<${element?.tagName.toLowerCase()} class="${element?.className}">`;
}"""  # the element at (x, y), through shadow roots
IMAGE_SRC_JS = f"caption => {FIND_IMAGE_JS}(caption)?.src ?? null"
IMAGE_BYTES_JS = f"""async caption => {{
    const bytes = new Uint8Array(await (await fetch({FIND_IMAGE_JS}(caption).src)).arrayBuffer());
    return btoa(Array.from(bytes, b => String.fromCharCode(b)).join(''));
}}"""  # the file of that <img>, fetched by the page itself (base64)
IMAGE_SHOWN_JS = f"""([caption, before]) => {{{PAGE_ERROR_JS}
    const img = {FIND_IMAGE_JS}(caption);
    const loaded = img && img.src !== before && img.complete && img.naturalWidth > 0;
    return loaded ? performance.now() - window.__released : 0;
}}"""


# ---------------------------------------------------------------- the users


def what_happened(error: BaseException) -> str:
    """The error's first line, and the last step of Playwright's call log if it has one."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    return lines[0][:200] + (f" ({lines[-1][:200]})" if len(lines) > 1 else "")


class User:
    """One user: a Streamlit session of its own and its own stroke pattern, making CYCLE's
    interactions; a subclass says how it acts (a browser page, or a websocket client)."""

    by = ""  # "browser" or "client", as the report tells them apart

    def __init__(self, index: int, timeout_s: float, report: ClassReport):
        self.index, self.report = index, report
        self.timeout_ms = timeout_s * 1000
        self.pattern = list(PATTERNS.values())[index]

    async def act(self, kind: str) -> float:
        raise NotImplementedError

    async def keep_failure(self) -> None:
        """Keep what the user saw when an interaction went unanswered."""

    async def journey(self, think_s: float = 0.0, cycle: tuple[str, ...] = CYCLE) -> None:
        """The user's interactions, in ``cycle``'s order, each after ``think_s`` on average spent
        looking at the last answer; it ends at its first unanswered one."""
        pauses = np.random.default_rng(self.index).uniform(0.5 * think_s, 1.5 * think_s, self.report.interactions_each)
        for n in range(self.report.interactions_each):
            await asyncio.sleep(pauses[n])
            kind, started = cycle[n % len(cycle)], time.monotonic()
            try:
                latency = await self.act(kind)
            except (PlaywrightError, AssertionError, TimeoutError) as e:
                self.report.interactions.append(Interaction(self.index, kind, None, started, self.by,
                                                            what_happened(e)))
                await self.keep_failure()
                return
            self.report.interactions.append(Interaction(self.index, kind, latency, started, self.by))

    def saw(self, where: str, picture: bytes) -> None:
        """Record how a drawing this user was shown matches every user's pattern."""
        shown = grey_levels(picture)
        self.report.sightings.append(Sighting(self.index, where, [likeness(shown, ref) for ref in REFERENCES]))


class BrowserUser(User):
    """A user in a browser context of its own; latencies run from the pointer's release to the
    answer in the DOM."""

    by = "browser"

    def __init__(self, page: Page, index: int, timeout_s: float, report: ClassReport):
        super().__init__(index, timeout_s, report)
        self.page = page

    async def answer(self, js: str, arg) -> float:
        """Seconds from the last pointer release to ``js`` seeing the answer; then waits for the run to end."""
        handle = await self.page.wait_for_function(js, arg=arg, polling=50, timeout=self.timeout_ms)
        answer = await handle.json_value()
        if isinstance(answer, str):
            raise AssertionError(answer)
        latency = answer / 1000
        await self.page.locator(IDLE_APP).wait_for(timeout=self.timeout_ms)
        return latency

    async def open(self, label: str, ready: str | None = None) -> float:
        """Click the page's link in the sidebar (a plain mouse click: Playwright's ``click`` would
        also wait for the app's own navigation, whose time is measured here); answered when what
        ``READY[ready or label]`` names is shown."""
        box = await nav_link(self.page, label).bounding_box()
        await self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        return await self.answer(PAGE_SHOWN_JS, [PAGE_TITLES[label], *READY[ready or label]])

    async def ready_to_draw(self) -> dict:
        """The canvas's box once it takes strokes: it shows its drawing crosshair under the pointer.
        The canvas sets its pen only after loading its (empty) initial drawing, asynchronously, and
        ignores a stroke made before; on a busy machine that takes long enough for a script to lose
        its first stroke. The box is read again each time: the page may still be moving."""
        canvas = self.page.locator(f"{DRAW_CANVAS} canvas.upper-canvas")
        deadline = time.monotonic() + self.timeout_ms / 1000
        for wiggle in itertools.count():
            box = await canvas.bounding_box()
            x, y = box["x"] + self.pattern[0][0] + wiggle % 2, box["y"] + self.pattern[0][1]
            await self.page.mouse.move(x, y)  # the canvas sets its cursor on a pointer move
            if await canvas.evaluate("c => c.style.cursor") == "crosshair" and box == await canvas.bounding_box():
                return box
            if time.monotonic() > deadline:
                under = await self.page.evaluate(ELEMENT_AT_JS, [x, y])
                raise AssertionError(f"the canvas at {box} did not take strokes within {self.timeout_ms / 1000:g} s "
                                     f"(under the pointer at ({x:.0f}, {y:.0f}): {under})")
            await asyncio.sleep(0.1)

    async def draw(self) -> float:
        before = await self.page.evaluate(IMAGE_SRC_JS, SEEN)
        box = await self.ready_to_draw()
        (x0, y0), *rest = self.pattern
        await self.page.mouse.move(box["x"] + x0, box["y"] + y0)
        await self.page.mouse.down()
        for x, y in rest:
            await self.page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        await self.page.mouse.up()
        try:
            latency = await self.answer(IMAGE_SHOWN_JS, [SEEN, before])
        except PlaywrightError as e:  # say whether the app lost the drawing or the stroke missed
            ink = await self.page.locator(f"{DRAW_CANVAS} canvas.lower-canvas").evaluate(CANVAS_INK_JS)
            raise AssertionError(f"{what_happened(e)}; the canvas shows {ink:.1%} ink") from e
        await self.look_at(SEEN, "Draw")
        return latency

    async def click(self, wanted: str, reach: int, caption: str) -> float:
        """Click the point of trace ``wanted`` least crowded by others; wait for ``caption``'s image."""
        chart = self.page.locator(MAP)
        await chart.scroll_into_view_if_needed()
        box, point, deadline = None, None, time.monotonic() + self.timeout_ms / 1000
        while box != await chart.bounding_box():  # the page may still be moving
            if time.monotonic() > deadline:
                raise AssertionError(f"the chart kept moving for {self.timeout_ms / 1000:g} s")
            box = await chart.bounding_box()
            point = await chart.evaluate(ISOLATED_POINT_JS, [wanted, reach])
        if point.get("gap", 0) <= 1:
            raise AssertionError(f"no spot to click on the {wanted!r} point stands apart from the others: {point}")
        before = await self.page.evaluate(IMAGE_SRC_JS, caption)
        await self.page.mouse.click(point["x"], point["y"])
        try:
            return await self.answer(IMAGE_SHOWN_JS, [caption, before])
        except PlaywrightError as e:
            raise AssertionError(f"{what_happened(e)}; clicked {point} in the chart at {box}") from e

    async def click_digit(self) -> float:
        return await self.click("digit", 0, DECODED)

    async def click_drawing(self) -> float:
        latency = await self.click(MAP_DRAWING_TARGET, 0, YOUR_DRAWING)  # the star's centre, as a user clicks it
        await self.look_at(YOUR_DRAWING, "Latent map")
        return latency

    async def look_at(self, caption: str, where: str) -> None:
        """Record how the drawing shown under ``caption`` matches every user's pattern."""
        # Fetched by the page, over the browser's own connections: a separate HTTP client's
        # kept-alive socket can race the server's closing it (ECONNRESET, seen under load).
        self.saw(where, base64.b64decode(await self.page.evaluate(IMAGE_BYTES_JS, caption)))

    async def act(self, kind: str) -> float:
        actions = {"open Draw": lambda: self.open("Draw"), "draw": self.draw,
                   "open Latent map": lambda: self.open("Latent map"), "click a digit": self.click_digit,
                   "click your drawing": self.click_drawing, "open Generate": lambda: self.open("Generate"),
                   "watch the run": lambda: self.open("Train", "watch the run")}
        return await actions[kind]()

    async def keep_failure(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=ARTIFACTS / f"load-unanswered-{self.index}.png")


class ClientUser(User):
    """A user as a websocket client (``harness.protocol``): the same interactions, with the values
    the canvas and the chart would send; latencies run from the request to the script's end, so
    they leave out the browser's own drawing time."""

    by = "client"
    PAGES = {"Draw": "draw", "Latent map": "latent_map", "Generate": "generate", "Train": "train"}

    def __init__(self, app: AppSession, index: int, timeout_s: float, report: ClassReport):
        super().__init__(index, timeout_s, report)
        self.app = app
        self.canvas = self.chart = ""  # the element ids of this user's canvas and map chart
        self.points: dict[int, dict] = {}  # a clickable point of the map, by its kind (MAP_TEST, ...)

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000

    def check(self, run: PageRun, title: str, what: str, shown: bool) -> float:
        """The run's latency, once it showed ``title`` and what was asked for (``shown``)."""
        if run.errors:
            raise AssertionError(f"the page shows an error: {run.errors[0][:200]}")
        if run.title != PAGE_TITLES[title] or not shown:
            raise AssertionError(f"the page {run.title!r} does not show {what}")
        return run.seconds

    async def open(self, label: str) -> PageRun:
        return await self.app.open(self.PAGES[label], self.timeout_s)

    async def open_draw(self) -> float:
        run = await self.open("Draw")
        canvases = run.of("bidi_component")
        self.canvas = canvases[0].id if canvases else ""
        return self.check(run, "Draw", "the canvas", bool(canvases))

    async def draw(self) -> float:
        value = json.dumps(canvas_value(canvas_drawing(self.pattern)))
        run = await self.app.set_widget(self.canvas, self.timeout_s, json_value=value)
        latency = self.check(run, "Draw", f"{SEEN!r}", run.image(SEEN) is not None)
        self.saw("Draw", await self.app.media(run.image(SEEN).url))
        return latency

    async def open_map(self) -> float:
        run = await self.open("Latent map")
        charts = run.of("plotly_chart")
        if charts:
            self.chart = charts[0].id
            for curve, trace in enumerate(json.loads(charts[0].spec)["data"]):
                rows = plotly_rows(trace.get("customdata")) or []
                if rows and int(rows[0][0]) not in self.points:
                    self.points[int(rows[0][0])] = {"curve_number": curve, "point_number": 0, "point_index": 0,
                                                    "x": plotly_rows(trace["x"])[0], "y": plotly_rows(trace["y"])[0],
                                                    "customdata": rows[0]}
        return self.check(run, "Latent map", "the map", bool(charts))

    async def click(self, kind: int, caption: str) -> PageRun:
        if kind not in self.points:
            raise AssertionError(f"the map has no point of kind {kind} to click")
        value = json.dumps(chart_click(self.points[kind]))
        run = await self.app.set_widget(self.chart, self.timeout_s, string_value=value)
        self.check(run, "Latent map", f"{caption!r}", run.image(caption) is not None)
        return run

    async def click_digit(self) -> float:
        return (await self.click(MAP_TEST, DECODED)).seconds

    async def click_drawing(self) -> float:
        run = await self.click(MAP_DRAWING, YOUR_DRAWING)
        self.saw("Latent map", await self.app.media(run.image(YOUR_DRAWING).url))
        return run.seconds

    async def open_generate(self) -> float:
        run = await self.open("Generate")
        return self.check(run, "Generate", "three images", sum(len(i.imgs) for i in run.of("imgs")) >= 3)

    async def watch(self) -> float:
        run = await self.open("Train")  # then its live fragments refresh until the client closes
        return self.check(run, "Train", "the run's progress", bool(run.of("progress")))

    async def queue_run(self, name: str, epochs: int, train_size: int) -> float:
        """Open Train, fill its form with a run of ``epochs`` on ``train_size`` images named ``name``
        and press "Queue my run"; the seconds from the press to the page showing that run."""
        form = await self.open("Train")
        self.check(form, "Train", "the form", form.submit_button("train_form", "Queue my run") is not None)
        run = await self.app.submit(form, "train_form", "Queue my run", {
            "train_name": name, "train_epochs": epochs, "train_train_size": train_size}, self.timeout_s)
        return self.check(run, "Train", f"the run {name!r}", f"Run “{name}”" in (h.body for h in run.of("heading")))

    async def act(self, kind: str) -> float:
        actions = {"open Draw": self.open_draw, "draw": self.draw, "open Latent map": self.open_map,
                   "click a digit": self.click_digit,
                   "click your drawing": self.click_drawing, "open Generate": self.open_generate,
                   "watch the run": self.watch}
        return await actions[kind]()


# ---------------------------------------------------------------- a class on the app


async def new_browser_user(browser, url: str, index: int, report: LoadReport, timeout_s: float,
                           warm: bool = True) -> BrowserUser:
    """A new browser context on the app; its actions then wait at most ``timeout_s``.

    ``warm``: it has visited Draw and the Latent map once, unmeasured, so its browser holds the
    code of their widgets and the chart (fetched on a page's first visit, per browser context),
    as a returning user's would: ten browsers on the server's own cores, all fetching and
    compiling at once, would measure the machine's browsers rather than the app."""
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(RELEASE_CLOCK_JS)
    page = await context.new_page()
    page.set_default_timeout(SETUP_S * 1000)
    await page.goto(url)
    await expect(nav_link(page, "Draw")).to_be_visible(timeout=SETUP_S * 1000)
    await page.locator(IDLE_APP).wait_for()
    user = BrowserUser(page, index, SETUP_S, report)
    if warm:
        await user.open("Draw")
        await user.open("Latent map")
    user.timeout_ms = timeout_s * 1000
    page.set_default_timeout(user.timeout_ms)
    return user


async def new_client_user(apps: contextlib.AsyncExitStack, url: str, index: int, report: ClassReport,
                          timeout_s: float, also: tuple[str, ...] = ()) -> ClientUser:
    """A new websocket session on the app, closed with ``apps``; it visits Draw and the Latent map
    once, unmeasured, as the browsers do, then the pages ``also`` names."""
    app = await apps.enter_async_context(AppSession(url))
    await app.open("", SETUP_S)
    user = ClientUser(app, index, SETUP_S, report)
    await user.open_draw()
    await user.open_map()
    for label in also:
        user.check(await user.open(label), label, "itself", True)
    user.timeout_ms = timeout_s * 1000
    return user


async def start_training(visitor: BrowserUser, name: str, config: TrainConfig) -> None:
    """Fill the Train page's form with ``config``'s settings, queue it, wait for the run to show."""
    await visitor.open("Train")
    fields = {"name": name, "epochs": config.epochs, "batch_size": config.batch_size,
              "train_size": config.train_size, "val_size": config.val_size, "seed": config.seed}
    for key, value in fields.items():
        box = visitor.page.locator(f".st-key-train_{key} input")
        await box.fill(str(value))
        await box.press("Tab")
    await visitor.page.get_by_role("button", name="Queue my run").click()
    await expect(visitor.page.get_by_role("heading", name=f"Run “{name}”")).to_be_visible(timeout=SETUP_S * 1000)


async def watch_and_stop(visitor: BrowserUser, load_done: asyncio.Event, report: LoadReport) -> None:
    """Watch the run while the load lasts (noting if it ends by itself), then press Stop once the
    first epoch is saved, and wait for the run's result."""
    page = visitor.page
    ended = page.get_by_test_id("stAlert").filter(has_text=RUN_ENDED)
    while not load_done.is_set():
        if report.training_ended is None and await ended.is_visible():
            report.training_ended = time.monotonic()
        await asyncio.sleep(0.5)
    if not await ended.is_visible():
        first_epoch = page.get_by_text("their reconstructions after epoch").or_(ended)
        await expect(first_epoch.first).to_be_visible(timeout=SETUP_S * 1000)
        stop = page.get_by_role("button", name="Stop", exact=True)
        deadline = time.monotonic() + SETUP_S
        while not await ended.is_visible() and time.monotonic() < deadline:
            try:  # the button is redrawn every second while the run trains
                await stop.click(timeout=2000)
                break
            except PlaywrightError:
                continue
    await expect(ended).to_be_visible(timeout=SETUP_S * 1000)
    report.job_message = (await ended.get_by_test_id("stMarkdownContainer").inner_text()).strip()


def lap(report: ClassReport, phase: str, since: float) -> float:
    """Record the seconds since ``since`` as ``phase``'s; returns now."""
    now = time.monotonic()
    report.phases[phase] = now - since
    return now


async def drive(url: str, report: LoadReport, name: str, started: float) -> None:
    """The first visitor, the N sessions (the first ``report.browsers`` in one Chromium, the rest
    websocket clients) and the training run. If this fails, each page's last state is saved under
    test-artifacts/browser/."""
    async with async_playwright() as playwright, contextlib.AsyncExitStack() as clients:
        browser = await playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)
        try:
            mark = lap(report, "server start", started)
            visitor = await new_browser_user(browser, url, MAX_SESSIONS, report, SETUP_S, warm=False)
            for kind in (*CYCLE[:3], "open Generate"):  # a fresh server's first visits fill its caches
                report.cold_s[kind] = await visitor.act(kind)
            mark = lap(report, "first visitor", mark)
            await start_training(visitor, name, report.config)  # its first epoch overlaps the set-up
            load_done = asyncio.Event()
            watcher = asyncio.create_task(watch_and_stop(visitor, load_done, report))
            users = await asyncio.gather(
                *(new_browser_user(browser, url, i, report, report.timeout_s) for i in range(report.browsers)),
                *(new_client_user(clients, url, i, report, report.timeout_s)
                  for i in range(report.browsers, report.sessions)))
            mark = lap(report, "start of the run, sessions open", mark)
            await asyncio.gather(*(user.journey(report.think_s) for user in users))
            load_done.set()
            await clients.aclose()
            mark = lap(report, "load", mark)
            await watcher
            lap(report, "stopping the run", mark)
        except BaseException:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for i, page in enumerate(p for context in browser.contexts for p in context.pages):
                await page.screenshot(path=ARTIFACTS / f"FAILED-load-{i}.png")
            raise
        finally:
            await browser.close()


# ---------------------------------------------------------------- the same run alone

TIMING_KEYS = {"seconds", "img_per_s", "train_seconds"}  # the only entries two identical runs may differ in


def train_alone(config: TrainConfig, epochs: int, path: Path) -> None:
    """``config``'s run in this process, stopped where the job was: after ``epochs`` epochs."""
    stop = threading.Event()

    def stop_after(event: Event) -> None:
        if isinstance(event, EpochEvent) and event.epoch >= epochs:
            stop.set()

    train(config, path, stop=stop, callback=stop_after)


def differences(a, b, where: str = "") -> list[str]:
    """Where two checkpoint payloads differ (tensors exactly), timings aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a if k not in TIMING_KEYS for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b):
            return []
        gap = (a.double() - b.double()).abs().max().item() if a.shape == b.shape else "shape"
        return [f"{where}: tensors differ (max |a - b| {gap})"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def compare_with_alone(job: Path, config: TrainConfig, folder: Path) -> tuple[int, list[str]]:
    """(epochs the job completed, differences between its files and those of the same run alone)."""
    epochs = len(read_checkpoint(job)["history"]["epochs"])
    alone = folder / "alone.pt"
    train_alone(config, epochs, alone)
    return epochs, (differences(read_checkpoint(job), read_checkpoint(alone), "checkpoint")
                    + differences(read_resume_state(job), read_resume_state(alone), "resume state"))


@contextlib.contextmanager
def own_checkpoints(prefix: str) -> Iterator[Path]:
    """A checkpoint folder for a served app, in a temp dir (removed afterwards), holding the bundled model."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        checkpoints = Path(tmp) / "checkpoints"
        checkpoints.mkdir()
        shutil.copy2(BUNDLED, checkpoints / "default.pt")
        yield checkpoints


def in_own_thread(coroutine: Coroutine) -> None:
    """Run ``coroutine`` to its end in a thread of its own: the caller's may hold the loop of
    Playwright's sync API (pytest's browser tests), and asyncio.run refuses to run inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, coroutine).result()


def run_load(sessions: int = 10, interactions: int = 10, timeout: float = 30.0, port: int | None = None,
             train_size: int = 4000, seed: int = 7, clients: int = 0, think: float = 0.0) -> LoadReport:
    """Serve the app (its own checkpoint folder, in a temp dir), put a class of ``sessions`` users
    on it (the last ``clients`` of them websocket clients), each making ``interactions`` of CYCLE's
    about ``think`` s apart, while it trains; then compare that run with the same run alone."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be in [1, {MAX_SESSIONS}], got {sessions}")
    if not 0 <= clients <= sessions:
        raise ValueError(f"clients must be in [0, {sessions}], got {clients}")
    config = TrainConfig(epochs=JOB_EPOCHS, batch_size=64, train_size=train_size, val_size=1000, seed=seed)
    report = LoadReport(sessions, interactions, timeout, think, config=config, clients=clients,
                        threads=torch.get_num_threads())
    name, started = f"load-{uuid.uuid4().hex[:8]}", time.monotonic()
    with own_checkpoints("vae-load-") as checkpoints:
        with streamlit_server(checkpoints, ARTIFACTS / "load-server.log", port) as (url, _):
            in_own_thread(drive(url, report, name, started))
        job = checkpoints / f"{name}.pt"  # the server is gone: the run alone has the machine
        if job.is_file() and resume_path(job).is_file():
            mark = time.monotonic()
            report.epochs_done, report.differences = compare_with_alone(job, config, checkpoints.parent)
            lap(report, "the run alone", mark)
    return report


# ---------------------------------------------------------------- a class queueing its runs


def rss_kb(pid: int) -> int:
    """A process's resident memory now (VmRSS), in kB."""
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)[1])


def queue_records(folder: Path) -> list[dict]:
    """The queue's records in the checkpoint folder ``folder``, by id (each file is replaced whole,
    so a read sees one version of it)."""
    return [json.loads(path.read_text()) for path in sorted((folder / RECORDS).glob("*.json"))]


async def follow_runs(folder: Path, server: int, report: QueueReport) -> None:
    """Read the queue's records every second until every queued run has ended, noting the server's
    memory whenever more have, and the moment the last one did."""
    while True:
        records = queue_records(folder)
        ended = sum(r["status"] not in ACTIVE for r in records)
        if ended and ended not in report.rss_ended_kb:
            report.rss_ended_kb[ended] = rss_kb(server)
        if len(report.queued) + len(report.refused) == report.sessions and ended == len(records) >= len(report.queued):
            report.training_ended = time.monotonic()
            return
        await asyncio.sleep(1)


async def queue_then_use(user: ClientUser, report: QueueReport) -> None:
    """The user queues its run (named after it), then goes on with the other pages."""
    name = f"learner-{user.index:02d}"
    try:
        report.queued[name] = await user.queue_run(name, report.epochs, report.train_size)
    except (AssertionError, TimeoutError) as e:
        report.refused[name] = what_happened(e)
    await user.journey(report.think_s, QUEUE_CYCLE)


async def queue_class(url: str, server: int, folder: Path, report: QueueReport, started: float) -> None:
    """The class connects and visits its pages; then each user queues its run and uses the other
    pages while the runs train one at a time; then the runs are awaited and checked. The server's
    memory (``server``: its pid) is read before any run is queued, as runs end, and once all have."""
    async with contextlib.AsyncExitStack() as apps:
        mark = lap(report, "server start", started)
        pages = ("Generate", "Train")
        first = await new_client_user(apps, url, 0, report, report.timeout_s, pages)  # fills a fresh server's caches
        users = [first, *await asyncio.gather(*(new_client_user(apps, url, i, report, report.timeout_s, pages)
                                               for i in range(1, report.sessions)))]
        await asyncio.sleep(SETTLE_S)
        report.rss_none_kb = rss_kb(server)
        mark = lap(report, "the class connected", mark)
        follower = asyncio.create_task(follow_runs(folder, server, report))
        await asyncio.gather(*(queue_then_use(user, report) for user in users))
        mark = lap(report, "queueing and the interactions", mark)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower, RUN_WAIT_S * report.sessions)
        lap(report, "the runs left", mark)
        await asyncio.sleep(SETTLE_S)
        report.rss_finished_kb = rss_kb(server)
    report.records = queue_records(folder)
    report.saved = {r["name"] for r in report.records if (folder / f"{r['name']}.pt").is_file()}


def run_queue_class(sessions: int = CLASS, interactions: int = 2 * len(QUEUE_CYCLE), timeout: float = 30.0,
                    port: int | None = None, train_size: int = 2000, epochs: int = 1,
                    think: float = 5.0) -> QueueReport:
    """Serve the app (its own checkpoint folder, in a temp dir) to a class of ``sessions`` websocket
    clients, each queueing a run of ``epochs`` on ``train_size`` images, then making ``interactions``
    of QUEUE_CYCLE's about ``think`` s apart while the runs train; then wait for the runs and check
    them."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be in [1, {MAX_SESSIONS}], got {sessions}")
    report = QueueReport(sessions, interactions, timeout, think, epochs=epochs, train_size=train_size,
                         threads=torch.get_num_threads())
    started = time.monotonic()
    with own_checkpoints("vae-queue-") as checkpoints, \
            streamlit_server(checkpoints, ARTIFACTS / "queue-server.log", port) as (url, server):
        in_own_thread(queue_class(url, server, checkpoints, report, started))
    return report
