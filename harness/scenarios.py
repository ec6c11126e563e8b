"""A class of simulated users (``harness.users``) on a served app. ``run_load`` serves the app,
puts a class on it while it trains, and compares that run with the same run alone;
``run_queue_class`` serves it to a class of websocket clients that each queue a run of their own,
then use the other pages while the runs train one at a time, and checks the runs and the server's
memory. ``tests/test_load.py`` runs both with a few users; ``bench/load_sessions.py`` and
``bench/queue_class.py`` time them with up to thirty."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright, expect

from classroom.queue import ACTIVE
from classroom.store import read_runs
from harness import BUNDLED
from harness.browser import ARTIFACTS, CHROMIUM_ARGS, RUN_ENDED, require_chromium, streamlit_server
from harness.reports import CYCLE, QUEUE_CYCLE, SETTLE_S, ClassReport, LoadReport, QueueReport
from harness.strokes import CLASS, MAX_SESSIONS, QUEUE_CLASS
from harness.users import SETUP_S, BrowserUser, ClientUser, new_browser_user, new_client_user, what_happened
from vae.checkpoint import read_checkpoint, read_resume_state, resume_path, stored_history
from vae.config import TrainConfig
from vae.events import EpochEvent, Event
from vae.train import train

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


async def follow_runs(folder: Path, server: int, report: QueueReport) -> None:
    """Read the queue's records every second until every queued run has ended, noting the server's
    memory whenever more have, and the moment the last one did."""
    while True:
        records = read_runs(folder)
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
