"""The class's rate-distortion board: the points read from the checkpoint files (classroom/board.py), and
the Board page (AppTest): every VAE where it stands, a run in progress with its trail, a click that
makes a model active or opens it on Compare."""

import json
import shutil
import threading

import pytest

from classroom.board import board, model_point, run_point
from harness import BUNDLED_DIR, TINY, train_watching
from harness.apptest import click, run_app, texts
from studio import resources
from vae.checkpoint import read_checkpoint
from vae.config import TrainConfig
from vae.events import EpochEvent
from vae.history import EpochRecord, History, Scores


def test_a_models_point_is_its_test_kl_and_bce_and_an_autoencoder_has_none():
    point = model_point(BUNDLED_DIR / "beta4.pt")
    test = read_checkpoint(BUNDLED_DIR / "beta4.pt")["metrics"]["test"]
    assert (point.rate, point.distortion, point.beta, point.latent_dim) == (test["kl"], test["bce"], 4.0, 32)
    assert point.negative_elbo == pytest.approx(test["loss"], abs=1e-6)
    assert model_point(BUNDLED_DIR / "autoencoder.pt") is None


def test_a_broken_file_is_left_out_with_its_reason(tmp_path):
    shutil.copy(BUNDLED_DIR / "default.pt", tmp_path / "default.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    points, problems = board([tmp_path / "default.pt", tmp_path / "broken.pt"])
    assert [p.name for p in points] == ["default"] and "broken.pt" in problems[0]


def test_a_run_in_progress_has_its_trail_and_no_point_before_its_first_epoch():
    def epoch(number: int, kl: float, bce: float) -> EpochRecord:
        scores = Scores(loss=kl + bce, bce=bce, kl=kl)
        return EpochRecord(epoch=number, seconds=1.0, train_seconds=1.0, img_per_s=1000.0, train=scores, val=None,
                           test=scores)

    point = run_point("mine", 2.0, 8, History(epochs=(epoch(1, 5.0, 120.0), epoch(2, 9.0, 100.0))))
    assert (point.rate, point.distortion, point.trail) == (9.0, 100.0, ((5.0, 120.0), (9.0, 100.0)))
    assert run_point("mine", 1.0, 8, History()) is None


def test_the_board_shows_every_vae_and_a_click_makes_one_active(checkpoint_dir):
    for name in ("beta4.pt", "autoencoder.pt"):
        shutil.copy(BUNDLED_DIR / name, checkpoint_dir / name)
    at = run_app("pages/board.py")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    shown = [text for trace in spec["data"] if trace.get("text") for text in trace["text"]]
    assert sorted(shown) == ["beta4", "default"], "the autoencoder has no rate to plot"
    assert "lower left is better" in texts(at).lower() and "not on the board" in texts(at)

    at.session_state["board_chart"] = click({"customdata": ["beta4"]})
    at.run()
    assert not at.exception, at.exception
    assert "β = 4, latent size 32" in texts(at)
    next(b for b in at.button if b.key == "board_activate").click().run()
    assert at.session_state[resources.ACTIVE_KEY] == str(checkpoint_dir / "beta4.pt")
    at.session_state["board_chart"] = click({"customdata": ["beta4"]})
    at.run()
    next(b for b in at.button if b.key == "board_compare").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Compare two models"
    assert at.selectbox(key="compare_a").value == str(checkpoint_dir / "beta4.pt")


def test_a_run_training_now_is_on_the_board_with_its_trail(run_queue):
    epoch_one, release = threading.Event(), threading.Event()

    def hold_after_epoch_1(event):
        if isinstance(event, EpochEvent) and event.epoch == 1:
            epoch_one.set()
            release.wait(60)

    run_queue._executor._train = train_watching(hold_after_epoch_1)
    run = run_queue.submit(TrainConfig(**{**TINY, "epochs": 2}), "moving", owner="someone")
    try:
        assert epoch_one.wait(120)
        at = run_app("pages/board.py")
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        shown = [text for trace in spec["data"] if trace.get("text") for text in trace["text"]]
        assert "moving (training)" in shown and "Training now: moving." in texts(at)
        at.session_state["board_chart"] = click({"customdata": ["moving"]})
        at.run()
        assert "moving is still training" in texts(at)
    finally:
        release.set()
    assert run_queue.wait(run.id, timeout=120)
