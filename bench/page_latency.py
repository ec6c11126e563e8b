"""Server-side latency of VAE Studio's interactive reruns, with the model and data already cached.

    .venv/bin/python bench/page_latency.py                   # 40 rounds, one to two minutes
    .venv/bin/python bench/page_latency.py --while-training  # the same while the server trains a model
    .venv/bin/python bench/page_latency.py --profile draw    # where one scenario's time goes (cProfile)

What is timed ("server time"): Streamlit's ScriptRunner running app.py and the page for one rerun,
from the moment the run starts to the moment it reports the run finished (the event on which a
real server tells the browser "script finished"), plus the work the runner does after that, such
as Streamlit's post-run garbage collection (``runner.postScriptGC``): a full ``gc.collect`` holding
the GIL, so a server cannot send the run's last messages until it is done.

How: streamlit.testing's AppTest runs the real ScriptRunner, widgets, caches and media files, on a
fresh script thread per rerun as a server does; a new browser event is injected by widget key (see
harness/apptest.py). Two differences from a server are made good here: AppTest's runner
skips the post-run collection (this script does it as a server's runner would) and compiles the
scripts on every run (this script gives it one script cache, as a server has). Not timed: AppTest
turning the messages into an element tree, the websocket, image downloads, the browser's rendering.

Scenarios, each in its own session, warmed up first (model, MNIST, the test set's encodings and
-ELBOs, the projection and the map's figure all cached), then timed round-robin so that they share
the machine's noise:
  draw          Draw page: a new drawing on the canvas (a different test digit each time).
  click         Latent map (default model, PCA, 2,000 digits, clickable grid): a new click each
                time, alternately a test digit and a grid location.
  compare       Compare page (tutorial against default): a click on the left map, a new test digit
                each time, ringed on both maps and decoded by both models: the maps' fragment,
                which is what a server reruns after the click.
  compare page  the whole Compare page rerun (what its first visit costs, with everything cached).
  inside        Inside page (default model): a new drawing through every step (a different test
                digit each time, as the Draw page leaves it).
  inside eps    Inside page: "Draw another ε", a new seed each time.
  switch->draw  Home -> Draw in the sidebar navigation (the canvas page, nothing drawn yet).
  switch->home  Draw -> Home (the model card, loss curves and layer table).
References, timed in the same rounds:
  bare          a one-line Streamlit script (st.title): Streamlit's own cost of a rerun.
  model         a canvas stroke's model work without Streamlit: encode one test digit and decode
                its mean, on a thread running torch on one thread as the pages do.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import itertools
import json
import logging
import os
import platform
import pstats
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch
from streamlit import config
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner, ScriptRunnerEvent
from streamlit.testing.v1 import AppTest, app_test, local_script_runner

from harness import ROOT
from harness.apptest import canvas_value, click, drawn, navigation_mode_init, plotly_rows, queued_run, training_rate
from studio import analysis, resources
from vae import latent, load_checkpoint
from vae.config import TrainConfig

CANVAS_KEY = "draw_canvas_0"
MAP_KEY = "latent_map_default_pca_2000_30"
# What --profile can profile.
SCRIPT_RUNS = ("draw", "click", "inside", "inside eps", "switch->draw", "switch->home", "bare")
FINISHED = (ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_COMPILE_ERROR)


class Run(NamedTuple):
    """One script run, in seconds: wall time to the "finished" event, the script thread's CPU
    time in that span (what the run itself computed, whatever else shared the CPU), and the wall
    time after the event until the runner was done (post-run garbage collection, clean-up)."""

    wall: float
    cpu: float
    after: float


class RunClock:
    """Times every ``ScriptRunner._run_script`` call (one per rerun request) into ``runs``."""

    def __init__(self):
        self.runs: list[Run] = []
        self.profile: cProfile.Profile | None = None
        original = ScriptRunner._run_script
        clock = self

        def timed_run_script(runner, rerun_data):
            start, cpu_start, finished = time.perf_counter(), time.thread_time(), []

            def on_event(_sender, event, **_kwargs):  # sent from the script thread
                if event in FINISHED:
                    finished.append((time.perf_counter(), time.thread_time()))

            runner.on_event.connect(on_event, weak=False)
            if clock.profile:
                clock.profile.enable()  # the profiler of the script thread
            try:
                original(runner, rerun_data)
                if config.get_option("runner.postScriptGC"):
                    gc.collect(2)  # what a server's ScriptRunner does after every run; AppTest's skips it
            finally:
                if clock.profile:
                    clock.profile.disable()
                runner.on_event.disconnect(on_event)
                end = time.perf_counter()
                done, cpu_done = finished[-1] if finished else (end, time.thread_time())
                clock.runs.append(Run(done - start, cpu_done - cpu_start, end - done))

        ScriptRunner._run_script = timed_run_script

    def time(self, action) -> Run:
        """The one script run that ``action`` causes."""
        self.runs.clear()
        action()
        assert len(self.runs) == 1, f"expected one script run, got {len(self.runs)}"
        return self.runs[0]


def as_a_server() -> RunClock:
    """Make AppTest run scripts as a server does, and time its runs (see the module's docstring)."""
    os.chdir(ROOT)  # AppTest reads .streamlit/config.toml from the working directory
    PagesManager.__init__ = navigation_mode_init(PagesManager.__init__)
    # A server compiles each script once (one ScriptCache per Runtime); AppTest would on every run.
    script_cache = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: script_cache
    # Injecting widget state and calling cached functions from this (non-script) thread is intended.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())
    return RunClock()


def check(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def session(page: str | None = None) -> AppTest:
    """A new browser session of the app, on ``page`` after its first run."""
    at = check(AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run())
    if page:
        check(at.switch_page(page).run())
    return at


def model_pass(mnist) -> Callable[[], Run]:
    """The "model" reference: times one pass on a worker thread of its own, set to one torch thread
    (torch's count is per thread; the process's default is restored for every other thread)."""
    model, image = load_checkpoint(resources.default_checkpoint()).model, mnist.test_images[0]
    default = torch.get_num_threads()

    def one_thread():
        torch.get_num_threads()  # this thread's count is set up first, so the next line sticks
        torch.set_num_threads(1)

    worker = ThreadPoolExecutor(1, initializer=one_thread)
    worker.submit(int).result()
    torch.set_num_threads(default)

    def encode_decode() -> Run:
        start, cpu = time.perf_counter(), time.thread_time()
        mu, _ = latent.encode(model, image)
        latent.decode(model, mu)
        return Run(time.perf_counter() - start, time.thread_time() - cpu, 0.0)

    return lambda: worker.submit(encode_decode).result()


COMPARE_MAPS = """
from studio import resources, views
views.linked_maps({"tutorial": resources.load(resources.checkpoint_dir() / "tutorial.pt"),
                   "default": resources.load(resources.default_checkpoint())})
"""  # the Compare page's fragment that a map click reruns


def scenarios(clock: RunClock, mnist) -> dict[str, Callable[[], Run]]:
    """Each scenario's timer (its action causes exactly one script run), warmed up."""
    drawings = [canvas_value(drawn(mnist, i)) for i in range(20)]
    draw, drawing = session("pages/draw.py"), itertools.cycle(drawings)

    def new_drawing():
        draw.session_state[CANVAS_KEY] = next(drawing)
        check(draw.run())
        assert any("Reconstruction" in c for image in draw.get("image") for c in image.captions)

    new_drawing()  # encodes and scores the test set once

    chart = session("pages/latent_map.py")
    grid, *digits = json.loads(chart.get("plotly_chart")[0].proto.spec)["data"]
    # Alternately a grid location and a test digit (of the digit-4 trace): each click a new one.
    pairs = zip(plotly_rows(grid["customdata"])[::31], plotly_rows(digits[4]["customdata"]))
    clicks = itertools.cycle([{"customdata": data} for pair in pairs for data in pair])

    def new_click():
        chart.session_state[MAP_KEY] = click(next(clicks))
        check(chart.run())
        assert any(c.startswith(("Decoded", "Test #")) for image in chart.get("image") for c in image.captions)

    new_click()

    # Compare (the bundled tutorial and default models): a click on the left map, a new digit each
    # time; the map's key names the digit chosen before, as the page's does. A server reruns only
    # the maps' fragment after such a click, so that is what runs here; "compare page" below
    # reruns the whole page, as the first visit does.
    pair = AppTest.from_string(COMPARE_MAPS, default_timeout=600)
    check(pair.run())
    page = session("pages/compare.py")
    map_digits = [int(i) for i in analysis.compare_map(resources.load(resources.default_checkpoint()))[0][:60]]
    compare_digits = itertools.cycle(map_digits)

    def new_compare_click():
        previous = pair.session_state["compare_selected"] if "compare_selected" in pair.session_state else None
        pair.session_state[f"compare_map_a_{previous}"] = click({"customdata": [next(compare_digits)]})
        check(pair.run())
        assert sum("decodes its mean" in c for image in pair.get("image") for c in image.captions) == 2

    new_compare_click()

    inside = session("pages/inside.py")
    inside_digits = itertools.cycle([{"image": mnist.test_images[i].numpy().astype("float32") / 255.0}
                                     for i in range(20, 40)])

    def new_inside_drawing():
        inside.session_state[analysis.LAST_DRAWING_KEY] = next(inside_digits)
        inside.session_state["inside_source"] = "drawing"
        check(inside.run())
        assert any(c == "your last drawing" for image in inside.get("image") for c in image.captions)

    def new_eps():
        next(b for b in inside.button if b.key == "inside_new_eps").click()
        check(inside.run())

    new_inside_drawing()

    nav = session()
    bare = AppTest.from_string("import streamlit as st\nst.title('Hello')", default_timeout=60)
    actions = {
        "draw": new_drawing,
        "click": new_click,
        "compare": new_compare_click,
        "compare page": lambda: check(page.run()),
        "inside": new_inside_drawing,
        "inside eps": new_eps,
        "switch->draw": lambda: check(nav.switch_page("pages/draw.py").run()),
        "switch->home": lambda: check(nav.switch_page("pages/home.py").run()),
        "bare": lambda: check(bare.run()),
    }
    for action in actions.values():  # one untimed round: every page and code path seen once
        action()
    timers = {name: functools.partial(clock.time, action) for name, action in actions.items()}
    timers["model"] = model_pass(mnist)
    timers["model"]()
    return timers


def ms(seconds) -> str:
    return f"{statistics.median(seconds) * 1e3:7.1f}"


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=40, help="timed reruns per scenario")
    p.add_argument("--while-training", action="store_true", help="train a run through the app's queue meanwhile")
    p.add_argument("--profile", choices=SCRIPT_RUNS, help="print a cProfile of this scenario's script runs")
    p.add_argument("--sort", default="cumulative", help="the profile's order: a pstats key, e.g. tottime")
    args = p.parse_args()

    clock = as_a_server()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads by default)")
    t0 = time.perf_counter()
    timers = scenarios(clock, resources.dataset("mnist"))
    print(f"warm-up (encoding and scoring the test set, projecting, first runs): {time.perf_counter() - t0:.1f} s")
    runs = {name: [] for name in timers}
    profile = cProfile.Profile() if args.profile else None

    def rounds():
        for _ in range(args.rounds):
            for name, timer in timers.items():
                clock.profile = profile if name == args.profile else None
                runs[name].append(timer())
        clock.profile = None

    if args.while_training:
        with queued_run(TrainConfig(epochs=100), "bench-page-latency") as snapshot:
            alone = training_rate(snapshot, lambda: time.sleep(10))
            during = training_rate(snapshot, rounds)
        print(f"the run ran at {alone:.0f} img/s alone (10 s), {during:.0f} img/s during the reruns")
    else:
        rounds()
    totals = {name: [run.wall + run.after for run in times] for name, times in runs.items()}
    bare, model = statistics.median(totals["bare"]), statistics.median(totals["model"])
    print(f"\nserver time per rerun in ms, median of {args.rounds}{' while training' if args.while_training else ''}"
          " (run: to 'script finished'; cpu: the script thread's CPU time in it;\n"
          "after: post-run GC and clean-up; total: run + after; p90, x bare and x model: of the total)")
    print(f"{'scenario':14s}" + "".join(f"{column:>8s}" for column in
                                         ("run", "cpu", "after", "total", "p90", "x bare", "x model")))
    for name, times in runs.items():
        median, p90 = summary(totals[name])
        print(f"{name:14s} {ms(run.wall for run in times)} {ms(run.cpu for run in times)} "
              f"{ms(run.after for run in times)} {median * 1e3:7.1f} {p90 * 1e3:7.1f} {median / bare:7.1f} "
              f"{median / model:7.2f}")
    if profile:
        print(f"\ncProfile of the {args.profile!r} script runs:")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(40)


if __name__ == "__main__":
    main()
