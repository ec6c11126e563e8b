"""Simulated users of VAE Studio: each a Streamlit session of its own, in headless Chromium
(Playwright's async API, a browser context each) or as a websocket client (``harness.protocol``)
that sends what the browser would without rendering anything, as a class's browsers run on the
students' own laptops. Each draws its own stroke (``harness.strokes``), clicks the latent map,
opens Generate and watches a training run, and notes what it did and saw in the class's report
(``harness.reports``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time

import numpy as np
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect

from classroom.pages import PAGES
from harness.apptest import CANVAS, canvas_value, plotly_rows
from harness.apptest import click as chart_click
from harness.browser import (
    ARTIFACTS,
    HEADINGS,
    IDLE_APP,
    ISOLATED_POINT_JS,
    PLOTLY_DOUBLE_CLICK_S,
    grey_levels,
    nav_link,
)
from harness.probes import (
    CANVAS_INK_JS,
    CAPTIONS_JS,
    DECODED,
    DRAW_CANVAS,
    ELEMENT_AT_JS,
    IMAGE_BYTES_JS,
    IMAGE_SHOWN_JS,
    IMAGE_SRC_JS,
    MAP,
    PAGE_SHOWN_JS,
    READY,
    RELEASE_CLOCK_JS,
    SEEN,
    YOUR_DRAWING,
)
from harness.protocol import AppSession, PageRun
from harness.reports import CYCLE, ClassReport, Interaction, LoadReport, Sighting
from harness.strokes import PATTERNS, REFERENCES, canvas_drawing, likeness
from studio.figures import MAP_DRAWING, MAP_DRAWING_TARGET, MAP_TEST

VIEWPORT = {"width": 1200, "height": 1000}  # the whole map chart fits, so every point is clickable
SETUP_S = 120  # a page's first load, the cold caches, the first epoch: not interactions


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
        self.pattern = list(PATTERNS.values())[index % len(PATTERNS)]  # shared past CLASS: the queue bench

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
        self.last_chart_click = 0.0  # when this user last clicked the map (time.monotonic)

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
        return await self.answer(PAGE_SHOWN_JS, [HEADINGS[label], *READY[ready or label]])

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
        await asyncio.sleep(self.last_chart_click + PLOTLY_DOUBLE_CLICK_S - time.monotonic())  # not a double click
        await self.page.mouse.click(point["x"], point["y"])
        self.last_chart_click = time.monotonic()
        try:
            return await self.answer(IMAGE_SHOWN_JS, [caption, before])
        except PlaywrightError as e:
            shown = await self.page.evaluate(CAPTIONS_JS)
            raise AssertionError(f"{what_happened(e)}; clicked {point} in the chart at {box}; "
                                 f"the page's image captions then: {shown}") from e

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
    PAGE_IDS = {page.title: page.id for page in PAGES.values()}  # a page's navigation label -> its URL path

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
        if run.title != HEADINGS[title] or not shown:
            raise AssertionError(f"the page {run.title!r} does not show {what}")
        return run.seconds

    async def open(self, label: str) -> PageRun:
        return await self.app.open(self.PAGE_IDS[label], self.timeout_s)

    async def open_draw(self) -> float:
        run = await self.open("Draw")
        canvases = [c for c in run.of("bidi_component") if c.component_name == CANVAS]
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


# ---------------------------------------------------------------- a user joins the app


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
