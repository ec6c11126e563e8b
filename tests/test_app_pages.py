"""The Draw, Latent map and Generate pages in real Streamlit (AppTest) with the bundled models.

Browser-only events are injected by widget key: the canvas as {"drawing": {"raw", "data"}} with a
real PNG data URL, a plotly click as {"selection": {"points": [{"customdata": ...}]}}.
"""

import json

import numpy as np
import pytest
from PIL import Image

import studio
from harness import BUNDLED_DIR
from harness.apptest import canvas_value, click, drawn, image_bytes, image_captions, plotly_rows, run_app, texts

LATENT2D = str(BUNDLED_DIR / "latent2d.pt")
CANVAS_KEY = "draw_canvas_0"
GRID, TEST, DRAWING = studio.GRID, studio.TEST, studio.DRAWING  # the Latent map's point kinds


def test_draw_page_shows_a_hint_until_something_is_drawn():
    at = run_app("pages/draw.py")
    assert not at.exception
    assert "Draw a digit on the black canvas" in at.info[0].value
    at.session_state[CANVAS_KEY] = canvas_value(np.zeros((280, 280, 4), np.uint8))  # cleared canvas
    at.run()
    assert not at.exception and not at.error and "Draw a digit" in at.info[0].value


def test_drawing_gives_reconstruction_score_and_neighbours(mnist):
    at = run_app("pages/draw.py")
    at.session_state[CANVAS_KEY] = canvas_value(drawn(mnist, 0))  # test #0 is a 7
    at.run()
    assert not at.exception and not at.info
    captions = image_captions(at)
    assert "What the model sees (28×28)" in captions and "Reconstruction from the mean of q(z|x)" in captions
    neighbours = [c for c in captions if " · #" in c]
    assert len(neighbours) == 8 and sum(c.startswith("7") for c in neighbours) >= 6
    assert at.metric[0].label == "−ELBO (nats)" and float(at.metric[0].value) > 0
    assert "of the 10,000 test digits" in texts(at)
    last = at.session_state[studio.LAST_DRAWING_KEY]
    assert last["image"].shape == (28, 28) and last["mu"].shape == (32,)


def test_upload_good_and_bad_files(mnist):
    at = run_app("pages/draw.py", draw_source="Upload")
    assert "Upload a PNG or JPEG" in at.info[0].value
    digit = 255 - mnist.test_images[1].numpy()  # dark ink on white paper
    photo = image_bytes(Image.fromarray(digit).resize((400, 400)), "JPEG")
    at.file_uploader[0].set_value(("two.jpg", photo, "image/jpeg"))
    at.run()
    assert not at.exception and not at.error and at.metric[0].label == "−ELBO (nats)"
    at.file_uploader[0].set_value(("notes.png", b"this is not a picture", "image/png"))
    at.run()
    assert not at.exception and "not an image" in at.error[0].value
    at.file_uploader[0].set_value(("blank.png", image_bytes(Image.new("L", (64, 64), 255)), "image/png"))
    at.run()
    assert not at.exception and "no digit stands out" in at.warning[0].value


def test_map_decodes_a_clicked_point_and_a_grid_location():
    at = run_app("pages/latent_map.py")
    assert not at.exception
    assert at.radio(key="map_method").options == ["PCA", "t-SNE"]  # no raw view of a 32-D latent
    assert "choose **latent2d**" in texts(at)
    key = "latent_map_default_pca_2000_30"  # latent_map_<model>_<method>_<subset>_<perplexity>
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    grid, *digits = spec["data"]
    grid_points, digit_points = plotly_rows(grid["customdata"]), [plotly_rows(t["customdata"]) for t in digits]
    assert len(grid_points) == 25 * 25 and all(kind == GRID for kind, _, _ in grid_points)
    assert [t["name"] for t in digits] == [str(d) for d in range(10)]
    assert sum(len(points) for points in digit_points) == 2000
    _, index, _ = digit_points[3][0]  # a real point of the digit-3 trace: [TEST, index, 3]
    at.session_state[key] = click({"customdata": [TEST, index, 3]})
    at.run()
    assert not at.exception
    assert f"Test #{index}: a 3" in image_captions(at) and "Decoded from its mean" in image_captions(at)
    _, x, y = grid_points[300]
    at.session_state[key] = click({"customdata": [GRID, x, y]})
    at.run()
    assert not at.exception and f"Decoded at ({x:.2f}, {y:.2f})" in image_captions(at)
    assert "PCA is linear" in texts(at)


def test_map_of_a_2d_latent_offers_raw_coordinates_a_manifold_and_the_drawing(mnist):
    drawing = {"image": mnist.test_images[0].numpy() / 255.0, "mu": np.zeros(32, np.float32),
               "checkpoint": "another-model.pt"}  # drawn with another model: re-encoded here
    at = run_app("pages/latent_map.py", LATENT2D, **{studio.LAST_DRAWING_KEY: drawing})
    assert not at.exception
    assert at.radio(key="map_method").value == "raw"
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star, target = spec["data"][-2:]
    assert star["name"] == "your drawing" and star["marker"]["symbol"] == "star"
    # Clicks go to a small transparent marker drawn last on the star (see the browser test).
    assert star["hoverinfo"] == "skip" and star["legendgroup"] == target["legendgroup"]
    assert (target["x"], target["y"]) == (star["x"], star["y"]) and target["marker"]["size"] <= 6
    assert plotly_rows(target["customdata"]) == [[DRAWING, 0, 0]]
    assert any(s.value == "Manifold" for s in at.subheader)
    at.session_state["latent_map_latent2d_raw_2000_30"] = click({"customdata": [GRID, 0.25, -0.5]})
    at.run()
    assert not at.exception and "Decoded at (0.25, -0.50)" in image_captions(at)


def test_map_view_takes_in_a_drawing_far_from_every_test_digit(mnist):
    """A stroke unlike any digit can encode far outside the test digits: the star must stay in view
    (the load bench once clicked a star that Plotly had clipped away)."""
    drawing = {"image": mnist.test_images[0].numpy() / 255.0, "mu": np.full(32, 12.0, np.float32),
               "checkpoint": str(studio.DEFAULT_CHECKPOINT.resolve())}  # drawn with this model: mu is used
    at = run_app("pages/latent_map.py", **{studio.LAST_DRAWING_KEY: drawing})
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star = spec["data"][-2]
    assert star["name"] == "your drawing"
    (sx,), (sy,) = star["x"], star["y"]
    digits = [trace for trace in spec["data"] if trace["name"] in list("0123456789")]
    xs = np.concatenate([plotly_rows(t["x"]) for t in digits])
    ys = np.concatenate([plotly_rows(t["y"]) for t in digits])
    assert not (xs.min() <= sx <= xs.max() and ys.min() <= sy <= ys.max())  # a case that needs the fix
    (x0, x1), (y0, y1) = spec["layout"]["xaxis"]["range"], spec["layout"]["yaxis"]["range"]
    assert x0 < sx < x1 and y0 < sy < y1


def test_map_with_tsne_decodes_a_mix_of_neighbours():
    at = run_app("pages/latent_map.py")
    at.radio(key="map_method").set_value("tsne")
    at.select_slider(key="map_subset").set_value(250)
    at.run()
    assert not at.exception and "cannot decode a location" in texts(at)
    assert not at.subheader  # no manifold without an inverse
    at.session_state["latent_map_default_tsne_250_30"] = click({"customdata": [GRID, 0.0, 0.0]})
    at.run()
    assert not at.exception and "t-SNE has no inverse map" in texts(at)


def test_generate_page_renders_and_reseeds():
    at = run_app("pages/generate.py")
    assert not at.exception
    assert [s.value for s in at.subheader] == [
        "Samples from the prior", "Interpolation between two test digits", "Latent traversal"]
    dims = at.multiselect[0].value
    assert len(dims) == 8 and len(set(dims)) == 8
    before = len(at.get("image"))
    at.button[0].click().run()  # "New seed"
    assert not at.exception and at.number_input(key="gen_seed").value != 0
    at.multiselect[0].set_value(dims[:2]).run()
    assert len(at.get("image")) == before - 6  # one row per chosen dimension
    at.multiselect[0].set_value([]).run()
    assert "Pick at least one dimension" in at.info[0].value


@pytest.mark.parametrize("page_path", ["pages/draw.py", "pages/latent_map.py", "pages/generate.py"])
def test_pages_render_with_the_2d_model(page_path):
    at = run_app(page_path, LATENT2D)
    assert not at.exception and not at.error
