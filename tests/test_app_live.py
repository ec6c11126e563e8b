"""A classroom on one server: many sessions watching the one live run share what it shows, see who
started it, confirm before stopping someone else's, and queue for the CPU with a word on why."""

from __future__ import annotations

import json
import queue as queue_module
import shutil
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from classroom.gate import ModelWorkGate
from harness import BUNDLED_DIR, ROOT, TINY
from harness.apptest import canvas_value, drawn, run_app
from harness.wait import until
from studio import analysis, gate, live, resources
from vae import load_checkpoint
from vae.config import TrainConfig
from vae.events import EpochEvent, FrameEvent, StepEvent
from vae.history import Scores
from vae.settings import configure
from vae.train import TrainResult

WATCHERS = 30
THREE_EPOCHS = {**TINY, "epochs": 3}


class PuppetTrain:
    """Stands in for vae.train.train: sends the progress events the test hands it, as a real run
    would, until Stop."""

    def __init__(self, queue):
        self.queue = queue
        self.events: queue_module.Queue = queue_module.Queue()

    def __call__(self, config, checkpoint_path, *, stop, callback, **kwargs):
        while not stop.is_set():
            try:
                callback(self.events.get(timeout=0.02))
            except queue_module.Empty:
                continue
        return TrainResult("stopped", "Stopped by request.", None)

    def newest(self):
        return self.queue.runs()[-1]

    def steps(self, first: int, last: int) -> None:
        for step in range(first, last + 1):
            self.events.put(StepEvent(step=step, epoch=1 + (step - 1) // 10, epochs=3, total_steps=30,
                                      loss=200.0 - step, bce=180.0 - step, kl=20.0, img_per_s=1000.0, eta_s=30.0,
                                      lr=1e-3))
        until(lambda: self.newest().step == last, timeout=10)

    def epoch(self, epoch: int) -> None:
        scores = Scores(loss=150.0 - epoch, bce=130.0, kl=20.0 - epoch)
        self.events.put(EpochEvent(epoch=epoch, epochs=3, seconds=1.0, train_seconds=1.0, img_per_s=1000.0,
                                   train=scores, val=scores, test=scores, improved=True, weights=None,
                                   reconstructions=np.random.default_rng(epoch).random((2, 10, 1, 28, 28),
                                                                                       dtype=np.float32)))
        until(lambda: len(self.newest().history.epochs) == epoch, timeout=10)

    def frame(self, film) -> None:
        self.events.put(FrameEvent(film=film))
        until(lambda: self.newest().film is film, timeout=10)


@pytest.fixture
def puppet(run_queue, monkeypatch):
    """The app's queue training with a PuppetTrain, publishing every 0.3 s (so a test need not
    wait a whole refresh interval between changes)."""
    monkeypatch.setattr(live, "LIVE_PERIOD_S", 0.3)
    monkeypatch.setattr(live, "LIVE_FIGURES_S", 0.3)
    live._publisher.clear()
    live._view.clear()
    live._film.clear()
    train = PuppetTrain(run_queue)
    run_queue._executor._train = train
    yield train
    live._publisher.clear()


def queue_run(queue, name: str, owner: str):
    run = queue.submit(TrainConfig(**THREE_EPOCHS), name, owner=owner)
    until(lambda: queue.snapshot(run.id).running, timeout=10)
    return run


@contextmanager
def counting(monkeypatch, *names):
    """Counts the calls of the live views' figure builders ``names`` (studio.live.NAME), into a dict."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(live, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(live, name, counted)
    yield counts


def train_page() -> AppTest:
    """A session on the Train page alone (the page script, without the app's sidebar)."""
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def curves_spec(at: AppTest) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and "train_curves" in c.proto.id).proto.spec)


def test_sessions_watching_the_run_share_one_build_per_change(puppet, run_queue, monkeypatch):
    queue_run(run_queue, "live", "teacher")
    puppet.steps(1, 4)
    sessions = [train_page() for _ in range(WATCHERS)]  # all watching step 4 (and building it once)
    film = load_checkpoint(resources.default_checkpoint()).film
    with counting(monkeypatch, "loss_figure", "film_figure", "make_grid") as builds:
        for change, (last, epoch) in enumerate([(10, 1), (17, None), (20, 2)], start=1):
            puppet.steps(1 + puppet.newest().step, last)
            if epoch:
                puppet.epoch(epoch)
            if change == 3:
                puppet.frame(film)
            time.sleep(live.LIVE_PERIOD_S)  # the next refresh publishes the change
            for at in sessions:  # each session's next refresh
                at.run()
                assert not at.exception, at.exception
            assert builds["loss_figure"] == change, f"curves built {builds['loss_figure']} times for {change} changes"
            specs = [curves_spec(at) for at in sessions]
            assert all(spec == specs[0] for spec in specs), "every session shows the same step"
            assert len(specs[0]["data"][0]["x"]) or specs[0]["data"][0]["x"]["bdata"]
            shown = {at.get("progress")[0].proto.text for at in sessions}
            assert shown == {f"Epoch {1 + (last - 1) // 10}/3 · step {last:,}/30 · 1,000 img/s · about 0:30 left "
                             "(plus evaluation)"}
        assert builds["make_grid"] == 2, "the reconstruction grid: once per epoch"
        assert builds["film_figure"] == 1, "the film's newest frame: once"
        assert all(at.get("plotly_chart")[-1].proto.spec == sessions[0].get("plotly_chart")[-1].proto.spec
                   for at in sessions)
    images = {at.get("image")[0].proto.imgs[0].url for at in sessions}
    assert len(images) == 1, "one reconstruction picture for every session"


def test_a_refresh_with_nothing_new_builds_nothing(puppet, run_queue, monkeypatch):
    queue_run(run_queue, "quiet", "teacher")
    puppet.steps(1, 3)
    sessions = [train_page() for _ in range(3)]
    with counting(monkeypatch, "loss_figure") as builds:
        time.sleep(live.LIVE_PERIOD_S)
        for at in sessions:
            at.run()
        assert builds["loss_figure"] == 0, "no new step, no new figure"


def test_the_page_says_who_queued_the_run_and_asks_before_stopping_another_browsers(puppet, run_queue):
    run = queue_run(run_queue, "theirs", "someone else")
    at = train_page()
    when = time.strftime("%H:%M", time.localtime(run.queued_at))
    assert any(c.value == f":material/person: Queued by learner some at {when}." for c in at.caption)

    at.button(key="train_stop").click().run()
    assert run_queue.snapshot(run.id).status == "running", "one press on Stop does not stop another browser's run"
    assert "Queued by learner some" in at.warning[0].value and "Stop?" in at.warning[0].value
    at.button(key="train_stop_cancel").click().run()
    assert run_queue.snapshot(run.id).status == "running" and not at.warning
    assert not any(b.key == "train_stop_confirm" for b in at.button)

    at.button(key="train_stop").click().run()
    at.button(key="train_stop_confirm").click().run()
    assert run_queue.snapshot(run.id).status in ("stopping", "stopped")
    assert run_queue.wait(run.id, timeout=10)
    at.run()
    assert not at.exception, at.exception
    assert at.warning[0].value.startswith("Stopped by request")


def test_a_run_queued_here_says_so_and_stops_at_once(puppet, run_queue):
    at = train_page()
    at.text_input(key="train_name").set_value("mine")
    next(b for b in at.button if b.label == "Queue my run").click().run()
    run = run_queue.runs()[0]
    until(lambda: run_queue.snapshot(run.id).running, timeout=10)
    at.run()
    assert any(c.value.startswith(":material/person: Queued by you at ") for c in at.caption)
    other = train_page()  # another browser sees it as someone else's
    assert any("Queued by learner" in c.value for c in other.caption)
    at.button(key="train_stop").click().run()
    assert run_queue.snapshot(run.id).status in ("stopping", "stopped"), "its own run: no question asked"


def test_a_stale_confirmation_does_not_stop_the_next_run(puppet, run_queue):
    first = queue_run(run_queue, "first", "someone else")
    at = train_page()
    at.button(key="train_stop").click().run()  # asks; then the run is stopped elsewhere and another starts
    run_queue.stop(first.id)
    assert run_queue.wait(first.id, timeout=10)
    second = queue_run(run_queue, "second", "someone else")
    at.run()
    assert not any(b.key == "train_stop_confirm" for b in at.button), "the question was about the first run"
    assert run_queue.snapshot(second.id).status == "running"


def test_the_gate_queues_page_work_only_while_a_run_trains():
    training = [True]
    gate = ModelWorkGate(1, lambda: training[0])
    assert gate.acquire(timeout=0.1) is True
    assert gate.acquire(timeout=0.1) is False, "the one slot is taken"
    gate.release()
    assert gate.acquire(timeout=0.1) is True
    training[0] = False
    assert gate.acquire(timeout=0.1) is None, "no run: nothing is queued"
    gate.release()


@pytest.fixture
def busy_gate(monkeypatch):
    """The app's gate with every slot held by other pages, and the notices pages show while they
    wait, recorded."""
    monkeypatch.setattr(gate, "WAIT_NOTICE_S", 0.2)
    monkeypatch.setattr(gate, "WAIT_POLL_S", 0.1)
    gate.model_gate.clear()
    busy = gate.model_gate()
    busy.notices = []
    real_notice = gate.wait_notice

    def recording_notice(notice, waited_s, queued):
        busy.notices.append((waited_s, queued))
        real_notice(notice, waited_s, queued)

    monkeypatch.setattr(gate, "wait_notice", recording_notice)
    yield busy
    gate.model_gate.clear()


def test_a_page_waiting_behind_the_run_says_why(puppet, run_queue, busy_gate):
    run = queue_run(run_queue, "busy", "teacher")
    for _ in range(busy_gate.slots):  # other pages hold every slot for a while
        assert busy_gate.acquire(timeout=1) is True
    releases = [threading.Timer(1.0, busy_gate.release) for _ in range(busy_gate.slots)]
    for timer in releases:
        timer.start()
    started = time.monotonic()
    at = run_app("pages/home.py")  # waits for a slot, then runs
    assert time.monotonic() - started >= 1.0
    assert not at.exception, at.exception
    assert busy_gate.notices and busy_gate.notices[0][1] == 1, "it says so, and that it is first in line"
    assert busy_gate.notices[-1][0] > busy_gate.notices[0][0], "the notice counts the seconds"
    assert at.header and not at.info, "the page itself ran once a slot was free, and the notice went"

    busy_gate.notices.clear()
    run_queue.stop(run.id)
    assert run_queue.wait(run.id, timeout=10)
    at.run()  # no run: no queue
    assert not at.exception and not busy_gate.notices


def test_a_run_that_ends_ends_the_wait(puppet, run_queue, busy_gate):
    """Pages queue only while a run trains: when it ends, a waiting page runs at once, taking no
    slot (and so freeing none that it never took)."""
    run = queue_run(run_queue, "ending", "teacher")
    for _ in range(busy_gate.slots):
        assert busy_gate.acquire(timeout=1) is True
    def stop_once_a_page_waits():  # whenever the app's start gets there, however busy the machine
        until(lambda: busy_gate.waiting > 0, 60, 0.05, "a page waiting for the gate")
        time.sleep(0.5)
        run_queue.stop(run.id)

    threading.Thread(target=stop_once_a_page_waits, daemon=True).start()
    started = time.monotonic()
    at = run_app("pages/home.py")
    assert not at.exception and at.header and busy_gate.notices
    assert time.monotonic() - started < 10
    for _ in range(busy_gate.slots):  # a gate that a page released without taking would refuse these
        busy_gate.release()


def test_the_live_figures_slow_down_for_a_crowd_only(monkeypatch):
    live._watchers.clear()
    for i in range(live.LIVE_CROWD):
        live.watching(f"student-{i}")
    assert live.figures_period() == live.LIVE_REFRESH_S, "a few watchers see the figures as often"
    live.watching("one-too-many")
    assert live.figures_period() == live.LIVE_FIGURES_S
    monkeypatch.setattr(live, "WATCHING_S", 0.0)  # they have all left
    time.sleep(0.01)
    assert live.figures_period() == live.LIVE_REFRESH_S
    live._watchers.clear()


def test_the_default_model_is_warmed_once_so_a_first_generate_visit_waits_for_nothing(checkpoint_dir, monkeypatch):
    # A class's first visit to Generate would hold one of the page queue's two places while it
    # fits the mixture; the app starts that work on a thread of its own when the model loads.
    configure(warm_up=True)
    fits, judged = [], []
    fit, judge = analysis.samplers.fit_mixture, analysis.samplers.sample_quality
    monkeypatch.setattr(analysis.samplers, "fit_mixture", lambda *a, **k: fits.append(1) or fit(*a, **k))
    monkeypatch.setattr(analysis.samplers, "sample_quality", lambda *a, **k: judged.append(1) or judge(*a, **k))
    for cache in (analysis._warm_up, analysis.mixture, analysis.sample_quality):
        cache.clear()  # an earlier test's visit to Generate (the same bytes: the same key) may have filled them
    at = run_app()  # the sidebar loads the default model and starts the warm-up
    ckpt = resources.load(resources.default_checkpoint())
    warming = analysis.warm_up(ckpt)
    assert warming is not None and warming.name == "warm-up default"
    warming.join(timeout=120)
    assert not warming.is_alive() and fits == [1] and judged == [1, 1, 1], "fitted; prior, mixture and 7s judged"
    assert analysis._means_of(ckpt).value is not None

    at.switch_page("pages/generate.py").run()
    assert not at.exception, at.exception
    assert fits == [1] and judged == [1, 1, 1], "the page used what the warm-up made"
    assert analysis.warm_up(ckpt) is warming, "once per model"


def test_the_warm_up_readies_a_first_drawing_and_a_first_comparison_first(checkpoint_dir, monkeypatch, mnist):
    """A learner's first drawing needs the test set's -ELBO (how typical it is) and encodings (its
    nearest test digits), and Compare's first open both models' encodings: the warm-up makes them
    before the samplers, so that neither page encodes the 10,000 test digits itself."""
    configure(warm_up=True)
    shutil.copy(BUNDLED_DIR / "tutorial.pt", checkpoint_dir / "tutorial.pt")  # Compare's model A
    kept = checkpoint_dir / "test-set"
    monkeypatch.setattr(analysis, "test_set_cache", lambda: kept)  # nothing kept from before
    for cache in (analysis._warm_up, analysis.test_negative_elbo, analysis.test_encodings, analysis._projection,
                  analysis.compare_map):
        cache.clear()
    at = run_app()  # the sidebar starts the warm-up
    analysis.warm_up(resources.load(resources.default_checkpoint())).join(timeout=300)
    assert {path.name.split("-")[0] for path in kept.iterdir()} == {"elbo", "encodings"}

    whole_test_set = []

    def watched(fn):
        def call(model, images, *args, **kwargs):
            if np.ndim(images) > 2 and len(images) == len(mnist.test_images):
                whole_test_set.append(fn.__name__)
            return fn(model, images, *args, **kwargs)
        return call

    for name in ("encode", "negative_elbo"):
        monkeypatch.setattr(analysis.latent, name, watched(getattr(analysis.latent, name)))
    at.switch_page("pages/draw.py").run()
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert whole_test_set == [], "the pages found the test set's encodings and scores made"
