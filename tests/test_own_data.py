"""Datasets other than MNIST end to end: scikit-learn's digits and a colour zip of shapes train from
the command line and from the Train page, their checkpoints say what they learned, and every page
works on their models and says which dataset it is on. (Reading folders and zips, and bad input:
test_datasets.py.)"""

import io
import json
import shutil

import numpy as np
import pytest

import vae.train
from classroom.board import board
from classroom.pages import PAGES
from harness import BUNDLED
from harness.apptest import canvas_value, drawn, fill_form, image_captions, press_queue, run_app, texts
from harness.shapes import KINDS, shape, shapes_zip
from harness.wait import until
from studio.analysis import LAST_DRAWING_KEY
from vae import load_checkpoint
from vae.datasets import COLOR, add_dataset
from vae.settings import configure, settings

LEARNER_PAGES = [page.file for page in PAGES.values() if not page.teacher_only]  # the teacher's view shows no model


@pytest.fixture(scope="session")
def own_models(tmp_path_factory):
    """A checkpoint folder with the bundled default, a digits model and a colour shapes model, both
    trained from the command line (a few epochs of seconds each): {"digits": path, "shapes": path}."""
    folder = tmp_path_factory.mktemp("own-models")
    shutil.copy(BUNDLED, folder / "default.pt")
    shapes, _ = add_dataset(shapes_zip(folder / "shapes.zip"), COLOR)
    small = ["--latent-dim", "8", "--batch-size", "32", "--epochs", "3"]
    assert vae.train.main(["--data", "digits", *small, "--out", str(folder / "digits.pt")]) == 0
    assert vae.train.main(["--data", shapes.info.key, "--color", *small, "--out", str(folder / "shapes.pt")]) == 0
    return {"digits": folder / "digits.pt", "shapes": folder / "shapes.pt"}


@pytest.fixture
def own_folder(own_models, monkeypatch):
    folder = own_models["digits"].parent
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(folder))
    configure(checkpoint_dir=folder)
    return folder


def test_a_checkpoint_records_its_dataset_and_image_form(own_models):
    digits, shapes = load_checkpoint(own_models["digits"]), load_checkpoint(own_models["shapes"])
    assert (digits.dataset.key, digits.dataset.name, digits.dataset.train_count + digits.dataset.test_count) == \
        ("digits", "scikit-learn digits", 1797)
    assert digits.config.image_shape == (1, 28, 28) and digits.train_config.val_size == 0.1
    assert shapes.dataset.label_names == KINDS and shapes.config.image_shape == (3, 32, 32)
    assert shapes.dataset.background == "white" and shapes.train_config.data == shapes.dataset.key
    assert shapes.model.sample(2).shape == (2, 3, 32, 32)
    assert load_checkpoint(BUNDLED).dataset.key == "mnist", "a file from before datasets is MNIST's"


def test_the_command_line_refuses_colour_for_a_grayscale_built_in(capsys):
    assert vae.train.main(["--data", "digits", "--color", "--epochs", "1"]) == 2
    assert "drop --color" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["digits", "shapes"])
@pytest.mark.parametrize("page", LEARNER_PAGES)
def test_every_page_works_on_a_model_of_another_dataset(own_folder, own_models, dataset, page):
    at = run_app(page, model=str(own_models[dataset]))
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    name = load_checkpoint(own_models[dataset]).dataset.name
    assert name in " ".join(c.value for c in at.sidebar.caption), "the sidebar card names the dataset"
    if page in ("pages/draw.py", "pages/latent_map.py", "pages/generate.py"):
        assert name in texts(at), f"{page} says which dataset it is on"


def test_the_shapes_map_has_its_three_labels_and_generate_samples_each(own_folder, own_models):
    at = run_app("pages/latent_map.py", model=str(own_models["shapes"]))
    (chart,) = at.get("plotly_chart")
    names = {trace["name"] for trace in json.loads(chart.proto.spec)["data"]}
    assert set(KINDS) <= names
    at = run_app("pages/generate.py", model=str(own_models["shapes"]))
    labels = at.segmented_control(key=f"gen_digit_{load_checkpoint(own_models['shapes']).dataset.key}")
    assert list(labels.options) == list(KINDS)
    labels.set_value(0).run()
    assert not at.exception and "New images of “circle”" in texts(at)


def test_draw_takes_an_upload_for_a_colour_model_and_has_no_canvas(own_folder, own_models):
    at = run_app("pages/draw.py", model=str(own_models["shapes"]))
    assert at.segmented_control(key="draw_source").options == ["Upload"]
    png = io.BytesIO()
    shape("circle", (220, 40, 40), np.random.default_rng(1)).save(png, format="PNG")
    at.file_uploader(key="draw_upload").set_value(("red.png", png.getvalue(), "image/png")).run()
    assert not at.exception
    assert "What the model sees (32×32, colour)" in image_captions(at)
    verdict = " ".join(box.value for box in [*at.success, *at.warning])
    assert "Looks like" in verdict or "Unsure" in verdict, "a labelled set has its vote"
    # The upload is the learner's last image on the other pages too, for this colour model.
    at.switch_page("pages/latent_map.py").run()
    (chart,) = at.get("plotly_chart")
    assert "your drawing" in {trace["name"] for trace in json.loads(chart.proto.spec)["data"]}
    at.switch_page("pages/inside.py").run()
    assert not at.exception and at.segmented_control(key="inside_source").value == "drawing"


def test_compare_across_datasets_shows_the_cards_and_says_why_no_more(own_folder, own_models):
    at = run_app("pages/compare.py", compare_a=str(own_models["shapes"]), compare_b=str(BUNDLED.parent / "default.pt"))
    assert "learned different datasets" in texts(at)


def test_the_train_page_queues_a_run_on_digits(run_queue, checkpoint_dir):
    at = run_app("pages/train.py")
    at.selectbox(key="train_data").set_value("digits").run()
    assert "scikit-learn digits: 1,618 training and 179 test images" in texts(at)
    at = press_queue(fill_form(at, name="digits2", epochs=2, latent_dim=8, batch_size=64))
    run = run_queue.runs()[0]
    until(lambda: not run_queue.snapshot(run.id).active, timeout=120)
    ckpt = load_checkpoint(checkpoint_dir / "digits2.pt")
    assert ckpt.dataset.key == "digits" and len(ckpt.history.epochs) == 2


def test_the_train_page_reads_an_uploaded_zip_and_reports_it_before_a_run(run_queue, tmp_path):
    at = run_app("pages/train.py")
    at.selectbox(key="train_data").set_value("upload").run()
    zipped = shapes_zip(tmp_path / "my shapes.zip", per_kind=6, seed=3).read_bytes()
    at.file_uploader(key="train_zip").set_value(("my shapes.zip", zipped, "application/zip")).run()
    next(b for b in at.button if b.label == "Read the zip").click().run()
    assert not at.exception and not at.error
    key = at.session_state["train_data"]
    assert key.startswith("my-shapes-")
    report = texts(at)
    assert "18 images, 3 labels" in report and "white" in report
    assert [c for c in image_captions(at) if c.startswith("circle: 6 images")]
    assert not list((settings().data_dir / "uploads").glob("*")), "the upload itself is not kept"


def test_the_train_page_says_what_is_wrong_with_a_bad_upload(run_queue):
    at = run_app("pages/train.py")
    at.selectbox(key="train_data").set_value("upload").run()
    at.file_uploader(key="train_zip").set_value(("notes.zip", b"not a zip at all", "application/zip")).run()
    next(b for b in at.button if b.label == "Read the zip").click().run()
    assert not at.exception
    assert "notes.zip: " in at.error[0].value and "zip" in at.error[0].value


def test_the_board_gives_each_dataset_a_plane_of_its_own(own_folder, own_models):
    points, problems = board([own_folder / "default.pt", *own_models.values()])
    assert not problems and sorted(p.dataset for p in points) == sorted(
        ["mnist", "digits", load_checkpoint(own_models["shapes"]).dataset.key])
    at = run_app("pages/board.py")
    planes = at.radio(key="board_dataset")
    assert planes.value == "mnist" and len(planes.options) == 3
    assert [row for row in at.dataframe(key="board_table").value["Name"]] == ["default"]
    planes.set_value("digits").run()
    assert not at.exception and list(at.dataframe(key="board_table").value["Name"]) == ["digits"]


def test_an_unlabelled_set_is_one_colour_on_the_map_with_its_mixture_components(own_folder, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(60):
        shape(KINDS[i % 3], (0, 0, 0), rng).save(folder / f"{i:02d}.png")
    flat, _ = add_dataset(folder)
    assert not flat.info.labelled
    model = own_folder / "flat.pt"  # in the sidebar's folder for this test only: the others see three models
    assert vae.train.main(["--data", flat.info.key, "--latent-dim", "4", "--batch-size", "16", "--epochs", "2",
                           "--out", str(model)]) == 0
    try:
        at = run_app("pages/latent_map.py", model=str(model))
        assert not at.exception and "has no labels" in texts(at)
        (chart,) = at.get("plotly_chart")
        traces = {trace["name"]: trace for trace in json.loads(chart.proto.spec)["data"]}
        assert "test image" in traces and "mixture components" in traces
        at = run_app("pages/generate.py", model=str(model))
        assert not at.exception and "A label of your choice" not in [s.value for s in at.header]
    finally:
        model.unlink()


def test_a_drawing_on_the_canvas_is_made_like_the_digits_datasets_images(own_folder, own_models, mnist):
    at = run_app("pages/draw.py", model=str(own_models["digits"]))
    at.session_state["draw_canvas_0"] = canvas_value(drawn(mnist, 0))  # a 7, small in a corner of the frame
    at.run()
    assert not at.exception and "What the model sees (28×28)" in image_captions(at)
    seen = at.session_state[LAST_DRAWING_KEY]["image"]
    rows, cols = np.nonzero(seen > 0.5)
    # Cropped to its ink and fitted to the frame, as the 8x8 digits fill theirs (MNIST's recipe keeps a
    # 4-pixel margin): the stroke reaches two opposite edges.
    assert rows.min() <= 1 and rows.max() >= 26 or cols.min() <= 1 and cols.max() >= 26
    verdict = " ".join(box.value for box in [*at.success, *at.warning])
    assert "Looks like" in verdict or "Unsure" in verdict
