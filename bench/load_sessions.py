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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright, expect

from harness import ROOT
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
from vae.checkpoint import read_checkpoint, read_resume_state, resume_path
from vae.plots import MAP_DRAWING, MAP_DRAWING_TARGET, MAP_TEST
from vae.preprocess import to_mnist
from vae.train import TrainConfig, train

# One stroke per user, in canvas pixels (the Draw canvas is 280 x 280): twelve shapes whose 28x28
# MNIST views correlate at most 0.46 with one another, even shifted by a pixel (see ``likeness``).
PATTERNS = {
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


def _more_patterns(wanted: int, seed: int = 0) -> None:
    """Add random strokes (3-5 corners on a 5x5 lattice of the canvas) to PATTERNS until it holds
    ``wanted``, each one kept only if its view correlates below 0.55 with every other's, even two
    pixels off (``likeness`` of a view shifted by one), so that a session's drawing stays
    recognisably its own."""
    rng = np.random.default_rng(seed)
    lattice = [(60 + 40 * i, 50 + 45 * j) for i in range(5) for j in range(5)]
    views = [reference_view(points) for points in PATTERNS.values()]
    while len(PATTERNS) < wanted:
        corners = [lattice[k] for k in rng.choice(len(lattice), size=rng.integers(3, 6), replace=False)]
        view = reference_view(corners)
        shifted = np.roll(view, (1, -1), axis=(0, 1))
        if all(max(likeness(view, other), likeness(other, view), likeness(shifted, other),
                   likeness(np.roll(other, (1, -1), axis=(0, 1)), view)) < 0.55 for other in views):
            PATTERNS[f"stroke-{len(PATTERNS)}"] = corners
            views.append(view)
STROKE_PX = 20  # the Draw page's default stroke width
CYCLE = ("open Draw", "draw", "open Latent map", "click a digit", "click your drawing", "open Generate",
         "watch the run")
TARGET_MEDIAN_S = 2.0
TARGET_P95_S = 5.0
CLASS = 30  # sessions the bench is sized for, besides the first visitor
VIEWPORT = {"width": 1200, "height": 1000}  # the whole map chart fits, so every point is clickable
SETUP_S = 120  # a page's first load, the cold caches, the first epoch: not interactions
JOB_EPOCHS = 100  # more than the load lasts: the bench stops the run once every session is done
TIMING_KEYS = {"seconds", "img_per_s", "train_seconds"}  # the only entries two identical runs may differ in

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


REFERENCES: list[np.ndarray] = []  # filled below, once ``likeness`` is defined


def likeness(shown: np.ndarray, reference: np.ndarray) -> float:
    """Pearson r of two 28x28 views, the best over shifts of up to a pixel: the browser's stroke
    may land a pixel off ours, which alone takes a thin line's r from 1 to about 0.5."""
    return max(correlation(shown, np.roll(reference, (dy, dx), axis=(0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


_more_patterns(CLASS + 1)
MAX_SESSIONS = len(PATTERNS) - 1  # the last pattern is the first visitor's
REFERENCES[:] = [reference_view(points) for points in PATTERNS.values()]


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
class LoadReport:
    sessions: int
    interactions_each: int
    timeout_s: float
    config: TrainConfig
    clients: int = 0  # of the sessions, how many are websocket clients (the last ones)
    think_s: float = 0.0  # a user's mean pause between an answer and its next action
    cold_s: dict[str, float] = field(default_factory=dict)  # the first visitor's, caches cold
    interactions: list[Interaction] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each part of the bench took
    job_ended: float | None = None  # when the first visitor saw the run end by itself, if it did
    job_message: str = ""
    epochs_done: int = 0
    differences: list[str] | None = None  # job vs alone run; None: not compared
    threads: int = 0

    @property
    def browsers(self) -> int:
        return self.sessions - self.clients

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
        return sum(self.job_ended is None or i.started < self.job_ended for i in self.interactions)

    @property
    def leaks(self) -> list[Sighting]:
        return [s for s in self.sightings if not s.own]

    def failures(self) -> list[str]:
        """What falls short of the issue's bar, in words; empty when every check passes."""
        failed = []
        if len(self.latencies) < self.planned:
            failed.append(f"{self.planned - len(self.latencies)} of {self.planned} interactions not answered "
                          f"within {self.timeout_s:g} s")
        if self.latencies and statistics.median(self.latencies) > TARGET_MEDIAN_S:
            median = statistics.median(self.latencies)
            failed.append(f"median latency {median:.2f} s, target at most {TARGET_MEDIAN_S:g} s")
        if self.latencies and np.percentile(self.latencies, 95) > TARGET_P95_S:
            p95 = np.percentile(self.latencies, 95)
            failed.append(f"95th percentile {p95:.2f} s, target at most {TARGET_P95_S:g} s")
        if self.leaks:
            failed.append(f"{len(self.leaks)} of {len(self.sightings)} drawings shown were not the session's own")
        if not self.sightings:
            failed.append("no session got as far as seeing its drawing")
        if self.differences is None or self.differences:
            failed.append("the job's checkpoint differs from the run alone" if self.differences
                          else "the job's checkpoint was not compared")
        return failed

    def summary(self) -> str:
        c = self.config
        lines = [
            f"Load: {self.sessions} sessions ({self.browsers} in one Chromium, {self.clients} websocket clients) "
            f"x {self.interactions_each} interactions, {self.think_s:g} s to look at each answer on average, "
            f"while the server trains ({c.arch}, {c.train_size:,} images, batch {c.batch_size}, seed {c.seed}); "
            f"torch threads {self.threads}",
            "cold start, first visitor alone: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.cold_s.items()),
            "bench phases: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.phases.items()),
            "",
            f"{'interaction':<20}{'answered':>10}{'median s':>10}{'p90 s':>8}{'p95 s':>8}{'max s':>8}",
        ]
        rows = {kind: [i for i in self.interactions if i.kind == kind] for kind in CYCLE}
        if self.browsers and self.clients:
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
        lines.append(f"interactions while the job trained: {self.during_training}/{len(self.interactions)}")
        own = [s.correlations[s.session] for s in self.sightings]
        other = [max(r for j, r in enumerate(s.correlations) if j != s.session) for s in self.sightings]
        by_place = ", ".join(f"{where} {sum(s.own for s in self.sightings if s.where == where)}/"
                             f"{sum(s.where == where for s in self.sightings)}" for where in ("Draw", "Latent map"))
        lines.append(f"drawings shown that are the session's own: {by_place}"
                     + (f" (r with own pattern >= {min(own):.2f}; with any other <= {max(other):.2f})" if own else ""))
        lines.append(f"job: {self.job_message}")
        if self.differences is None:
            lines.append("job vs alone run: not compared")
        elif not self.differences:
            lines.append(f"job vs alone run ({self.epochs_done} epochs): identical (weights, optimizer and RNG "
                         "states, metrics, per-step losses; timings aside)")
        else:
            lines.append(f"job vs alone run ({self.epochs_done} epochs): {len(self.differences)} differences, e.g.")
            lines.extend(f"  {d}" for d in self.differences[:10])
        failed = self.failures()
        lines.append("PASS: every check" if not failed else "FAIL: " + "; ".join(failed))
        return "\n".join(lines)


class User:
    """One user: a Streamlit session of its own and its own stroke pattern, making CYCLE's
    interactions; a subclass says how it acts (a browser page, or a websocket client)."""

    by = ""  # "browser" or "client", as the report tells them apart

    def __init__(self, index: int, timeout_s: float, report: LoadReport):
        self.index, self.report = index, report
        self.timeout_ms = timeout_s * 1000
        self.pattern = list(PATTERNS.values())[index]

    async def act(self, kind: str) -> float:
        raise NotImplementedError

    async def keep_failure(self) -> None:
        """Keep what the user saw when an interaction went unanswered."""

    async def journey(self, think_s: float = 0.0) -> None:
        """The user's interactions, in CYCLE's order, each after ``think_s`` on average spent looking
        at the last answer; it ends at its first unanswered one."""
        pauses = np.random.default_rng(self.index).uniform(0.5 * think_s, 1.5 * think_s, self.report.interactions_each)
        for n in range(self.report.interactions_each):
            await asyncio.sleep(pauses[n])
            kind, started = CYCLE[n % len(CYCLE)], time.monotonic()
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

    def __init__(self, page: Page, index: int, timeout_s: float, report: LoadReport):
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

    def __init__(self, app: AppSession, index: int, timeout_s: float, report: LoadReport):
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

    async def act(self, kind: str) -> float:
        actions = {"open Draw": self.open_draw, "draw": self.draw, "open Latent map": self.open_map,
                   "click a digit": self.click_digit,
                   "click your drawing": self.click_drawing, "open Generate": self.open_generate,
                   "watch the run": self.watch}
        return await actions[kind]()


def what_happened(error: BaseException) -> str:
    """The error's first line, and the last step of Playwright's call log if it has one."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    return lines[0][:200] + (f" ({lines[-1][:200]})" if len(lines) > 1 else "")


async def new_session(browser, url: str, index: int, report: LoadReport, timeout_s: float,
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
    session = BrowserUser(page, index, SETUP_S, report)
    if warm:
        await session.open("Draw")
        await session.open("Latent map")
    session.timeout_ms = timeout_s * 1000
    page.set_default_timeout(session.timeout_ms)
    return session


async def new_client(apps: contextlib.AsyncExitStack, url: str, index: int, report: LoadReport,
                     timeout_s: float) -> ClientUser:
    """A new websocket session on the app, closed with ``apps``; it visits Draw and the Latent map
    once, unmeasured, as the browsers do."""
    app = await apps.enter_async_context(AppSession(url))
    await app.open("", SETUP_S)
    user = ClientUser(app, index, SETUP_S, report)
    await user.open_draw()
    await user.open_map()
    user.timeout_ms = timeout_s * 1000
    return user


async def start_training(visitor: BrowserUser, name: str, config: TrainConfig) -> None:
    """Fill the Train page's form with ``config``'s settings, press Start, wait for the run to show."""
    await visitor.open("Train")
    fields = {"name": name, "epochs": config.epochs, "batch_size": config.batch_size,
              "train_size": config.train_size, "val_size": config.val_size, "seed": config.seed}
    for key, value in fields.items():
        box = visitor.page.locator(f".st-key-train_{key} input")
        await box.fill(str(value))
        await box.press("Tab")
    await visitor.page.get_by_role("button", name="Start training").click()
    await expect(visitor.page.get_by_role("heading", name=f"Run “{name}”")).to_be_visible(timeout=SETUP_S * 1000)


async def watch_and_stop(visitor: BrowserUser, load_done: asyncio.Event, report: LoadReport) -> None:
    """Watch the run while the load lasts (noting if it ends by itself), then press Stop once the
    first epoch is saved, and wait for the run's result."""
    page = visitor.page
    ended = page.get_by_test_id("stAlert").filter(has_text=RUN_ENDED)
    while not load_done.is_set():
        if report.job_ended is None and await ended.is_visible():
            report.job_ended = time.monotonic()
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


def lap(report: LoadReport, phase: str, since: float) -> float:
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
            visitor = await new_session(browser, url, MAX_SESSIONS, report, SETUP_S, warm=False)
            for kind in (*CYCLE[:3], "open Generate"):  # a fresh server's first visits fill its caches
                report.cold_s[kind] = await visitor.act(kind)
            mark = lap(report, "first visitor", mark)
            await start_training(visitor, name, report.config)  # its first epoch overlaps the set-up
            load_done = asyncio.Event()
            watcher = asyncio.create_task(watch_and_stop(visitor, load_done, report))
            users = await asyncio.gather(
                *(new_session(browser, url, i, report, report.timeout_s) for i in range(report.browsers)),
                *(new_client(clients, url, i, report, report.timeout_s)
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


def train_alone(config: TrainConfig, epochs: int, path: Path) -> None:
    """``config``'s run in this process, stopped where the job was: after ``epochs`` epochs."""
    stop = threading.Event()

    def stop_after(event: dict) -> None:
        if event["kind"] == "epoch" and event["epoch"] >= epochs:
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


def run_load(sessions: int = 10, interactions: int = 10, timeout: float = 30.0, port: int | None = None,
             train_size: int = 4000, seed: int = 7, clients: int = 0, think: float = 0.0) -> LoadReport:
    """Serve the app, put it under load while it trains, and compare the run with one alone."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions must be in [1, {MAX_SESSIONS}], got {sessions}")
    if not 0 <= clients <= sessions:
        raise ValueError(f"clients must be in [0, {sessions}], got {clients}")
    config = TrainConfig(epochs=JOB_EPOCHS, batch_size=64, train_size=train_size, val_size=1000, seed=seed)
    report = LoadReport(sessions, interactions, timeout, config, clients, think, threads=torch.get_num_threads())
    name, started = f"load-{uuid.uuid4().hex[:8]}", time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vae-load-") as tmp:
        checkpoints = Path(tmp) / "checkpoints"
        checkpoints.mkdir()
        shutil.copy2(ROOT / "checkpoints" / "default.pt", checkpoints / "default.pt")
        with streamlit_server(checkpoints, ARTIFACTS / "load-server.log", port) as url, \
                ThreadPoolExecutor(max_workers=1) as thread:
            # A thread of its own: the caller's may hold the loop of Playwright's sync API (pytest's
            # browser tests), and asyncio.run refuses to run inside a running loop.
            thread.submit(asyncio.run, drive(url, report, name, started)).result()
        job = checkpoints / f"{name}.pt"  # the server is gone: the run alone has the machine
        if job.is_file() and resume_path(job).is_file():
            mark = time.monotonic()
            report.epochs_done, report.differences = compare_with_alone(job, config, Path(tmp))
            lap(report, "the run alone", mark)
    return report


def pattern_check() -> list[dict]:
    """For each user's pattern, its view a pixel off: likeness to its own and to the closest other."""
    rows = []
    for own, reference in enumerate(REFERENCES):
        shown = np.roll(reference, (1, -1), axis=(0, 1))
        scores = [likeness(shown, other) for other in REFERENCES]
        rows.append({"best": int(np.argmax(scores)), "own": scores[own],
                     "closest_other": max(r for j, r in enumerate(scores) if j != own)})
    return rows


def json_report(report: LoadReport) -> dict:
    """What tests/test_load.py checks, as JSON."""
    return {"planned": report.planned, "answered": len(report.latencies),
            "unanswered": [f"session {i.session} {i.kind}: {i.error}" for i in report.unanswered],
            "during_training": report.during_training, "interactions": len(report.interactions),
            "sightings": sorted({(s.session, s.where) for s in report.sightings}),
            "leaks": len(report.leaks), "epochs_done": report.epochs_done, "differences": report.differences,
            "failures": report.failures(), "summary": report.summary()}


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
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps(json_report(report)))
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())
