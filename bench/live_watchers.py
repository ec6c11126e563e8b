"""A classroom watching one run: the server time of a live refresh and the run's speed, with 1 and
with 30 sessions on the Train page (or on the Inside page, following the run epoch by epoch).

    .venv/bin/python bench/live_watchers.py                 # 30 watchers, 3 rounds of 20 s phases
    .venv/bin/python bench/live_watchers.py --watchers 10 --phase 10 --rounds 1
    .venv/bin/python bench/live_watchers.py --page inside --watchers 5 --train-size 59000  # whole epochs

The real Streamlit server (``streamlit.web.bootstrap``, as ``streamlit run app.py`` starts it, with
its own checkpoint folder in a temp dir) and a run in its queue (``studio.runs``, as the Train page
queues it: the default recipe, 4,000 images) run in this process; the watchers in a second one
(``--client``): websocket clients (``harness.protocol.AppSession``) that speak Streamlit's protocol
as a browser does (open the Train page, then answer each ``auto_rerun`` of its live fragments with a
rerun of that fragment at its interval, reporting the message hashes they hold so that the server
can send references instead), but draw nothing, so that the machine's cores go to the server and
the run, as in a classroom whose browsers run on the students' laptops.

Phases alternate (none, 1, 30 watchers, ...) so that they share the machine's noise. Per phase: the
run's img/s (steps x batch over the phase, from the run's snapshots), and every script run the
server made, timed as bench/page_latency.py times them (wall time to its "finished" event, and the
script thread's CPU time). What the watchers received per refresh: bytes, and how many elements came
as references to ones they already hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner, ScriptRunnerEvent

from harness import BUNDLED_DIR, ROOT
from harness.protocol import AppSession

FINISHED = {ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS,
            ScriptRunnerEvent.SCRIPT_STOPPED_FOR_RERUN}


@dataclass
class ScriptRun:
    at: float  # time.monotonic() at its start
    fragment: bool  # a fragment's rerun (the live view), not the whole page
    wall: float
    cpu: float


RUNS: list[ScriptRun] = []


def time_script_runs() -> None:
    """Record every script run the server makes (its wall time to the finished event, and the
    script thread's CPU time in it)."""
    original = ScriptRunner._run_script

    def timed(runner, rerun_data):
        start, cpu, done = time.perf_counter(), time.thread_time(), []

        def on_event(_sender, event, **_kwargs):
            if event in FINISHED and not done:
                done.append((time.perf_counter(), time.thread_time()))

        runner.on_event.connect(on_event, weak=False)
        try:
            original(runner, rerun_data)
        finally:
            runner.on_event.disconnect(on_event)
            end, cpu_end = done[0] if done else (time.perf_counter(), time.thread_time())
            RUNS.append(ScriptRun(time.monotonic() - (time.perf_counter() - start), bool(rerun_data.fragment_id_queue),
                                  end - start, cpu_end - cpu))

    ScriptRunner._run_script = timed


@dataclass
class Phase:
    watchers: int
    img_per_s: float
    runs: list[ScriptRun]
    seconds: float
    refreshes: int
    bytes_per_refresh: float
    references: float  # share of elements sent as references


def drive(port: int, watchers: int, phase_s: float, rounds: int, train_size: int, page: str) -> list[Phase]:
    from harness.apptest import queued_run
    from studio import analysis, resources
    from vae.config import TrainConfig

    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.25)
    analysis.warm_up(resources.load(resources.default_checkpoint())).join()  # the app's one-off work, done first
    config = TrainConfig(epochs=1000, train_size=train_size, seed=7)  # outlasts every phase; stopped after
    # Inside follows the run's weights, published as each epoch ends.
    with queued_run(config, "watched", ready=lambda run: run.step >= 5 and (page != "inside" or run.weights)) \
            as snapshot:
        return [measure(url, count, phase_s, page, snapshot) for _ in range(rounds) for count in (0, 1, watchers)]


def measure(url: str, count: int, phase_s: float, page: str, snapshot) -> Phase:
    """One phase: ``count`` watchers (none: the run alone) for ``phase_s`` seconds."""
    from harness.apptest import training_rate

    crowd = None
    if count:  # the watchers run in their own process, as a class's browsers run on their laptops
        crowd = subprocess.Popen([sys.executable, __file__, "--client", url, "--watchers", str(count),
                                  "--phase", str(phase_s), "--page", page], stdout=subprocess.PIPE, text=True)
        ready = crowd.stdout.readline()
        assert ready.strip() == "ready", f"the watchers did not start: {ready!r}"
    else:
        time.sleep(1.0)
    mark = time.monotonic()
    rate = training_rate(snapshot, lambda: time.sleep(phase_s))
    runs = [r for r in RUNS if r.at >= mark]
    seen = json.loads(crowd.communicate(timeout=60)[0]) if crowd else {"refreshes": 0, "bytes": 0,
                                                                       "elements": 0, "references": 0,
                                                                       "errors": []}
    assert not seen["errors"], seen["errors"]
    refreshes = seen["refreshes"]
    print(f"  {count:>3} watchers: {rate:7.0f} img/s, {len(runs)} script runs, {refreshes} refreshes", flush=True)
    return Phase(count, rate, runs, phase_s, refreshes, seen["bytes"] / max(1, refreshes),
                 seen["references"] / max(1, seen["elements"]))


TARGETS = {"train": 0.80, "inside": 0.95}  # the run's speed with the watchers, against its speed alone


def report(phases: list[Phase], watchers: int, page: str) -> str:
    lines = [f"{'watchers':>8}{'img/s':>9}{'x alone':>9}{'refresh/s':>11}{'run ms':>9}{'p90 ms':>8}"
             f"{'cpu ms':>8}{'server cpu/s':>14}{'kB/refresh':>12}{'refs':>7}"]
    alone = statistics.median(p.img_per_s for p in phases if p.watchers == 0)
    for count in sorted({p.watchers for p in phases}):
        group = [p for p in phases if p.watchers == count]
        runs = [r for p in group for r in p.runs if r.fragment]
        rate = statistics.median(p.img_per_s for p in group)
        seconds = sum(p.seconds for p in group)
        if runs:
            walls = sorted(r.wall for r in runs)
            cpu_per_s = sum(r.cpu for p in group for r in p.runs) / seconds
            lines.append(f"{count:>8}{rate:>9.0f}{rate / alone:>9.2f}{len(runs) / seconds:>11.1f}"
                         f"{statistics.median(walls) * 1e3:>9.1f}{walls[int(0.9 * (len(walls) - 1))] * 1e3:>8.1f}"
                         f"{statistics.median(r.cpu for r in runs) * 1e3:>8.1f}{cpu_per_s * 1e3:>11.0f} ms"
                         f"{statistics.mean(p.bytes_per_refresh for p in group) / 1e3:>12.1f}"
                         f"{statistics.mean(p.references for p in group):>7.0%}")
        else:
            lines.append(f"{count:>8}{rate:>9.0f}{rate / alone:>9.2f}")
    watched = statistics.median(p.img_per_s for p in phases if p.watchers == watchers)
    target = TARGETS[page]
    lines.append(f"training with {watchers} watchers on {page}: {watched / alone:.1%} of its speed alone "
                 f"({'PASS' if watched >= target * alone else 'FAIL'}: target {target:.0%})")
    return "\n".join(lines)


def watch_from_here(url: str, count: int, seconds: float, page: str) -> int:
    """The ``--client`` mode: ``count`` watchers open ``page`` (on Inside, they switch to the run
    training now); once all refresh, print "ready", count what they receive for ``seconds``, and
    print it as JSON."""

    async def follow(watcher: AppSession):
        run = await watcher.open(page)
        if page != "inside":
            return run
        toggle = next(t for t in run.of("checkbox") if "inside_live" in t.id)
        return await watcher.set_widget(toggle.id, bool_value=True)

    async def run() -> dict:
        async with contextlib.AsyncExitStack() as sessions:
            crowd = [await sessions.enter_async_context(AppSession(url)) for _ in range(count)]
            opened = await asyncio.gather(*(follow(watcher) for watcher in crowd))
            await asyncio.sleep(2.0)  # every live fragment refreshing
            for watcher in crowd:
                watcher.reset()
            print("ready", flush=True)
            await asyncio.sleep(seconds)
            return {"refreshes": sum(w.fragment_reruns for w in crowd), "bytes": sum(w.bytes for w in crowd),
                    "elements": sum(w.elements for w in crowd), "references": sum(w.references for w in crowd),
                    "errors": [e for run in opened for e in run.errors]}

    print(json.dumps(asyncio.run(run())), flush=True)
    return 0


def private_checkpoint_folder() -> Path:
    """A temp folder with a copy of the default model for the server to train into; set before
    anything reads the settings (``vae.settings``), which read VAE_CHECKPOINT_DIR once."""
    folder = Path(tempfile.mkdtemp(prefix="vae-watchers-"))
    (folder / "checkpoints").mkdir()
    shutil.copy2(BUNDLED_DIR / "default.pt", folder / "checkpoints" / "default.pt")
    os.environ["VAE_CHECKPOINT_DIR"] = str(folder / "checkpoints")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--watchers", type=int, default=30, help="sessions on the Train page in the crowded phases")
    parser.add_argument("--phase", type=float, default=20.0, help="seconds each phase is measured")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (none, 1, N watchers)")
    parser.add_argument("--train-size", type=int, default=4000, help="training images of the run")
    parser.add_argument("--page", choices=("train", "inside"), default="train", help="the page the watchers follow")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # the watchers' own process
    args = parser.parse_args()
    if args.client:
        return watch_from_here(args.client, args.watchers, args.phase, args.page)
    folder = private_checkpoint_folder()
    os.chdir(ROOT)  # the server reads .streamlit/config.toml from here
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__} ({torch.get_num_threads()} threads)",
          flush=True)
    time_script_runs()
    results: list = []

    def driver() -> None:
        try:
            results.append(drive(args.port, args.watchers, args.phase, args.rounds, args.train_size, args.page))
        except BaseException as e:  # noqa: BLE001 (shown, then the server is ended)
            results.append(e)
        finally:
            os.kill(os.getpid(), 15)  # ends the server's event loop (its SIGTERM handler)

    threading.Thread(target=driver, daemon=True).start()
    from streamlit.web import bootstrap

    flags = {"server_port": args.port, "server_address": "127.0.0.1", "server_headless": True,
             "browser_gatherUsageStats": False}
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(ROOT / "app.py"), False, [], flags)
    shutil.rmtree(folder, ignore_errors=True)
    if not results or isinstance(results[0], BaseException):
        print(f"FAILED: {results[0] if results else 'the driver did not finish'}")
        return 1
    print(report(results[0], args.watchers, args.page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
