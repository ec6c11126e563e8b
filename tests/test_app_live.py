"""A classroom on one server: many sessions watching the one live run share what it shows, see who
started it, confirm before stopping someone else's, and queue for the CPU with a word on why."""

from __future__ import annotations

import json
import queue
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import studio
from harness import ROOT, TINY
from harness.apptest import run_app, wait_until
from vae import load_checkpoint
from vae.jobs import ModelWorkGate
from vae.train import TrainConfig, TrainResult

WATCHERS = 30
THREE_EPOCHS = {**TINY, "epochs": 3}


class PuppetTrain:
    """Stands in for vae.train.train: sends the progress events the test hands it, as a real run
    would, until Stop."""

    def __init__(self):
        self.events: queue.Queue = queue.Queue()

    def __call__(self, config, checkpoint_path, *, stop, callback, data):
        while not stop.is_set():
            try:
                callback(self.events.get(timeout=0.02))
            except queue.Empty:
                continue
        return TrainResult("stopped", "Stopped by request.", None)

    def steps(self, job, first: int, last: int) -> None:
        for step in range(first, last + 1):
            self.events.put({"kind": "step", "step": step, "epoch": 1 + (step - 1) // 10, "epochs": 3,
                             "total_steps": 30, "loss": 200.0 - step, "bce": 180.0 - step, "kl": 20.0,
                             "img_per_s": 1000.0, "eta_s": 30.0})
        wait_until(lambda: job.snapshot().step == last, timeout=10)

    def epoch(self, job, epoch: int) -> None:
        scores = {"loss": 150.0 - epoch, "bce": 130.0, "kl": 20.0 - epoch}
        self.events.put({"kind": "epoch", "epoch": epoch, "seconds": 1.0, "img_per_s": 1000.0, "train": scores,
                         "val": scores, "test": scores,
                         "reconstructions": np.random.default_rng(epoch).random((2, 10, 28, 28), dtype=np.float32),
                         "weights": None})
        wait_until(lambda: len(job.snapshot().history["epochs"]) == epoch, timeout=10)

    def frame(self, job, film) -> None:
        self.events.put({"kind": "frame", "film": film})
        wait_until(lambda: job.snapshot().film is film, timeout=10)


@pytest.fixture
def puppet(job, checkpoint_dir, monkeypatch):
    """The server's job driven by a PuppetTrain, publishing every 0.3 s (so a test need not wait
    a whole refresh interval between changes)."""
    monkeypatch.setattr(studio, "LIVE_PERIOD_S", 0.3)
    monkeypatch.setattr(studio, "LIVE_FIGURES_S", 0.3)
    studio._publisher.clear()
    studio._live_view.clear()
    studio._live_film.clear()
    train = PuppetTrain()
    job._train = train
    yield train
    studio._publisher.clear()


@contextmanager
def counting(monkeypatch, *names):
    """Counts the calls of studio's figure builders ``names`` (studio.NAME), into a dict."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(studio, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(studio, name, counted)
    yield counts


def train_page() -> AppTest:
    """A session on the Train page alone (the page script, without the app's sidebar)."""
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def curves_spec(at: AppTest) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and "train_curves" in c.proto.id).proto.spec)


def test_sessions_watching_the_run_share_one_build_per_change(puppet, job, monkeypatch):
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "live.pt", started_by="teacher")
    puppet.steps(job, 1, 4)
    sessions = [train_page() for _ in range(WATCHERS)]  # all watching step 4 (and building it once)
    film = load_checkpoint(studio.DEFAULT_CHECKPOINT).film
    with counting(monkeypatch, "loss_figure", "film_figure", "make_grid") as builds:
        for change, (last, epoch) in enumerate([(10, 1), (17, None), (20, 2)], start=1):
            puppet.steps(job, 1 + job.snapshot().step, last)
            if epoch:
                puppet.epoch(job, epoch)
            if change == 3:
                puppet.frame(job, film)
            time.sleep(studio.LIVE_PERIOD_S)  # the next refresh publishes the change
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


def test_a_refresh_with_nothing_new_builds_nothing(puppet, job, monkeypatch):
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "quiet.pt", started_by="teacher")
    puppet.steps(job, 1, 3)
    sessions = [train_page() for _ in range(3)]
    with counting(monkeypatch, "loss_figure") as builds:
        time.sleep(studio.LIVE_PERIOD_S)
        for at in sessions:
            at.run()
        assert builds["loss_figure"] == 0, "no new step, no new figure"


def test_the_page_says_who_started_the_run_and_asks_before_stopping_another_browsers(puppet, job):
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "theirs.pt", started_by="someone else")
    at = train_page()
    when = time.strftime("%H:%M", time.localtime(job.snapshot().started_at))
    assert any(c.value == f":material/person: Started in another browser at {when}." for c in at.caption)

    at.button(key="train_stop").click().run()
    assert job.snapshot().status == "running", "one press on Stop does not stop another browser's run"
    assert "Started in another browser" in at.warning[0].value and "Stop it?" in at.warning[0].value
    at.button(key="train_stop_cancel").click().run()
    assert job.snapshot().status == "running" and not at.warning
    assert not any(b.key == "train_stop_confirm" for b in at.button)

    at.button(key="train_stop").click().run()
    at.button(key="train_stop_confirm").click().run()
    assert job.snapshot().status in ("stopping", "stopped")
    assert job.wait(timeout=10)
    at.run()
    assert not at.exception, at.exception
    assert at.warning[0].value.startswith("Stopped by request")


def test_a_run_started_here_says_so_and_stops_at_once(puppet, job):
    at = train_page()
    at.text_input(key="train_name").set_value("mine")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert job.snapshot().running
    assert any(c.value.startswith(":material/person: Started here at ") for c in at.caption)
    other = train_page()  # another browser sees it as someone else's
    assert any("Started in another browser" in c.value for c in other.caption)
    at.button(key="train_stop").click().run()
    assert job.snapshot().status in ("stopping", "stopped"), "its own run: no question asked"


def test_a_stale_confirmation_does_not_stop_the_next_run(puppet, job):
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "first.pt", started_by="someone else")
    at = train_page()
    at.button(key="train_stop").click().run()  # asks; then the run is stopped elsewhere and another starts
    job.stop()
    assert job.wait(timeout=10)
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "second.pt", started_by="someone else")
    wait_until(lambda: job.snapshot().running)
    at.run()
    assert not any(b.key == "train_stop_confirm" for b in at.button), "the question was about the first run"
    assert job.snapshot().status == "running"


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
    monkeypatch.setattr(studio, "WAIT_NOTICE_S", 0.2)
    monkeypatch.setattr(studio, "WAIT_POLL_S", 0.1)
    studio.model_gate.clear()
    gate = studio.model_gate()
    gate.notices = []
    real_notice = studio.wait_notice

    def recording_notice(notice, waited_s, queued):
        gate.notices.append((waited_s, queued))
        real_notice(notice, waited_s, queued)

    monkeypatch.setattr(studio, "wait_notice", recording_notice)
    yield gate
    studio.model_gate.clear()


def test_a_page_waiting_behind_the_run_says_why(puppet, job, busy_gate):
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "busy.pt", started_by="teacher")
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
    job.stop()
    assert job.wait(timeout=10)
    at.run()  # no run: no queue
    assert not at.exception and not busy_gate.notices


def test_a_run_that_ends_ends_the_wait(puppet, job, busy_gate):
    """Pages queue only while a run trains: when it ends, a waiting page runs at once, taking no
    slot (and so freeing none that it never took)."""
    assert job.start(TrainConfig(**THREE_EPOCHS), studio.CHECKPOINT_DIR / "ending.pt", started_by="teacher")
    for _ in range(busy_gate.slots):
        assert busy_gate.acquire(timeout=1) is True
    threading.Timer(1.0, job.stop).start()
    started = time.monotonic()
    at = run_app("pages/home.py")
    assert not at.exception and at.header and busy_gate.notices
    assert time.monotonic() - started < 10
    for _ in range(busy_gate.slots):  # a gate that a page released without taking would refuse these
        busy_gate.release()


def test_the_live_figures_slow_down_for_a_crowd_only(monkeypatch):
    studio._watchers.clear()
    for i in range(studio.LIVE_CROWD):
        studio.watching(f"student-{i}")
    assert studio.live_figures_period() == studio.LIVE_REFRESH_S, "a few watchers see the figures as often"
    studio.watching("one-too-many")
    assert studio.live_figures_period() == studio.LIVE_FIGURES_S
    monkeypatch.setattr(studio, "WATCHING_S", 0.0)  # they have all left
    time.sleep(0.01)
    assert studio.live_figures_period() == studio.LIVE_REFRESH_S
    studio._watchers.clear()


def test_the_default_model_is_warmed_once_so_a_first_generate_visit_waits_for_nothing(checkpoint_dir, monkeypatch):
    # A class's first visit to Generate would hold one of the page queue's two places while it
    # fits the mixture; the app starts that work on a thread of its own when the model loads.
    monkeypatch.setattr(studio, "WARM_UP", True)
    fits, judged = [], []
    fit, judge = studio.samplers.fit_mixture, studio.samplers.sample_quality
    monkeypatch.setattr(studio.samplers, "fit_mixture", lambda *a, **k: fits.append(1) or fit(*a, **k))
    monkeypatch.setattr(studio.samplers, "sample_quality", lambda *a, **k: judged.append(1) or judge(*a, **k))
    at = run_app()  # the sidebar loads the default model (this test's own copy, so nothing is cached yet)
    model = studio.load_model(studio.DEFAULT_CHECKPOINT)
    warming = studio.warm_up(model)
    assert warming is not None and warming.name == "warm-up default"
    warming.join(timeout=120)
    assert not warming.is_alive() and fits == [1] and judged == [1, 1, 1], "fitted; prior, mixture and 7s judged"
    assert studio.model_key(model) in studio._means_store()

    at.switch_page("pages/generate.py").run()
    assert not at.exception, at.exception
    assert fits == [1] and judged == [1, 1, 1], "the page used what the warm-up made"
    assert studio.warm_up(model) is warming, "once per model"
