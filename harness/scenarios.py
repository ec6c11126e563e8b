"""A class of simulated users (``harness.users``) on a served app. ``run_load`` serves the app,
puts a class on it while it trains, and compares that run with the same run alone;
``run_queue_class`` serves it to a class of websocket clients that each queue a run of their own,
then use the other pages while the runs train one at a time, and checks the runs and the server's
memory. ``tests/test_load.py`` runs both with a few users; ``bench/load_sessions.py`` and
``bench/queue_class.py`` time them with up to thirty."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import torch
import websockets
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright, expect

from classroom.queue import ACTIVE
from classroom.store import read_runs
from harness import BUNDLED
from harness.browser import ARTIFACTS, CHROMIUM_ARGS, RUN_ENDED, free_port, require_chromium, streamlit_server
from harness.protocol import AppSession, PageRun
from harness.reports import (
    CYCLE,
    QUEUE_CYCLE,
    SETTLE_S,
    CapacityReport,
    ClassReport,
    FaultReport,
    LoadReport,
    QueueReport,
)
from harness.strokes import CLASS, MAX_SESSIONS, QUEUE_CLASS
from harness.users import SETUP_S, BrowserUser, ClientUser, new_browser_user, new_client_user, what_happened
from studio.hall import REPLICA_COOKIE, Hall, hall
from studio.identity import COOKIE_KEEPER
from vae.checkpoint import read_checkpoint, read_resume_state, resume_path, stored_history
from vae.config import TrainConfig
from vae.events import EpochEvent, Event
from vae.train import train

T = TypeVar("T")
JOB_EPOCHS = 100  # more than the load lasts: the first visitor stops the run once every user is done
RUN_WAIT_S = 60  # per queued run, at most, for the queue to run them all after the interactions


# ---------------------------------------------------------------- a class on the app while it trains


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
    epochs = len(stored_history(read_checkpoint(job), job.name).epochs)
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


def in_own_thread(coroutine: Coroutine[object, object, T]) -> T:
    """Run ``coroutine`` to its end in a thread of its own, and return what it returns: the caller's
    may hold the loop of Playwright's sync API (pytest's browser tests), and asyncio.run refuses to
    run inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


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


async def follow_runs(folder: Path, server: int | None, report: QueueReport) -> None:
    """Read the queue's records every second until every queued run has ended, noting the server's
    memory (``server``: its pid; None: a hall's, not read) whenever more have, and the moment the
    last one did."""
    while True:
        records = read_runs(folder)
        ended = sum(r["status"] not in ACTIVE for r in records)
        if server and ended and ended not in report.rss_ended_kb:
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


async def queue_class(url: str, server: int | None, folder: Path, report: QueueReport, started: float) -> None:
    """The class connects and visits its pages; then each user queues its run and uses the other
    pages while the runs train; then the runs are awaited and checked. The server's memory
    (``server``: its pid; None for a hall, whose replicas share the work) is read before any run is
    queued, as runs end, and once all have."""
    async with contextlib.AsyncExitStack() as apps:
        mark = lap(report, "server start", started)
        pages = ("Generate", "Train")
        first = await new_client_user(apps, url, 0, report, report.timeout_s, pages)  # fills a fresh server's caches
        users = [first, *await asyncio.gather(*(new_client_user(apps, url, i, report, report.timeout_s, pages)
                                               for i in range(1, report.sessions)))]
        report.pinned = collections.Counter(user.app.cookies.get(REPLICA_COOKIE, "") for user in users)
        await asyncio.sleep(SETTLE_S)
        report.rss_none_kb = rss_kb(server) if server else 0
        mark = lap(report, "the class connected", mark)
        follower = asyncio.create_task(follow_runs(folder, server, report))
        await asyncio.gather(*(queue_then_use(user, report) for user in users))
        mark = lap(report, "queueing and the interactions", mark)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower, RUN_WAIT_S * report.sessions)
        lap(report, "the runs left", mark)
        await asyncio.sleep(SETTLE_S)
        report.rss_finished_kb = rss_kb(server) if server else 0
    report.records = read_runs(folder)
    report.saved = {r["name"] for r in report.records if (folder / f"{r['name']}.pt").is_file()}


def run_queue_class(sessions: int = CLASS, interactions: int = 2 * len(QUEUE_CYCLE), timeout: float = 30.0,
                    port: int | None = None, train_size: int = 2000, epochs: int = 1,
                    think: float = 5.0) -> QueueReport:
    """Serve the app (its own checkpoint folder, in a temp dir) to a class of ``sessions`` websocket
    clients, each queueing a run of ``epochs`` on ``train_size`` images, then making ``interactions``
    of QUEUE_CYCLE's about ``think`` s apart while the runs train; then wait for the runs and check
    them."""
    if not 1 <= sessions <= QUEUE_CLASS:
        raise ValueError(f"sessions must be in [1, {QUEUE_CLASS}], got {sessions}")
    report = QueueReport(sessions, interactions, timeout, think, epochs=epochs, train_size=train_size,
                         threads=torch.get_num_threads())
    started = time.monotonic()
    with own_checkpoints("vae-queue-") as checkpoints, \
            streamlit_server(checkpoints, ARTIFACTS / "queue-server.log", port) as (url, server):
        in_own_thread(queue_class(url, server, checkpoints, report, started))
    return report


# ---------------------------------------------------------------- a lecture hall (studio.hall)

TRAIN_PAGE = ClientUser.PAGE_IDS["Train"]
RUNS_TABLE = "train_runs"  # the Train page's table of the class's runs
BACK_WAIT_S = 60  # at most, for a learner of a lost replica to see their run again
ACTOR_BACK_WAIT_S = 120  # ... for Ray to start the classroom's actor again


@contextlib.contextmanager
def own_hall(replicas: int, prefix: str) -> Iterator[tuple[Hall, Path]]:
    """A hall of ``replicas`` app servers on free ports and its own checkpoint folder (the bundled
    model in it); its parts' logs under test-artifacts/browser/<prefix>/."""
    with own_checkpoints(f"{prefix}-") as checkpoints, \
            hall([free_port() for _ in range(replicas)], free_port(), checkpoints, ARTIFACTS / prefix,
                 ray_port=free_port(), stats_port=free_port()) as running:
        yield running, checkpoints


async def runs_table(url: str) -> dict[str, list]:
    """The Train page's table of the class's runs, column by column, as a new session on ``url`` is shown it."""
    async with AppSession(url) as app:
        await app.open("", SETUP_S)
        return (await app.open(TRAIN_PAGE, SETUP_S)).table(RUNS_TABLE) or {}


def run_hall_class(sessions: int, interactions: int, timeout: float, train_size: int, epochs: int,
                   think: float, replicas: int = 2) -> tuple[QueueReport, dict[str, list[str]]]:
    """``run_queue_class`` against a hall of ``replicas`` (the class through its balancer); then the
    names in each replica's table of the class's runs, read by a session opened on that replica."""
    report = QueueReport(sessions, interactions, timeout, think, epochs=epochs, train_size=train_size,
                         threads=torch.get_num_threads())
    started = time.monotonic()
    with own_hall(replicas, "hall-class") as (running, checkpoints):
        in_own_thread(queue_class(running.url, None, checkpoints, report, started))
        shown = {f"r{n}": in_own_thread(runs_table(url)).get("Name", [])
                 for n, url in enumerate(running.replica_urls, start=1)}
    return report, shown


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far (/proc/<pid>/stat's utime and stime), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # from field 3, the state
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pages_only(url: str, server: int, report: CapacityReport, ramp_s: float) -> None:
    """The class connects, the first going once round QUEUE_CYCLE and each then visiting Draw, the
    Latent map and Generate, unmeasured (the server's warm-up); then each goes round QUEUE_CYCLE, no
    run queued; after ``ramp_s`` the server's CPU time is read for ``report.wall_s``, and only the
    interactions made wholly within that stretch are kept."""
    async with contextlib.AsyncExitStack() as apps:
        first = await new_client_user(apps, url, 0, report, report.timeout_s)
        for kind in QUEUE_CYCLE:  # a fresh server's caches: every page and click once
            await first.act(kind)
        users = [first, *await asyncio.gather(*(new_client_user(apps, url, i, report, report.timeout_s, ("Generate",))
                                               for i in range(1, report.sessions)))]
        await asyncio.sleep(SETTLE_S)
        journeys = [asyncio.create_task(user.journey(report.think_s, QUEUE_CYCLE)) for user in users]
        await asyncio.sleep(ramp_s)
        start, cpu = time.monotonic(), cpu_seconds(server)
        await asyncio.sleep(report.wall_s)
        end = time.monotonic()
        report.cpu_s, report.wall_s = cpu_seconds(server) - cpu, end - start
        for journey in journeys:
            journey.cancel()
        await asyncio.gather(*journeys, return_exceptions=True)
    report.interactions = [i for i in report.interactions if start <= i.started
                           and (i.latency_s is None or i.started + i.latency_s <= end)]


def run_capacity(classes: tuple[int, ...] = (20, 40, 60), stretch_s: float = 60.0, think: float = 5.0,
                 timeout: float = 30.0, port: int | None = None) -> list[CapacityReport]:
    """One app server (no hall), a class of each size in ``classes`` in turn (each connecting afresh,
    the last one gone), using the pages with no run queued; each report holds the server's CPU
    seconds over ``stretch_s`` of it and the interactions made in that stretch."""
    reports = []
    with own_checkpoints("vae-capacity-") as checkpoints, \
            streamlit_server(checkpoints, ARTIFACTS / "capacity-server.log", port) as (url, server):
        for sessions in classes:
            ramp_s = 1.5 * think  # every learner's first pause over
            each = int((ramp_s + stretch_s) / (0.5 * think)) + len(QUEUE_CYCLE)  # outlasts the stretch
            report = CapacityReport(sessions, each, timeout, think, threads=torch.get_num_threads(), wall_s=stretch_s)
            in_own_thread(pages_only(url, server, report, ramp_s))
            reports.append(report)
            print(f"  {sessions} learners: {report.cpu_s:.1f} CPU s in {report.wall_s:.1f} s", flush=True)
    return reports


def learner_cookie(run: PageRun) -> dict[str, str]:
    """The cookie the page asks the browser to keep for the learner (``studio.identity``), as name: token."""
    for component in run.of("bidi_component"):
        if component.component_name == COOKIE_KEEPER:
            data = json.loads(component.json)
            return {data["name"]: data["token"]}
    return {}


def statuses(folder: Path) -> dict[str, str]:
    return {r["name"]: r["status"] for r in read_runs(folder)}


async def until_running(folder: Path, wait_s: float = 600) -> None:
    """Until a run trains (or none is left to), at most ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        now = statuses(folder).values()
        if "running" in now or not any(s in ACTIVE for s in now):
            return
        await asyncio.sleep(0.2)


async def come_back(url: str, cookies: dict[str, str], name: str, lost: float) -> tuple[float, str]:
    """A learner whose replica was lost opens the app again through the balancer, with the cookies
    it holds (the balancer's, the learner's), as Streamlit's page does once its websocket closed,
    until the Train page's table shows its run marked as its own (★): the seconds since ``lost``,
    and the replica the balancer's new cookie names. AssertionError, saying what it saw, if not
    within BACK_WAIT_S."""
    seen = ""
    while time.monotonic() - lost < BACK_WAIT_S:
        try:
            async with AppSession(url, cookies=dict(cookies)) as app:
                await app.open("", 30)
                table = (await app.open(TRAIN_PAGE, 30)).table(RUNS_TABLE) or {}
                rows = list(zip(table.get("", []), table.get("Name", []), strict=True))
                if ("★", name) in rows:
                    return time.monotonic() - lost, app.cookies.get(REPLICA_COOKIE, "")
                seen = f"the table's rows {rows}"
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as e:
            seen = what_happened(e)
        await asyncio.sleep(0.5)
    raise AssertionError(seen)


async def hall_faults(running: Hall, folder: Path, report: FaultReport) -> None:
    """The learners connect through the balancer and each queues a run and watches Train; once one
    trains, replica r1 is killed and each learner it held comes back (``come_back``); once one
    trains again, the classroom's actor is killed; then every run is awaited."""
    stub = QueueReport(report.learners, 0, 30)
    async with contextlib.AsyncExitStack() as apps:
        sessions = [await apps.enter_async_context(AppSession(running.url)) for _ in range(report.learners)]
        for app in sessions:
            await app.open("", SETUP_S)

        async def queue(index: int, app: AppSession) -> None:
            name = f"learner-{index:02d}"
            report.pinned[name] = app.cookies.get(REPLICA_COOKIE, "")
            try:
                report.queued[name] = await ClientUser(app, index, SETUP_S, stub).queue_run(
                    name, report.epochs, report.train_size)
            except (AssertionError, TimeoutError) as e:
                report.refused[name] = what_happened(e)
            app.cookies |= learner_cookie(await app.open(TRAIN_PAGE, SETUP_S))  # as the page has the browser keep

        await asyncio.gather(*(queue(i, app) for i, app in enumerate(sessions)))
        await until_running(folder)
        report.statuses_at_kill = statuses(folder)
        await asyncio.to_thread(running.kill, "r1")
        lost = time.monotonic()

        async def reconnect(index: int, app: AppSession) -> None:
            name = f"learner-{index:02d}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(app.wait_closed(), BACK_WAIT_S)
            try:
                report.back_s[name], report.back_on[name] = await come_back(running.url, app.cookies, name, lost)
            except AssertionError as e:
                report.not_back[name] = str(e)[:300]

        await asyncio.gather(*(reconnect(i, app) for i, app in enumerate(sessions)
                               if report.pinned[f"learner-{i:02d}"] == "r1"))
    await until_running(folder)
    report.statuses_at_actor_kill = statuses(folder)
    before = running.classroom_pid()
    running.kill_classroom()
    killed, after = time.monotonic(), None
    while time.monotonic() - killed < ACTOR_BACK_WAIT_S:
        after = running.classroom_pid()
        if after not in (None, before):
            report.classroom_back_s = time.monotonic() - killed
            break
        await asyncio.sleep(0.2)
    report.classroom_pids = (before, after)
    deadline = time.monotonic() + RUN_WAIT_S * report.learners
    while any(s in ACTIVE for s in statuses(folder).values()) and time.monotonic() < deadline:
        await asyncio.sleep(1)
    report.records = read_runs(folder)


def run_hall_faults(learners: int = 10, epochs: int = 2, train_size: int = 2000, replicas: int = 2) -> FaultReport:
    """A hall of ``replicas``, ``learners`` each queueing a run; a replica and then the classroom's
    actor killed mid-class (``hall_faults``)."""
    report = FaultReport(learners, epochs, train_size)
    with own_hall(replicas, "hall-faults") as (running, checkpoints):
        in_own_thread(hall_faults(running, checkpoints, report))
    return report
