"""The class's rate-distortion board: the points read from the checkpoint files (classroom/board.py), its
figure's labels (studio/figures.py), and the Board page (AppTest): every VAE where it stands, a run in
progress with its trail, a class's untrained runs hidden, every point in a table, a click on a point or
a row that makes a model active or opens it on Compare."""

import itertools
import json
import shutil
import threading

import numpy as np
import pytest

from classroom.board import BoardPoint, board, model_point, run_point
from harness import BUNDLED_DIR, TINY, train_watching
from harness.apptest import click, run_app, texts
from harness.board import COPIES, SHORT_RUNS, fill_class_folder, train_short_runs
from studio import resources
from studio.figures import BOARD_PLOT_PX, _diagonals, _inside, _marker_box, _name_labels, _overlaps, board_figure
from vae.checkpoint import read_checkpoint
from vae.config import TrainConfig
from vae.events import EpochEvent
from vae.history import EpochRecord, History, Scores


def chart_labels(at) -> list[str]:
    """The names drawn on the board: its annotations but the diagonals' −ELBO and the note above the plane."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [a["text"] for a in spec["layout"].get("annotations", [])
            if not a["text"].startswith("−ELBO") and a.get("xref") != "paper"]


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

    point = run_point("mine", 2.0, 8, "mnist", History(epochs=(epoch(1, 5.0, 120.0), epoch(2, 9.0, 100.0))))
    assert (point.rate, point.distortion, point.trail) == (9.0, 100.0, ((5.0, 120.0), (9.0, 100.0)))
    assert run_point("mine", 1.0, 8, "mnist", History()) is None


def test_the_board_shows_every_vae_and_a_click_makes_one_active(checkpoint_dir):
    for name in ("beta4.pt", "autoencoder.pt"):
        shutil.copy(BUNDLED_DIR / name, checkpoint_dir / name)
    at = run_app("pages/board.py")
    assert sorted(chart_labels(at)) == ["beta4 · β 4", "default"], "the autoencoder has no rate to plot"
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
        assert "moving · learner some (training)" in chart_labels(at), "its owner beside its name"
        assert "Training now: moving · learner some." in texts(at)
        table = at.dataframe(key="board_table").value.set_index("Name")
        assert table.loc["moving", "Owner"] == "learner some" and table.loc["moving", "Training"]
        at.session_state["board_chart"] = click({"customdata": ["moving · learner some"]})
        at.run()
        assert "moving is still training" in texts(at)
    finally:
        release.set()
    assert run_queue.wait(run.id, timeout=120)


# ---------------------------------------------------------------- labels that never overprint


def test_points_on_one_place_get_one_label_and_no_two_labels_overlap():
    rng = np.random.default_rng(0)
    width, height = BOARD_PLOT_PX
    centres = [(300.0, 200.0)] * 12 + [(float(x), float(y)) for x, y in rng.uniform((0, 0), (width, height), (60, 2))]
    names = [f"run-{i}" * (1 + i % 3) for i in range(len(centres))]
    markers = [_marker_box(*centre) for centre in centres]
    labels = _name_labels(centres, names, list(markers))
    assert [label.text for label in labels[:12] if label] == ["run-0 +11 more"]
    drawn = [label.box for label in labels if label]
    assert len(drawn) > 20, "a crowded plane still names many points"
    assert all(_inside(box) for box in drawn)
    assert not [(a, b) for a, b in itertools.combinations(drawn, 2) if _overlaps(a, [b])]
    assert not [box for box in drawn if _overlaps(box, markers)]


@pytest.mark.parametrize("x_max, y_lo, y_hi", [(30.0, 60.0, 560.0), (40.0, 60.0, 150.0), (120.0, 80.0, 100.0)])
def test_each_diagonal_is_labelled_once_at_an_edge_apart_from_the_others(x_max, y_lo, y_hi):
    taken = []
    levels, labels = _diagonals(-0.02 * x_max, x_max, y_lo, y_hi, taken)
    texts_ = [label["text"] for label in labels]
    assert len(texts_) == len(set(texts_)) >= 2 and len(levels) <= 30
    assert all(label["x"] == x_max or label["y"] == y_lo for label in labels), "at the right or the bottom edge"
    assert not [(a, b) for a, b in itertools.combinations(taken, 2) if _overlaps(a, [b])]


def test_runs_on_one_point_share_a_label_and_every_name_shows_on_hover():
    same = [BoardPoint(f"nodel-{i}", None, 1.0, 32, "mnist", 0.5, 371.0) for i in range(5)]
    fig = board_figure([BoardPoint("default", BUNDLED_DIR / "default.pt", 1.0, 32, "mnist", 21.6, 69.9)], same)
    assert [a.text for a in fig.layout.annotations if not a.text.startswith("−ELBO")] == \
        ["default", "nodel-0 (training) +4 more"]
    hover = next(trace.hovertext for trace in fig.data if trace.hovertext)
    assert "Here too: nodel-1, nodel-2, nodel-3, nodel-4" in hover[1]


# ---------------------------------------------------------------- a class's runs on the page


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, mnist):
    """The short runs of harness/board.py, trained once for the module."""
    folder = tmp_path_factory.mktemp("short-runs")
    train_short_runs(folder, mnist)
    return folder


@pytest.fixture
def class_dir(checkpoint_dir, short_runs):
    fill_class_folder(checkpoint_dir, short_runs)
    return checkpoint_dir


def chart_names(at) -> set[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {row[0] for trace in spec["data"] if trace.get("customdata") for row in trace["customdata"]}


def test_a_class_s_untrained_runs_are_hidden_and_every_point_is_in_the_table(class_dir):
    at = run_app("pages/board.py")
    trained = {"default", "beta1", "beta4", "latent2d", "tutorial", *COPIES}
    assert at.toggle(key="board_hide_untrained").value, "on by default: the short runs are far above the rest"
    assert chart_names(at) == trained
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert f"{len(SHORT_RUNS)} untrained runs hidden" in " ".join(a["text"] for a in spec["layout"]["annotations"])
    assert "beta4 · β 4 +2 more" in chart_labels(at), "learners' copies of beta4 sit on its point"

    table = at.dataframe(key="board_table").value
    assert list(table.columns) == ["Name", "Owner", "β", "Latent size", "Rate (KL)", "Distortion (BCE)", "−ELBO",
                                   "Training"]
    assert set(table["Name"]) == trained | set(SHORT_RUNS) and set(table["Owner"]) == {"—"}
    assert list(table["−ELBO"]) == sorted(table["−ELBO"]) and not table["Training"].any()

    at.toggle(key="board_hide_untrained").set_value(False).run()
    assert not at.exception, at.exception
    assert chart_names(at) == trained | set(SHORT_RUNS)
    same_seed = [label for label in chart_labels(at) if label.split()[0] in ("cy", "dee", "eve")]
    assert len(same_seed) == 1 and same_seed[0].startswith("cy +"), "one seed, one point, one label"


def test_a_row_of_the_table_or_a_point_makes_a_model_active_the_latest_click_winning(class_dir):
    at = run_app("pages/board.py")
    names = list(at.dataframe(key="board_table").value["Name"])
    at.session_state["board_table"] = {"selection": {"rows": [names.index("beta4")], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    assert "**beta4**: β = 4, latent size 32" in texts(at)
    at.session_state["board_chart"] = click({"customdata": ["latent2d"]})
    at.run()
    assert "**latent2d**: β = 1, latent size 2" in texts(at) and "**beta4**" not in texts(at)
    next(b for b in at.button if b.key == "board_activate").click().run()
    assert at.session_state[resources.ACTIVE_KEY] == str(class_dir / "latent2d.pt")
    at.session_state["board_table"] = {"selection": {"rows": [names.index("ada")], "columns": []}}
    at.run()
    assert "**ada**: β = 1, latent size 32" in texts(at), "a hidden run is chosen from the table"
